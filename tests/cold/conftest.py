"""The cold tier's tests: a Redis and a PostgreSQL the tests started, a namespace per test.

A session is made "idle" by shortening its keys' remaining lifetime in Redis (``age``): the
mover reads idleness from exactly that, and the test need not wait ``COLD_AFTER`` seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stickyctx import Settings
from stickyctx.core.ids import new_session_id
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.stores import open_store
from stickyctx.stores.cold.mover import Mover, MoveReport
from stickyctx.stores.cold.tiered import TieredStore
from tests.conftest import KEY_A, make_settings
from tests.postgres_servers import PostgresServer
from tests.redis_servers import RedisServer
from tests.support.stores import SyncCalls

HASH_KEY = "cold-suite-hash-key-0123456789abcdef"
IDLE_TTL, COLD_AFTER = 600, 300


@dataclass
class Tiers:
    redis: Any  # a RedisServer or a RedisCluster (``url``)
    postgres: PostgresServer
    settings: Settings
    store: TieredStore
    calls: SyncCalls
    raw: Any  # a redis-py client of the server

    def env(self) -> dict[str, str]:
        """The environment of a node (or the mover command) with these settings."""
        s = self.settings
        return {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_HASH_KEY": HASH_KEY,
                "STICKYCTX_STORE_URL": s.store_url, "STICKYCTX_COLD_URL": str(s.cold_url),
                "STICKYCTX_NAMESPACE": s.namespace, "STICKYCTX_IDLE_TTL": str(s.idle_ttl),
                "STICKYCTX_COLD_AFTER": str(s.cold_after), "STICKYCTX_NODE_ID": "mover"}

    def new_key(self) -> SessionKey:
        return KeyDeriver(HASH_KEY.encode(), self.settings.namespace).derive(new_session_id())

    def age(self, key: SessionKey, idle_for: float = COLD_AFTER + 60) -> None:
        """Make the session look idle for ``idle_for`` seconds (its keys expire that much
        sooner, as they would have)."""
        for name in self.raw.scan_iter(match=f"{key.namespace}:{{{key.tag}}}:*"):
            ttl = self.raw.pttl(name)
            if ttl > 0:
                self.raw.pexpire(name, max(1000, ttl - int(idle_for * 1000)))

    def in_redis(self, key: SessionKey) -> bool:
        return bool(self.raw.exists(key.key("s")))

    def in_cold(self, key: SessionKey) -> bool:
        with self.postgres.connect() as conn:
            row = conn.execute("SELECT 1 FROM stickyctx_cold WHERE ns = %s AND tag = %s",
                               (key.namespace, key.tag)).fetchone()
        return row is not None

    def mover(self) -> Mover:
        return Mover(self.store, namespace=self.settings.namespace, idle_ttl=IDLE_TTL,
                     cold_after=COLD_AFTER)

    def move(self) -> MoveReport:
        return self.mover().run()


def tiers_settings(redis: Any, postgres: PostgresServer, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "store_url": redis.url, "cold_url": postgres.url, "hash_key": HASH_KEY,
        "namespace": f"cold-{uuid.uuid4().hex[:12]}", "idle_ttl": IDLE_TTL,
        "absolute_ttl": 86400, "cold_after": COLD_AFTER, "store_timeout": 3.0}
    return make_settings(**{**base, **changes})


@pytest.fixture
def make_tiers(request: pytest.FixtureRequest, redis_server_session: RedisServer,
               postgres_server_session: PostgresServer) -> Iterator[Any]:
    """``make(**settings_changes)``; ``make(cluster=True)`` over the session's Redis Cluster."""
    made: list[TieredStore] = []

    def make(*, cluster: bool = False, **changes: Any) -> Tiers:
        redis = request.getfixturevalue("redis_cluster") if cluster else redis_server_session
        settings = tiers_settings(redis, postgres_server_session, **changes)
        store = open_store(settings)
        assert isinstance(store, TieredStore)
        made.append(store)
        return Tiers(redis, postgres_server_session, settings, store, SyncCalls(store),
                     redis.client())

    yield make
    for store in made:
        store.close()


@pytest.fixture
def tiers(make_tiers: Any) -> Tiers:
    made: Tiers = make_tiers()
    return made
