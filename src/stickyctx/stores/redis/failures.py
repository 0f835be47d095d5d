"""What a Redis script's answer or redis-py's exception means for the store: the signals an
append acts on (seal again), and the store's errors."""

from __future__ import annotations

from ...errors import StickyctxError, StoreError, StoreUnavailableError

__all__ = ["DataKeyMismatch", "Reseal", "repeatable", "translate"]


class Reseal(Exception):
    """Payloads sealed for other positions than they would get: ``next_seq`` is the session's
    next sequence number, ``stored`` flags the messages already stored (by idempotency key)."""

    def __init__(self, next_seq: int, stored: tuple[bool, ...]) -> None:
        super().__init__("sealed for other positions")
        self.next_seq = next_seq
        self.stored = stored


class DataKeyMismatch(Exception):
    """An append sealed with a data key that is not the session's (``wrapped`` is the stored)."""

    def __init__(self, wrapped: str) -> None:
        super().__init__("the session has another data key")
        self.wrapped = wrapped


def _unavailable_types() -> tuple[type[BaseException], ...]:
    import redis.exceptions as rexc
    from redis.sentinel import MasterNotFoundError

    return (rexc.ConnectionError, rexc.TimeoutError, rexc.ClusterDownError, rexc.TryAgainError,
            MasterNotFoundError, OSError)


def repeatable(name: str, exc: BaseException, attempt: int) -> bool:
    """A load (a read) is repeated once on a broken connection; writes never are."""
    import redis.exceptions as rexc

    return name == "load" and attempt == 1 and isinstance(exc, rexc.ConnectionError)


def translate(name: str, exc: BaseException) -> StickyctxError:
    if isinstance(exc, StickyctxError):
        return exc
    if isinstance(exc, _unavailable_types()):
        return StoreUnavailableError(name, type(exc).__name__)
    if "OOM" in str(exc) or "READONLY" in str(exc) or "LOADING" in str(exc):
        # Out of memory, a replica after a failover, a restart still loading: writes cannot be
        # made durable now, as when the server is down.
        return StoreUnavailableError(name, str(exc).split(" ", 1)[0])
    return StoreError(f"{name}: {type(exc).__name__}: {exc}")
