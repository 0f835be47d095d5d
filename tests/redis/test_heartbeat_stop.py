"""Stopping the ASGI heartbeat ends it even when a cancellation is swallowed mid-beat.

Seen with redis-py on Python 3.11: a cancellation that arrives while a command's own timeout
expires can be swallowed inside the client; the heartbeat loop then beat on, and the shutdown
that awaited it never ended (a test hung until its timeout). Reproduced here without timing
luck: the store's I/O swallows every cancellation of the beat it is performing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stickyctx.cluster.heartbeat import AsyncHeartbeat
from stickyctx.cluster.members import MembershipManager
from stickyctx.core.nodes import Announcement
from stickyctx.sansio import IOStep, Op
from tests.conftest import make_settings


class _Beat(IOStep):
    __slots__ = ()


class SwallowingIO:
    """Performs a beat slowly; a cancellation during it is swallowed (the beat just ends)."""

    def __init__(self) -> None:
        self.beats = 0
        self.swallowed = 0
        self.started = asyncio.Event()

    async def perform(self, step: IOStep) -> Any:
        self.beats += 1
        self.started.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed += 1  # not re-raised: the flaw the heartbeat must survive
        return []


class SwallowingStore:
    def __init__(self) -> None:
        self.async_io = SwallowingIO()

    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> Op[tuple[Announcement, ...]]:
        yield _Beat()
        return ()


def test_stop_ends_the_loop_even_if_the_cancellation_is_swallowed() -> None:
    settings = make_settings(heartbeat_interval=0.01)  # (the stand-in store is all it uses)
    store = SwallowingStore()
    heartbeat = AsyncHeartbeat(MembershipManager(settings), store)  # type: ignore[arg-type]

    async def scenario() -> tuple[int, int, bool]:
        heartbeat.ensure_started()
        await store.async_io.started.wait()  # a beat is in flight: the cancel lands inside it
        await asyncio.wait_for(heartbeat.stop(leave=False), 5)
        task_gone = heartbeat.task is None
        beats = store.async_io.beats
        await asyncio.sleep(0.1)  # (a loop still running would beat again meanwhile)
        return store.async_io.swallowed, store.async_io.beats - beats, task_gone

    swallowed, beats_after_stop, task_gone = asyncio.run(scenario())
    assert swallowed >= 1  # the flaw was really exercised
    assert beats_after_stop == 0
    assert task_gone
