"""The store primitives of streamed replies (``StreamStore``, part of ``Store``).

A session has at most one *current* streamed reply: a small record (its id, status, the node
generating it, the idempotency key of its turn, a stop flag) and the list of its chunks, under
the session's hash tag, expiring ``ttl`` seconds after the last write. The generating node
pushes each chunk before any client sees it, so every chunk a client received is in the store:
any node can serve a resume, and a reply whose node died is stored up to its last chunk.

Contract: ``stream_push`` and ``stream_end`` act only on the stream they name (a stream
replaced by a newer one is left alone: ``stream_push`` answers "stop"); ``stream_end`` changes
a running stream once (the first caller wins, so a reply is ended, and stored, once);
``stream_push`` extends the turn lease that ``fence`` holds, for ``lease_ttl`` seconds, so a
long reply keeps its turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..core.storekeys import SessionKey
from ..core.streams import StreamInfo
from ..sansio import Op

__all__ = ["StreamStore"]


class StreamStore(Protocol):
    def stream_open(self, key: SessionKey, stream_id: str, *, node: str, turn: str,
                    ttl: float) -> Op[None]:
        """Make ``stream_id`` the session's current stream (running, no chunks), replacing
        any earlier one."""
        ...

    def stream_push(self, key: SessionKey, stream_id: str, chunks: Sequence[str], *,
                    ttl: float, fence: int | None = None, lease_ttl: float = 0.0) -> Op[bool]:
        """Append ``chunks`` to the running stream ``stream_id``; True when a stop was asked
        (or the stream is no longer current or running: nothing is appended then)."""
        ...

    def stream_end(self, key: SessionKey, stream_id: str, status: str, *,
                   ttl: float) -> Op[bool]:
        """Give the running stream ``stream_id`` its final ``status``; True if this call did
        (False: it had ended already, or is not current)."""
        ...

    def stream_read(self, key: SessionKey, after: int = 0) -> Op[StreamInfo | None]:
        """The current stream with its chunks after number ``after``; ``None`` if there is
        none (or it expired)."""
        ...

    def stream_stop(self, key: SessionKey) -> Op[str | None]:
        """Ask the running stream to stop; its id, or ``None`` when none is running."""
        ...
