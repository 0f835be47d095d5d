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
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, Union

__all__ = ["Call", "Compute", "Observer", "Op", "Record", "Sleep", "run_async", "run_sync"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """Call store primitive ``method`` with these arguments; ``attributes`` go on its span."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Compute:
    """Run user code (a summarizer): sync or async; off the event loop when it is sync."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """Telemetry for work done without I/O (window assembly, a fold), with its real times."""

    name: str
    attributes: dict[str, Any]
    started_ns: int
    ended_ns: int


Step = Union[Call, Sleep, Compute, Record]  # noqa: UP007 - a runtime alias, valid on 3.10


class Observer(Protocol):
    """What the drivers report to (``stickyctx.telemetry.Telemetry``)."""

    def operation(self, method: str, session_hash: Callable[[], str] | None,
                  ) -> AbstractContextManager[dict[str, Any]]: ...

    def record(self, name: str, attributes: Mapping[str, Any], started_ns: int,
               ended_ns: int) -> None: ...


def _annotate(step: Call, value: Any, extra: dict[str, Any]) -> None:
    """Attributes of a store result, for its span (counts and tiers, never content)."""
    if step.method == "acquire_lease":
        extra["stickyctx.lease.acquired"] = value is not None
    tier = getattr(value, "tier", None)
    if tier is not None:
        extra["stickyctx.tier"] = tier
        extra["stickyctx.stale"] = bool(getattr(value, "stale", False))
        messages = getattr(value, "messages", None)
        if messages is not None:
            extra["stickyctx.messages.after"] = len(messages)
    duplicates = getattr(value, "duplicates", None)
    if duplicates:
        extra["stickyctx.duplicates"] = duplicates


async def _await(value: Awaitable[Any]) -> Any:
    return await value
Op = Generator[Step, Any, T]


def run_sync(op: Op[T], store: Any, observer: Observer | None = None,
             session_hash: Callable[[], str] | None = None) -> T:
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
            elif isinstance(step, Record):
                if observer is not None:
                    observer.record(step.name, step.attributes, step.started_ns, step.ended_ns)
            elif observer is None:
                value = getattr(store, step.method)(*step.args, **step.kwargs)
            else:
                with observer.operation(step.method, session_hash) as extra:
                    if step.attributes:
                        extra.update(step.attributes)
                    value = getattr(store, step.method)(*step.args, **step.kwargs)
                    _annotate(step, value, extra)
        except Exception as exc:  # noqa: BLE001 - handed to the operation, which decides
            error = exc


async def run_async(op: Op[T], store: Any, observer: Observer | None = None,
                    session_hash: Callable[[], str] | None = None) -> T:
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
            elif isinstance(step, Record):
                if observer is not None:
                    observer.record(step.name, step.attributes, step.started_ns, step.ended_ns)
            elif observer is None:
                value = await getattr(store, step.method)(*step.args, **step.kwargs)
            else:
                with observer.operation(step.method, session_hash) as extra:
                    if step.attributes:
                        extra.update(step.attributes)
                    value = await getattr(store, step.method)(*step.args, **step.kwargs)
                    _annotate(step, value, extra)
        except Exception as exc:  # noqa: BLE001 - handed to the operation, which decides
            error = exc
