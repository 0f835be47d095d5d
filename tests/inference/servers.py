"""Real processes for the inference-router tests: stub model servers and a real router.

``StubModelServer`` runs ``stub_model_server`` (one model server's stand-in); ``Router`` runs an
inference router from the package index (``sglang-router`` or ``vllm-router``, in the ``test``
extra) in front of them, with the policy that routes on the key ``routing_hints`` gives. Every
wait polls with a deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, port_open, wait_until

# The command line of each router, and its policy that routes on the caller's key.
_ROUTERS: dict[str, tuple[str, list[str]]] = {
    # SGLang model gateway: `manual` pins each X-SMG-Routing-Key to a worker.
    "sglang": ("sglang-router", ["launch", "--policy", "manual", "--log-level", "warn"]),
    # vLLM router: `consistent_hash` hashes x-session-id onto a ring of the workers.
    "vllm": ("vllm-router", ["--policy", "consistent_hash", "--log-level", "warning"]),
}


class StubModelServer:
    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.port = free_port()
        self._log: IO[bytes] = log.open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.inference.stub_model_server", name, str(self.port)],
            cwd=str(ROOT), env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), timeout=15, what=f"stub {name}", proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        reply = httpx.get(self.url + "/_stub/requests", timeout=5)
        reply.raise_for_status()
        records: list[dict[str, Any]] = reply.json()
        return records

    def kill(self) -> None:
        """SIGKILL: the model server is gone, with no goodbye to anyone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._log.close()


def router_binary(kind: str) -> str:
    """The router's executable, installed beside this Python by the ``test`` extra."""
    name = _ROUTERS[kind][0]
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: it comes with the test extra "
                    "(pip install -e '.[test]')")
    return str(path)


class Router:
    def __init__(self, kind: str, workers: list[StubModelServer], log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self._log: IO[bytes] = log.open("wb")
        args = _ROUTERS[kind][1]
        self.proc = subprocess.Popen(
            [router_binary(kind), *args, "--host", "127.0.0.1", "--port", str(self.port),
             "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
             # Notice a dead model server within about a second (the defaults: a minute).
             "--health-check-interval-secs", "1", "--health-failure-threshold", "1",
             "--worker-urls", *[w.url for w in workers]],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.log = log
        wait_until(lambda: self._ready(len(workers)), timeout=60, what=f"{kind} router",
                   proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self, count: int) -> bool:
        """Listening, with every worker registered and healthy."""
        if not port_open(self.port):
            return False
        try:
            reply = httpx.get(self.url + "/workers", timeout=2)
        except httpx.HTTPError:
            return False
        if reply.status_code != 200:
            return False
        workers = reply.json().get("workers", [])
        return len(workers) == count and all(w.get("is_healthy", True) for w in workers)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
