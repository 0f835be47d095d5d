"""One redis.asyncio client per event loop (see ``LoopClients``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

__all__ = ["LoopClients"]

_CLOSE_WITHIN = 5.0  # seconds a loop's client may take to close at shutdown


class LoopClients:
    """One redis.asyncio client per event loop, made on first use in that loop.

    An asyncio client belongs to the loop it is used in (its connections, its pool's locks): one
    store used from several loops, such as threads that each run ``asyncio.run`` (the Agents
    SDK's ``Runner.run_sync``), needs one client per loop. ``current()`` is the running loop's.

    The first client is made at once, so that a bad option fails when the store is opened; the
    first loop to ask takes it. Each client is closed in its own loop when that loop shuts down:
    a keeper task waits until it is cancelled (``asyncio.run``, ``asyncio.Runner``, anyio and
    uvicorn cancel the tasks left at the end), closes the client and forgets the loop. A weak
    mapping alone cannot forget it: a client refers to its loop. A loop closed without
    cancelling its tasks is forgotten when another loop next makes a client (its client's
    connections are then left to the garbage collector). ``aclose()`` closes them all.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._spare: Any = make()
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Any, asyncio.Task[None]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The loops that have a client now."""
        return len(self._clients)

    def current(self) -> Any:
        """The running loop's client (made now if it has none)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:
            for gone in [other for other in self._clients if other.is_closed()]:
                del self._clients[gone]
            client = self._make() if self._spare is None else self._spare
            self._spare = None
            keeper = loop.create_task(self._keep(loop, client), name="stickyctx-redis-client")
            self._clients[loop] = (client, keeper)
        return client

    async def _keep(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        try:
            await loop.create_future()  # done only by cancellation: the loop is shutting down
        except asyncio.CancelledError:
            # (Not in a finally: a keeper of a loop closed the old way is closed by the garbage
            # collector, where nothing can be awaited any more.)
            with self._lock:
                if self._clients.get(loop, (None,))[0] is client:
                    del self._clients[loop]
            # Closing is best effort, and bounded: a store that is down never holds up shutdown.
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(client.aclose(), _CLOSE_WITHIN)
            raise

    async def aclose(self) -> None:
        """Close every loop's client: this loop's here, a running other loop's in that loop."""
        with self._lock:
            entries = list(self._clients.items())
        here = asyncio.get_running_loop()
        for loop, (_client, keeper) in entries:
            if loop is here:
                await _stop(keeper)
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(_stop(keeper), loop)
                with contextlib.suppress(RuntimeError, asyncio.CancelledError):
                    await asyncio.wrap_future(done)
        with self._lock:
            for loop, _entry in entries:
                self._clients.pop(loop, None)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait({task})  # (a cancellation of the caller still reaches the caller)
