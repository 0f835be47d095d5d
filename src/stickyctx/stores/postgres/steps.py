"""Running one ``Transaction`` step as an operation: repeated when it failed before writing
anything, its errors translated into the store's (shared by the store's modules and the cold
tier)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ...errors import StickyctxError, StoreError, StoreUnavailableError
from ...sansio import Op
from .io import Decision, NotSent, Rows, Statement, Transaction

__all__ = ["run", "transact"]

T = TypeVar("T")
_ATTEMPTS = 3  # of a transaction that failed before it wrote anything (a broken connection)


def _unavailable(exc: BaseException) -> bool:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - the store is not usable without them
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout))


def run(name: str, reads: Sequence[Statement],
        decide: Callable[[Rows], Decision[T]]) -> Op[T]:
    value: T = yield from transact(name, Transaction(reads, decide))
    return value


def transact(name: str, step: Transaction) -> Op[Any]:
    """One transaction, repeated when it failed before writing anything (a server restart
    leaves the pool's connections broken: nothing was done, so nothing is done twice);
    psycopg's errors become the store's. A failure while writing or committing is never
    repeated: whether it took effect is unknown, and the caller decides."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return (yield step)
        except StickyctxError:
            raise  # decided by the logic (fenced, reused idempotency key, ...)
        except NotSent as not_sent:
            if attempt < _ATTEMPTS:
                continue
            raise StoreUnavailableError(name, type(not_sent.error).__name__) from not_sent
        except Exception as exc:  # translated into the store's errors
            if _unavailable(exc):
                raise StoreUnavailableError(name, type(exc).__name__) from exc
            if isinstance(exc, (ValueError, TypeError, KeyError, AssertionError)):
                raise
            if type(exc).__name__ in ("UndefinedTable", "UndefinedColumn"):
                raise StoreError("the PostgreSQL schema is missing or older than this "
                                 "stickyctx: run `stickyctx db upgrade`") from exc
            raise StoreError(f"PostgreSQL store failed during {name}: {exc}") from exc
    raise AssertionError("unreachable")


