"""The two drivers: the only places where an operation's steps are performed.

``run_sync`` and ``run_async`` share ``_Stepper``, which advances the operation and throws
errors back into it; each driver only says how a step is performed, blocking or awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from .signals import Close, Pull, Watch, aclose_source, apull, close_source, pull
from .steps import IOStep, Offload, Op, Sleep

__all__ = ["AsyncIO", "SyncIO", "run_async", "run_sync"]

T = TypeVar("T")


class SyncIO(Protocol):
    """Performs a store's I/O steps, blocking (WSGI threads, the command line)."""

    def perform(self, step: IOStep) -> Any: ...


class AsyncIO(Protocol):
    """Performs a store's I/O steps on the running event loop (ASGI)."""

    async def perform(self, step: IOStep) -> Any: ...


class _Stepper:
    """Advances an operation: its next step after a step's value (``send``) or error
    (``throw``), until it returns (``done``, ``value``)."""

    __slots__ = ("done", "op", "value")

    def __init__(self, op: Op[Any]) -> None:
        self.op = op
        self.done = False
        self.value: Any = None

    def send(self, value: Any = None, error: Exception | None = None) -> Any:
        try:
            return self.op.send(value) if error is None else self.op.throw(error)
        except StopIteration as stop:
            self.done, self.value = True, stop.value
            return None


def _no_io(step: object) -> Any:
    raise TypeError(f"this store performs no I/O, yet an operation asked for {step!r}")


def _perform(step: Any, io: SyncIO | None) -> Any:
    if isinstance(step, Sleep):
        time.sleep(step.seconds)
        return None
    if isinstance(step, Offload):
        value = step.func(*step.args)
        return asyncio.run(_awaited(value)) if inspect.isawaitable(value) else value
    if isinstance(step, Pull):
        return pull(step)
    if isinstance(step, Watch):
        return step.signal.wait(step.seen, step.timeout)
    if isinstance(step, Close):
        return close_source(step)
    return io.perform(step) if io is not None else _no_io(step)


async def _aperform(step: Any, io: AsyncIO | None) -> Any:
    if isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
        return None
    if isinstance(step, Offload):
        if inspect.iscoroutinefunction(step.func):
            return await step.func(*step.args)
        if step.background:
            call = functools.partial(contextvars.copy_context().run, step.func, *step.args)
            value = await asyncio.get_running_loop().run_in_executor(_background(), call)
        else:
            value = await asyncio.to_thread(step.func, *step.args)
        return await value if inspect.isawaitable(value) else value
    if isinstance(step, Pull):
        return await apull(step)
    if isinstance(step, Watch):
        return await step.signal.await_change(step.seen, step.timeout)
    if isinstance(step, Close):
        return await aclose_source(step)
    return await io.perform(step) if io is not None else _no_io(step)


_background_pool: ThreadPoolExecutor | None = None
_background_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """The threads of ``Offload(background=True)``: a CPU-bound count there gets the CPU only
    when the event loop does not want it, so small requests keep their latency meanwhile."""
    global _background_pool
    with _background_lock:
        if _background_pool is None:
            _background_pool = ThreadPoolExecutor(
                max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="stickyctx-bg",
                initializer=_lowest_priority)
        return _background_pool


def _lowest_priority() -> None:
    # On Linux a thread has a nice value of its own (its native id names it); elsewhere the
    # same call would name a process, so the threads keep the normal priority there.
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def run_sync(op: Op[T], io: SyncIO | None = None) -> T:
    """Drive ``op`` to its end, performing its steps blocking; return its result."""
    run = _Stepper(op)
    step = run.send()
    while not run.done:
        try:
            value = _perform(step, io)
        except Exception as exc:  # noqa: BLE001 - thrown into the operation, which decides
            step = run.send(error=exc)
        else:
            step = run.send(value)
    return run.value  # type: ignore[no-any-return]


async def run_async(op: Op[T], io: AsyncIO | None = None) -> T:
    """Drive ``op`` to its end on the running event loop; return its result."""
    run = _Stepper(op)
    step = run.send()
    while not run.done:
        try:
            value = await _aperform(step, io)
        except Exception as exc:  # noqa: BLE001 - thrown into the operation, which decides
            step = run.send(error=exc)
        else:
            step = run.send(value)
    return run.value  # type: ignore[no-any-return]


async def _awaited(value: Any) -> Any:
    return await value
