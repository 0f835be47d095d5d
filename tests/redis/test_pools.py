"""Connection pools wait for a free connection (bounded) instead of failing when all are in use.

Many more concurrent operations than connections, on real servers, in both forms: every one
succeeds, and the server never sees more of our connections than ``max_connections``. A pool
whose only connection is held fails a command after its ``timeout``, not before and not never.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from stickyctx.errors import StoreUnavailableError
from tests.redis_servers import RedisCluster, RedisSentinelSetup, RedisServer
from tests.support.stores import open_async, open_sync

from .conftest import NewKey, msg, redis_settings

OPERATIONS = 200


def our_connections(servers: list[RedisServer], name: str) -> int:
    return sum(c["name"] == name for server in servers for c in server.client().client_list())


def sync_burst(url: str, namespace: str, new_key: NewKey, servers: list[RedisServer],
               name: str, limit: int) -> None:
    """Threads run appends and loads at once through one store; none fails."""
    store = open_sync(redis_settings(url, namespace))
    seen: list[int] = []
    try:
        def turn(i: int) -> int:
            key = new_key()
            store.append(key, [msg("user", f"m{i}")], created=time.time())
            if i % 20 == 0:
                seen.append(our_connections(servers, name))
            return len(store.load(key).messages)

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(turn, range(OPERATIONS // 2))) == [1] * (OPERATIONS // 2)
    finally:
        store.close()
    assert seen
    assert max(seen) <= limit


def async_burst(url: str, namespace: str, new_key: NewKey, servers: list[RedisServer],
                name: str, limit: int) -> None:
    """Tasks run appends and loads at once through one store; none fails."""
    seen: list[int] = []

    async def main() -> None:
        store = open_async(redis_settings(url, namespace))

        async def turn(i: int) -> int:
            key = new_key()
            await store.append(key, [msg("user", f"m{i}")], created=time.time())
            return len((await store.load(key)).messages)

        async def watch(done: asyncio.Event) -> None:
            while not done.is_set():
                seen.append(await asyncio.to_thread(our_connections, servers, name))
                await asyncio.sleep(0.005)

        try:
            done = asyncio.Event()
            watcher = asyncio.create_task(watch(done))
            results = await asyncio.gather(*(turn(i) for i in range(OPERATIONS)))
            done.set()
            await watcher
            assert results == [1] * OPERATIONS
        finally:
            await store.close()

    asyncio.run(main())
    assert seen
    assert max(seen) <= limit


@pytest.mark.parametrize("burst", [sync_burst, async_burst], ids=["sync", "async"])
def test_many_more_operations_than_connections_all_succeed(
    burst: Any, redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    url = f"{redis_server.url}?max_connections=3&client_name=pool-test"
    burst(url, namespace, new_key, [redis_server], "pool-test", 3)


@pytest.mark.parametrize("burst", [sync_burst, async_burst], ids=["sync", "async"])
def test_the_sentinel_pool_waits_too(
    burst: Any, redis_sentinel: RedisSentinelSetup, namespace: str, new_key: NewKey
) -> None:
    url = f"{redis_sentinel.url}/0?max_connections=2&client_name=sentinel-pool-test"
    burst(url, namespace, new_key, [redis_sentinel.master], "sentinel-pool-test", 2)


def test_the_sync_cluster_pools_wait_per_node(
    redis_cluster: RedisCluster, namespace: str, new_key: NewKey
) -> None:
    url = f"{redis_cluster.url}?max_connections=2&client_name=cluster-pool-test"
    nodes = list(redis_cluster.nodes)
    store = open_sync(redis_settings(url, namespace))
    store.close()  # (the client connected to discover the Cluster)
    # Each node's pool holds at most 2: at most 2 per node, over the nodes.
    sync_burst(url, namespace, new_key, nodes, "cluster-pool-test", 2 * len(nodes))


def test_a_held_pool_fails_a_command_after_its_timeout_sync(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    store: Any = open_sync(redis_settings(f"{redis_server.url}?max_connections=1&timeout=0.3",
                                          namespace, store_timeout=5.0))
    try:
        held = store.client.connection_pool.get_connection()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.load(new_key())
        waited = time.monotonic() - started
        assert 0.3 <= waited < 2.0  # one wait (a load repeats once: two), not the socket's 5 s
        store.client.connection_pool.release(held)
        assert not store.load(new_key()).messages
    finally:
        store.close()


def test_a_held_pool_fails_a_command_after_its_timeout_async(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    async def main() -> None:
        store: Any = open_async(redis_settings(
            f"{redis_server.url}?max_connections=1&timeout=0.3", namespace, store_timeout=5.0))
        try:
            client = store.client
            held = await client.connection_pool.get_connection()
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                await store.load(new_key())
            waited = time.monotonic() - started
            assert 0.3 <= waited < 2.0
            await client.connection_pool.release(held)
            assert not (await store.load(new_key())).messages
        finally:
            await store.close()

    asyncio.run(main())


def test_the_defaults_are_documented() -> None:
    from stickyctx.stores.redis.clients import POOL_SIZE, POOL_WAIT
    from tests.conftest import ROOT

    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip()
            for line in (ROOT / "docs" / "stores.md").read_text().splitlines()
            if line.startswith("| `")}
    assert rows["`max_connections`"] == str(POOL_SIZE)
    assert rows["`timeout`"] == f"{POOL_WAIT:g}"
