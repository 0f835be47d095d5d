"""The handle an app uses: ``Conversation`` (ASGI, awaited) and ``SyncConversation`` (WSGI).

Both have the same attributes and methods with the same meaning; each method is a one-line
drive of an operation from ``_session``, where the logic lives once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from ..core.affinity import Affinity
from ..core.inference import RouterKind, RoutingHints, lineage, prompt_cache_key, routing_hints
from ..sansio.drive import Op, run_async, run_sync
from ..stores.base import AsyncStore, SyncStore
from .logic import SessionLogic

__all__ = ["Conversation", "SyncConversation"]

T = TypeVar("T")


class _Handle:
    __slots__ = ("_logic",)

    def __init__(self, logic: SessionLogic) -> None:
        self._logic = logic

    @property
    def session_id(self) -> str:
        """The session id (changes after ``rotate()`` or when an expired session restarts)."""
        return self._logic.state.session_id

    @property
    def previous_id(self) -> str | None:
        """The id before ``rotate()`` in this request, else ``None``."""
        return self._logic.state.previous_id

    @property
    def node_id(self) -> str:
        """This node."""
        return self._logic.engine.node_id

    @property
    def owner(self) -> str:
        """The node that owns the session."""
        return self._logic.state.owner

    @property
    def affinity(self) -> Affinity:
        """``new``, ``hit``, ``miss`` or ``failover``."""
        return self._logic.state.affinity

    @property
    def is_new(self) -> bool:
        return self._logic.state.is_new

    # Affinity to the model server (core.inference, integrations.inference) ----------------
    @property
    def prompt_cache_key(self) -> str:
        """A stable keyed hash of the conversation, for model APIs that accept
        ``prompt_cache_key`` (it never reveals the session id)."""
        return prompt_cache_key(self._logic.engine.keys.digest, self._anchor())

    def routing_hints(self, router: RouterKind | None = None, *,
                      user: str | None = None) -> RoutingHints:
        """Headers and body fields that keep this conversation on one model server behind an
        inference router (``STICKYCTX_INFERENCE_ROUTER`` unless ``router`` is given). Keyed
        hashes only, stable for the conversation; ``user`` (the app's id of the signed-in user)
        names OpenAI's ``safety_identifier``, hashed."""
        settings = self._logic.engine.settings
        kind = settings.inference_router if router is None else router
        header = settings.inference_header if kind == settings.inference_router else None
        return routing_hints(kind, header, self._logic.engine.keys.digest, self._anchor(),
                             user=user)

    def _anchor(self) -> str:
        """The conversation's keyed lineage: carried in the token once rotated."""
        state = self._logic.state
        return state.lineage or lineage(self._logic.engine.keys.digest, state.session_id)
    # ---------------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True when the loaded context came from this node's hot tier because the store was
        unreachable: it is what this node last saw, and appends will fail until it is back."""
        return self._logic.stale

    @property
    def holds_turn(self) -> bool:
        """Whether this request holds the session's turn lock."""
        return self._logic.holds_turn

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} node={self.node_id!r} owner={self.owner!r} "
                f"affinity={self.affinity!r}>")


def _messages(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, Any, dict[str, Any]]]:
    out = []
    for item in items:
        fields = {k: v for k, v in item.items() if k not in ("role", "content")}
        out.append((item.get("role", ""), item.get("content"), fields))
    return out


class Conversation(_Handle):
    """The session's context in an ASGI app. Every method is awaited."""

    __slots__ = ("_serial", "_store")

    def __init__(self, logic: SessionLogic, store: AsyncStore) -> None:
        super().__init__(logic)
        self._store = store
        self._serial: asyncio.Lock | None = None

    async def _run(self, op: Op[T]) -> T:
        # Tasks sharing one request's handle take turns: its state is one request's state.
        if self._serial is None:
            self._serial = asyncio.Lock()
        logic = self._logic
        async with self._serial:
            return await run_async(op, self._store, logic.engine.telemetry.observer(),
                                   logic.session_hash)

    async def append(self, role: str, content: Any, *, turn_id: str | None = None,
                     **fields: Any) -> int:
        """Append one message durably; return its sequence number, or 0 when it was a retry of
        an append stored before (same turn id), which stays stored once."""
        message = self._logic.build(role, content, turn_id, fields)
        result = await self._run(self._logic.append([message]))
        return result.seqs[0] if result.seqs else 0

    async def extend(self, messages: Iterable[Mapping[str, Any]], *,
                     turn_id: str | None = None) -> int:
        """Append several OpenAI-style message dicts in one atomic write; return how many."""
        built = [self._logic.build(r, c, turn_id, f) for r, c, f in _messages(messages)]
        result = await self._run(self._logic.append(built))
        return len(result.seqs)

    async def messages(self) -> list[dict[str, Any]]:
        """The full stored history as OpenAI-style message dicts."""
        return await self._run(self._logic.messages())

    async def window(self, budget: int | None = None, *,
                     system: str | None = None) -> list[dict[str, Any]]:
        """The newest whole turns that fit ``budget`` tokens (with ``system`` first)."""
        return await self._run(self._logic.window(budget, system))

    async def token_count(self) -> int:
        """Tokens of the stored history, counted as the chat API counts them."""
        return await self._run(self._logic.token_count())

    async def pop(self) -> dict[str, Any] | None:
        """Remove and return the newest message (atomic: concurrent pops never share one)."""
        return await self._run(self._logic.pop())

    async def clear(self) -> None:
        await self._run(self._logic.clear())

    async def rotate(self) -> str:
        """Give the session a new id (same data); the old id loads nothing afterwards."""
        return await self._run(self._logic.rotate())

    async def destroy(self) -> None:
        """Delete the data, expire the cookie; a replay of the old token starts afresh."""
        await self._run(self._logic.destroy())

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Conversation]:
        """Hold the session's turn lock for the block (re-entrant; see docs for the policy)."""
        taken = await self._run(self._logic.lock())
        try:
            yield self
        finally:
            if taken:
                await self._run(self._logic.unlock())


class SyncConversation(_Handle):
    """The session's context in a WSGI app: the same methods as ``Conversation``, not awaited."""

    __slots__ = ("_serial", "_store")

    def __init__(self, logic: SessionLogic, store: SyncStore) -> None:
        super().__init__(logic)
        self._store = store
        self._serial = threading.Lock()

    def _run(self, op: Op[T]) -> T:
        logic = self._logic
        with self._serial:  # threads sharing one request's handle take turns
            return run_sync(op, self._store, logic.engine.telemetry.observer(),
                            logic.session_hash)

    def append(self, role: str, content: Any, *, turn_id: str | None = None,
               **fields: Any) -> int:
        message = self._logic.build(role, content, turn_id, fields)
        result = self._run(self._logic.append([message]))
        return result.seqs[0] if result.seqs else 0

    def extend(self, messages: Iterable[Mapping[str, Any]], *, turn_id: str | None = None) -> int:
        built = [self._logic.build(r, c, turn_id, f) for r, c, f in _messages(messages)]
        return len(self._run(self._logic.append(built)).seqs)

    def messages(self) -> list[dict[str, Any]]:
        return self._run(self._logic.messages())

    def window(self, budget: int | None = None, *,
               system: str | None = None) -> list[dict[str, Any]]:
        return self._run(self._logic.window(budget, system))

    def token_count(self) -> int:
        return self._run(self._logic.token_count())

    def pop(self) -> dict[str, Any] | None:
        return self._run(self._logic.pop())

    def clear(self) -> None:
        self._run(self._logic.clear())

    def rotate(self) -> str:
        return self._run(self._logic.rotate())

    def destroy(self) -> None:
        self._run(self._logic.destroy())

    @contextmanager
    def turn(self) -> Iterator[SyncConversation]:
        taken = self._run(self._logic.lock())
        try:
            yield self
        finally:
            if taken:
                self._run(self._logic.unlock())
