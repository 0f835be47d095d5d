"""The steps of streamed replies (``stickyctx.sansio.signals``), driven by both drivers: a
``Pull`` of a sync or async iterator, cancelled while the next item is pending; a ``Watch``
woken from another thread, or ending at its timeout; ``Close``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from stickyctx.sansio import (
    CANCELLED,
    END,
    NOT_READY,
    Ahead,
    Cancel,
    Close,
    Op,
    Pull,
    Signal,
    Watch,
    run_async,
    run_sync,
)


def pull_all(source: object, cancel: Cancel | None = None) -> Op[list[object]]:
    got: list[object] = []
    while True:
        item = yield Pull(source, cancel)
        got.append(item)
        if item is END or item is CANCELLED:
            yield Close(source)
            return got


def test_a_sync_iterator_pulled_by_both_drivers() -> None:
    assert run_sync(pull_all(iter("ab"))) == ["a", "b", END]
    assert asyncio.run(run_async(pull_all(iter("ab")))) == ["a", "b", END]


def test_a_pending_async_pull_is_cancelled_and_the_iterator_closed() -> None:
    closed = []

    async def slow() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()  # never comes
            yield "never"
        finally:
            closed.append(True)

    async def scenario() -> list[object]:
        cancel = Cancel()
        running = asyncio.ensure_future(run_async(pull_all(slow(), cancel)))
        await asyncio.sleep(0)
        cancel.set("stopped")
        return await running

    assert asyncio.run(scenario()) == ["first", CANCELLED]
    assert closed == [True]


def test_a_set_cancel_stops_a_sync_pull_before_the_next_item() -> None:
    cancel = Cancel()
    source: Iterator[str] = iter("abc")

    def op() -> Op[list[object]]:
        first = yield Pull(source, cancel)
        cancel.set("cancelled")
        second = yield Pull(source, cancel)
        return [first, second]

    assert run_sync(op()) == ["a", CANCELLED]
    assert cancel.reason == "cancelled"


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_watch_wakes_on_a_notify_from_another_thread(driver: str) -> None:
    signal = Signal()

    def op() -> Op[int]:
        yield Watch(signal, 0, 30.0)
        return signal.version

    threading.Timer(0.01, signal.notify).start()
    result = run_sync(op()) if driver == "sync" else asyncio.run(run_async(op()))
    assert result == 1


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_watch_ends_at_its_timeout_without_a_notify(driver: str) -> None:
    signal = Signal()

    def op() -> Op[int]:
        yield Watch(signal, 0, 0.01)
        return signal.version

    assert (run_sync(op()) if driver == "sync" else asyncio.run(run_async(op()))) == 0


def test_a_ready_pull_takes_what_the_source_has_at_hand_and_loses_nothing() -> None:
    release = asyncio.Event()
    closed = []

    async def source() -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"  # at hand: no await between the two
            await release.wait()
            yield "c"
        finally:
            closed.append(True)

    async def scenario() -> list[object]:
        made, ahead = source(), Ahead()

        def op() -> Op[list[object]]:
            got = [(yield Pull(made, ahead=ahead))]
            got.append((yield Pull(made, ready=True, ahead=ahead)))
            got.append((yield Pull(made, ready=True, ahead=ahead)))  # c is not there yet
            release.set()
            got.append((yield Pull(made, ahead=ahead)))  # the pending step, taken over
            yield Pull(made, ready=True, ahead=ahead)  # pending again (after c): left so
            yield Close(made, ahead)  # cancelled, then closed
            return got

        return await run_async(op())

    assert asyncio.run(scenario()) == ["a", "b", NOT_READY, "c"]
    assert closed == [True]
    assert run_sync(pull_all_ready(iter("ab"))) == [NOT_READY]  # a blocking source never is


def pull_all_ready(source: Iterator[str]) -> Op[list[object]]:
    return [(yield Pull(source, ready=True))]
