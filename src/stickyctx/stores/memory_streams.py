"""The embedded store's streamed replies (``StreamStore``): a record and a chunk list per
session, under the store's one lock, expiring ``ttl`` seconds after their last write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.storekeys import SessionKey
from ..core.streams import StreamInfo, StreamStatus
from ..sansio import immediate

__all__ = ["MemoryStreams"]


@dataclass(slots=True)
class _Stream:
    info: StreamInfo
    expires: float
    chunks: list[str] = field(default_factory=list)


class MemoryStreams:
    """Mixed into ``MemoryStore``: it provides ``_lock``, ``_clock``, ``_leases`` and
    ``_streams``."""

    _lock: threading.Lock
    _clock: Callable[[], float]
    _leases: dict[tuple[str, str], Any]
    _streams: dict[str, _Stream]

    def _stream(self, tag: str, now: float) -> _Stream | None:
        stream = self._streams.get(tag)
        if stream is not None and stream.expires <= now:
            del self._streams[tag]
            return None
        return stream

    @immediate
    def stream_open(self, key: SessionKey, stream_id: str, *, node: str, turn: str,
                    ttl: float) -> None:
        now = self._clock()
        with self._lock:
            info = StreamInfo(stream_id, "running", node, turn, 0)
            self._streams[key.tag] = _Stream(info, now + ttl)
            for tag in [t for t, s in self._streams.items() if s.expires <= now]:
                del self._streams[tag]

    @immediate
    def stream_push(self, key: SessionKey, stream_id: str, chunks: Sequence[str], *,
                    ttl: float, fence: int | None = None, lease_ttl: float = 0.0) -> bool:
        now = self._clock()
        with self._lock:
            stream = self._stream(key.tag, now)
            if stream is None or stream.info.stream_id != stream_id or not stream.info.running:
                return True
            stream.chunks.extend(chunks)
            stream.info = replace(stream.info, count=len(stream.chunks))
            stream.expires = now + ttl
            lease = self._leases.get((key.tag, "turn"))
            if fence is not None and lease is not None and lease.token == fence and lease_ttl:
                lease.expires = max(lease.expires, now + lease_ttl)
            return stream.info.stop

    @immediate
    def stream_end(self, key: SessionKey, stream_id: str, status: str, *, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            stream = self._stream(key.tag, now)
            if stream is None or stream.info.stream_id != stream_id or not stream.info.running:
                return False
            final: StreamStatus = status  # type: ignore[assignment]
            stream.info = replace(stream.info, status=final)
            stream.expires = now + ttl
            return True

    @immediate
    def stream_read(self, key: SessionKey, after: int = 0) -> StreamInfo | None:
        now = self._clock()
        with self._lock:
            stream = self._stream(key.tag, now)
            if stream is None:
                return None
            after = max(0, after)
            return replace(stream.info, first=after, chunks=tuple(stream.chunks[after:]))

    @immediate
    def stream_stop(self, key: SessionKey) -> str | None:
        now = self._clock()
        with self._lock:
            stream = self._stream(key.tag, now)
            if stream is None or not stream.info.running:
                return None
            stream.info = replace(stream.info, stop=True)
            return stream.info.stream_id
