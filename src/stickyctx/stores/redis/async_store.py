"""The Redis store, async form (for ASGI): a thin driver of ``ops`` over redis.asyncio."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ...core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, Summary
from ...core.storekeys import SessionKey
from ...sansio.drive import run_async
from ..crypto import KeyRing
from .clients import LoopClients
from .ops import RedisOps
from .schema import Limits, repeatable, script, translate

__all__ = ["AsyncRedisStore"]


class _AsyncScripts:
    def __init__(self, clients: LoopClients) -> None:
        self.clients = clients
        self._scripts: dict[str, Any] = {}

    async def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        client = self.clients.current()  # the running event loop's client
        registered = self._scripts.get(name)
        if registered is None:
            registered = self._scripts[name] = client.register_script(script(name))
        for attempt in (1, 2):
            try:
                return await registered(keys=keys, args=args, client=client)
            except Exception as exc:  # translated into the store's errors
                if not repeatable(name, exc, attempt):
                    raise translate(name, exc) from exc
        raise AssertionError("unreachable")

    async def wait(self, replicas: int, timeout_ms: int) -> int:
        try:
            return int(await self.clients.current().wait(replicas, timeout_ms))
        except Exception as exc:  # translated into the store's errors
            raise translate("wait", exc) from exc


class AsyncRedisStore:
    """``clients`` holds one redis.asyncio client per event loop: one store serves them all."""

    def __init__(self, clients: LoopClients, limits: Limits, hot_capacity: int = 10_000,
                 ring: KeyRing | None = None) -> None:
        self.clients = clients
        self.ops = RedisOps(limits, hot_capacity, ring)
        self.scripts = _AsyncScripts(clients)

    @property
    def client(self) -> Any:
        """The running event loop's client."""
        return self.clients.current()

    async def load(self, key: SessionKey) -> Snapshot:
        return await run_async(self.ops.load(key), self.scripts)

    async def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
                     create: bool = True, fence: int | None = None) -> AppendResult:
        return await run_async(self.ops.append(key, messages, created, create, fence), self.scripts)

    async def clear(self, key: SessionKey, *, fence: int | None = None) -> int:
        return await run_async(self.ops.clear(key, fence), self.scripts)

    async def pop(self, key: SessionKey, *, fence: int | None = None) -> StoredMessage | None:
        return await run_async(self.ops.pop(key, fence), self.scripts)

    async def rotate(self, old: SessionKey, new: SessionKey) -> None:
        await run_async(self.ops.rotate(old, new), self.scripts)

    async def destroy(self, key: SessionKey) -> None:
        await run_async(self.ops.destroy(key), self.scripts)

    async def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float,
                            name: str = "turn", live: Collection[str] = ()) -> int | None:
        return await run_async(self.ops.acquire_lease(key, holder, ttl, name, live),
                               self.scripts)

    async def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                            holder: str | None = None) -> None:
        await run_async(self.ops.release_lease(key, token, name, holder), self.scripts)

    async def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                            expected_watermark: int,
                            delete_folded: bool = False) -> Summary | None:
        return await run_async(self.ops.apply_summary(
            key, text, tokens, watermark, expected_watermark, delete_folded), self.scripts)

    async def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                      expected_version: int) -> int | None:
        return await run_async(self.ops.recount(key, encoding, tokens, expected_version),
                               self.scripts)

    async def close(self) -> None:
        await self.clients.aclose()
