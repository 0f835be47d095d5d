"""The private Redis servers of ``tests.redis_servers`` and their fixtures."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
import redis
import redis.sentinel
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from tests.conftest import require_binary
from tests.redis_fixtures import MakeRedisServer
from tests.redis_servers import (
    HOST,
    STANDARD_PORTS,
    PortInUseError,
    RedisCluster,
    RedisSentinelSetup,
    RedisServer,
    ServerExitedError,
    free_port,
    port_open,
)
from tests.support import ports as port_helper

# Writes both keys and reads them back: one script over two keys, as the store's scripts do.
SET_BOTH = ("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]); "
            "return redis.call('MGET', KEYS[1], KEYS[2])")


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


# -- ports ---------------------------------------------------------------------------------------

def test_free_port_skips_standard_taken_and_handed_out_ports(
        monkeypatch: pytest.MonkeyPatch) -> None:
    handed_out = free_port()
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken_port: int = taken.getsockname()[1]
        fresh = next(port for port in range(31000, 32000)
                     if port not in {handed_out, taken_port, *port_helper._handed_out}
                     and port_helper._bindable(port))
        draws = iter([6379, 26379, 16379, handed_out, taken_port, fresh])

        class Scripted:
            def randrange(self, start: int, stop: int) -> int:
                return next(draws)

        monkeypatch.setattr(port_helper, "_random", Scripted())
        monkeypatch.setattr(port_helper, "_ephemeral_range", lambda: (32768, 60999))
        assert free_port() == fresh


def test_free_ports_stay_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the kernel puts outgoing connections and bind(0) sockets of other processes.
    monkeypatch.setattr(port_helper, "_ephemeral_range", lambda: (24000, 60999))
    ports = [free_port() for _ in range(50)]
    assert all(20000 <= port < 24000 for port in ports)
    assert len(set(ports)) == len(ports)


# -- a standalone server -------------------------------------------------------------------------

def test_server_answers_on_its_own_port(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.port not in STANDARD_PORTS
    client = redis_server.client()
    assert client.ping() is True
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    assert client.info("server")["process_id"] == redis_server.pid
    assert Path(str(client.config_get("dir")["dir"])).resolve() == redis_server.directory.resolve()
    assert client.config_get("appendonly")["appendonly"] == "no"
    assert client.config_get("save")["save"] == ""


def test_scan_keys_lists_matching_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    for key in ["a:2", "a:1", "b:1"]:
        client.set(key, "x")
    assert redis_server.scan_keys("a:*") == ["a:1", "a:2"]
    assert redis_server.scan_keys() == ["a:1", "a:2", "b:1"]


def test_kill_leaves_the_port_refusing_connections(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    redis_server.kill()
    assert redis_server.process is not None
    assert redis_server.process.returncode == -signal.SIGKILL
    assert refused(redis_server.port)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(redis.ConnectionError):
        redis_server.client().ping()


@pytest.mark.parametrize("paused", [pytest.param(False, id="running"),
                                    pytest.param(True, id="paused")])
def test_stop_shuts_down_cleanly(redis_server: RedisServer, paused: bool) -> None:
    if paused:
        redis_server.pause()
    redis_server.stop()
    assert redis_server.process is not None
    assert redis_server.process.returncode == 0  # SHUTDOWN, not a signal
    assert refused(redis_server.port)


@pytest.mark.parametrize(("appendonly", "how", "kept"), [
    pytest.param(True, "kill", True, id="appendonly-survives-sigkill"),
    pytest.param(True, "stop", True, id="appendonly-survives-shutdown"),
    pytest.param(False, "kill", False, id="without-persistence-forgets"),
])
def test_restart_comes_back_on_the_same_port_with_its_data(
        redis_server_factory: MakeRedisServer, appendonly: bool, how: str, kept: bool) -> None:
    server = redis_server_factory(appendonly=appendonly)
    port, first_pid = server.port, server.pid
    server.client().set("durable", "yes")
    if how == "kill":
        server.kill()
    else:
        server.stop()
    assert refused(port)
    server.restart()
    assert server.port == port
    assert server.pid != first_pid
    assert server.client().get("durable") == (b"yes" if kept else None)


def test_pause_times_out_clients_until_resume(redis_server: RedisServer) -> None:
    client = redis_server.client(socket_timeout=0.2)
    client.set("k", "v")
    redis_server.pause()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    assert time.monotonic() - started < 2.0  # the client's timeout, not a hang
    assert redis_server.running  # frozen, not dead
    redis_server.resume()
    assert client.get("k") == b"v"


def test_session_server_is_shared_under_namespaces(
        redis_server_session: RedisServer, redis_server: RedisServer,
        redis_namespace: str) -> None:
    key = f"{redis_namespace}k"
    shared = redis_server_session.client()
    shared.set(key, "v")
    try:
        assert redis_server_session.scan_keys(f"{redis_namespace}*") == [key]
        assert redis_server.port != redis_server_session.port
        assert redis_server.scan_keys(f"{redis_namespace}*") == []  # another server
    finally:
        shared.delete(key)  # only this test's keys: never a flush


def test_a_taken_port_is_refused_not_shared(redis_server: RedisServer, tmp_path: Path) -> None:
    intruder = RedisServer(tmp_path, port=redis_server.port, binary=redis_server.binary)
    with pytest.raises(PortInUseError, match="Address already in use"):
        intruder.start()
    assert not intruder.running
    assert redis_server.client().ping() is True  # the owner is untouched


def test_a_failed_start_reports_the_log_and_leaves_nothing(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, args=["--no-such-directive", "1"],
                         binary=require_binary("redis-server"))
    with pytest.raises(ServerExitedError, match="no-such-directive"):
        server.start()
    assert not server.running
    assert refused(server.port)


def test_exit_kills_even_a_paused_server(tmp_path: Path) -> None:
    with RedisServer(tmp_path, binary=require_binary("redis-server")) as server:
        server.pause()
        assert port_open(server.port)
    assert server.process is not None
    assert server.process.returncode == -signal.SIGKILL
    assert refused(server.port)


# -- a Cluster -----------------------------------------------------------------------------------

def test_cluster_is_three_masters_covering_every_slot(redis_cluster: RedisCluster) -> None:
    ports = [node.port for node in redis_cluster.nodes]
    assert redis_cluster.url == f"redis+cluster://127.0.0.1:{ports[0]}"
    assert [(n.host, n.port) for n in redis_cluster.startup_nodes] == [(HOST, p) for p in ports]
    client = redis_cluster.client()
    assert sorted(node.port for node in client.get_primaries()) == sorted(ports)  # type: ignore[no-untyped-call]
    assert client.get_replicas() == []  # type: ignore[no-untyped-call]
    for node in redis_cluster.nodes:
        assert "cluster_state:ok" in node.command("CLUSTER", "INFO")
        assert "cluster_slots_assigned:16384" in node.command("CLUSTER", "INFO")


def test_cluster_keys_of_one_hash_tag_share_a_slot_and_a_script(
        redis_cluster: RedisCluster, redis_namespace: str) -> None:
    tag = f"{{{redis_namespace}session}}"
    first, second = f"{tag}:meta", f"{tag}:messages"
    client = redis_cluster.client(decode_responses=True)
    assert client.cluster_keyslot(first) == client.cluster_keyslot(second)  # the server's view
    try:
        assert client.eval(SET_BOTH, 2, first, second, "x", "y") == ["x", "y"]
        holders = {node.port: node.scan_keys(f"{tag}*") for node in redis_cluster.nodes}
        assert sorted(holders.values()) == [[], [], sorted([first, second])]
    finally:
        client.delete(first)
        client.delete(second)


@pytest.mark.parametrize("via", [pytest.param("cluster-client", id="cluster-client"),
                                 pytest.param("node-client", id="node-client")])
def test_cluster_refuses_a_script_over_two_hash_tags(
        redis_cluster: RedisCluster, redis_namespace: str, via: str) -> None:
    client = redis_cluster.client()
    first = f"{{{redis_namespace}one}}:k"
    second = next(key for key in (f"{{{redis_namespace}two-{i}}}:k" for i in range(100))
                  if client.keyslot(key) != client.keyslot(first))  # type: ignore[no-untyped-call]
    owner = client.get_node_from_key(first)  # type: ignore[no-untyped-call]
    run: Callable[[], object]
    if via == "cluster-client":
        run = partial(client.execute_command, "EVAL", SET_BOTH, 2, first, second, "x", "y",
                      target_nodes=owner)
    else:
        node = next(n for n in redis_cluster.nodes if n.port == owner.port)
        run = partial(node.client().eval, SET_BOTH, 2, first, second, "x", "y")
    with pytest.raises(ClusterCrossSlotError, match="same slot"):  # the server's CROSSSLOT
        run()
    with pytest.raises(RedisClusterException, match="same key slot"):  # redis-py refuses first
        client.eval(SET_BOTH, 2, first, second, "x", "y")
    assert client.get(first) is None
    assert client.get(second) is None


def test_cluster_failing_creation_kills_the_started_nodes(tmp_path: Path) -> None:
    """The exit path of every Cluster (``close``), taken here after all nodes had started."""
    failing_cli = shutil.which("false")
    assert failing_cli is not None
    cluster = RedisCluster(tmp_path, binary=require_binary("redis-server"),
                           cli_binary=failing_cli)
    with pytest.raises(RuntimeError, match="cluster create failed"):
        cluster.start()
    assert len(set(cluster.ports)) == 6  # three client ports, three bus ports
    assert all(node.process is not None and node.process.poll() is not None
               for node in cluster.nodes)
    assert all(refused(port) for port in cluster.ports)


# -- Sentinel ------------------------------------------------------------------------------------

@contextmanager
def sentinel_client(setup: RedisSentinelSetup) -> Iterator[redis.sentinel.Sentinel]:
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        setup.sentinel_addresses, socket_timeout=1.0, sentinel_kwargs={"socket_timeout": 1.0})
    try:
        yield sentinel
    finally:
        for client in sentinel.sentinels:
            client.close()


def test_sentinel_master_for_writes_and_the_replica_follows(
        redis_sentinel: RedisSentinelSetup) -> None:
    hosts = ",".join(f"127.0.0.1:{port}" for _host, port in redis_sentinel.sentinel_addresses)
    assert redis_sentinel.url == f"redis+sentinel://{hosts}/mymaster"
    assert len(redis_sentinel.sentinel_addresses) == 3
    with sentinel_client(redis_sentinel) as sentinel:
        assert sentinel.discover_master("mymaster") == redis_sentinel.master.address  # type: ignore[no-untyped-call]
        master = sentinel.master_for("mymaster")  # type: ignore[no-untyped-call]
        try:
            master.set("k", "v")
            assert master.wait(1, 5000) == 1  # the replica acknowledged the write
        finally:
            master.close()
    assert redis_sentinel.replica.client().get("k") == b"v"


def test_sentinel_failover_promotes_the_replica(redis_sentinel: RedisSentinelSetup) -> None:
    old = redis_sentinel.master.address
    replica = redis_sentinel.replica.address
    with sentinel_client(redis_sentinel) as sentinel:
        before = sentinel.master_for("mymaster")  # type: ignore[no-untyped-call]
        try:
            before.set("before", "1")
            assert before.wait(1, 5000) == 1
        finally:
            before.close()
    assert redis_sentinel.failover() == replica
    assert refused(old[1])
    assert redis_sentinel.master.address == replica
    with sentinel_client(redis_sentinel) as sentinel:  # a fresh client finds the new master
        assert sentinel.discover_master("mymaster") == replica  # type: ignore[no-untyped-call]
        after = sentinel.master_for("mymaster")  # type: ignore[no-untyped-call]
        try:
            after.set("after", "2")
            assert after.get("before") == b"1"  # an acknowledged write survived the failover
        finally:
            after.close()
    assert redis_sentinel.master.client().get("after") == b"2"


def test_sentinel_exit_closes_every_port(tmp_path: Path) -> None:
    with RedisSentinelSetup(tmp_path, binary=require_binary("redis-server")) as setup:
        ports = setup.ports
        assert len(set(ports)) == 5  # master, replica, three Sentinels
        assert all(port_open(port) for port in ports)
    assert all(refused(port) for port in ports)
    assert all(server.process is not None and server.process.poll() is not None
               for server in setup.servers)
