"""This node's streamed replies while they generate: chunks in memory, watched by readers.

Each chunk is added only once it is in the store (``streaming.generate`` pushes first), so
what this node shows is what any node could show. Shared by the request threads or tasks of
one middleware (``Services.streams``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sansio import Cancel, Signal

__all__ = ["LiveReplies", "LiveReply", "ReplyStreaming"]


class ReplyStreaming(Exception):
    """A read found the session's turn held by a streamed reply: it does not wait for it
    (``Turn.enter``)."""


@dataclass(slots=True)
class LiveReply:
    """A reply generating on this node: its chunks (each one already in the store), its final
    status once ended, the signal its readers watch and the flag that stops it."""

    stream_id: str
    turn: str
    chunks: list[str] = field(default_factory=list)
    status: str | None = None  # set after the reply was stored
    signal: Signal = field(default_factory=Signal)
    cancel: Cancel = field(default_factory=Cancel)
    runner: Any = None  # the task or thread generating it (kept referenced)
    watchers: int = 0  # clients reading it on this node now (a disconnect's grace counts them)

    def add(self, chunk: str) -> None:
        self.extend((chunk,))

    def extend(self, chunks: Sequence[str]) -> None:
        self.chunks.extend(chunks)
        self.signal.notify()

    def end(self, status: str) -> None:
        self.status = status
        self.signal.notify()


class LiveReplies:
    """This node's generating replies, by session (its store-key tag)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: dict[str, LiveReply] = {}

    def get(self, tag: str) -> LiveReply | None:
        return self._replies.get(tag)

    def put(self, tag: str, reply: LiveReply) -> None:
        with self._lock:
            self._replies[tag] = reply

    def drop(self, tag: str, reply: LiveReply) -> None:
        with self._lock:
            if self._replies.get(tag) is reply:
                del self._replies[tag]

    def __len__(self) -> int:
        return len(self._replies)
