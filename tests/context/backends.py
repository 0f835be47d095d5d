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

Stores are opened from ``Settings`` as the middleware opens them (``open_store``), once (a
``Backing``; both handle paths drive the same store), and wrapped to count the primitives these
tests watch (``recount``, ``apply_summary``, where each ``load`` was served from) and to let a
test hold a ``summary`` lease request.
Every store a kind opened is closed when its test ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import pytest

from stickyctx import Settings
from stickyctx.core.messages import Begun, Snapshot, Summary
from stickyctx.core.storekeys import SessionKey
from stickyctx.sansio import Op
from stickyctx.settings import Secret
from stickyctx.stores import MemoryStore, Store, open_store
from tests.support.stores import SyncCalls

__all__ = ["KINDS", "MEMORY", "REDIS", "Backing", "Counting", "Driver", "EventLoop", "on"]

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
        loop = cls.loop
        if loop is not None:
            # As asyncio.run ends a loop: cancel what still runs (heartbeats of the middlewares
            # under test), close async generators (the store's per-loop clients), then close.
            async def cancel_all() -> None:
                pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=10)

            loop.run_until_complete(cancel_all())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            cls.loop = None


class Backing:
    """One store, wrapped to count what tests watch (``store``), and called directly
    (``sync``: its primitives as plain methods).

    ``recounts`` counts ``recount`` calls; ``summaries`` is what every ``apply_summary`` call
    returned (``None``: refused); ``tiers`` is where every load was served from (``"local"``:
    a Redis node's hot tier, no history over the network); ``before_lease(name)``, when set,
    runs before every lease request, so that a test can hold two folds at the lease.
    """

    def __init__(self, store: Store) -> None:
        self.tiers: list[str] = []
        self.recounts = 0
        self.summaries: list[Summary | None] = []
        self.before_lease: Callable[[str], None] | None = None
        self.inner = store
        self.store = Counting(store, self)
        self.sync = SyncCalls(self.store)

    @classmethod
    def memory(cls, settings: Settings) -> Backing:
        """What the middleware opens for these settings without a Redis URL."""
        return cls(MemoryStore(
            max_sessions=settings.memory_max_sessions, idle_ttl=settings.idle_ttl,
            absolute_ttl=settings.absolute_ttl, max_session_tokens=settings.max_session_tokens,
            max_session_bytes=settings.max_session_bytes))

    @property
    def applied(self) -> int:
        return sum(1 for s in self.summaries if s is not None)

    def close(self) -> None:
        self.inner.close()
        EventLoop.run(self.inner.aclose())


class Counting:
    """A real store, every primitive passed through; ``Backing`` counts some of them."""

    def __init__(self, inner: Store, backing: Backing) -> None:
        self.inner = inner
        self.backing = backing
        self.sync_io = inner.sync_io
        self.async_io = inner.async_io

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load(self, key: SessionKey) -> Op[Snapshot]:
        snapshot = yield from self.inner.load(key)
        self.backing.tiers.append(snapshot.tier)
        return snapshot

    def begin(self, key: SessionKey, **kwargs: Any) -> Op[Begun]:
        if self.backing.before_lease is not None:
            self.backing.before_lease("turn")
        begun = yield from self.inner.begin(key, **kwargs)
        if begun.snapshot is not None:
            self.backing.tiers.append(begun.snapshot.tier)
        return begun

    def acquire_lease(self, key: SessionKey, **kwargs: Any) -> Op[int | None]:
        if self.backing.before_lease is not None:
            self.backing.before_lease(kwargs.get("name", "turn"))
        return (yield from self.inner.acquire_lease(key, **kwargs))

    def apply_summary(self, key: SessionKey, text: str, tokens: int,
                      **kwargs: Any) -> Op[Summary | None]:
        applied = yield from self.inner.apply_summary(key, text, tokens, **kwargs)
        self.backing.summaries.append(applied)
        return applied

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int],
                **kwargs: Any) -> Op[int | None]:
        self.backing.recounts += 1
        return (yield from self.inner.recount(key, encoding, tokens, **kwargs))


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
        backing = Backing(open_store(settings))
        self.opened.append(backing)
        return backing

    def close(self) -> None:
        while self.opened:
            self.opened.pop().close()
