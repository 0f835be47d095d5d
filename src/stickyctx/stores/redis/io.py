"""The Redis store's I/O: its two steps and the adapters that perform them with redis-py.

The store's logic (``store``) yields ``Script`` and ``Wait``; an adapter only sends them with a
client, blocking (``SyncRedisIO``) or on the running event loop (``AsyncRedisIO``, one client
per loop). Errors go back to the logic as redis-py raised them: it decides what they mean.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from ...sansio import IOStep
from .schema import script

__all__ = ["AsyncRedisIO", "Script", "SyncRedisIO", "Wait"]


@dataclass(frozen=True, slots=True)
class Script(IOStep):
    """Run the Lua script ``name`` (``lua/<name>.lua``) with these keys and arguments."""

    name: str
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True, slots=True)
class Wait(IOStep):
    """``WAIT replicas timeout_ms``: how many replicas have every write made so far."""

    replicas: int
    timeout_ms: int


class _Registered:
    """Scripts registered once per client (redis-py's ``Script`` runs EVALSHA, then EVAL when
    the server does not know it)."""

    __slots__ = ("client", "scripts")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.scripts: dict[str, Any] = {}

    def call(self, step: Any) -> Any:
        """The pending call of ``step`` (a value when blocking, an awaitable when async)."""
        if isinstance(step, Wait):
            return self.client.wait(step.replicas, step.timeout_ms)
        registered = self.scripts.get(step.name)
        if registered is None:
            registered = self.scripts[step.name] = self.client.register_script(script(step.name))
        return registered(keys=step.keys, args=step.args)


class SyncRedisIO:
    def __init__(self, client: Any) -> None:
        self._scripts = _Registered(client)
        self.client = client

    def perform(self, step: IOStep) -> Any:
        return self._scripts.call(step)

    def close(self) -> None:
        self.client.close()


class _LoopEntry:
    """A loop's client, closed when the loop shuts down: an async generator parked in the loop
    (``asyncio.run`` and its kin close every async generator of the loop before closing it)."""

    __slots__ = ("closer", "registered")

    def __init__(self, client: Any) -> None:
        self.registered = _Registered(client)
        self.closer: AsyncGenerator[None, None] | None = None

    async def park(self) -> None:
        self.closer = _close_at_shutdown(self.registered.client)
        await self.closer.__anext__()


async def _close_at_shutdown(client: Any) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


class AsyncRedisIO:
    """One asyncio client per event loop, made on the loop's first use and closed when the loop
    shuts down: a redis.asyncio connection belongs to the loop that opened it, and one store
    may serve several loops (a threaded server running ``asyncio.run`` per request, as the
    Agents SDK's ``Runner.run_sync`` does)."""

    def __init__(self, make_client: Callable[[], Any]) -> None:
        self._make = make_client
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopEntry] = (
            weakref.WeakKeyDictionary())

    def _entry(self) -> _LoopEntry:
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None:
            entry = self._loops[loop] = _LoopEntry(self._make())
        return entry

    @property
    def client(self) -> Any:
        """The running loop's client (read it inside that loop)."""
        return self._entry().registered.client

    async def perform(self, step: IOStep) -> Any:
        entry = self._entry()
        if entry.closer is None:
            await entry.park()
        return await entry.registered.call(step)

    async def aclose(self) -> None:
        """Close the running loop's client now (other loops' close when they shut down)."""
        entry = self._loops.pop(asyncio.get_running_loop(), None)
        if entry is not None and entry.closer is not None:
            await entry.closer.aclose()
