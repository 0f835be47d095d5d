"""Sans-I/O operations: session logic written once as generators, driven sync or async.

An operation is a generator that yields the I/O it needs (``Call`` a store primitive, or
``Sleep``) and receives each result back; it returns its value. ``run_sync`` and ``run_async``
are the only two places that perform the I/O, so no logic exists twice for WSGI and ASGI.
A store error is thrown back into the generator at the point of the call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

__all__ = ["Call", "Compute", "Op", "Sleep", "run_async", "run_sync"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """Call store primitive ``method`` with these arguments."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Compute:
    """Run user code (a summarizer): sync or async; off the event loop when it is sync."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()


Step = Union[Call, Sleep, Compute]  # noqa: UP007 - a runtime alias, valid on Python 3.10


async def _await(value: Awaitable[Any]) -> Any:
    return await value
Op = Generator[Step, Any, T]


def run_sync(op: Op[T], store: Any) -> T:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif isinstance(step, Compute):
                value = step.func(*step.args)
                if inspect.isawaitable(value):
                    value = asyncio.run(_await(value))
            else:
                value = getattr(store, step.method)(*step.args, **step.kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the operation, which decides
            error = exc


async def run_async(op: Op[T], store: Any) -> T:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Compute):
                if inspect.iscoroutinefunction(step.func):
                    value = await step.func(*step.args)
                else:
                    value = await asyncio.to_thread(step.func, *step.args)
                    if inspect.isawaitable(value):
                        value = await value
            else:
                value = await getattr(store, step.method)(*step.args, **step.kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the operation, which decides
            error = exc
