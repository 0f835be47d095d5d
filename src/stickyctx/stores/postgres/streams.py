"""The PostgreSQL store's streamed replies (``StreamStore``).

Mixed into ``PostgresStore``. A session's current stream is one row of ``stickyctx_streams``
(its id, status, node, turn, stop flag, chunk count and deadline) and its chunks are rows of
``stickyctx_stream_chunks`` numbered from 1 (deleted with the stream: a cascade). A write is
one transaction under the session's advisory lock that reads the stream's row; a read is one
statement (the row and the chunks after a position, in one snapshot), without the lock.
Deadlines compare with the server's clock; ``stickyctx db sweep`` deletes expired streams.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ...core.storekeys import SessionKey
from ...core.streams import StreamInfo, StreamStatus
from ...errors import StoreError
from ...sansio import Op
from .io import Decision, Rows, Statement, Transaction
from .rows import NOW, lock_reads
from .steps import run, transact

__all__ = ["PostgresStreams"]

T = TypeVar("T")
_STATUSES = frozenset({"running", "complete", "stopped", "cancelled", "interrupted"})


class _Stream:
    """The stream's row if it is live: ``None`` fields when there is none (or it expired)."""

    def __init__(self, now: float, rows: Sequence[tuple[Any, ...]]) -> None:
        self.now = now
        row = rows[0] if rows and float(rows[0][6]) > now else None
        self.stream_id: str | None = None if row is None else str(row[0])
        self.status: str | None = None if row is None else str(row[1])
        self.stop = bool(row[5]) if row is not None else False
        self.count = int(row[4]) if row is not None else 0

    def running(self, stream_id: str | None = None) -> bool:
        return self.status == "running" and stream_id in (None, self.stream_id)


def _select(key: SessionKey) -> Statement:
    return Statement("SELECT stream_id, status, node, turn, count, stop, expires "
                     "FROM stickyctx_streams WHERE ns = %s AND tag = %s",
                     (key.namespace, key.tag))


def _write(name: str, key: SessionKey,
           decide: Callable[[_Stream], tuple[list[Statement], T]]) -> Op[T]:
    def step(rows: Rows) -> Decision[T]:
        writes, value = decide(_Stream(float(rows[1][0][0]), rows[2]))
        return Decision(writes, value)

    return run(name, [*lock_reads(key), _select(key)], step)


def _info(rows: Rows, after: int) -> StreamInfo | None:
    now = float(rows[0][0][0])
    if not rows[1] or float(rows[1][0][6]) <= now:
        return None
    stream_id, status, node, turn, count, stop, _, chunks = rows[1][0]
    if status not in _STATUSES:
        raise StoreError(f"stream_read: unknown stream status {status!r}")
    return StreamInfo(str(stream_id), cast(StreamStatus, status), str(node), str(turn),
                      int(count), stop=bool(stop), first=after,
                      chunks=tuple(str(c) for c in chunks))


class PostgresStreams:
    def stream_open(self, key: SessionKey, stream_id: str, *, node: str, turn: str,
                    ttl: float) -> Op[None]:
        ident = (key.namespace, key.tag)

        def decide(found: _Stream) -> tuple[list[Statement], None]:
            return [
                Statement("DELETE FROM stickyctx_stream_chunks WHERE ns = %s AND tag = %s",
                          ident),
                Statement("INSERT INTO stickyctx_streams (ns, tag, stream_id, status, node, "
                          "turn, stop, count, expires) VALUES (%s, %s, %s, 'running', %s, %s, "
                          "false, 0, %s) ON CONFLICT (ns, tag) DO UPDATE SET "
                          "stream_id = excluded.stream_id, status = excluded.status, "
                          "node = excluded.node, turn = excluded.turn, stop = false, "
                          "count = 0, expires = excluded.expires",
                          (*ident, stream_id, node, turn, found.now + ttl)),
            ], None

        yield from _write("stream_open", key, decide)

    def stream_push(self, key: SessionKey, stream_id: str, chunks: Sequence[str], *,
                    ttl: float, fence: int | None = None, lease_ttl: float = 0.0) -> Op[bool]:
        ident = (key.namespace, key.tag)

        def decide(found: _Stream) -> tuple[list[Statement], bool]:
            if not found.running(stream_id):
                return [], True  # stopped, ended or replaced: nothing is appended
            writes = []
            if chunks:
                writes.append(Statement(
                    "INSERT INTO stickyctx_stream_chunks (ns, tag, n, chunk) "
                    "SELECT %s, %s, %s + u.n, u.chunk "
                    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(chunk, n)",
                    (*ident, found.count, list(chunks))))
            writes.append(Statement(
                "UPDATE stickyctx_streams SET count = %s, expires = %s "
                "WHERE ns = %s AND tag = %s", (found.count + len(chunks), found.now + ttl,
                                               *ident)))
            if fence is not None and lease_ttl > 0:  # a long reply keeps its turn
                writes.append(Statement(
                    "UPDATE stickyctx_leases SET expires = greatest(expires, %s) "
                    "WHERE ns = %s AND tag = %s AND name = 'turn' AND token = %s "
                    "AND expires > %s", (found.now + lease_ttl, *ident, fence, found.now)))
            return writes, found.stop

        return (yield from _write("stream_push", key, decide))

    def stream_end(self, key: SessionKey, stream_id: str, status: str, *,
                   ttl: float) -> Op[bool]:
        if status not in _STATUSES:
            raise ValueError(f"unknown stream status {status!r}")

        def decide(found: _Stream) -> tuple[list[Statement], bool]:
            if not found.running(stream_id):
                return [], False
            return [Statement("UPDATE stickyctx_streams SET status = %s, expires = %s "
                              "WHERE ns = %s AND tag = %s",
                              (status, found.now + ttl, key.namespace, key.tag))], True

        return (yield from _write("stream_end", key, decide))

    def stream_read(self, key: SessionKey, after: int = 0) -> Op[StreamInfo | None]:
        after = max(0, after)
        read = Statement(
            "SELECT s.stream_id, s.status, s.node, s.turn, s.count, s.stop, s.expires, "
            "ARRAY(SELECT c.chunk FROM stickyctx_stream_chunks c WHERE c.ns = s.ns "
            "AND c.tag = s.tag AND c.n > %s ORDER BY c.n) FROM stickyctx_streams s "
            "WHERE s.ns = %s AND s.tag = %s", (after, key.namespace, key.tag))
        step = Transaction([NOW, read], lambda rows: Decision((), _info(rows, after)),
                           atomic=False)
        info: StreamInfo | None = yield from transact("stream_read", step)
        return info

    def stream_stop(self, key: SessionKey) -> Op[str | None]:
        def decide(found: _Stream) -> tuple[list[Statement], str | None]:
            if not found.running():
                return [], None
            stop = Statement("UPDATE stickyctx_streams SET stop = true "
                             "WHERE ns = %s AND tag = %s", (key.namespace, key.tag))
            return [stop], found.stream_id

        return (yield from _write("stream_stop", key, decide))
