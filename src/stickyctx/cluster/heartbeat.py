"""Running the membership heartbeat: an asyncio task (ASGI) or a daemon thread (WSGI).

Both loops drive the same operation (``MembershipManager.heartbeat``) every interval, with a
little jitter so that nodes started together do not beat in lockstep. A failed beat is logged
and retried at the next interval; the last view stays in force meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading

from ..sansio import run_async, run_sync
from ..stores.base import Store
from .members import MembershipManager

__all__ = ["AsyncHeartbeat", "ThreadHeartbeat"]

logger = logging.getLogger("stickyctx")


_JITTER = random.Random()  # its own generator: never touches the app's global random state


def _pause(interval: float) -> float:
    return interval * _JITTER.uniform(0.8, 1.0)


class AsyncHeartbeat:
    def __init__(self, members: MembershipManager, store: Store) -> None:
        self.members = members
        self.store = store
        self.task: asyncio.Task[None] | None = None
        self._stopping = False

    def ensure_started(self) -> None:
        if self.task is None or self.task.done():
            self._stopping = False
            self.task = asyncio.get_running_loop().create_task(self._loop())

    async def beat(self) -> None:
        await run_async(self.members.heartbeat(self.store), self.store.async_io)

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - keep beating; the last view stays
                logger.warning("stickyctx: membership heartbeat failed: %s", exc)
            if not self._stopping:
                await asyncio.sleep(_pause(self.members.interval))

    async def stop(self, leave: bool = True) -> None:
        task, self.task = self.task, None
        if task is not None:
            # A cancellation that lands inside the Redis client can be swallowed there (a
            # timeout of its own expiring at the same moment, on Python 3.11): then the loop
            # would beat on and this wait would never end. The flag ends the loop at its next
            # turn whatever happens to the cancellation, and the cancellation is repeated.
            self._stopping = True
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if leave:
            try:
                await run_async(self.members.heartbeat(self.store, leaving=True),
                                self.store.async_io)
            except Exception as exc:  # noqa: BLE001 - leaving is best effort; heartbeats expire
                logger.warning("stickyctx: leaving the membership failed: %s", exc)


class ThreadHeartbeat:
    def __init__(self, members: MembershipManager, store: Store) -> None:
        self.members = members
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:  # after a fork the parent's thread does not exist in the child
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._stop.clear()
                self._pid = os.getpid()
                self.beat_once()
                self._thread = threading.Thread(target=self._loop, name="stickyctx-heartbeat",
                                                daemon=True)
                self._thread.start()

    def beat_once(self) -> None:
        try:
            run_sync(self.members.heartbeat(self.store), self.store.sync_io)
        except Exception as exc:  # noqa: BLE001 - keep beating; the last view stays
            logger.warning("stickyctx: membership heartbeat failed: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(_pause(self.members.interval)):
            self.beat_once()

    def stop(self, leave: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if leave:
            try:
                run_sync(self.members.heartbeat(self.store, leaving=True), self.store.sync_io)
            except Exception as exc:  # noqa: BLE001 - leaving is best effort; heartbeats expire
                logger.warning("stickyctx: leaving the membership failed: %s", exc)
