"""End to end: ``stickyctx demo`` (each example) exports its spans over OTLP/HTTP, configured
only by the standard ``OTEL_*`` variables, to a real Arize Phoenix server started here on
loopback; the spans are read back through Phoenix's REST API.

Phoenix (``arize-phoenix``, in the ``test`` extra) starts in about a minute on a busy machine:
one server serves every case of this module. It is told to make no request of its own to the
internet. Without the package the test skips loudly (and fails in CI, which installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from stickyctx.telemetry import ATTR, SPAN
from tests.conftest import KEY_A, ROOT, free_port, port_open, wait_until

START_TIMEOUT = 300.0  # its imports and database migrations take a minute on a busy machine
EXPORT_TIMEOUT = 60.0
pytestmark = pytest.mark.timeout(600)

# Phoenix's settings: loopback only, SQLite in a directory of the test's own, and nothing that
# would reach out to the internet (telemetry pixels, downloads, the assistant, MCP servers).
PHOENIX_QUIET = {
    "PHOENIX_HOST": "127.0.0.1",
    "PHOENIX_TELEMETRY_ENABLED": "false",
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    "PHOENIX_ENABLE_MCP_SERVER": "false",
    "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
    "PHOENIX_AGENTS_DISABLE_WEB_ACCESS": "true",
    "PHOENIX_AGENTS_DISABLE_GITHUB": "true",
    "PHOENIX_AGENTS_DISABLE_BASH": "true",
    "PHOENIX_LOGGING_LEVEL": "warning",
    "PHOENIX_DB_LOGGING_LEVEL": "warning",
}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "STICKYCTX_", "PHOENIX_"))}


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class Phoenix:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self, project: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/v1/projects/{project}/spans",
                          params={"limit": 1000}, timeout=10)
        if reply.status_code == 404:  # the project appears with its first span
            return []
        reply.raise_for_status()
        data: list[dict[str, Any]] = reply.json()["data"]
        return data


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    try:
        metadata.distribution("arize-phoenix")  # without importing it
    except metadata.PackageNotFoundError:
        reason = ("MISSING PACKAGE: arize-phoenix is not installed; the OTLP end-to-end test "
                  "needs it (pip install -e '.[test]')")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("phoenix")
    server = Phoenix(free_port(), workdir / "phoenix.log")
    env = {**_clean_env(), **PHOENIX_QUIET, "PHOENIX_WORKING_DIR": str(workdir),
           "PHOENIX_PORT": str(server.port), "PHOENIX_GRPC_PORT": str(free_port())}
    with server.log.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "phoenix.server.main", "serve"],
                                env=env, cwd=str(workdir), stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _healthy(server.url), timeout=START_TIMEOUT, what="Phoenix",
                   proc=proc)
        yield server
    finally:
        _stop(proc)


@pytest.fixture
def demo(phoenix: Phoenix, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """``stickyctx demo`` for one example, exporting to Phoenix: (url, node id, project)."""
    example: str = request.param
    port = free_port()
    node = f"e2e-{example}"
    project = f"stickyctx-e2e-{example}-{uuid.uuid4().hex[:8]}"
    env = {
        **_clean_env(),
        "STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": node,
        "STICKYCTX_COOKIE_SECURE": "0",
        # The standard variables, and nothing else, turn the export on.
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
        "OTEL_SERVICE_NAME": "stickyctx-e2e",
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
        "OTEL_METRICS_EXPORTER": "none",  # Phoenix takes traces only
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    argv = [sys.executable, "-m", "stickyctx", "demo", "--host", "127.0.0.1",
            "--port", str(port)]
    proc = subprocess.Popen([*argv, *(["--flask"] if example == "flask" else [])], env=env,
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: port_open(port), timeout=60, what=f"stickyctx demo ({example})",
                   proc=proc)
        yield f"http://127.0.0.1:{port}", node, project
    finally:
        _stop(proc)
        if proc.stderr is not None:
            proc.stderr.close()


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return dict(span.get("attributes") or {})


@pytest.mark.parametrize("demo", ["fastapi", "flask"], indirect=True)
def test_demo_spans_arrive_in_phoenix_over_otlp_http(
    phoenix: Phoenix, demo: tuple[str, str, str],
) -> None:
    url, node, project = demo
    marker = f"MARKER{uuid.uuid4().hex}"
    with httpx.Client(base_url=url, timeout=30) as client:
        for text in ("hello", "my name is Ada"):
            assert client.post("/chat", json={"message": f"{marker} {text}"}).status_code == 200
        assert client.get("/history").status_code == 200
        token = client.cookies["stickyctx"]
        assert client.delete("/session").status_code == 200

    # The first turn (a new session) is one commit; the second begins (lease and load in one
    # step) and commits; the read of the history (a GET) is one load, without the lease; the
    # destroy destroys.
    expected = {SPAN.AFFINITY: 4, SPAN.LOAD: 2, SPAN.SAVE: 2, SPAN.WINDOW: 2,
                f"{SPAN.STORE} destroy": 1}
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = phoenix.spans(project)
        names = [s["name"] for s in found]
        return all(names.count(name) >= count for name, count in expected.items())

    wait_until(arrived, timeout=EXPORT_TIMEOUT, what=f"our spans in Phoenix ({project})")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in sorted(found, key=lambda s: s["start_time"]):
        by_name.setdefault(span["name"], []).append(span)

    decisions = [_attrs(s) for s in by_name[SPAN.AFFINITY]]
    assert [a[ATTR.AFFINITY] for a in decisions] == ["new", "hit", "hit", "hit"]
    assert {a[ATTR.NODE_ID] for a in decisions} == {a[ATTR.OWNER_ID] for a in decisions} == {node}
    hashes = {a[ATTR.SESSION_ID] for a in decisions}
    assert len(hashes) == 1  # one session, named by one keyed hash throughout
    ours = {name: len(spans) for name, spans in by_name.items() if name.startswith("stickyctx")}
    assert ours == expected  # no lease step of its own: the begins take the turn lease
    for span in by_name[SPAN.SAVE]:
        assert _attrs(span)[ATTR.OPERATION] == "append"
        assert _attrs(span)[ATTR.TIER] == "local"
        assert _attrs(span)[ATTR.SESSION_ID] in hashes
    loads = [_attrs(s) for s in by_name[SPAN.LOAD]]
    assert [a[ATTR.OPERATION] for a in loads] == ["begin", "load"]
    assert loads[0][ATTR.LEASE_NAME] == "turn"
    assert loads[0][ATTR.LEASE_ACQUIRED] is True
    assert ATTR.LEASE_NAME not in loads[1]  # the GET's read took no lease
    for load in loads:
        assert load[ATTR.TIER] == "local"
        assert load[ATTR.SESSION_ID] in hashes
    assert [a[ATTR.MESSAGES_AFTER] for a in loads] == [2, 4]  # the first turn, then both
    window = _attrs(by_name[SPAN.WINDOW][-1])
    assert window[ATTR.MESSAGES_BEFORE] == 3  # two turns' user messages and one reply
    assert window[ATTR.TOKENS_AFTER] > 0
    assert all(s["status_code"] != "ERROR" for s in found)
    # Nothing raw went over the wire either.
    exported = repr(found)
    assert token not in exported
    assert marker not in exported
