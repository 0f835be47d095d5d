"""Where a context test's session lives: the kinds of the ``kind`` fixture.

A kind is a handle path over a store backend, the backends of the store contract suite:

* ``sync`` and ``async``: ``SyncConversation`` (the WSGI path) and ``Conversation`` (the ASGI
  path) over the embedded ``MemoryStore``;
* ``redis-sync`` and ``redis-async``: the same handles over the session's standalone Redis;
* ``cluster-sync`` and ``cluster-async``: over the session's three-master Redis Cluster.

A test runs on the memory kinds unless it says otherwise with ``@on(*kinds)``: the tests of what
the store does (folds and their compare-and-set, ceilings, recounts, bad input that must not be
stored, windows over a stored history) run on every kind; the tests of pure window arithmetic,
summarizer loading and the edges stay on memory. The Redis servers are shared by the whole run:
every test writes under a namespace of its own and never flushes them.

Stores are opened from ``Settings`` as the middleware opens them (``open_sync``/``open_async``),
once in each form over the same data (a ``Backing``), and wrapped to count the primitives these
tests watch (``recount``, ``apply_summary``, where each ``load`` was served from) and to let a
test hold a ``summary`` lease request.
Every store a kind opened is closed when its test ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import pytest

from stickyctx import Settings
from stickyctx.core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, Summary
from stickyctx.core.storekeys import SessionKey
from stickyctx.settings import Secret
from stickyctx.stores import AsyncMemoryStore, MemoryStore, open_async, open_sync
from stickyctx.stores.base import AsyncStore, SyncStore

__all__ = ["KINDS", "MEMORY", "REDIS", "Backing", "CountingAsync", "CountingSync", "Driver",
           "EventLoop", "on"]

T = TypeVar("T")
Path = Literal["sync", "async"]
HASH_KEY = "context-suite-hash-key-0123456789abcdef"  # at least 32 bytes, as Redis needs


@dataclass(frozen=True)
class KindSpec:
    path: Path
    server: str | None  # the fixture of the shared Redis deployment; None: the memory store


KINDS: dict[str, KindSpec] = {
    "sync": KindSpec("sync", None),
    "async": KindSpec("async", None),
    "redis-sync": KindSpec("sync", "redis_server_session"),
    "redis-async": KindSpec("async", "redis_server_session"),
    "cluster-sync": KindSpec("sync", "redis_cluster"),
    "cluster-async": KindSpec("async", "redis_cluster"),
}
MEMORY = ("sync", "async")
REDIS = ("redis-sync", "redis-async", "cluster-sync", "cluster-async")


def on(*names: str) -> pytest.MarkDecorator:
    """Run the test on these kinds (the ``kind`` fixture, parametrized indirectly)."""
    unknown = sorted(set(names) - set(KINDS))
    if unknown or not names:
        raise ValueError(f"unknown kinds {unknown}; known: {sorted(KINDS)}")
    return pytest.mark.parametrize("kind", [pytest.param(n, id=n) for n in names], indirect=True)


class EventLoop:
    """The event loop of the async kinds: one for the whole test run (``conftest`` closes it).

    An asyncio Redis client belongs to the loop its connections were opened in, so every async
    call of every test, and the closing of the async stores, runs here.
    """

    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, T]) -> T:
        if cls.loop is None:
            cls.loop = asyncio.new_event_loop()
        return cls.loop.run_until_complete(coroutine)

    @classmethod
    def close(cls) -> None:
        if cls.loop is not None:
            cls.loop.run_until_complete(cls.loop.shutdown_default_executor())
            cls.loop.close()
            cls.loop = None


class Backing:
    """One store in its sync and its async form over the same data, counting what tests watch.

    ``recounts`` counts ``recount`` calls; ``summaries`` is what every ``apply_summary`` call
    returned (``None``: refused); ``tiers`` is where every load was served from (``"local"``:
    a Redis node's hot tier, no history over the network); ``before_lease(name)``, when set,
    runs before every lease request (sync form), so that a test can hold two folds at the lease.
    """

    def __init__(self, sync: SyncStore, async_: AsyncStore) -> None:
        self.tiers: list[str] = []
        self.recounts = 0
        self.summaries: list[Summary | None] = []
        self.before_lease: Callable[[str], None] | None = None
        self.sync: SyncStore = CountingSync(sync, self)
        self.async_: AsyncStore = CountingAsync(async_, self)
        self._closers = (sync.close, async_.close)

    @classmethod
    def memory(cls, settings: Settings) -> Backing:
        """What the middleware opens for these settings without a Redis URL."""
        store = MemoryStore(
            max_sessions=settings.memory_max_sessions, idle_ttl=settings.idle_ttl,
            absolute_ttl=settings.absolute_ttl, max_session_tokens=settings.max_session_tokens,
            max_session_bytes=settings.max_session_bytes)
        return cls(store, AsyncMemoryStore(store))

    @property
    def applied(self) -> int:
        return sum(1 for s in self.summaries if s is not None)

    def close(self) -> None:
        close_sync, close_async = self._closers
        close_sync()
        EventLoop.run(close_async())


class CountingSync:
    """A real sync store, every primitive passed through; ``Backing`` counts some of them."""

    def __init__(self, inner: SyncStore, backing: Backing) -> None:
        self.inner = inner
        self.backing = backing

    def load(self, key: SessionKey) -> Snapshot:
        snapshot = self.inner.load(key)
        self.backing.tiers.append(snapshot.tier)
        return snapshot

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None) -> AppendResult:
        return self.inner.append(key, messages, created=created, create=create, fence=fence)

    def clear(self, key: SessionKey, *, fence: int | None = None) -> int:
        return self.inner.clear(key, fence=fence)

    def pop(self, key: SessionKey, *, fence: int | None = None) -> StoredMessage | None:
        return self.inner.pop(key, fence=fence)

    def rotate(self, old: SessionKey, new: SessionKey) -> None:
        self.inner.rotate(old, new)

    def destroy(self, key: SessionKey) -> None:
        self.inner.destroy(key)

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float, name: str = "turn",
                      live: Collection[str] = ()) -> int | None:
        if self.backing.before_lease is not None:
            self.backing.before_lease(name)
        return self.inner.acquire_lease(key, holder=holder, ttl=ttl, name=name, live=live)

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> None:
        self.inner.release_lease(key, token, name, holder)

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False) -> Summary | None:
        applied = self.inner.apply_summary(key, text, tokens, watermark=watermark,
                                           expected_watermark=expected_watermark,
                                           delete_folded=delete_folded)
        self.backing.summaries.append(applied)
        return applied

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> int | None:
        self.backing.recounts += 1
        return self.inner.recount(key, encoding, tokens, expected_version=expected_version)

    def close(self) -> None:
        self.inner.close()


class CountingAsync:
    """The async form of ``CountingSync``."""

    def __init__(self, inner: AsyncStore, backing: Backing) -> None:
        self.inner = inner
        self.backing = backing

    async def load(self, key: SessionKey) -> Snapshot:
        snapshot = await self.inner.load(key)
        self.backing.tiers.append(snapshot.tier)
        return snapshot

    async def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
                     create: bool = True, fence: int | None = None) -> AppendResult:
        return await self.inner.append(key, messages, created=created, create=create,
                                       fence=fence)

    async def clear(self, key: SessionKey, *, fence: int | None = None) -> int:
        return await self.inner.clear(key, fence=fence)

    async def pop(self, key: SessionKey, *, fence: int | None = None) -> StoredMessage | None:
        return await self.inner.pop(key, fence=fence)

    async def rotate(self, old: SessionKey, new: SessionKey) -> None:
        await self.inner.rotate(old, new)

    async def destroy(self, key: SessionKey) -> None:
        await self.inner.destroy(key)

    async def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float,
                            name: str = "turn", live: Collection[str] = ()) -> int | None:
        return await self.inner.acquire_lease(key, holder=holder, ttl=ttl, name=name, live=live)

    async def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                            holder: str | None = None) -> None:
        await self.inner.release_lease(key, token, name, holder)

    async def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                            expected_watermark: int,
                            delete_folded: bool = False) -> Summary | None:
        applied = await self.inner.apply_summary(key, text, tokens, watermark=watermark,
                                                 expected_watermark=expected_watermark,
                                                 delete_folded=delete_folded)
        self.backing.summaries.append(applied)
        return applied

    async def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                      expected_version: int) -> int | None:
        self.backing.recounts += 1
        return await self.inner.recount(key, encoding, tokens,
                                        expected_version=expected_version)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Driver:
    """One kind, for one test: its handle path, and the Redis URL and namespace if on Redis."""

    name: str
    path: Path
    store_url: str | None = None
    namespace: str = "stickyctx"
    opened: list[Backing] = field(default_factory=list)

    @classmethod
    def memory(cls, name: str) -> Driver:
        spec = KINDS[name]
        if spec.server is not None:
            raise ValueError(f"the {name} kind needs its server: take it from the kind fixture")
        return cls(name, spec.path)

    @classmethod
    def on_server(cls, name: str, url: str) -> Driver:
        return cls(name, KINDS[name].path, url, f"ctx-{uuid.uuid4().hex}")

    @property
    def on_redis(self) -> bool:
        return self.store_url is not None

    def configure(self, settings: Settings) -> Settings:
        """The settings of a node of this kind: on Redis, its URL, hash key and namespace."""
        if self.store_url is None:
            return settings
        return replace(settings, store_url=self.store_url, namespace=self.namespace,
                       hash_key=Secret(HASH_KEY), store_timeout=5.0)

    def open(self, settings: Settings) -> Backing:
        """The store a middleware with these (configured) settings opens, in both forms."""
        if self.store_url is None:
            return Backing.memory(settings)
        assert settings.store_url == self.store_url, "configure the settings first"
        backing = Backing(open_sync(settings), open_async(settings))
        self.opened.append(backing)
        return backing

    def close(self) -> None:
        while self.opened:
            self.opened.pop().close()
