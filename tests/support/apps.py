"""The one harness of real app processes: an example app (or a test app) served by a real
uvicorn or gunicorn process on a port of its own, ready when that process listens.

``tests.conftest`` re-exports ``AppServer``, ``wait_until`` and ``port_open`` and provides the
``app_server`` fixture that starts them and stops them at the end of a test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from .ports import free_port
from .waiting import poll

__all__ = ["AppServer", "User", "port_open", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]


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


class User:
    """A browser-like client of the example apps' routes (one cookie jar: cookies are per host,
    not port) whose requests alternate between ``nodes``; signed in as ``name`` when given."""

    def __init__(self, stack: ExitStack, nodes: list[AppServer], name: str) -> None:
        self.client = stack.enter_context(httpx.Client(timeout=30.0))
        self.urls = [n.url for n in nodes]
        self.n = 0
        if name:
            assert self.call("POST", "/login", {"user": name}).status_code == 200

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        url = self.urls[self.n % len(self.urls)] + path
        self.n += 1
        return self.client.request(method, url, json=body)
