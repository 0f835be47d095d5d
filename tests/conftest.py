"""Shared fixtures: settings, a controllable clock, free ports, real server processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from stickyctx import Settings
from tests.support.ports import free_port  # the one port helper (re-exported here)
from tests.support.waiting import poll

pytest_plugins = ["tests.redis_fixtures", "tests.postgres_fixtures"]

# Property tests check behaviour, never time: no per-example deadline (a slow example on a busy
# machine, such as pydantic building a schema on first use, is not a failure; a hung test is
# still stopped by pytest-timeout). Timing belongs to benchmarks/.
hypothesis.settings.register_profile("stickyctx", deadline=None)
hypothesis.settings.load_profile("stickyctx")
ROOT = Path(__file__).resolve().parent.parent
KEY_A = "a" * 40  # fixed test keys (newest first in STICKYCTX_SECRET_KEYS)
KEY_B = "b" * 40


def require_binary(name: str) -> str:
    """The path of a system binary; skip loudly without it, fail in CI."""
    path = shutil.which(name)
    if path is None:
        reason = f"MISSING BINARY: {name!r} is not installed; this test needs it (CI installs it)"
        if os.environ.get("STICKYCTX_REQUIRE_BINARIES") == "1" or os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def make_settings(**changes: Any) -> Settings:
    base: dict[str, Any] = {"secret_keys": (KEY_A,), "node_id": "n1", "cookie_secure": False}
    base.update(changes)
    return Settings(**base)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


class FakeClock:
    """A wall clock that tests move by hand."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()




def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll ``check`` until it is true (``tests.support.waiting.poll``); fail with ``what``
    after ``timeout`` seconds, or at once if ``proc`` exits meanwhile."""

    def alive() -> None:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")

    poll(check, timeout=timeout, what=what, alive=alive)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class AppServer:
    """A real uvicorn process serving an ASGI app (or a WSGI app through a2wsgi-free werkzeug),
    or with ``interface="gunicorn"`` a gunicorn process (threaded workers) serving a WSGI app."""

    def __init__(self, target: str, env: dict[str, str], port: int | None = None,
                 interface: str = "asgi3") -> None:
        self.target = target
        self._chosen = port is None  # a port of ours: another one if a process took it first
        self.port = port or free_port()
        self.env = env
        self.interface = interface
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AppServer:
        for _attempt in range(3 if self._chosen else 1):
            try:
                return self._start(timeout)
            except RuntimeError:  # the process exited before it listened
                if not self._chosen or not port_open(self.port):
                    raise  # for a reason of its own (the app's error), not a port race
                self.port = free_port()  # someone else listens there: take another port
        raise RuntimeError(f"uvicorn {self.target}: no port it could bind in 3 attempts")

    def _start(self, timeout: float) -> AppServer:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if self.interface == "gunicorn":  # a WSGI app under gunicorn's threaded workers
            argv = [sys.executable, "-m", "gunicorn", self.target, "--bind",
                    f"127.0.0.1:{self.port}", "--worker-class", "gthread", "--threads", "8",
                    "--log-level", "warning"]
        else:
            argv = [sys.executable, "-m", "uvicorn", self.target, "--host", "127.0.0.1",
                    "--port", str(self.port), "--interface", self.interface,
                    "--log-level", "warning", "--no-access-log"]
        self.proc = subprocess.Popen(argv, env=env, cwd=str(ROOT))
        wait_until(self._listening, timeout=timeout, what=f"uvicorn {self.target}",
                   proc=self.proc)
        return self

    def _listening(self) -> bool:
        """Whether *this* process listens on the port (an open port may be someone else's)."""
        import psutil

        assert self.proc is not None
        try:
            connections = psutil.Process(self.proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port
                   for c in connections)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def app_server() -> Iterator[Callable[..., AppServer]]:
    """Start real app servers; every one is stopped at the end of the test."""
    started: list[AppServer] = []

    def start(target: str, env: dict[str, str], **kwargs: Any) -> AppServer:
        server = AppServer(target, env, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
