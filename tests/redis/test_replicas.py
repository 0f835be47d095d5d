"""``STICKYCTX_STORE_REPLICAS``: an append is acknowledged only once a replica has it, so a
failover cannot lose an acknowledged turn; without a replica it is a clear error, and a retry
with the same turn id is stored once."""

from __future__ import annotations

import time

import pytest

from stickyctx import ConfigError, StoreUnavailableError
from tests.conftest import make_settings
from tests.redis_fixtures import MakeRedisServer

from .conftest import NewKey, OpenStore, msg


def test_appends_wait_for_a_replica_and_fail_clearly_without_one(
        redis_server_factory: MakeRedisServer, open_store: OpenStore, new_key: NewKey) -> None:
    master = redis_server_factory(args=["--repl-diskless-sync-delay", "0"])
    replica = redis_server_factory(args=["--replicaof", "127.0.0.1", str(master.port)])
    deadline = time.monotonic() + 20
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.02)
    store = open_store(master.url, store_replicas=1, store_timeout=4.0)  # WAIT up to 2 s
    key = new_key()
    result = store.append(key, [msg("user", "replicated", dedupe="t1")], created=time.time())
    assert result.seqs == (1,)
    assert replica.client().llen(key.key("m")) == 1  # acknowledged means the replica has it
    replica.kill()
    with pytest.raises(StoreUnavailableError, match="0 of 1 replicas"):
        store.append(key, [msg("user", "not replicated", dedupe="t2")], created=time.time())
    # It is on the master; the retry the app makes with the same turn id is stored once.
    replica.restart()
    deadline = time.monotonic() + 20
    retried = None
    while retried is None:
        try:
            retried = store.append(key, [msg("user", "not replicated", dedupe="t2")],
                                   created=time.time())
        except StoreUnavailableError:
            assert time.monotonic() < deadline, "the replica did not come back"
    assert retried.duplicates == 1
    assert [m.content for m in store.load(key).messages] == ["replicated", "not replicated"]


def test_replicas_are_refused_with_cluster_urls() -> None:
    with pytest.raises(ConfigError, match="STICKYCTX_STORE_REPLICAS"):
        make_settings(store_url="redis+cluster://127.0.0.1:7000", hash_key="h" * 40,
                      store_replicas=1)
