"""The handle an app uses: ``Conversation`` (ASGI, awaited) and ``SyncConversation`` (WSGI).

Every context method is declared once, in ``_Handle``, as an ``operation`` of ``Session`` (the
sans-I/O logic): reading it on a ``SyncConversation`` gives a function that drives the
operation blocking, on a ``Conversation`` one that returns a coroutine. Both faces therefore
have the same methods with the same signatures and docstrings, by construction (and a test
checks it); mypy checks every call against the ``Session`` method's signature.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ..core.affinity import Affinity
from ..core.formats import Format
from ..core.inference import RouterKind, RoutingHints, prompt_cache_key, routing_hints
from ..sansio import Op, run_async, run_sync
from .logic import Session
from .replies import AsyncReply, SyncReply, Tokens, begin, resumed, run_in_task, run_in_thread
from .streaming import stop

__all__ = ["Conversation", "SyncConversation"]

T = TypeVar("T")
P = ParamSpec("P")


class operation(Generic[P, T]):
    """A context method of both handles, declared once from a ``Session`` operation."""

    def __init__(self, op: Callable[Concatenate[Session, P], Op[T]]) -> None:
        self.op = op
        self.__doc__ = op.__doc__
        self.name = op.__name__

    @overload
    def __get__(self, handle: Conversation, owner: Any) -> Callable[P, Coroutine[Any, Any, T]]:
        ...

    @overload
    def __get__(self, handle: SyncConversation, owner: Any) -> Callable[P, T]: ...

    @overload
    def __get__(self, handle: None, owner: Any) -> operation[P, T]: ...

    def __get__(self, handle: Any, owner: Any) -> Any:
        if handle is None:
            return self
        # Looked up on the session's class: a subclass (``ConversationSession``) may refine
        # an operation (``rotate``, ``destroy``), with the same signature.
        op, drive = getattr(type(handle._session), self.name, self.op), handle._drive

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return drive(op(handle._session, *args, **kwargs))

        method.__name__ = self.name
        method.__doc__ = self.__doc__
        return method


class _Handle:
    __slots__ = ("_serial", "_session")

    def __init__(self, session: Session) -> None:
        self._session = session

    append = operation(Session.append)
    extend = operation(Session.extend)
    messages = operation(Session.messages)
    window = operation(Session.window)
    token_count = operation(Session.token_count)
    turn_count = operation(Session.turn_count)
    pop = operation(Session.pop)
    clear = operation(Session.clear)
    rotate = operation(Session.rotate)
    destroy = operation(Session.destroy)
    stop = operation(stop)  # a streamed reply, from any node (see ``stream``)

    @property
    def session_id(self) -> str:
        """The session id (changes after ``rotate()`` or when an expired session restarts).
        Reading it makes the response carry the session, as any context method does."""
        state = self._session.state
        state.used = True
        return state.session_id

    @property
    def previous_id(self) -> str | None:
        """The id before ``rotate()`` in this request, else ``None``."""
        return self._session.state.previous_id

    @property
    def principal(self) -> str | None:
        """Who the audit trail names for this request's accesses (``STICKYCTX_AUDIT``): the
        app's own name of the signed-in user, set before the context is used; ``None`` (the
        default) names the session by a keyed hash."""
        return self._session.state.principal

    @principal.setter
    def principal(self, value: str | None) -> None:
        self._session.state.principal = None if value is None else str(value)

    @property
    def node_id(self) -> str:
        """This node."""
        return self._session.services.node_id

    @property
    def owner(self) -> str:
        """The node that owns the session."""
        return self._session.state.owner

    @property
    def affinity(self) -> Affinity:
        """``new``, ``hit``, ``miss`` or ``failover``."""
        return self._session.state.affinity

    @property
    def is_new(self) -> bool:
        return self._session.state.is_new

    # Affinity to the model server (core.inference, integrations.inference) ----------------

    @property
    def prompt_cache_key(self) -> str:
        """A stable keyed hash of the conversation, for model APIs that accept
        ``prompt_cache_key`` (it never reveals the session id)."""
        self._session.state.used = True
        return prompt_cache_key(self._session.services.keys.digest, self._session.anchor())

    def routing_hints(self, router: RouterKind | None = None, *,
                      user: str | None = None) -> RoutingHints:
        """Headers and body fields that keep this conversation on one model server behind an
        inference router (``STICKYCTX_INFERENCE_ROUTER`` unless ``router`` is given). Keyed
        hashes only, stable for the conversation; ``user`` (the app's id of the signed-in user)
        names OpenAI's ``safety_identifier``, hashed."""
        session = self._session
        session.state.used = True
        settings = session.services.settings
        kind = settings.inference_router if router is None else router
        header = settings.inference_header if kind == settings.inference_router else None
        return routing_hints(kind, header, session.services.keys.digest, session.anchor(),
                             user=user)

    @property
    def stale(self) -> bool:
        """True when the loaded context came from this node's hot tier because the store was
        unreachable: it is what this node last saw, and appends will fail until it is back."""
        return self._session.stale

    @property
    def holds_turn(self) -> bool:
        """Whether this request holds the session's turn lock."""
        return self._session.holds_turn

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} node={self.node_id!r} owner={self.owner!r} "
                f"affinity={self.affinity!r}>")


class Conversation(_Handle):
    """The session's context in an ASGI app. Every context method is awaited."""

    __slots__ = ()

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._serial: asyncio.Lock | None = None

    async def _drive(self, op: Op[T]) -> T:
        self._session.state.used = True  # the response now carries the session (``issues``)
        # Tasks sharing one request's handle take turns: its state is one request's state.
        if self._serial is None:
            self._serial = asyncio.Lock()
        async with self._serial:
            return await run_async(op, self._session.store.async_io)

    async def stream(self, message: Any, tokens: Tokens, *, system: str | None = None,
                     budget: int | None = None, format: Format = "chat") -> AsyncReply:
        """Append the user's ``message`` and stream the reply that ``tokens(window)`` yields
        (sync or async iterator of text chunks), holding the turn until it ends; the reply is
        stored once, as an assistant message with a ``status``. A second submit of the same
        turn (``Idempotency-Key``) attaches to its stream; another message while a reply
        streams raises ``SessionBusyError``. See docs/streaming.md."""
        started = await self._drive(begin(self._session, message, system, budget, format))
        return run_in_task(self._session, started, tokens)

    async def resume(self, last_event_id: str | None = None) -> AsyncReply | None:
        """The session's current or last streamed reply after ``last_event_id`` (from its
        start without one), on any node; ``None`` when there is none."""
        cursor = await self._drive(resumed(self._session, last_event_id))
        return None if cursor is None else AsyncReply(self._session, cursor, None)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Conversation]:
        """Hold the session's turn lock for the block (re-entrant; see docs for the policy)."""
        taken = await self._drive(self._session.lock())
        try:
            yield self
        finally:
            if taken:
                await self._drive(self._session.unlock())


class SyncConversation(_Handle):
    """The session's context in a WSGI app: the same methods as ``Conversation``, not awaited."""

    __slots__ = ()

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._serial = threading.Lock()

    def _drive(self, op: Op[T]) -> T:
        self._session.state.used = True  # the response now carries the session (``issues``)
        with self._serial:  # threads sharing one request's handle take turns
            return run_sync(op, self._session.store.sync_io)

    def stream(self, message: Any, tokens: Tokens, *, system: str | None = None,
               budget: int | None = None, format: Format = "chat") -> SyncReply:
        """Append the user's ``message`` and stream the reply that ``tokens(window)`` yields
        (an iterator of text chunks), holding the turn until it ends; the reply is stored
        once, as an assistant message with a ``status``. A second submit of the same turn
        (``Idempotency-Key``) attaches to its stream; another message while a reply streams
        raises ``SessionBusyError``. See docs/streaming.md."""
        started = self._drive(begin(self._session, message, system, budget, format))
        return run_in_thread(self._session, started, tokens)

    def resume(self, last_event_id: str | None = None) -> SyncReply | None:
        """The session's current or last streamed reply after ``last_event_id`` (from its
        start without one), on any node; ``None`` when there is none."""
        cursor = self._drive(resumed(self._session, last_event_id))
        return None if cursor is None else SyncReply(self._session, cursor, None)

    @contextmanager
    def turn(self) -> Iterator[SyncConversation]:
        """Hold the session's turn lock for the block (re-entrant; see docs for the policy)."""
        taken = self._drive(self._session.lock())
        try:
            yield self
        finally:
            if taken:
                self._drive(self._session.unlock())
