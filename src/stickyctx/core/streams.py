"""Streamed replies as data: the record a store keeps, event ids, events and their SSE bytes.

A streamed reply (``Conversation.stream``) is numbered chunk by chunk: event ``n`` carries the
``n``-th chunk (from 1), and its id is ``<stream id>:<n>``, so a client's ``Last-Event-ID`` names
both the reply and the position in it. The terminal event (``done``, ``stopped``, ``cancelled``
or ``interrupted``) carries the id ``<stream id>:<chunks + 1>``. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["END_EVENTS", "Event", "StreamInfo", "StreamStatus", "encode_sse", "new_stream_id",
           "parse_event_id", "stream_events", "terminal_event"]

StreamStatus = Literal["running", "complete", "stopped", "cancelled", "interrupted"]
# The terminal event of each final status (the stored message's ``status`` is the status).
END_EVENTS: dict[str, str] = {"complete": "done", "stopped": "stopped",
                              "cancelled": "cancelled", "interrupted": "interrupted"}
_LINES = re.compile(r"\r\n|\r|\n")  # the line ends SSE knows
_ID = re.compile(r"^([A-Za-z0-9_-]{1,64}):(\d{1,9})$")


def new_stream_id() -> str:
    return secrets.token_urlsafe(9)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a store holds of a session's current or last streamed reply.

    ``chunks`` are the stored chunks from number ``first + 1`` on (a read asks for those after
    a position); ``count`` is how many the store holds in all; ``stop`` says a stop was asked.
    """

    stream_id: str
    status: StreamStatus
    node: str
    turn: str
    count: int
    stop: bool = False
    first: int = 0
    chunks: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: ``event`` name, ``data`` text, ``id``."""

    id: str
    event: str
    data: str

    def as_dict(self) -> dict[str, str]:
        """The event as a JSON-able object (a WebSocket message): ``id``, ``event``, ``data``."""
        return {"id": self.id, "event": self.event, "data": self.data}


def parse_event_id(value: str | None) -> tuple[str, int] | None:
    """``(stream id, chunk number)`` of a ``Last-Event-ID``; ``None`` when absent or unusable
    (the client then gets the reply from its first chunk)."""
    if not value:
        return None
    found = _ID.match(value.strip())
    return (found.group(1), int(found.group(2))) if found else None


def stream_events(stream_id: str, first: int, chunks: tuple[str, ...] | list[str]) -> list[Event]:
    """``token`` events for ``chunks``, numbered from ``first + 1``."""
    return [Event(f"{stream_id}:{first + i}", "token", chunk)
            for i, chunk in enumerate(chunks, start=1)]


def terminal_event(stream_id: str, count: int, status: str, reply: str) -> Event:
    """The end of a reply of ``count`` chunks: ``done`` / ``stopped`` / ``cancelled`` /
    ``interrupted``, data ``{"reply": text}``."""
    return Event(f"{stream_id}:{count + 1}", END_EVENTS.get(status, "interrupted"),
                 json.dumps({"reply": reply, "status": status}))


def encode_sse(event: Event) -> bytes:
    """The event in the ``text/event-stream`` format (multi-line data on several lines)."""
    lines = [f"id: {event.id}", f"event: {event.event}"]
    lines.extend(f"data: {line}" for line in _LINES.split(event.data))
    return ("\n".join(lines) + "\n\n").encode()
