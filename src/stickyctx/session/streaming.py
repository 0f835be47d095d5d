"""Streamed replies, written once as operations: start, generate, read (resume), stop.

A reply streams while its node holds the session's turn: the request that starts it writes the
user's message, keeps the turn lease and hands it to the generation, which outlives the request
(a reload or a dropped connection does not stop it). Each chunk is pushed to the store *before*
any client sees it (``stream_push``, which also renews the lease), then shown to this node's
readers from memory. At the end the reply is stored once, as an assistant message with a
``status`` (``complete``, ``stopped``, ``cancelled``, ``interrupted``), the lease is released
with that write, and the stream's record gets the same status.

Readers follow a cursor (the stream id and how many chunks the client has): on the generating
node from its memory, on any other node from the store, polling with backoff. A reader that
finds a running stream whose node left the membership stores the partial reply (every chunk a
client may have seen) as ``interrupted``, once (the message's idempotency key is the stream's).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.formats import Format
from ..core.streams import (
    Event,
    StreamInfo,
    new_stream_id,
    stream_events,
    terminal_event,
)
from ..errors import (
    SessionBusyError,
    StickyctxError,
)
from ..sansio import CANCELLED, END, NOT_READY, Ahead, Close, Op, Pull, Sleep, Watch
from .abandoned import abandoned, interrupt, recovered, store_reply
from .live import LiveReplies, LiveReply
from .orphans import Orphan

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["Cursor", "LiveReplies", "LiveReply", "generate", "next_events", "start", "stop"]

logger = logging.getLogger("stickyctx")

_FIRST_POLL = 0.005  # a reader on another node polls the store, backing off up to _MAX_POLL
_MAX_POLL = 0.1
_ALL = 1 << 30  # "after every chunk": a read of the record alone
_BATCH = 64  # chunks pushed in one step at most
_CHECK_EVERY = 1.0  # a reader asks at most this often whether a running reply is abandoned


@dataclass(slots=True)
class Cursor:
    """Where a reader is: the stream (``None``: the current one) and the chunks it has."""

    stream_id: str | None = None
    after: int = 0
    done: bool = False
    replayed: int = 0  # chunks this reader got that were generated before it came


@dataclass(frozen=True, slots=True)
class Started:
    """``start``'s answer: a new ``reply`` to generate (with the lease's ``fence``), or
    ``None`` and the stream a double submit attaches to."""

    stream_id: str
    reply: LiveReply | None
    fence: int | None
    window: list[dict[str, Any]]


def _current(session: Session) -> Op[StreamInfo | None]:
    info: StreamInfo | None = yield from session.call(session.store.stream_read(session.key,
                                                                                 _ALL))
    return info


def start(session: Session, message: Any, *, system: str | None, budget: int | None,
          format: Format) -> Op[Started]:
    """Begin a streamed reply in this request: look at the session's stream first (a second
    submit of the same turn, same idempotency key, attaches to its stream; another message
    while a reply streams is ``SessionBusyError`` at once, 409), then append the user's
    ``message`` (unless ``None``), plan the window, write the turn keeping its lease and open
    the stream."""
    turn_key = session.idempotency_key or ""
    info = None if session.state.is_new else (yield from _current(session))
    if info is not None and turn_key and info.turn == turn_key:
        return Started(info.stream_id, None, None, [])
    if info is not None and info.running:
        if not (yield from abandoned(session, info)):
            raise SessionBusyError(0.0)
        yield from interrupt(session, info)
    if message is not None:
        yield from session.append("user", message)
    window = yield from session.window(budget, system=system, format=format)
    turn = session.turn
    yield from turn.claim()
    yield from turn.flush()
    yield from turn.take()
    stream_id = new_stream_id()
    services = session.services
    yield from session.call(session.store.stream_open(
        session.key, stream_id, node=services.node_id, turn=turn_key,
        ttl=services.settings.stream_ttl))
    fence = turn.fence
    # The lease now belongs to the generation: the request's commit and end leave it alone.
    turn.fence, turn.open, turn.committed = None, False, True
    reply = LiveReply(stream_id, turn_key)
    services.streams.put(session.key.tag, reply)
    services.stream_telemetry.event("started")
    return Started(stream_id, reply, fence, window)


def generate(session: Session, reply: LiveReply, source: Any, fence: int | None) -> Op[str]:
    """Pull the app's chunks, push each to the store, show it; then store the reply once and
    release the turn. Returns the final status."""
    settings = session.services.settings
    store, key = session.store, session.key
    status = "complete"
    ahead = Ahead()
    try:
        while True:
            batch, last = yield from _batch(source, reply, ahead)
            if batch:
                stop = yield from session.call(store.stream_push(
                    key, reply.stream_id, batch, ttl=settings.stream_ttl, fence=fence,
                    lease_ttl=settings.turn_lease_ttl))
                reply.extend(batch)
                if stop and last is None:
                    last = CANCELLED if reply.cancel.is_set else stop
            if last is END:
                break
            if last is not None or reply.cancel.is_set:
                status = reply.cancel.reason or "stopped"
                break
    except StickyctxError as exc:
        logger.warning("stickyctx: a streamed reply ended by a store error: %s", exc)
        status = "interrupted"
    except Exception:  # the app's iterator failed: what it sent so far is kept
        logger.exception("stickyctx: a streamed reply's iterator raised")
        status = "interrupted"
    try:
        yield Close(source, ahead)
    except Exception:
        logger.exception("stickyctx: closing a streamed reply's iterator raised")
    try:
        yield from store_reply(session, reply.stream_id, "".join(reply.chunks), status, fence)
        yield from session.call(store.stream_end(key, reply.stream_id, status,
                                                 ttl=settings.stream_ttl))
    except StickyctxError as exc:
        logger.warning("stickyctx: a streamed reply could not be stored: %s", exc)
        status = "interrupted"
        if fence is not None:  # released when the store answers again (see ``orphans``)
            session.services.orphans.add(Orphan(key, fence, session.holder))
    finally:
        reply.end(status)
        session.services.streams.drop(key.tag, reply)
        if status != "complete":
            session.services.stream_telemetry.event(status)
    return status


def _batch(source: Any, reply: LiveReply, ahead: Ahead) -> Op[tuple[list[str], Any]]:
    """The next chunk, and the chunks the source has at hand after it (up to ``_BATCH``): one
    push for what a model sent together. Also how the batch ended: ``END``, ``CANCELLED`` or
    ``None`` (more to come)."""
    batch: list[str] = []
    item = yield Pull(source, reply.cancel, ahead=ahead)
    while True:
        if item is END or item is CANCELLED:
            return batch, item
        if item is NOT_READY:
            return batch, None
        text = item if isinstance(item, str) else str(item)
        if text:
            batch.append(text)
        if len(batch) >= _BATCH:
            return batch, None
        item = yield Pull(source, reply.cancel, ready=True, ahead=ahead)


def stop(session: Session) -> Op[bool]:
    """Stop the session's streaming reply, from any node; whether one was streaming."""
    live = session.services.streams.get(session.key.tag)
    stopped = live is not None and live.status is None
    if live is not None:
        live.cancel.set("stopped")
    stream_id = yield from session.call(session.store.stream_stop(session.key))
    return stopped or stream_id is not None


def next_events(session: Session, cursor: Cursor, wait: float = 15.0) -> Op[list[Event]]:
    """The reader's next events (an empty list after ``wait`` seconds with nothing new, or
    when the session has no stream: then ``cursor.done``)."""
    deadline = time.monotonic() + wait
    delay, checked = _FIRST_POLL, 0.0
    while True:
        live = session.services.streams.get(session.key.tag)
        if live is not None and cursor.stream_id in (None, live.stream_id):
            cursor.stream_id = live.stream_id
            seen, status = live.signal.version, live.status
            events = _advance(cursor, live.stream_id, live.chunks[cursor.after:])
            if status is not None:
                _end(events, cursor, live.stream_id, len(live.chunks), status,
                     "".join(live.chunks))
            if events or time.monotonic() >= deadline:
                return events
            yield Watch(live.signal, seen, deadline - time.monotonic())
            continue
        info = yield from session.call(session.store.stream_read(session.key, cursor.after))
        if info is None:
            cursor.done = True
            return []
        if cursor.stream_id != info.stream_id:
            if cursor.stream_id is not None:  # the client's reply was replaced: the new one
                cursor.after = 0
            cursor.stream_id = info.stream_id
            continue
        events = _advance(cursor, info.stream_id, list(info.chunks))
        if not info.running:
            if cursor.after > info.count:  # the client has the end already
                cursor.done = True
                return events
            whole = info if info.first == 0 else (
                yield from session.call(session.store.stream_read(session.key, 0)))
            text = "".join(whole.chunks) if whole is not None else ""
            _end(events, cursor, info.stream_id, info.count, info.status, text)
            return events
        if events or time.monotonic() >= deadline:
            return events
        if time.monotonic() >= checked:
            checked = time.monotonic() + _CHECK_EVERY
            if (yield from recovered(session, info)):
                continue
        yield Sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _MAX_POLL)


def _advance(cursor: Cursor, stream_id: str, chunks: list[str]) -> list[Event]:
    events = stream_events(stream_id, cursor.after, chunks)
    cursor.after += len(chunks)
    return events


def _end(events: list[Event], cursor: Cursor, stream_id: str, count: int, status: str,
         text: str) -> None:
    """The terminal event, unless the client had it already (its id is ``count + 1``)."""
    cursor.done = True
    if cursor.after <= count:
        events.append(terminal_event(stream_id, count, status, text))
