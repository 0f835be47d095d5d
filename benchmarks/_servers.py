"""Real servers the benchmarks start and stop: a private redis-server, app processes (uvicorn,
gunicorn), and HAProxy configured by ``stickyctx lb-config``. Waits poll with deadlines."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0

__all__ = ["App", "free_port", "private_redis", "script_calls", "start_app", "start_haproxy",
           "wait_for"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None,
             timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _answers(port: int, path: str = "/healthz") -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return conn.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def private_redis(binary: str | None = None) -> Iterator[redis.Redis]:
    """A ``redis-server`` of this run only (a free loopback port, retried if taken), killed at
    exit; yields an admin client."""
    binary = binary or shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        for _attempt in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", directory, "--daemonize", "no",
                 "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            admin = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10.0)

            def ours(admin: redis.Redis = admin, proc: subprocess.Popen[bytes] = proc) -> bool:
                try:  # only our own process answers with our process id
                    return int(admin.info("server")["process_id"]) == proc.pid
                except (redis.ConnectionError, redis.TimeoutError):
                    return proc.poll() is not None  # exited: the port was taken, retry
            try:
                wait_for(ours, "redis-server", timeout=10.0)
            except BaseException:
                proc.kill()
                raise
            if proc.poll() is None:
                break
            admin.close()
        else:
            raise RuntimeError("redis-server did not start on a free port in 5 attempts")
        try:
            yield admin
        finally:
            admin.close()
            proc.kill()
            proc.wait(timeout=10)


def script_calls(admin: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``), our probes aside."""
    stats = admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
            if name.removeprefix("cmdstat_") not in ("info", "flushdb", "ping")}


class App:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def cpu_seconds(self) -> float:
        """User and system CPU of the server and its worker processes so far."""
        root = psutil.Process(self.proc.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total


@contextmanager
def start_app(framework: str, target: str, env: dict[str, str], *,
              core: str | None = None) -> Iterator[App]:
    """The app ``module:attribute`` under uvicorn (``fastapi``: one worker) or gunicorn
    (``flask``: one gthread worker with 16 threads), pinned to ``core``."""
    port = free_port()
    if framework == "fastapi":
        argv = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port",
                str(port), "--log-level", "warning", "--no-access-log"]
    else:
        argv = [sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--worker-class", "gthread", "--threads", "16",
                "--log-level", "warning"]
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", core, *argv]
    # This tree's package first (an installed copy of another tree would otherwise be used).
    full_env = {**os.environ, **env,
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: _answers(port), f"{target} on port {port}", proc)
        yield App(proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def start_haproxy(app: App, env: dict[str, str]) -> Iterator[str]:
    """HAProxy in front of ``app``, configured by ``stickyctx lb-config haproxy``; its URL."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-haproxy-") as directory:
        config = Path(directory) / "haproxy.cfg"
        nodes = {**os.environ, **env, "STICKYCTX_NODES": f"n1=127.0.0.1:{app.port}"}
        subprocess.run([sys.executable, "-m", "stickyctx", "lb-config", "haproxy", "--listen",
                        f"127.0.0.1:{port}", "-o", str(config)], env=nodes, check=True,
                       capture_output=True, timeout=60)
        proc = subprocess.Popen([binary, "-f", str(config), "-db"], cwd=directory,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_for(lambda: _answers(port), f"haproxy on port {port}", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
