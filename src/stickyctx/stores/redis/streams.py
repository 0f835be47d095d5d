"""The Redis store's streamed replies (``StreamStore``): a hash (the record) and a list (the
chunks) per session, both under its hash tag (Cluster-safe), expiring ``ttl`` seconds after
their last write; one script call per primitive (``lua/stream_*.lua``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ...core.storekeys import SessionKey
from ...core.streams import StreamInfo
from ...errors import StoreError
from ...sansio import Op
from . import schema
from .schema import TURN_LEASE

__all__ = ["STREAM_CHUNKS", "STREAM_RECORD", "RedisStreams"]

STREAM_RECORD, STREAM_CHUNKS = "sr", "sc"
_STATUSES = frozenset({"running", "complete", "stopped", "cancelled", "interrupted"})


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_stream(reply: Any, after: int) -> StreamInfo | None:
    """``stream_read``'s reply: ``None`` or the record (JSON) followed by chunks."""
    if not reply:
        return None
    record = json.loads(_text(reply[0]))
    status = record.get("st")
    if status not in _STATUSES:
        raise StoreError(f"stream_read: unknown stream status {status!r}")
    return StreamInfo(str(record["id"]), status, str(record.get("n", "")),
                      str(record.get("t", "")), int(record.get("c", 0)),
                      stop=str(record.get("x", "0")) == "1", first=after,
                      chunks=tuple(_text(c) for c in reply[1:]))


class RedisStreams:
    """Mixed into ``RedisStore``, whose ``_run`` performs one script call."""

    _script: Callable[[str, list[str], Sequence[Any]], Op[Any]]

    def stream_open(self, key: SessionKey, stream_id: str, *, node: str, turn: str,
                    ttl: float) -> Op[None]:
        yield from self._script("stream_open", schema.keys(key, STREAM_RECORD, STREAM_CHUNKS),
                                [stream_id, node, turn, _ms(ttl)])

    def stream_push(self, key: SessionKey, stream_id: str, chunks: Sequence[str], *,
                    ttl: float, fence: int | None = None, lease_ttl: float = 0.0) -> Op[bool]:
        reply = yield from self._script(
            "stream_push", schema.keys(key, STREAM_RECORD, STREAM_CHUNKS, TURN_LEASE),
            [stream_id, _ms(ttl), "" if fence is None else str(fence),
             _ms(lease_ttl) if lease_ttl > 0 else 0, *chunks])
        return bool(int(reply))

    def stream_end(self, key: SessionKey, stream_id: str, status: str, *,
                   ttl: float) -> Op[bool]:
        reply = yield from self._script("stream_end",
                                        schema.keys(key, STREAM_RECORD, STREAM_CHUNKS),
                                        [stream_id, status, _ms(ttl)])
        return bool(int(reply))

    def stream_read(self, key: SessionKey, after: int = 0) -> Op[StreamInfo | None]:
        after = max(0, after)
        reply = yield from self._script("stream_read",
                                        schema.keys(key, STREAM_RECORD, STREAM_CHUNKS), [after])
        return parse_stream(reply, after)

    def stream_stop(self, key: SessionKey) -> Op[str | None]:
        reply = yield from self._script("stream_stop", schema.keys(key, STREAM_RECORD), [])
        return _text(reply) if reply else None
