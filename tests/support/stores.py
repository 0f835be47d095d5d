"""Calling a store's primitives directly, as plain (or awaited) methods.

A store's primitives return sans-I/O operations; the session logic composes them. Tests call
them one at a time: ``SyncCalls(store).load(key)`` drives ``store.load(key)`` blocking and
``await AsyncCalls(store).load(key)`` on the running loop. Dynamic on purpose: the typed faces
the package ships are the handles (``Conversation``), not these.
"""

from __future__ import annotations

from typing import Any

from stickyctx import Settings
from stickyctx.sansio import run_async, run_sync
from stickyctx.stores import Store, open_store


class SyncCalls:
    def __init__(self, store: Store) -> None:
        object.__setattr__(self, "store", store)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.store, name, value)  # a test hook of the store (``on_refused``)

    def __getattr__(self, name: str) -> Any:
        primitive = getattr(self.store, name)
        if name in ("close", "aclose", "sync_io", "async_io") or not callable(primitive):
            return primitive

        def call(*args: Any, **kwargs: Any) -> Any:
            return run_sync(primitive(*args, **kwargs), self.store.sync_io)

        return call


class AsyncCalls:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        primitive = getattr(self.store, name)
        if name in ("close", "aclose", "sync_io", "async_io") or not callable(primitive):
            return primitive

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await run_async(primitive(*args, **kwargs), self.store.async_io)

        return call

    async def close(self) -> None:
        await self.store.aclose()


class _SyncRedis(SyncCalls):
    @property
    def client(self) -> Any:
        return self.store.sync_io.client  # type: ignore[union-attr]


class _AsyncRedis(AsyncCalls):
    @property
    def client(self) -> Any:
        return self.store.async_io.client  # type: ignore[union-attr]

    @property
    def clients(self) -> Any:
        return self.store.async_io.clients  # type: ignore[union-attr]


def open_sync(settings: Settings) -> SyncCalls:
    """The store ``settings`` name, its primitives called blocking (``.client``: redis-py's)."""
    store = open_store(settings)
    return _SyncRedis(store) if store.sync_io is not None else SyncCalls(store)


def open_async(settings: Settings) -> AsyncCalls:
    """The same, awaited (``.client``: the running loop's; ``.clients``: every loop's)."""
    store = open_store(settings)
    return _AsyncRedis(store) if store.async_io is not None else AsyncCalls(store)
