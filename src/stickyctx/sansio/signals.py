"""Steps of streamed replies: pulling the app's chunks and waiting for a reply's next ones.

``Pull`` takes the next item of an app's iterator (sync or async); ``Close`` closes it;
``Watch`` waits until a ``Signal`` changes. ``Signal`` and ``Cancel`` work across threads and
event loops (a WSGI reply generates in a thread that request threads watch; an ASGI reply in
a task that other requests' tasks watch), so the logic that uses them is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CANCELLED",
    "END",
    "Cancel",
    "Close",
    "Pull",
    "Signal",
    "Watch",
    "aclose_source",
    "apull",
    "close_source",
    "pull",
]

END: Any = object()  # the iterator is exhausted
CANCELLED: Any = object()  # ``Pull``'s cancel fired before the next item came


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Waiters:
    """Futures of any event loop, resolved from any thread."""

    __slots__ = ("_futures", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def add(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._futures.append((loop, future))
        return future

    def wake(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        if not futures:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, future in futures:
            if loop is running:  # this thread's loop: no wake-up through its self-pipe
                _resolve(future)
                continue
            with contextlib.suppress(RuntimeError):  # a loop that closed meanwhile
                loop.call_soon_threadsafe(_resolve, future)


class Signal:
    """A version number that waiters watch: ``notify()`` bumps it and wakes them."""

    __slots__ = ("_cond", "_waiters", "version")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiters = _Waiters()
        self.version = 0

    def notify(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()
        self._waiters.wake()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen, timeout)

    async def await_change(self, seen: int, timeout: float) -> None:
        future = self._waiters.add()
        if self.version != seen:
            return
        timer = asyncio.get_running_loop().call_later(max(0.0, timeout), _resolve, future)
        try:
            await future
        finally:
            timer.cancel()


class Cancel:
    """A one-way flag (a stop, a disconnect) that also wakes a pending async ``Pull``."""

    __slots__ = ("_future", "_waiters", "is_set", "reason")

    def __init__(self) -> None:
        self._waiters = _Waiters()
        self._future: asyncio.Future[None] | None = None
        self.is_set = False
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.is_set:
            self.reason, self.is_set = reason, True
        self._waiters.wake()

    def future(self) -> asyncio.Future[None]:
        """A future of the running loop resolved when the flag is set (one per loop, kept:
        a reply's every ``Pull`` races the same one)."""
        future = self._future
        if future is None or future.get_loop() is not asyncio.get_running_loop():
            future = self._future = self._waiters.add()
        if self.is_set:
            _resolve(future)
        return future


@dataclass(frozen=True, slots=True)
class Pull:
    """The next item of ``source`` (``END`` after the last; ``CANCELLED`` when ``cancel``
    fires first: an async iterator's pending step is cancelled, a sync one is not waited for
    again)."""

    source: Any
    cancel: Cancel | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``source`` (``close()`` / ``aclose()``, when it has them)."""

    source: Any


@dataclass(frozen=True, slots=True)
class Watch:
    """Wait until ``signal.version`` is not ``seen``, at most ``timeout`` seconds."""

    signal: Signal
    seen: int
    timeout: float


def pull(step: Pull) -> Any:
    if step.cancel is not None and step.cancel.is_set:
        return CANCELLED
    return next(step.source, END)


async def apull(step: Pull) -> Any:
    source, cancel = step.source, step.cancel
    if cancel is not None and cancel.is_set:
        return CANCELLED
    if hasattr(source, "__anext__"):
        if cancel is None:
            try:
                return await source.__anext__()
            except StopAsyncIteration:
                return END
        pending: asyncio.Future[Any] = asyncio.ensure_future(source.__anext__())
    else:  # a blocking iterator: its steps run in a worker thread, off the event loop
        pending = asyncio.ensure_future(asyncio.to_thread(next, source, END))
    if cancel is not None and not pending.done():
        await _first(pending, cancel.future())
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            return CANCELLED
    try:
        return await pending
    except StopAsyncIteration:
        return END


async def _first(*futures: asyncio.Future[Any]) -> None:
    """Until one of ``futures`` is done (``asyncio.wait`` without its sets and tasks)."""
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(_: asyncio.Future[Any]) -> None:
        _resolve(woken)

    for future in futures:
        future.add_done_callback(wake)
    try:
        await woken
    finally:
        for future in futures:
            future.remove_done_callback(wake)


def close_source(step: Close) -> None:
    close = getattr(step.source, "close", None)
    if callable(close):
        close()


async def aclose_source(step: Close) -> None:
    close = getattr(step.source, "aclose", None)
    if callable(close):
        await close()
        return
    close_source(step)
