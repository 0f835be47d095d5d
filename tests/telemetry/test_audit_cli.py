"""``stickyctx inspect`` and ``stickyctx purge`` with the audit trail on: one event each, from
the command line's own process, exported as the ``OTEL_*`` variables say (the console log
exporter here), against a private Redis; no raw id, token or message text in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from stickyctx import Settings
from stickyctx.session.services import Services
from stickyctx.telemetry.audit import EVENT
from tests.cli.test_cli_session import _conversation
from tests.conftest import KEY_A, ROOT
from tests.redis_servers import RedisServer


@pytest.fixture
def env(redis_server: RedisServer) -> dict[str, str]:
    return {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_HASH_KEY": "h" * 40,
            "STICKYCTX_STORE_URL": redis_server.url, "STICKYCTX_NODE_ID": "ops-1"}


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, list[dict[str, Any]]]:
    """Run the command in its own process; its output, and the log records it exported."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STICKYCTX_"))}
    full.update({"STICKYCTX_AUDIT": "1", "OTEL_LOGS_EXPORTER": "console",
                 "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", **env})
    done = subprocess.run([sys.executable, "-m", "stickyctx", *args], env=full, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120, check=False)
    out, records = done.stdout, []
    decoder = json.JSONDecoder()
    text = out
    while "{" in text:  # the console exporter prints one JSON object per record
        start = text.index("{")
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            text = text[start + 1:]
            continue
        if isinstance(value, dict) and value.get("event_name") == EVENT:
            records.append(value)
        text = text[end:]
    return done.returncode, out, records


def test_inspect_and_purge_are_one_event_each_naming_the_operator(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    session_id, token = _conversation(settings)
    name = Services(settings).session_hash(session_id)

    code, out, records = run_cli(env, "inspect", session_id, "--principal", "ops@example.test")
    assert code == 0, out
    assert "MARKER-1" in out  # the command shows the operator the messages
    code, purged, more = run_cli(env, "purge", token, "--principal", "ops@example.test")
    assert code == 0, purged
    records += more
    assert [r["attributes"]["stickyctx.audit.action"] for r in records] == ["read", "purge"]
    for record in records:
        assert record["attributes"] == {
            "stickyctx.audit.action": record["attributes"]["stickyctx.audit.action"],
            "stickyctx.audit.outcome": "success", "session.id": name,
            "stickyctx.node.id": "ops-1", "stickyctx.audit.source": "cli",
            "user.id": "ops@example.test"}
        assert record["body"] is None
        text = json.dumps(record)
        for secret in (session_id, token, "MARKER-1", "MARKER-2"):
            assert secret not in text


def test_without_the_audit_trail_the_command_exports_nothing(env: dict[str, str]) -> None:
    session_id, _ = _conversation(Settings.from_env(env))
    code, out, records = run_cli({**env, "STICKYCTX_AUDIT": "0"}, "inspect", session_id)
    assert code == 0, out
    assert records == []
