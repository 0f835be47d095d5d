"""Drive one session's requests through the public handles, sync or async, on any store.

``Chat(kind, settings)`` holds the services and a real store (``Backing``: opened from the settings
as the middleware opens it, on the memory store or on Redis, see ``backends``) and a session
token carried in the session header, as a non-browser client would. ``chat.request()`` starts
one request: a ``Session`` behind a ``SyncConversation`` driven blocking (the kind's path
``sync``, the WSGI path) or a ``Conversation``, every call run to completion on one event loop
(path ``async``, the ASGI path). ``request.finish()`` is what the
middleware does at the end of a request. A kind is a ``Driver`` from the ``kind`` fixture, or
the name of a memory kind (``"sync"``, ``"async"``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from stickyctx import Conversation, Settings, SyncConversation
from stickyctx.core.flow import SESSION_HEADER
from stickyctx.core.messages import Snapshot
from stickyctx.core.storekeys import SessionKey
from stickyctx.core.tokenizer import REPLY_PRIMER_TOKENS
from stickyctx.edges.request import identify, response_headers
from stickyctx.sansio import run_async, run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services

from ..conftest import make_settings
from .backends import Backing, Driver, EventLoop

__all__ = ["Backing", "Chat", "Driver", "EventLoop", "Request", "settings_for"]

T = TypeVar("T")


def settings_for(**changes: Any) -> Settings:
    """Test settings; a request that waits for a turn a test forgot to end fails fast."""
    return make_settings(**{"turn_timeout": 2.0, **changes})


class Request:
    """One request's handle; each method is the handle's method, driven sync or async."""

    def __init__(self, chat: Chat, *, auto_lock: bool) -> None:
        state = identify(chat.services, [], chat.token if chat.token is not None else "new")
        if chat.token is None:
            chat.token = dict(response_headers(chat.services, state))[SESSION_HEADER]
        self.path = chat.kind.path
        self.store = chat.store.store
        self.logic = Session(chat.services, self.store, state, auto_lock=auto_lock)
        self._sync: SyncConversation | None = None
        self._async: Conversation | None = None
        if self.path == "sync":
            self._sync = SyncConversation(self.logic)
        else:
            self._async = Conversation(self.logic)

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

    def turn_count(self) -> int:
        return self._call(lambda h: h.turn_count(), lambda h: h.turn_count())

    def clear(self) -> None:
        self._call(lambda h: h.clear(), lambda h: h.clear())

    def finish(self) -> None:
        """The end of the request, as the middleware ends it."""
        if self.path == "sync":
            run_sync(self.logic.end(), self.store.sync_io)
        else:
            EventLoop.run(run_async(self.logic.end(), self.store.async_io))

    def crash_after_response(self) -> None:
        """Commit the turn as the response starts, then lose the fold (a process that died in
        ``finish``)."""
        if self.path == "sync":
            run_sync(self.logic.settle(200), self.store.sync_io)
        else:
            EventLoop.run(run_async(self.logic.settle(200), self.store.async_io))

    @property
    def key(self) -> SessionKey:
        return self.logic.key


class Chat:
    """One session, as a client sees it across requests."""

    def __init__(self, kind: Driver | str, settings: Settings, *,
                 services: Services | None = None, store: Backing | None = None) -> None:
        self.kind = kind if isinstance(kind, Driver) else Driver.memory(kind)
        self.settings = self.kind.configure(settings)
        self.services = services if services is not None else Services(self.settings)
        self.store = store if store is not None else self.kind.open(self.settings)
        self.token: str | None = None
        self._counts: dict[str, int] = {}

    def other_node(self) -> Chat:
        """This session as another node serves it: on Redis, a store of its own (connections and
        hot tier) over the same data; on the memory store (one process's data), this chat."""
        if not self.kind.on_redis:
            return self
        other = Chat(self.kind, self.settings)
        other.token = self.token
        return other

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
        session_id = identify(self.services, [], self.token).session_id
        snapshot: Snapshot = self.store.sync.load(self.services.keys.derive(session_id))
        return snapshot

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
                count = self._counts[key] = self.services.tokenizer.count_message(message)
            total += count
        return total
