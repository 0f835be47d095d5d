"""The steps an operation yields, and ``immediate`` for operations that need no I/O."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from .signals import Close, Pull, Watch

__all__ = ["IOStep", "Offload", "Op", "Sleep", "immediate"]

T = TypeVar("T")
P = ParamSpec("P")


class IOStep:
    """Base of the steps a store's I/O adapter performs (a Redis script call, a query, ...)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (``time.sleep`` when driven sync, ``asyncio.sleep`` when async)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Offload:
    """Run user code (a summarizer), sync or async; a sync function runs in a worker thread
    when driven async, so that it never blocks the event loop.

    ``background``: CPU-bound work that must not slow the requests around it (counting a large
    message): it runs in a thread of lowest scheduling priority where the system allows it."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    background: bool = False


Op = Generator["IOStep | Sleep | Offload | Pull | Close | Watch", Any, T]


def immediate(fn: Callable[P, T]) -> Callable[P, Op[T]]:
    """Make a plain function an operation that performs no I/O (the embedded store's
    primitives): its result is the operation's, with nothing to drive."""

    @functools.wraps(fn)
    def operation(*args: P.args, **kwargs: P.kwargs) -> Op[T]:
        return fn(*args, **kwargs)
        yield  # unreachable: it makes this function a generator

    return operation
