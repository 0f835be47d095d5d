"""Store URLs: redis-py's own URLs and options, our multi-host forms, errors at open time.

Real servers: the private standalone server (TCP and a unix socket it is started with), the
shared Cluster and a Sentinel setup of the test's own. A client built but never used opens no
connection, so URLs naming servers that are not ours (``redis://localhost``) are only built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from stickyctx import ConfigError
from stickyctx.stores.redis.url import RedisTarget, parse_redis_url
from tests.redis_fixtures import MakeRedisServer
from tests.redis_servers import RedisCluster, RedisSentinelSetup, RedisServer
from tests.support.stores import open_async, open_sync

from .conftest import NewKey, msg, redis_settings

SECRET = "hunter2-never-shown"


def round_trip(url: str, namespace: str, new_key: NewKey) -> None:
    """Write and read a session through both forms of the store opened on ``url``."""
    sync = open_sync(redis_settings(url, namespace))
    try:
        key = new_key()
        sync.append(key, [msg("user", "over the sync client")], created=time.time())
        assert [m.content for m in sync.load(key).messages] == ["over the sync client"]
    finally:
        sync.close()

    async def use_async() -> None:
        store = open_async(redis_settings(url, namespace))
        try:
            key = new_key()
            await store.append(key, [msg("user", "over the asyncio client")], created=time.time())
            assert [m.content for m in (await store.load(key)).messages] == [
                "over the asyncio client"]
        finally:
            await store.close()

    asyncio.run(use_async())


def client_names(server: RedisServer) -> list[str]:
    return [c["name"] for c in server.client().client_list()]


# -- parsing: only the multi-host forms are split here ------------------------------------------

@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://localhost", RedisTarget("standalone", "redis://localhost"),
                     id="no-port"),
        pytest.param("unix:///run/redis.sock?db=2",
                     RedisTarget("standalone", "unix:///run/redis.sock?db=2"), id="unix"),
        pytest.param("REDISS://u:p@h:6380/1?max_connections=5",
                     RedisTarget("standalone", "REDISS://u:p@h:6380/1?max_connections=5"),
                     id="tls"),
        pytest.param("redis+cluster://u:p%40ss@a:7000,b:7001,[::1]:7002?ssl=true&max_connections=9",
                     RedisTarget("cluster", "redis://u:p%40ss@a:7000?max_connections=9",
                                 (("a", 7000), ("b", 7001), ("::1", 7002)), ssl=True),
                     id="cluster"),
        pytest.param("redis+sentinel://:pw@s1:26379,s2:26380/chat/3?sentinel_password=sp&"
                     "client_name=n",
                     RedisTarget("sentinel", "redis://:pw@s1:26379/3?client_name=n",
                                 (("s1", 26379), ("s2", 26380)), "chat",
                                 sentinel_password="sp"),
                     id="sentinel"),
    ],
)
def test_what_is_split_here_and_what_is_left_to_redis_py(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://h:1", id="scheme"),
        pytest.param("redis://h/not-a-db", id="db-not-a-number"),
        pytest.param(f"redis+cluster://:{SECRET}@a:7000,b", id="cluster-host-without-port"),
        pytest.param(f"redis+cluster://:{SECRET}@a:7000/0", id="cluster-with-db"),
        pytest.param(f"redis+cluster://:{SECRET}@a:99999", id="port-out-of-range"),
        pytest.param(f"redis+cluster://:{SECRET}@", id="no-host"),
        pytest.param(f"redis+sentinel://:{SECRET}@s:1", id="sentinel-without-service"),
        pytest.param(f"redis+sentinel://:{SECRET}@s:1/svc/x", id="sentinel-db-not-a-number"),
        pytest.param(f"redis+sentinel://:{SECRET}@s:1/svc?ssl=maybe", id="ssl-not-a-boolean"),
    ],
)
def test_a_malformed_url_is_a_config_error_that_never_shows_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_url(url)
    assert caught.value.variable == "STICKYCTX_STORE_URL"
    assert SECRET not in str(caught.value)


# -- options refused when the store is opened ----------------------------------------------------

OPENERS = [pytest.param(open_sync, id="sync"),
           pytest.param(lambda s: asyncio.run(_open_and_close_async(s)), id="async")]


async def _open_and_close_async(settings: Any) -> None:
    store = open_async(settings)
    await store.close()


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(f"redis://:{SECRET}@127.0.0.1:1/0?no_such_option=1",
                     "unknown option no_such_option", id="unknown"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:1/0?max_connections=lots",
                     "option max_connections has an invalid value", id="not-a-number"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:1/0?socket_timeout=soon",
                     "option socket_timeout has an invalid value", id="bad-timeout"),
        pytest.param(f"rediss://:{SECRET}@127.0.0.1:1/0?ssl_cert_reqs={SECRET}",
                     "option ssl_cert_reqs has an invalid value", id="bad-tls-option"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:1/0?retry_on_timeout=true",
                     "client-level retries are off", id="retries"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:1/0?ssl=true",
                     "unknown option ssl", id="ssl-on-plain-redis"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:notaport/0",
                     "malformed URL", id="bad-port"),
        pytest.param(f"redis+cluster://:{SECRET}@127.0.0.1:1?no_such_option=1",
                     "unknown option no_such_option", id="cluster-unknown"),
        pytest.param(f"redis+cluster://:{SECRET}@127.0.0.1:1?db=2",
                     "a cluster has only database 0", id="cluster-db"),
        pytest.param(f"redis+sentinel://:{SECRET}@127.0.0.1:1/svc?no_such_option=1",
                     "unknown option no_such_option", id="sentinel-unknown"),
    ],
)
def test_a_bad_option_is_a_config_error_when_the_store_is_opened(
    opener: Callable[[Any], Any], url: str, reason: str, namespace: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        opener(redis_settings(url, namespace))
    assert caught.value.variable == "STICKYCTX_STORE_URL"
    assert reason in caught.value.reason
    assert SECRET not in str(caught.value)


def test_redis_localhost_without_a_port_is_redis_pys_default(namespace: str) -> None:
    store: Any = open_sync(redis_settings("redis://localhost", namespace))
    try:  # built, never used: nothing connects to a server that is not ours
        connection = store.client.connection_pool.make_connection()
        assert (connection.host, connection.port, connection.db) == ("localhost", 6379, 0)
    finally:
        store.close()


# -- options reaching real servers ---------------------------------------------------------------

def test_redis_py_options_reach_the_server(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    url = (f"redis://127.0.0.1:{redis_server.port}/5?client_name=sticky-options"
           "&max_connections=7&health_check_interval=5&socket_timeout=0.75&socket_keepalive=yes")
    store: Any = open_sync(redis_settings(url, namespace))
    try:
        key = new_key()
        store.append(key, [msg("user", "hi")], created=time.time())
        pool = store.client.connection_pool
        assert pool.max_connections == 7
        assert pool.connection_kwargs["socket_timeout"] == 0.75
        assert pool.connection_kwargs["health_check_interval"] == 5
        assert "sticky-options" in client_names(redis_server)
        raw = redis_server.client()
        raw.select(5)
        assert raw.dbsize() > 0  # written to database 5, as the URL says
    finally:
        store.close()
    round_trip(url, namespace, new_key)


def test_redis_py_options_reach_the_server_through_the_asyncio_client(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    url = (f"redis://127.0.0.1:{redis_server.port}/6?client_name=sticky-async-options"
           "&max_connections=3&socket_timeout=0.5&socket_connect_timeout=0.25")

    async def use() -> None:
        store: Any = open_async(redis_settings(url, namespace))
        try:
            await store.append(new_key(), [msg("user", "hi")], created=time.time())
            pool = store.client.connection_pool
            assert pool.max_connections == 3
            assert pool.connection_kwargs["socket_timeout"] == 0.5
            assert pool.connection_kwargs["socket_connect_timeout"] == 0.25
            assert "sticky-async-options" in client_names(redis_server)
        finally:
            await store.close()

    asyncio.run(use())
    raw = redis_server.client()
    raw.select(6)
    assert raw.dbsize() > 0  # written to database 6, as the URL says


def test_a_unix_socket_url(
    redis_server_factory: MakeRedisServer, tmp_path_factory: pytest.TempPathFactory,
    namespace: str, new_key: NewKey,
) -> None:
    socket_path = tmp_path_factory.mktemp("sock") / "redis.sock"
    server = redis_server_factory(args=("--unixsocket", str(socket_path),
                                        "--unixsocketperm", "700"))
    url = f"unix://{socket_path}?db=3&client_name=over-unix"
    round_trip(url, namespace, new_key)
    raw = server.client()
    raw.select(3)
    assert raw.dbsize() > 0
    store: Any = open_sync(redis_settings(url, namespace))
    try:
        store.load(new_key())
        kinds = {c["name"]: c for c in raw.client_list()}
        assert "over-unix" in kinds
        assert kinds["over-unix"]["addr"].startswith("/")  # a unix socket peer, not TCP
    finally:
        store.close()


def test_a_cluster_url_with_options(
    redis_cluster: RedisCluster, namespace: str, new_key: NewKey
) -> None:
    url = f"{redis_cluster.url}?client_name=sticky-cluster&max_connections=20&socket_timeout=2"
    round_trip(url, namespace, new_key)
    store: Any = open_sync(redis_settings(url, namespace))
    try:
        store.load(new_key())
        assert any("sticky-cluster" in client_names(node) for node in redis_cluster.nodes)
    finally:
        store.close()


def test_a_sentinel_url_with_options(
    redis_sentinel: RedisSentinelSetup, namespace: str, new_key: NewKey
) -> None:
    url = f"{redis_sentinel.url}/0?client_name=sticky-sentinel&max_connections=9"
    round_trip(url, namespace, new_key)
    store: Any = open_sync(redis_settings(url, namespace))
    try:
        store.load(new_key())
        assert "sticky-sentinel" in client_names(redis_sentinel.master)
    finally:
        store.close()
