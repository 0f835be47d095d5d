"""The PostgreSQL store's I/O: one step, ``Transaction``, and the two adapters that perform it.

A ``Transaction`` is a read-decide-write round: the adapter runs its ``reads`` in one
transaction, hands their rows to ``decide`` (pure: it performs no I/O, it only computes), runs
the statements ``decide`` returns and commits. So the logic (``store``) is written once, and each
adapter is a few lines of psycopg: blocking over a ``ConnectionPool``, or on the running event
loop over an ``AsyncConnectionPool`` (one per loop). Reads and writes are each sent as one
pipeline, so a transaction costs two round trips (a non-``atomic`` step, reads that need no
transaction, one). An exception raised by ``decide`` or by a
statement rolls the transaction back and goes back to the logic as raised: it decides what a
failure means. No connection is held between steps, so a cancelled request leaves nothing open.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ...sansio import IOStep
from ..redis.loops import LoopClients

__all__ = ["AsyncPostgresIO", "Decision", "NotSent", "Rows", "Statement", "SyncPostgresIO",
           "Transaction"]

Rows = list[list[tuple[Any, ...]]]  # the rows of each read, in order
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision(Generic[T]):
    """What ``decide`` chose: the statements to run before committing, and the step's value."""

    writes: Sequence[Statement]
    value: T


@dataclass(frozen=True, slots=True)
class Transaction(IOStep):
    """Run ``reads``, then ``decide(rows)``'s writes, in one transaction; its value is the
    decision's ``value``."""

    reads: Sequence[Statement]
    decide: Callable[[Rows], Decision[Any]]
    atomic: bool = True  # False: no transaction (reads that need no lock: one round trip)


class NotSent(Exception):
    """The connection failed before any write of the transaction was sent: it did nothing, so
    it may be repeated (the pool has dropped its broken connections meanwhile)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _broken(exc: Exception) -> bool:
    """A failure of the connection (not the server's answer to a statement, such as a lock or
    statement timeout: repeating those would only wait again)."""
    import psycopg
    from psycopg import errors

    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, (errors.LockNotAvailable, errors.QueryCanceled))


def _atomic(conn: Any, step: Transaction) -> Any:
    """The transaction of an atomic step (either kind of connection), else nothing."""
    return conn.transaction() if step.atomic else contextlib.nullcontext()


class SyncPostgresIO:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def perform(self, step: IOStep) -> Any:
        assert isinstance(step, Transaction)
        writing = False
        try:
            with self.pool.connection() as conn, conn.pipeline(), _atomic(conn, step):
                cursors = [conn.execute(s.sql, s.params) for s in step.reads]
                rows = [cur.fetchall() for cur in cursors]  # every read is a SELECT
                decision = step.decide(rows)
                writing = True
                for statement in decision.writes:
                    conn.execute(statement.sql, statement.params)
        except Exception as exc:
            if writing or not _broken(exc):
                raise
            self.pool.check()  # after a server restart: drop every broken connection at once
            raise NotSent(exc) from exc
        return decision.value

    def close(self) -> None:
        self.pool.close()


class _LoopPool:
    """An ``AsyncConnectionPool`` opened on first use in its loop (``LoopClients`` makes one
    per event loop and closes it with ``aclose`` when that loop shuts down)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.pool = make()
        self.opened = False

    async def get(self) -> Any:
        if not self.opened:
            await self.pool.open(wait=False)
            self.opened = True
        return self.pool

    async def aclose(self) -> None:
        if self.opened:
            await self.pool.close()


class AsyncPostgresIO:
    def __init__(self, make_pool: Callable[[], Any]) -> None:
        self.pools = LoopClients(lambda: _LoopPool(make_pool))

    async def perform(self, step: IOStep) -> Any:
        assert isinstance(step, Transaction)
        pool = await self.pools.current().get()
        writing = False
        try:
            async with pool.connection() as conn, conn.pipeline(), _atomic(conn, step):
                cursors = [await conn.execute(s.sql, s.params) for s in step.reads]
                rows = [await cur.fetchall() for cur in cursors]
                decision = step.decide(rows)
                writing = True
                for statement in decision.writes:
                    await conn.execute(statement.sql, statement.params)
        except Exception as exc:
            if writing or not _broken(exc):
                raise
            await pool.check()
            raise NotSent(exc) from exc
        return decision.value

    async def aclose(self) -> None:
        await self.pools.aclose()
