"""The streamed-reply faces of the handles: ``AsyncReply`` (ASGI) and ``SyncReply`` (WSGI).

The logic is ``streaming`` (operations, written once); this module only drives it and runs
the generation where each edge can: an asyncio task (ASGI) or a thread (WSGI), both outliving
the request that started the reply. A reply object iterates the events a client is owed:
``token`` events then one terminal event; ``sse()`` gives their ``text/event-stream`` bytes,
with a comment every 15 seconds of silence so that proxies keep the connection open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeAlias

from ..core.formats import Format
from ..core.streams import Event, encode_sse, parse_event_id
from ..sansio import Op, run_async, run_sync
from .logic import Session
from .streaming import Cursor, LiveReply, Started, generate, next_events, start

__all__ = ["AsyncReply", "SyncReply", "Tokens", "begin", "resumed"]

KEEPALIVE = b": keep-alive\n\n"
Window: TypeAlias = list[dict[str, Any]]
Tokens: TypeAlias = (Iterable[str] | AsyncIterable[str]
                     | Callable[[Window], Iterable[str] | AsyncIterable[str]])


class _Reply:
    __slots__ = ("_cursor", "_live", "_session", "_state", "replayed")

    def __init__(self, session: Session, cursor: Cursor, origin: LiveReply | None) -> None:
        self._session = session
        self._cursor = cursor
        self._live: LiveReply | None = None  # the reply read, while it generates here
        self._state = "new"  # new -> reading -> left
        self.replayed = origin is None  # a resume or an attach: its first batch is a replay

    @property
    def stream_id(self) -> str | None:
        """The reply's id (the prefix of its event ids)."""
        return self._cursor.stream_id

    def _left_early(self, last: list[Event]) -> bool:
        """Whether the reading stopped before the reply's end (``disconnected()``)."""
        return not last or last[-1].event == "token"

    def _batch(self, events: list[Event]) -> None:
        if self.replayed:
            self.replayed = False
            chunks = sum(1 for e in events if e.event == "token")
            self._session.services.stream_telemetry.chunks_replayed(chunks)

    def _watch(self) -> None:
        """Reading starts: the reply, when it generates on this node, counts this client."""
        if self._state != "new":
            return
        self._state = "reading"
        live = self._session.services.streams.get(self._session.key.tag)
        if live is not None and self._cursor.stream_id in (None, live.stream_id):
            live.watchers += 1
            self._live = live

    def _left(self, finished: bool) -> None:
        """Reading ended (once): at the reply's end, or early (the client went away)."""
        if self._state == "left":
            return
        self._state = "left"
        live, self._live = self._live, None
        if live is not None:
            live.watchers -= 1
            if not finished:
                self._gone(live)

    def disconnected(self) -> None:
        """Say that the client went away before the end: a WebSocket app calls it when its
        socket closes (an HTTP response's end tells it by itself)."""
        self._cursor.done = True
        self._left(False)

    def _gone(self, live: LiveReply) -> None:
        """A client left before the end. With ``STICKYCTX_STREAM_ON_DISCONNECT=cancel`` the
        generation is cancelled once ``STICKYCTX_STREAM_DISCONNECT_GRACE`` seconds pass with
        no client reading it on this node (a reconnect within the grace keeps it going)."""
        settings = self._session.services.settings
        if settings.stream_on_disconnect != "cancel" or live.status is not None:
            return

        def abandon() -> None:
            if live.status is None and live.watchers <= 0:
                live.cancel.set("cancelled")

        if settings.stream_disconnect_grace <= 0:
            abandon()
        else:
            self._later(settings.stream_disconnect_grace, abandon)

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        raise NotImplementedError


class AsyncReply(_Reply):
    """A streamed reply's events for an ASGI app: ``async for event in reply``."""

    __slots__ = ()

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(seconds, action)

    async def _batches(self) -> AsyncIterator[list[Event]]:
        session, cursor = self._session, self._cursor
        self._watch()
        events: list[Event] = []
        finished = False
        try:
            while not cursor.done:
                events = await run_async(next_events(session, cursor), session.store.async_io)
                self._batch(events)
                yield events
            finished = not self._left_early(events)
        finally:
            self._left(finished)

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for events in self._batches():
            for event in events:
                yield event

    async def sse(self) -> AsyncIterator[bytes]:
        """The events as ``text/event-stream`` bytes (one write per batch of chunks)."""
        async for events in self._batches():
            yield b"".join(map(encode_sse, events)) if events else KEEPALIVE


class SyncReply(_Reply):
    """A streamed reply's events for a WSGI app: ``for event in reply``."""

    __slots__ = ()

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        timer.start()

    def _batches(self) -> Iterator[list[Event]]:
        session, cursor = self._session, self._cursor
        self._watch()
        events: list[Event] = []
        finished = False
        try:
            while not cursor.done:
                events = run_sync(next_events(session, cursor), session.store.sync_io)
                self._batch(events)
                yield events
            finished = not self._left_early(events)
        finally:
            self._left(finished)

    def __iter__(self) -> Iterator[Event]:
        for events in self._batches():
            yield from events

    def sse(self) -> Iterator[bytes]:
        """The events as ``text/event-stream`` bytes (one write per batch of chunks)."""
        for events in self._batches():
            yield b"".join(map(encode_sse, events)) if events else KEEPALIVE


def _source(tokens: Tokens, window: Window) -> Any:
    """The app's iterator (``tokens(window)`` when it is a function); a function that raises
    gives an iterator that raises, so the reply ends ``interrupted`` and the turn is freed."""
    if not callable(tokens):
        return tokens
    try:
        made = tokens(window)
    except Exception as exc:  # noqa: BLE001 - handed to the generation, which logs it
        return _raising(exc)
    return made


def _raising(exc: Exception) -> Iterator[str]:
    raise exc
    yield ""  # unreachable: it makes this function a generator


def begin(session: Session, message: Any, system: str | None, budget: int | None,
          format: Format) -> Op[Started]:
    return start(session, message, system=system, budget=budget, format=format)


def run_in_task(session: Session, started: Started, tokens: Tokens) -> AsyncReply:
    """Generate ``started`` in a task of the running loop (ASGI); the reply to read."""
    reply = started.reply
    if reply is None:  # a double submit: read the stream it started
        return AsyncReply(session, Cursor(started.stream_id), None)
    source = _source(tokens, started.window)
    if not hasattr(source, "__anext__"):
        source = iter(source)
    op = generate(session, reply, source, started.fence)
    reply.runner = asyncio.get_running_loop().create_task(
        run_async(op, session.store.async_io), name=f"stickyctx-stream-{reply.stream_id}")
    return AsyncReply(session, Cursor(started.stream_id), reply)


def run_in_thread(session: Session, started: Started, tokens: Tokens) -> SyncReply:
    """Generate ``started`` in a thread (WSGI); the reply to read."""
    reply = started.reply
    if reply is None:
        return SyncReply(session, Cursor(started.stream_id), None)
    source = _source(tokens, started.window)
    if not hasattr(source, "__anext__"):
        source = iter(source)
    op = generate(session, reply, source, started.fence)
    thread = threading.Thread(target=run_sync, args=(op, session.store.sync_io),
                              name=f"stickyctx-stream-{reply.stream_id}", daemon=True)
    reply.runner = thread
    thread.start()
    return SyncReply(session, Cursor(started.stream_id), reply)


def resumed(session: Session, last_event_id: str | None) -> Op[Cursor | None]:
    """A reader's cursor after ``Last-Event-ID`` (``None`` when the session has no stream)."""
    parsed = parse_event_id(last_event_id)
    cursor = Cursor() if parsed is None else Cursor(parsed[0], parsed[1])
    services = session.services
    same = services.streams.get(session.key.tag) is not None  # generating here
    if not same:
        info = yield from session.call(session.store.stream_read(session.key, 1 << 30))
        if info is None:
            return None
        same = info.node == services.node_id  # it was generated here
    services.stream_telemetry.event("resumed", same_node=same)
    return cursor
