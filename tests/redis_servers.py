"""Private Redis servers for tests: a standalone server, a small Cluster, a Sentinel setup.

Every process is a real ``redis-server`` on a free loopback port (outside the kernel's ephemeral
range and never a standard Redis port), in a directory of its own, waited for by polling with
deadlines (never fixed sleeps), and killed at the end. Each class is a context manager whose exit
kills everything it started, also when starting failed halfway, and then checks that every port
it used refuses connections. A server is only ever talked to after it reported the process id of
the process started here, so nothing touches a server it did not start; nothing flushes anything.

Processes started from the main thread ask the kernel (Linux) to SIGKILL them when that thread
dies, so even a test run that is killed outright leaves no server behind.

The fixtures of ``tests.redis_fixtures`` hand these out; they check that the binaries exist.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.ports import HOST, STANDARD_PORTS, free_port  # noqa: F401 (re-exported)
from tests.support.waiting import poll

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 30.0
FAILOVER_TIMEOUT = 30.0
PROBE_TIMEOUT = 0.5  # socket timeouts of the clients that poll servers
_PORT_ATTEMPTS = 5


class PortInUseError(RuntimeError):
    """The server could not listen on its port: another process took it first."""


class ServerExitedError(RuntimeError):
    """The server process exited while it was expected to run."""


# -- waiting -------------------------------------------------------------------------------------

def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        return sock.connect_ex((host, port)) == 0


def wait_ports_closed(ports: Sequence[int], *, timeout: float = STOP_TIMEOUT) -> None:
    poll(lambda: not any(port_open(port) for port in ports), timeout=timeout,
         what=f"ports {list(ports)} refusing connections")


# -- processes -----------------------------------------------------------------------------------

def _die_with_parent_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now, not in the forked child
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


_DIE_WITH_PARENT = _die_with_parent_hook()


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _tail(path: Path, offset: int, limit: int = 2000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _pairs(reply: Any) -> dict[str, str]:
    """A map reply (RESP3), or a flat ``[name, value, ...]`` one (RESP2), as a dict."""
    if isinstance(reply, dict):
        return {str(name): str(value) for name, value in reply.items()}
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


class RedisServer:
    """One ``redis-server`` process (or a Sentinel, given ``sentinel_config``) on loopback.

    Persistence is off (``--save "" --appendonly no``) unless ``appendonly=True``, which turns on
    the append-only file with ``appendfsync always`` so that even a SIGKILLed server comes back
    with every acknowledged write. ``start()`` waits for PING; ``kill()`` is SIGKILL, ``stop()``
    SHUTDOWN NOSAVE; both reap the process and wait until its ports refuse connections.
    ``restart()`` comes back on the same port in the same directory. ``pause()``/``resume()``
    freeze and thaw the process (SIGSTOP/SIGCONT) to play a hung server. As a context manager it
    starts on entry; ``close()`` (the exit) kills it and closes the clients of ``client()``.
    """

    def __init__(self, directory: Path, *, appendonly: bool = False, args: Sequence[str] = (),
                 cluster: bool = False, sentinel_config: Sequence[str] | None = None,
                 port: int | None = None, binary: str = "redis-server") -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.args = tuple(args)
        self.binary = binary
        self.port = free_port() if port is None else port
        self.cluster_port = free_port() if cluster else None
        self._may_move = port is None  # until the first start, a lost port race picks another
        self.sentinel = sentinel_config is not None
        self.logfile = directory / "redis.log"
        self.outfile = directory / "stdout.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._listening = False  # it answered as itself: its ports are its own
        self._clients: list[redis.Redis] = []
        directory.mkdir(parents=True, exist_ok=True)
        if sentinel_config is not None:
            # Sentinel rewrites this file with what it learns; a restart reads it back.
            self.config_file = directory / "sentinel.conf"
            self.config_file.write_text("\n".join(sentinel_config) + "\n")

    def __repr__(self) -> str:
        kind = "sentinel" if self.sentinel else "redis-server"
        return f"<{kind} {HOST}:{self.port} in {self.directory}>"

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the server listens on (the client port and, in a Cluster, the bus port)."""
        return (self.port,) if self.cluster_port is None else (self.port, self.cluster_port)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The process id of the last start."""
        if self.process is None:
            raise ServerExitedError(f"{self!r} was never started")
        return self.process.pid

    def argv(self) -> list[str]:
        argv = [self.binary]
        if self.sentinel:
            argv += [str(self.config_file), "--sentinel"]
        argv += ["--port", str(self.port), "--bind", HOST, "--dir", str(self.directory),
                 "--daemonize", "no", "--logfile", str(self.logfile)]
        if not self.sentinel:
            argv += ["--save", "", "--appendonly", "yes" if self.appendonly else "no"]
            if self.appendonly:
                argv += ["--appendfsync", "always"]
        if self.cluster_port is not None:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-port", str(self.cluster_port)]
        return argv + list(self.args)

    # -- lifecycle --

    def start(self, *, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start the process and wait until it answers PING as itself (its process id)."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        attempt = 1
        while True:
            try:
                self._spawn_and_wait(timeout)
            except PortInUseError:
                if not self._may_move or attempt >= _PORT_ATTEMPTS:
                    raise
                attempt += 1
                self.port = free_port()
                if self.cluster_port is not None:
                    self.cluster_port = free_port()
                continue
            self._may_move = False  # from now on, this server lives on this port
            return self

    def _spawn_and_wait(self, timeout: float) -> None:
        offsets = (self._size(self.logfile), self._size(self.outfile))
        # The kernel's "die with the parent" follows the starting thread: only the main one.
        main = threading.current_thread() is threading.main_thread()
        with self.outfile.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv(), cwd=self.directory, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_DIE_WITH_PARENT if main else None,
            )
        pid = self.process.pid

        def alive() -> None:
            if self.process is not None and self.process.poll() is not None:
                log = _tail(self.logfile, offsets[0]) + _tail(self.outfile, offsets[1])
                error = PortInUseError if "Address already in use" in log else ServerExitedError
                raise error(f"{self!r} exited with {self.process.returncode}:\n{log}")

        def answers() -> bool:
            with closing(self._probe()) as probe:
                probe.ping()
                # A server that is not ours may answer on this port: check the process id.
                return int(probe.info("server")["process_id"]) == pid

        try:
            poll(answers, timeout=timeout, what=f"{self!r} answering PING", alive=alive)
            self._listening = True
        except TimeoutError as exc:
            self.kill()
            raise TimeoutError(f"{exc}\n{_tail(self.logfile, offsets[0])}") from None
        except BaseException:
            self.kill()
            raise

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def kill(self) -> None:
        """SIGKILL the process (even a paused one), reap it, wait until its ports are closed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)
        if self._listening:  # (after a lost port race, the port is someone else's)
            wait_ports_closed(self.ports)
            self._listening = False

    def stop(self) -> None:
        """Shut down with SHUTDOWN NOSAVE (SIGKILL if it does not exit in time); wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()
            try:
                with closing(self._probe()) as probe:
                    probe.shutdown(nosave=True)
            except redis.RedisError:
                self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.kill()

    def restart(self, *, timeout: float = START_TIMEOUT) -> RedisServer:
        """Stop the server if it runs, then start it again on the same port, in the same dir."""
        self.stop()
        return self.start(timeout=timeout)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it keeps its port but answers nothing."""
        self._signal(signal.SIGSTOP, frozen=True)

    def resume(self) -> None:
        """Thaw a paused process (SIGCONT)."""
        self._signal(signal.SIGCONT, frozen=False)

    def _signal(self, signum: signal.Signals, *, frozen: bool) -> None:
        if not self.running:
            raise ServerExitedError(f"{self!r} is not running")
        assert self.process is not None
        os.kill(self.process.pid, signum)
        stat = Path(f"/proc/{self.process.pid}/stat")
        if stat.exists():  # Linux: wait until the kernel has done it
            poll(lambda: (stat.read_text().rsplit(")", 1)[1].split()[0] in "tT") == frozen,
                 timeout=STOP_TIMEOUT, what=f"{self!r} {'stopped' if frozen else 'running'}")

    def close(self) -> None:
        """Kill the process and close every client handed out."""
        try:
            self.kill()
        finally:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- clients --

    def _probe(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=PROBE_TIMEOUT,
                           socket_connect_timeout=PROBE_TIMEOUT, retry=_no_retry(),
                           decode_responses=True)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client of this server (5 s timeouts, no retries unless given); closed at the end."""
        options: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0,
                                   "retry": _no_retry(), **kwargs}
        client = redis.Redis(host=HOST, port=self.port, **options)
        self._clients.append(client)
        return client

    def info(self, section: str) -> dict[str, Any]:
        with closing(self._probe()) as probe:
            info: dict[str, Any] = probe.info(section)
            return info

    def command(self, *args: Any) -> Any:
        """Run one command with a short-lived client (text replies)."""
        with closing(self._probe()) as probe:
            return probe.execute_command(*args)  # type: ignore[no-untyped-call]

    def scan_keys(self, pattern: str = "*") -> list[str]:
        """Every key matching ``pattern``, sorted, found with SCAN (never KEYS)."""
        with closing(self._probe()) as probe:
            return sorted(probe.scan_iter(match=pattern, count=1000))


@contextmanager
def _closing_on_error(target: RedisCluster | RedisSentinelSetup) -> Iterator[None]:
    try:
        yield
    except BaseException:
        target.close()
        raise


class RedisCluster:
    """A Redis Cluster of three masters (no replicas), each node in a directory of its own.

    Created with ``redis-cli --cluster create``; ready when every node says ``cluster_state:ok``.
    ``url`` is the store URL ``redis+cluster://HOST:PORT`` of the first node (the client finds
    the others). As a context manager it starts on entry and kills every node on exit.
    """

    def __init__(self, directory: Path, *, masters: int = 3, binary: str = "redis-server",
                 cli_binary: str = "redis-cli") -> None:
        self.directory = directory
        self.cli_binary = cli_binary
        self.nodes = [RedisServer(directory / f"node{i}", cluster=True, binary=binary)
                      for i in range(masters)]
        self._stack = ExitStack()
        self._clients: list[redis.cluster.RedisCluster] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        return [redis.cluster.ClusterNode(HOST, node.port)  # type: ignore[no-untyped-call]
                for node in self.nodes]

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(port for node in self.nodes for port in node.ports)

    def start(self, *, timeout: float = CLUSTER_TIMEOUT) -> RedisCluster:
        with _closing_on_error(self):
            for node in self.nodes:
                self._stack.enter_context(node)
            addresses = [f"{HOST}:{node.port}" for node in self.nodes]
            created = subprocess.run(
                [self.cli_binary, "--cluster", "create", *addresses, "--cluster-yes"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                check=False,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed ({created.returncode}):\n"
                                   f"{created.stdout}\n{created.stderr}")
            poll(self._ready, timeout=timeout, alive=self._alive,
                 what=f"every cluster node saying cluster_state:ok (logs in {self.directory})")
        return self

    def _alive(self) -> None:
        for node in self.nodes:
            if not node.running:
                raise ServerExitedError(f"{node!r} exited")

    def _ready(self) -> bool:
        for node in self.nodes:
            info = dict(line.split(":", 1) for line in
                        str(node.command("CLUSTER", "INFO")).split() if ":" in line)
            if (info.get("cluster_state") != "ok"
                    or info.get("cluster_known_nodes") != str(len(self.nodes))):
                return False
        return True

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A Cluster client over ``startup_nodes`` (5 s timeouts); closed at the end."""
        options: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0,
                                   **kwargs}
        client = redis.cluster.RedisCluster(startup_nodes=self.startup_nodes, **options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RedisSentinelSetup:
    """A master, one replica and three Sentinels that monitor them as ``mymaster`` (quorum 2).

    ``url`` is the store URL of Sentinel mode: ``redis+sentinel://`` then every Sentinel's
    ``host:port``, comma-separated, then ``/`` and the monitored service name, for example
    ``redis+sentinel://127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003/mymaster``. The client
    asks the Sentinels for the service's current master and connects to that.

    The Sentinels start with each other and the replica already in their configuration (as a
    Sentinel writes it itself), so they need not wait seconds for the discovery messages;
    ``start()`` still waits until each one sees the master, the replica with its link up, and
    both other Sentinels connected, and until the replica is in sync. ``failover()`` kills the
    master and waits for the Sentinels to agree on the promoted replica.
    """

    SERVICE = "mymaster"
    QUORUM = 2

    def __init__(self, directory: Path, *, sentinels: int = 3,
                 binary: str = "redis-server") -> None:
        self.directory = directory
        self.binary = binary
        self.sentinel_count = sentinels
        # The replica may become master and the master a replica: no diskless-sync delay.
        sync = ("--repl-diskless-sync-delay", "0")
        self.master = RedisServer(directory / "master", args=sync, binary=binary)
        self.replica = RedisServer(directory / "replica", args=sync, binary=binary)
        self.sentinels: list[RedisServer] = []
        self._stack = ExitStack()
        self.servers: list[RedisServer] = [self.master, self.replica]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [sentinel.address for sentinel in self.sentinels]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(port for server in self.servers for port in server.ports)

    def start(self, *, timeout: float = START_TIMEOUT) -> RedisSentinelSetup:
        with _closing_on_error(self):
            self._stack.enter_context(self.master)
            # (the master's port is final once it runs)
            self.replica.args += ("--replicaof", HOST, str(self.master.port))
            self._stack.enter_context(self.replica)
            poll(lambda: self.replica.info("replication").get("master_link_status") == "up",
                 timeout=timeout, what=f"the replica in sync (logs in {self.directory})")
            self._start_sentinels()
            poll(self._sentinels_ready, timeout=timeout,
                 what="every Sentinel seeing the master, the replica and the other Sentinels "
                      f"(logs in {self.directory})")
        return self

    def _start_sentinels(self) -> None:
        """Start the Sentinels, all at once again on new ports if one loses its port race."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            ports = [free_port() for _ in range(self.sentinel_count)]
            ids = [secrets.token_hex(20) for _ in ports]
            started: list[RedisServer] = []  # (each one is killed at the end already)
            try:
                for i, port in enumerate(ports):
                    config = [
                        f"sentinel myid {ids[i]}",
                        "sentinel resolve-hostnames no",
                        f"sentinel monitor {self.SERVICE} {HOST} {self.master.port} {self.QUORUM}",
                        f"sentinel down-after-milliseconds {self.SERVICE} 1000",
                        f"sentinel failover-timeout {self.SERVICE} 5000",
                        f"sentinel known-replica {self.SERVICE} {HOST} {self.replica.port}",
                        *(f"sentinel known-sentinel {self.SERVICE} {HOST} {other} {ids[j]}"
                          for j, other in enumerate(ports) if j != i),
                    ]
                    sentinel = RedisServer(self.directory / f"sentinel{i}-{attempt}",
                                           port=port, sentinel_config=config, binary=self.binary)
                    self._stack.callback(sentinel.close)
                    self.servers.append(sentinel)
                    started.append(sentinel.start())
            except PortInUseError:
                for sentinel in started:
                    sentinel.close()
                if attempt == _PORT_ATTEMPTS:
                    raise
                continue
            self.sentinels = started
            return

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            master = _pairs(sentinel.command("SENTINEL", "MASTER", self.SERVICE))
            if master.get("flags") != "master" or (master.get("ip"), master.get("port")) != (
                    HOST, str(self.master.port)):
                return False
            replicas = [_pairs(r) for r in sentinel.command("SENTINEL", "REPLICAS", self.SERVICE)]
            if [(r.get("port"), r.get("flags"), r.get("master-link-status")) for r in replicas] \
                    != [(str(self.replica.port), "slave", "ok")]:
                return False
            others = [_pairs(s) for s in sentinel.command("SENTINEL", "SENTINELS", self.SERVICE)]
            if len(others) != self.sentinel_count - 1 or any(
                    s.get("flags") != "sentinel" for s in others):
                return False
        return True

    def master_addresses(self) -> set[tuple[str, int]]:
        """The master address each reachable Sentinel reports (one when they agree)."""
        addresses: set[tuple[str, int]] = set()
        for sentinel in self.sentinels:
            host, port = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
            addresses.add((str(host), int(port)))
        return addresses

    def failover(self, *, timeout: float = FAILOVER_TIMEOUT) -> tuple[str, int]:
        """Kill the master; wait until every Sentinel names another one that accepts writes.

        Returns the new master's address; ``master`` and ``replica`` swap (the old master stays
        dead).
        """
        old = self.master.address
        self.master.kill()

        def promoted() -> tuple[str, int] | None:
            addresses = self.master_addresses()
            if len(addresses) != 1 or old in addresses:
                return None
            return addresses.pop()

        new = poll(promoted, timeout=timeout,
                   what=f"the Sentinels agreeing on a new master (logs in {self.directory})")
        assert new is not None
        replica = self.replica
        if new != replica.address:
            raise AssertionError(f"the Sentinels promoted {new}, not the replica {replica!r}")
        poll(lambda: replica.info("replication").get("role") == "master", timeout=timeout,
             what="the promoted replica acting as master")
        self.master, self.replica = replica, self.master
        return new

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RedisSentinelSetup:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
