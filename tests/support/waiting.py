"""The one readiness poller of the tests: wait for a condition with a deadline, never a fixed
sleep. ``tests.conftest.wait_until`` and ``tests.redis_servers`` use it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis

__all__ = ["poll"]

_T = TypeVar("_T")


def poll(check: Callable[[], _T], *, timeout: float, what: str,
         alive: Callable[[], None] | None = None) -> _T:
    """Call ``check`` until it returns a true value and return it, backing off from 5 ms.

    Redis and socket errors count as "not yet". ``alive`` is called before every try and raises
    if a process the wait depends on has died. Raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    last_error: BaseException | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = check()
        except (redis.RedisError, OSError) as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"{what}: not true after {timeout} s{detail}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)
