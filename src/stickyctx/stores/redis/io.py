"""The Redis store's I/O: its two steps and the adapters that perform them with redis-py.

The store's logic (``store``) yields ``Script`` and ``Wait``; an adapter only sends them with a
client, blocking (``SyncRedisIO``) or on the running event loop (``AsyncRedisIO``, one client
per loop). Errors go back to the logic as redis-py raised them: it decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...sansio import IOStep
from .loops import LoopClients
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


class AsyncRedisIO:
    """Performs the steps with the running event loop's client (``LoopClients``: one store
    serves every loop, each with its own connections)."""

    def __init__(self, clients: LoopClients) -> None:
        self.clients = clients
        self._scripts: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        """The running loop's client (read it inside that loop)."""
        return self.clients.current()

    async def perform(self, step: IOStep) -> Any:
        client = self.clients.current()
        if isinstance(step, Wait):
            return await client.wait(step.replicas, step.timeout_ms)
        assert isinstance(step, Script)
        registered = self._scripts.get(step.name)
        if registered is None:
            registered = self._scripts[step.name] = client.register_script(script(step.name))
        return await registered(keys=step.keys, args=step.args, client=client)

    async def aclose(self) -> None:
        """Close every loop's client."""
        await self.clients.aclose()
