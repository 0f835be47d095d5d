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
    "NOT_READY",
    "Ahead",
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
NOT_READY: Any = object()  # ``Pull(ready=True)``: the next item is not there yet


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


@dataclass(slots=True)
class Ahead:
    """An async source's next step, started by a ``Pull(ready=True)`` that did not wait for
    it: the next ``Pull`` of the source takes it over."""

    pending: asyncio.Future[Any] | None = None


@dataclass(frozen=True, slots=True)
class Pull:
    """The next item of ``source`` (``END`` after the last; ``CANCELLED`` when ``cancel``
    fires first: an async iterator's pending step is cancelled, a sync one is not waited for
    again). With ``ready``, only an item the source has at hand (an async source gets one
    turn of the event loop), else ``NOT_READY``: chunks a model sent together are pushed
    together."""

    source: Any
    cancel: Cancel | None = None
    ready: bool = False
    ahead: Ahead | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``source`` (``close()`` / ``aclose()``, when it has them), after cancelling the
    step ``ahead`` left pending."""

    source: Any
    ahead: Ahead | None = None


@dataclass(frozen=True, slots=True)
class Watch:
    """Wait until ``signal.version`` is not ``seen``, at most ``timeout`` seconds."""

    signal: Signal
    seen: int
    timeout: float


def pull(step: Pull) -> Any:
    if step.cancel is not None and step.cancel.is_set:
        return CANCELLED
    if step.ready:  # a blocking iterator cannot say whether it has an item at hand
        return NOT_READY
    return next(step.source, END)


async def apull(step: Pull) -> Any:
    source, cancel, ahead = step.source, step.cancel, step.ahead
    pending: asyncio.Future[Any] | None = None
    if ahead is not None:
        pending, ahead.pending = ahead.pending, None
    if cancel is not None and cancel.is_set:
        await _cancelled(pending)
        return CANCELLED
    if pending is None:
        if hasattr(source, "__anext__"):
            if cancel is None and ahead is None:
                try:
                    return await source.__anext__()
                except StopAsyncIteration:
                    return END
            pending = asyncio.ensure_future(source.__anext__())
        elif step.ready:  # a blocking iterator cannot say whether it has an item at hand
            return NOT_READY
        else:  # a blocking iterator: its steps run in a worker thread, off the event loop
            pending = asyncio.ensure_future(asyncio.to_thread(next, source, END))
    if step.ready and not pending.done():
        await asyncio.sleep(0)  # one turn: a step that needs no I/O completes in it
        if not pending.done() and ahead is not None:
            ahead.pending = pending
            return NOT_READY
    if cancel is not None and not pending.done():
        await _first(pending, cancel.future())
        if not pending.done():
            await _cancelled(pending)
            return CANCELLED
    try:
        return await pending
    except StopAsyncIteration:
        return END


async def _cancelled(pending: asyncio.Future[Any] | None) -> None:
    if pending is not None and not pending.done():
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending


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
    if step.ahead is not None:  # a step still running: cancelled before the source closes
        pending, step.ahead.pending = step.ahead.pending, None
        await _cancelled(pending)
    close = getattr(step.source, "aclose", None)
    if callable(close):
        await close()
        return
    close_source(step)
