"""The PostgreSQL store's logic, once, as sans-I/O operations (see ``stickyctx.sansio``).

Each primitive is one ``Transaction`` step (``io``): read the session under its lock, decide
in plain Python what changes (the embedded store's ``History`` applies the change, so both
stores mean the same), write it. Leases are rows with an expiry and a fencing token from one
sequence (so a lease a crashed holder left lapses by itself, and tokens only grow, also across
a server restart); nothing is locked between transactions. psycopg's errors become the store's.
The primitives of principals and conversations (``users``) and of streamed replies
(``streams``) are mixed in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from ...core.messages import AppendResult, Begun, NewMessage, Snapshot, StoredMessage, Summary
from ...core.nodes import Announcement
from ...core.storekeys import SessionKey
from ...core.views import Prefix
from ...errors import FencedError
from ...sansio import Op
from ..memory_history import History
from . import members
from .codec import Sealer
from .io import AsyncPostgresIO, Decision, Rows, Statement, SyncPostgresIO, Transaction
from .rows import (
    NOW,
    Lease,
    Limits,
    Seen,
    Writes,
    data_reads,
    lock_reads,
    seen,
    session_reads,
)
from .steps import run as _run
from .steps import transact
from .streams import PostgresStreams
from .users import PostgresUserData

__all__ = ["PostgresStore", "transact"]

T = TypeVar("T")


def _snapshot(history: History) -> Snapshot:
    return Snapshot("live", history.version, Prefix(history.messages), history.total,
                    history.summary, tuple(sorted(history.encodings)), tier="store",
                    next_seq=history.next_seq, group=history.group, cum=history.cum,
                    size=history.size)


def _check_fence(found: Seen, fence: int | None) -> None:
    if fence is None:
        return
    lease = found.lease("turn")
    if lease is None or lease.token != fence:
        raise FencedError(fence, lease.token if lease is not None else None)


class PostgresStore(PostgresUserData, PostgresStreams):
    """The PostgreSQL store over a blocking pool and asyncio pools (one per event loop)."""

    def __init__(self, limits: Limits, *, sync_pool: Any, make_async_pool: Callable[[], Any],
                 sealer: Sealer | None = None) -> None:
        self.limits = limits
        self.sealer = sealer if sealer is not None else Sealer(None)
        self.sync_io = SyncPostgresIO(sync_pool)
        self.async_io = AsyncPostgresIO(make_async_pool)

    def close(self) -> None:
        self.sync_io.close()

    async def aclose(self) -> None:
        await self.async_io.aclose()

    # Helpers of the decisions -----------------------------------------------------------------

    def _writes(self) -> Writes:
        return Writes(self.limits, self.sealer)

    def _live(self, found: Seen, writes: Writes, *, touch: bool = True) -> History | None:
        """The session if it is live (an expired row is deleted), its last use set to now."""
        if found.expired:
            writes.delete(found.key, expired_at=found.now)
        history = found.history
        if history is not None and touch:
            stale = found.now - history.touched >= self.limits.refresh
            history.touched = found.now
            if stale:
                writes.touch(found.key, history)
        return history

    def _take(self, found: Seen, writes: Writes, name: str, holder: str, ttl: float,
              live: Collection[str]) -> int | None:
        lease = found.lease(name)
        if lease is not None:
            node, sep, _ = lease.holder.partition(":")
            if not live or not sep or node in live:
                return None  # held by a live node (or liveness unknown): wait
        assert found.fence is not None
        writes.grant(found.key, name, Lease(holder, found.fence, found.now + ttl))
        return found.fence

    # The protocol -----------------------------------------------------------------------------

    def load(self, key: SessionKey) -> Op[Snapshot]:
        """One round trip: a read needs no lock (the row is read whole, by one statement); its
        writes (the last use, an expired row) are conditional, so they are safe without it."""
        def decide(rows: Rows) -> Decision[Snapshot]:
            found = seen(rows, key, self.sealer, locks=0)
            if found.revoked:
                return Decision((), Snapshot("revoked", follow=found.follow))
            writes = self._writes()
            history = self._live(found, writes)
            value = Snapshot("missing") if history is None else _snapshot(history)
            return Decision(writes.statements, value)

        snapshot: Snapshot = yield from transact(
            "load", Transaction([NOW, *data_reads(key)], decide, atomic=False))
        return snapshot

    def begin(self, key: SessionKey, *, holder: str, ttl: float, live: Collection[str] = (),
              probe: Collection[str] = (), writing: bool = False) -> Op[Begun]:
        def decide(rows: Rows) -> Decision[Begun]:
            found = seen(rows, key, self.sealer)
            if found.revoked:
                return Decision((), Begun("revoked", follow=found.follow))
            writes = self._writes()
            history = self._live(found, writes)
            if history is None and not writing:
                return Decision(writes.statements, Begun("missing"))
            token = self._take(found, writes, "turn", holder, ttl, live)
            if token is None:
                return Decision(writes.statements, Begun("live"))
            if history is None:
                return Decision(writes.statements, Begun("missing", token, Snapshot("missing")))
            return Decision(writes.statements, Begun(
                "live", token, _snapshot(history),
                frozenset(p for p in probe if p in history.dedupe)))

        return (yield from _run("begin", session_reads(key, fence=True), decide))

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None,
               release: bool = False) -> Op[AppendResult]:
        def decide(rows: Rows) -> Decision[AppendResult]:
            found = seen(rows, key, self.sealer)
            if found.revoked:
                return Decision((), AppendResult("revoked", follow=found.follow))
            _check_fence(found, fence)
            writes = self._writes()
            history = self._live(found, writes, touch=False)
            if history is None:
                if not create or found.now >= created + self.limits.absolute_ttl:
                    return Decision(writes.statements, AppendResult("missing"))
                history = History(created=created, touched=found.now)
            history.touched = found.now
            result = history.append(messages, self.limits.max_tokens, self.limits.max_bytes)
            writes.save(key, history, found.dek)
            if release and fence is not None:
                writes.drop_lease(key, "turn")  # the fence was checked: it holds the lease
            return Decision(writes.statements, result)

        return (yield from _run("append", session_reads(key), decide))

    def _change(self, name: str, key: SessionKey, fence: int | None,
                change: Callable[[History], T], missing: T) -> Op[T]:
        """Apply ``change`` to a live session under a checked fence, and save it."""
        def decide(rows: Rows) -> Decision[T]:
            found = seen(rows, key, self.sealer)
            _check_fence(found, fence)
            writes = self._writes()
            history = self._live(found, writes, touch=False)
            if history is None or found.revoked:
                return Decision(writes.statements, missing)
            history.touched = found.now
            before = history.version
            value = change(history)
            if history.version != before:
                writes.save(key, history, found.dek)
            return Decision(writes.statements, value)

        return (yield from _run(name, session_reads(key), decide))

    def clear(self, key: SessionKey, *, fence: int | None = None) -> Op[int]:
        return (yield from self._change("clear", key, fence, History.clear, 0))

    def pop(self, key: SessionKey, *, fence: int | None = None) -> Op[StoredMessage | None]:
        return (yield from self._change("pop", key, fence, History.pop, None))

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False,
                      ) -> Op[Summary | None]:
        return (yield from self._change(
            "summary", key, None,
            lambda h: h.apply_summary(text, tokens, watermark, expected_watermark,
                                      delete_folded), None))

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> Op[int | None]:
        return (yield from self._change(
            "recount", key, None,
            lambda h: h.recount(encoding, tokens) if h.version == expected_version else None,
            None))

    def rotate(self, old: SessionKey, new: SessionKey, *, follow: str = "",
               grace: float = 0.0) -> Op[None]:
        def decide(rows: Rows) -> Decision[None]:
            found = seen(rows, old, self.sealer, locks=2, start=3)
            writes = self._writes()
            history = self._live(found, writes, touch=False)
            writes.drop_lease(new)
            pointer = (follow, found.now + grace) if follow and grace > 0 else ("", 0.0)
            if history is not None:
                writes.delete(old)
                history.version += 1
                writes.save(new, history, found.dek)
                writes.bury(old, history.created + self.limits.absolute_ttl, *pointer)
            else:
                writes.bury(old, found.now + self.limits.absolute_ttl, *pointer)
            writes.add("UPDATE stickyctx_leases SET tag = %s WHERE ns = %s AND tag = %s",
                       new.tag, old.namespace, old.tag)
            return Decision(writes.statements, None)

        if old.namespace != new.namespace:
            raise ValueError("rotate keeps a session in its namespace")
        yield from _run("rotate", [*lock_reads(old, new), *data_reads(old)], decide)

    def destroy(self, key: SessionKey) -> Op[None]:
        def decide(rows: Rows) -> Decision[None]:
            found = seen(rows, key, self.sealer)
            writes = self._writes()
            created = found.history.created if found.history is not None else found.now
            writes.delete(key)
            writes.drop_lease(key)
            writes.add("DELETE FROM stickyctx_streams WHERE ns = %s AND tag = %s",
                       key.namespace, key.tag)  # its chunks go with it
            writes.bury(key, created + self.limits.absolute_ttl)
            return Decision(writes.statements, None)

        yield from _run("destroy", session_reads(key), decide)

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float, name: str = "turn",
                      live: Collection[str] = ()) -> Op[int | None]:
        def decide(rows: Rows) -> Decision[int | None]:
            found = seen(rows, key, self.sealer)
            writes = self._writes()
            return Decision(writes.statements,
                            self._take(found, writes, name, holder, ttl, live))

        return (yield from _run("lease", session_reads(key, fence=True), decide))

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> Op[None]:
        release = Statement(
            "DELETE FROM stickyctx_leases WHERE ns = %s AND tag = %s AND name = %s "
            "AND (token = %s OR (%s = 0 AND holder = %s))",
            (key.namespace, key.tag, name, token, token, holder or ""))
        yield from _run("release", [], lambda rows: Decision([release], None))

    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> Op[tuple[Announcement, ...]]:
        announced: tuple[Announcement, ...] = yield from transact(
            "heartbeat", members.heartbeat(namespace, node, ttl=ttl, leaving=leaving))
        return announced
