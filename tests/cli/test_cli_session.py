"""``stickyctx inspect`` and ``stickyctx purge`` against a real private Redis."""

from __future__ import annotations

import json
import time

import pytest

from stickyctx import Settings
from stickyctx.cli.main import main
from stickyctx.core.messages import build_message
from stickyctx.edges.request import identify
from stickyctx.session.services import Services
from stickyctx.stores import open_store
from tests.conftest import KEY_A
from tests.redis_servers import RedisServer
from tests.support.stores import SyncCalls


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> Settings:
    variables = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_HASH_KEY": "h" * 40,
                 "STICKYCTX_STORE_URL": redis_server.url, "STICKYCTX_NODE_ID": "n1"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def _conversation(settings: Settings) -> tuple[str, str]:
    services = Services(settings)
    state = identify(services, [], None)
    store = SyncCalls(open_store(settings))
    key = services.keys.derive(state.session_id)
    messages = [build_message(role, text, {}, services.tokenizer, 10_000)
                for role, text in (("user", "hello MARKER-1"), ("assistant", "hi MARKER-2"))]
    store.append(key, messages, created=time.time())
    store.close()
    token = services.codec.sign(state.session_id, state.owner, state.created)
    return state.session_id, token


def test_inspect_shows_messages_tokens_and_status(
        env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    session_id, token = _conversation(env)
    for value in (session_id, token):
        assert main(["inspect", value, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["status"] == "live"
        assert [m["content"] for m in report["messages"]] == ["hello MARKER-1", "hi MARKER-2"]
        assert report["stored_tokens"] == sum(m["tokens"] for m in report["messages"]) > 0
    assert main(["inspect", session_id]) == 0
    assert "#2 [assistant]" in capsys.readouterr().out


def test_purge_removes_every_key_and_leaves_a_tombstone(
        env: Settings, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    session_id, _ = _conversation(env)
    tag = Services(env).keys.derive(session_id).tag
    assert any(tag in k for k in redis_server.scan_keys())
    assert main(["purge", session_id]) == 0
    assert "purged" in capsys.readouterr().out
    left = [k for k in redis_server.scan_keys() if tag in k]
    assert left == [f"stickyctx:{{{tag}}}:x"]  # only the tombstone
    assert main(["inspect", session_id, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "revoked"
    assert report["messages"] == []


def test_inspect_refuses_what_is_neither_id_nor_token(
        env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "not-a-session"]) == 2
    assert "not a session id" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["inspect", "purge"])
def test_the_memory_store_cannot_be_reached_from_outside_its_process(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str) -> None:
    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", KEY_A)
    monkeypatch.delenv("STICKYCTX_STORE_URL", raising=False)  # memory://, the default
    assert main([command, "S" * 24]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # never "purged", never an empty history
    for part in ("memory://", "cannot reach", "Redis"):
        assert part in err
