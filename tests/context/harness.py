"""Drive one session's requests through the public handles, sync or async.

``Chat(kind, settings)`` holds an engine and a real ``MemoryStore`` (built from the settings, as
the middleware builds it) and a session token carried in the session header, as a non-browser
client would. ``chat.request()`` starts one request: a ``SessionLogic`` behind a
``SyncConversation`` over the store (``kind="sync"``, the WSGI path) or a ``Conversation`` over an
``AsyncMemoryStore`` on the same store, every call run to completion on one event loop
(``kind="async"``, the ASGI path). ``request.finish()`` is what the middleware does at the end of
a request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from stickyctx import Conversation, Settings, SyncConversation
from stickyctx._ops import run_async, run_sync
from stickyctx._session import SessionLogic
from stickyctx.core.flow import SESSION_HEADER
from stickyctx.core.keys import SessionKey
from stickyctx.core.messages import Snapshot, Summary
from stickyctx.core.tokenizer import REPLY_PRIMER_TOKENS
from stickyctx.engine import Engine
from stickyctx.stores import AsyncMemoryStore, MemoryStore

from ..conftest import make_settings

__all__ = ["DRIVERS", "Chat", "CountingStore", "EventLoop", "Request", "settings_for",
           "store_options"]

DRIVERS = ("sync", "async")
T = TypeVar("T")


class EventLoop:
    """The event loop of the async driver: one for the whole test run (``conftest`` closes it)."""

    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, T]) -> T:
        if cls.loop is None:
            cls.loop = asyncio.new_event_loop()
        return cls.loop.run_until_complete(coroutine)

    @classmethod
    def close(cls) -> None:
        if cls.loop is not None:
            cls.loop.run_until_complete(cls.loop.shutdown_default_executor())
            cls.loop.close()
            cls.loop = None


def settings_for(**changes: Any) -> Settings:
    """Test settings; a request that waits for a turn a test forgot to end fails fast."""
    return make_settings(**{"turn_timeout": 2.0, **changes})


class CountingStore(MemoryStore):
    """The real memory store, counting the calls of the primitives these tests watch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recounts = 0
        self.summaries: list[Summary | None] = []  # what every apply_summary call returned

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> int | None:
        self.recounts += 1
        return super().recount(key, encoding, tokens, expected_version=expected_version)

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False) -> Summary | None:
        applied = super().apply_summary(key, text, tokens, watermark=watermark,
                                        expected_watermark=expected_watermark,
                                        delete_folded=delete_folded)
        self.summaries.append(applied)
        return applied

    @property
    def applied(self) -> int:
        return sum(1 for s in self.summaries if s is not None)


def store_options(settings: Settings) -> dict[str, Any]:
    """What the middleware passes the memory store it opens for these settings."""
    return {"max_sessions": settings.memory_max_sessions, "idle_ttl": settings.idle_ttl,
            "absolute_ttl": settings.absolute_ttl,
            "max_session_tokens": settings.max_session_tokens,
            "max_session_bytes": settings.max_session_bytes}


class Request:
    """One request's handle; each method is the handle's method, driven sync or async."""

    def __init__(self, chat: Chat, *, auto_lock: bool) -> None:
        state = chat.engine.identify([], chat.token if chat.token is not None else "new")
        if chat.token is None:
            chat.token = dict(chat.engine.response_headers(state))[SESSION_HEADER]
        self.kind = chat.kind
        self.store = chat.store
        self.logic = SessionLogic(chat.engine, state, auto_lock=auto_lock)
        self._sync: SyncConversation | None = None
        self._async: Conversation | None = None
        if chat.kind == "sync":
            self._sync = SyncConversation(self.logic, chat.store)
        else:
            self._async = Conversation(self.logic, AsyncMemoryStore(chat.store))

    @property
    def handle(self) -> SyncConversation | Conversation:
        handle = self._sync if self._sync is not None else self._async
        assert handle is not None
        return handle

    def _call(self, sync: Callable[[SyncConversation], T],
              aio: Callable[[Conversation], Awaitable[T]]) -> T:
        if self._sync is not None:
            return sync(self._sync)
        assert self._async is not None
        handle = self._async

        async def run() -> T:
            return await aio(handle)

        return EventLoop.run(run())

    def append(self, role: str, content: Any, **fields: Any) -> int:
        return self._call(lambda h: h.append(role, content, **fields),
                          lambda h: h.append(role, content, **fields))

    def extend(self, messages: Sequence[Mapping[str, Any]]) -> int:
        return self._call(lambda h: h.extend(messages), lambda h: h.extend(messages))

    def messages(self) -> list[dict[str, Any]]:
        return self._call(lambda h: h.messages(), lambda h: h.messages())

    def window(self, budget: int | None = None, *,
               system: str | None = None) -> list[dict[str, Any]]:
        return self._call(lambda h: h.window(budget, system=system),
                          lambda h: h.window(budget, system=system))

    def token_count(self) -> int:
        return self._call(lambda h: h.token_count(), lambda h: h.token_count())

    def clear(self) -> None:
        self._call(lambda h: h.clear(), lambda h: h.clear())

    def finish(self) -> None:
        """The end of the request, as the middleware ends it."""
        if self.kind == "sync":
            run_sync(self.logic.finish(), self.store)
        else:
            EventLoop.run(run_async(self.logic.finish(), AsyncMemoryStore(self.store)))

    def crash_after_response(self) -> None:
        """Release the turn, then lose the fold (a process that died in ``finish``)."""
        run_sync(self.logic.unlock(), self.store)

    @property
    def key(self) -> SessionKey:
        return self.logic.key


class Chat:
    """One session, as a client sees it across requests."""

    def __init__(self, kind: str, settings: Settings, *, engine: Engine | None = None,
                 store: CountingStore | None = None) -> None:
        self.kind = kind
        self.settings = settings
        self.engine = engine if engine is not None else Engine(settings)
        self.store = store if store is not None else CountingStore(**store_options(settings))
        self.token: str | None = None
        self._counts: dict[str, int] = {}

    def request(self, *, auto_lock: bool = True) -> Request:
        return Request(self, auto_lock=auto_lock)

    @contextmanager
    def turn(self) -> Iterator[Request]:
        """A request that ends as the middleware ends it (``finish()``), even on an error."""
        request = self.request()
        try:
            yield request
        finally:
            request.finish()

    def stored(self) -> Snapshot:
        """The store's current snapshot of this session (read straight from the store)."""
        assert self.token is not None, "no request was made yet"
        session_id = self.engine.identify([], self.token).session_id
        return self.store.load(self.engine.keys.derive(session_id))

    def count(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """``tokenizer.count_messages(messages)``: the sum of ``count_message`` of each message
        plus the reply primer (0 for none), with each distinct message tokenized once."""
        if not messages:
            return 0
        total = REPLY_PRIMER_TOKENS
        for message in messages:
            key = json.dumps(message, sort_keys=True)
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = self.engine.tokenizer.count_message(message)
            total += count
        return total
