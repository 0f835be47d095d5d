"""Fixtures of the Redis store tests: stores over the private servers of ``tests.redis_fixtures``.

Tests on the shared servers (``redis_server_session``, ``redis_cluster``) write under a namespace
of their own and never flush, kill or pause them; tests that break a server start their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stickyctx import Settings
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import NewMessage, build_message
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.stores import open_store as open_configured
from stickyctx.stores.redis.store import RedisStore
from tests.conftest import make_settings
from tests.redis_servers import RedisCluster, RedisServer
from tests.support.stores import SyncCalls

HASH_KEY = "redis-suite-hash-key-0123456789abcdef"


def redis_settings(url: str, namespace: str, **changes: Any) -> Settings:
    """Settings of a node on this Redis (the test hash key, short store timeout)."""
    base: dict[str, Any] = {"store_url": url, "namespace": namespace, "hash_key": HASH_KEY,
                            "store_timeout": 2.0}
    return make_settings(**{**base, **changes})


def msg(role: str, content: Any = "hello", *, dedupe: str | None = None) -> NewMessage:
    return build_message(role, content, {}, load_tokenizer("cl100k_base"), 1 << 20, dedupe)


@dataclass(frozen=True)
class Target:
    """A Redis deployment under test: its store URL and raw access to every master."""

    name: str
    url: str
    masters: tuple[RedisServer, ...]
    raw: Any  # a redis-py client (bytes replies): redis.Redis or redis.cluster.RedisCluster

    def scan(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` on every master, found with SCAN."""
        return sorted(key for server in self.masters for key in server.scan_keys(pattern))


def stored_values(raw: Any, key: str) -> list[bytes]:
    """Everything stored under ``key``, whatever its type, as bytes."""
    kind = raw.type(key).decode()
    if kind == "string":
        return [raw.get(key)]
    if kind == "hash":
        return [part for pair in raw.hgetall(key).items() for part in pair]
    if kind == "list":
        return list(raw.lrange(key, 0, -1))
    if kind == "set":
        return list(raw.smembers(key))
    if kind == "zset":
        return [member for member, _ in raw.zrange(key, 0, -1, withscores=True)]
    raise AssertionError(f"unexpected type {kind} of {key}")


@pytest.fixture
def namespace(redis_namespace: str) -> str:
    """A store namespace of this test's own (``Settings`` allows no ':' in it)."""
    return redis_namespace.strip(":").replace(":", "-")


@pytest.fixture
def standalone(redis_server_session: RedisServer) -> Target:
    server = redis_server_session
    return Target("standalone", server.url, (server,), server.client())


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> Target:
    return Target("cluster", redis_cluster.url, tuple(redis_cluster.nodes), redis_cluster.client())


@pytest.fixture(params=["standalone", "cluster"])
def target(request: pytest.FixtureRequest) -> Target:
    """The shared standalone server, then the shared three-master Cluster."""
    chosen: Target = request.getfixturevalue(request.param)
    return chosen


OpenStore = Callable[..., SyncCalls]


@pytest.fixture
def open_store(namespace: str) -> Iterator[OpenStore]:
    """Open Redis stores (one per "node") as the middleware opens them, their primitives called
    blocking (``SyncCalls``; ``.store`` is the ``RedisStore``); closed at the end.

    ``open_store(url, **settings_changes)``.
    """
    opened: list[RedisStore] = []

    def make(url: str, **changes: Any) -> SyncCalls:
        store = open_configured(redis_settings(url, changes.pop("namespace", namespace),
                                               **changes))
        assert isinstance(store, RedisStore)
        opened.append(store)
        return SyncCalls(store)

    yield make
    for store in opened:
        store.close()


NewKey = Callable[[], SessionKey]


@pytest.fixture
def new_key(namespace: str) -> NewKey:
    """Store keys of fresh session ids, derived as the middleware derives them."""
    deriver = KeyDeriver(HASH_KEY.encode(), namespace)
    return lambda: deriver.derive(new_session_id())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
