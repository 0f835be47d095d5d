"""Fixtures handing out private Redis servers (``tests.redis_servers``); loaded by conftest.

Every server is started for the tests here and killed when its scope ends, also when a test
fails. Without ``redis-server`` (or ``redis-cli`` for the Cluster) a test using them skips with a
loud reason, and fails in CI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.conftest import require_binary
from tests.redis_servers import RedisCluster, RedisSentinelSetup, RedisServer

MakeRedisServer = Callable[..., RedisServer]


@pytest.fixture
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRedisServer]:
    """Start fresh servers (keyword arguments of ``RedisServer``, e.g. ``appendonly=True``)."""
    binary = require_binary("redis-server")
    with ExitStack() as stack:

        def make(**kwargs: Any) -> RedisServer:
            server = RedisServer(tmp_path_factory.mktemp("redis"), binary=binary, **kwargs)
            return stack.enter_context(server)  # started now, killed at the end of the test

        yield make


@pytest.fixture
def redis_server(redis_server_factory: MakeRedisServer) -> RedisServer:
    """A fresh server of this test's own (no persistence): kill it, pause it, restart it."""
    return redis_server_factory()


@pytest.fixture(scope="session")
def redis_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server shared by the whole session.

    Tests share its data: each one writes under a key namespace of its own (``redis_namespace``)
    and never flushes, kills, pauses or reconfigures it (use ``redis_server`` for that).
    """
    binary = require_binary("redis-server")
    with RedisServer(tmp_path_factory.mktemp("redis-session"), binary=binary) as server:
        yield server


@pytest.fixture
def redis_namespace() -> str:
    """A key prefix no other test uses, for servers shared between tests."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A three-master Cluster shared by the session (the same rules as ``redis_server_session``)."""
    binary = require_binary("redis-server")
    cli_binary = require_binary("redis-cli")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"), binary=binary,
                           cli_binary=cli_binary)
    with cluster:
        yield cluster


@pytest.fixture
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSetup]:
    """A master, a replica and three Sentinels of this test's own (failover destroys them)."""
    binary = require_binary("redis-server")
    with RedisSentinelSetup(tmp_path_factory.mktemp("redis-sentinel"), binary=binary) as setup:
        yield setup
