"""The ``stickyctx`` command line: config, doctor, owner in-process, demo as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stickyctx import __version__
from stickyctx.cli import main
from stickyctx.cli.demo import find_example
from stickyctx.core.nodes import parse_nodes
from stickyctx.core.placement import place
from stickyctx.core.tokens import TokenCodec
from stickyctx.tools.simulation import simulate, steps

from ..conftest import KEY_A, KEY_B, free_port, port_open, wait_until

SESSION_ID = "S" * 24


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean ``STICKYCTX_*`` environment with one key, node n1; tests add what they need."""
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", KEY_A)
    monkeypatch.setenv("STICKYCTX_NODE_ID", "n1")
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# config -------------------------------------------------------------------------------------


def test_config_prints_effective_settings_with_secrets_masked(
        capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_SECRET_KEYS", f"{KEY_B},{KEY_A}")
    env.setenv("STICKYCTX_HASH_KEY", "h" * 40)
    env.setenv("STICKYCTX_NODES", "n1=10.0.0.1:8000,n2")
    env.setenv("STICKYCTX_TOKEN_BUDGET", "1234")
    status, out, err = run(capsys, "config")
    assert (status, err) == (0, "")
    shown = json.loads(out)
    assert shown["node_id"] == "n1"
    assert shown["token_budget"] == 1234
    assert shown["nodes"] == ["n1=10.0.0.1:8000", "n2"]
    assert shown["secret_keys"] == ["<2 key(s) masked>"]
    assert shown["hash_key"] == "<masked>"
    for secret in (KEY_A, KEY_B, "h" * 40):
        assert secret not in out


# Configuration errors: one line on stderr, status 2, for every command -----------------------


@pytest.mark.parametrize("argv", [
    pytest.param(["config"], id="config"),
    pytest.param(["owner", SESSION_ID], id="owner"),
    pytest.param(["demo", "--port", str(free_port())], id="demo"),  # fails before listening
])
@pytest.mark.parametrize(("variable", "value"), [
    pytest.param("STICKYCTX_IDLE_TTL", "soon", id="bad-number"),
    pytest.param("STICKYCTX_SECRET_KEYS", "short", id="short-key"),
    pytest.param("STICKYCTX_NODES", "n2,n3", id="node-not-listed"),
])
def test_config_error_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str],
                                               env: pytest.MonkeyPatch, argv: list[str],
                                               variable: str, value: str) -> None:
    env.setenv(variable, value)
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("stickyctx: configuration error: ")
    assert variable in err
    assert value not in err.replace(variable, "")  # the value is never echoed


def test_doctor_reports_a_config_error_as_a_failed_check(capsys: pytest.CaptureFixture[str],
                                                         env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_IDLE_TTL", "soon")
    status, out, _ = run(capsys, "doctor")
    assert status == 2
    assert out.splitlines() == [
        "FAIL  settings    STICKYCTX_IDLE_TTL: expected a whole number"]


# doctor -------------------------------------------------------------------------------------


def test_doctor_all_ok(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "doctor")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "settings"], ["ok", "tokenizer"], ["ok", "store"], ["ok", "membership"]]
    assert "node n1, 1 signing key(s)" in lines[0]
    assert "cl100k_base" in lines[1]  # the canonical name, and the offline copy when used
    assert "memory://" in lines[2]
    assert "this node (n1) alone" in lines[3]


def test_doctor_names_the_encoding_and_the_membership(capsys: pytest.CaptureFixture[str],
                                                      env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_MODEL", "gpt-4")
    env.setenv("STICKYCTX_NODES", "n1=10.0.0.1:8000,n2=10.0.0.2:8000")
    status, out, _ = run(capsys, "doctor")
    assert status == 0
    lines = out.splitlines()
    assert "cl100k_base" in lines[1]  # picked from the model name
    assert "static, 2 node(s): n1=10.0.0.1:8000, n2=10.0.0.2:8000" in lines[3]
    assert "warning: memory://" in lines[3]  # several nodes cannot share an embedded store


def test_doctor_dev_mode_is_reported(capsys: pytest.CaptureFixture[str],
                                     env: pytest.MonkeyPatch) -> None:
    env.delenv("STICKYCTX_SECRET_KEYS")
    env.setenv("STICKYCTX_DEV", "1")
    status, out, err = run(capsys, "doctor")
    assert (status, err) == (0, "")
    assert "development mode (random key" in out.splitlines()[0]


@pytest.mark.parametrize(("variable", "value", "check", "expected_status"), [
    # A configuration error is status 2, a check that fails on a valid configuration 1.
    pytest.param("STICKYCTX_ENCODING", "no_such_base", "tokenizer", 2, id="unknown-encoding"),
    pytest.param("STICKYCTX_STORE_URL", "redis://127.0.0.1:{port}/0", "store", 1,
                 id="store-down"),
])
def test_doctor_fails_a_check_and_runs_the_others(
        capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, variable: str, value: str,
        check: str, expected_status: int) -> None:
    env.setenv("STICKYCTX_HASH_KEY", "h" * 40)  # required with Redis
    env.setenv(variable, value.format(port=free_port()))  # nothing listens on a fresh free port
    status, out, _ = run(capsys, "doctor")
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines()}
    assert lines.pop(check) == "FAIL"
    assert set(lines.values()) == {"ok"}
    assert set(lines) | {check} == {"settings", "tokenizer", "store", "membership"}
    assert status == expected_status


# owner --------------------------------------------------------------------------------------


def sign(owner: str, key: str = KEY_A, created: int | None = None) -> str:
    created = int(time.time()) if created is None else created
    return TokenCodec([key], max_age=86400).sign(SESSION_ID, owner, created)


def test_owner_of_a_token(capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_NODES", "n1,n2")
    env.setenv("STICKYCTX_ABSOLUTE_TTL", "400000000")  # so that a fixed creation time is valid
    status, out, err = run(capsys, "owner", sign("n2", created=1_700_000_000))
    assert (status, err) == (0, "")
    info = json.loads(out)
    assert info == {
        "kind": "token",
        "session_id": SESSION_ID,
        "owner": "n2",
        "owner_listed": True,
        "created": "2023-11-14T22:13:20+00:00",
        "signed_at": info["signed_at"],
        "expires_by": "2036-07-18T13:20:00+00:00",
        "verified_by": "key 1 of 1 (newest)",
    }


def test_owner_of_a_token_signed_with_an_older_key(capsys: pytest.CaptureFixture[str],
                                                   env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_SECRET_KEYS", f"{KEY_B},{KEY_A}")  # rotated: B is newest
    status, out, _ = run(capsys, "owner", sign("n1", key=KEY_A))
    assert status == 0
    assert json.loads(out)["verified_by"] == "key 2 of 2 (older: re-signed on next response)"


def test_owner_gone_shows_the_failover_owner(capsys: pytest.CaptureFixture[str],
                                             env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_NODES", "n1,n3,n4")
    status, out, _ = run(capsys, "owner", sign("n2"))
    info = json.loads(out)
    assert status == 0
    assert (info["owner"], info["owner_listed"]) == ("n2", False)
    assert info["failover_owner"] == place(SESSION_ID, parse_nodes("n1,n3,n4"))


@pytest.mark.parametrize("token", [
    pytest.param(sign("n1", key=KEY_B), id="unknown-key"),
    pytest.param(sign("n1")[:-2] + "xx", id="tampered"),
    pytest.param(sign("n1", created=1_000_000), id="expired"),
    pytest.param("not-a-token", id="garbage"),
])
def test_owner_refuses_an_unusable_token(capsys: pytest.CaptureFixture[str], token: str) -> None:
    status, out, err = run(capsys, "owner", token)
    assert (status, out) == (1, "")
    assert "not a valid session token" in err
    assert err.count("\n") == 1


def test_owner_of_a_bare_id_is_the_placement(capsys: pytest.CaptureFixture[str],
                                             env: pytest.MonkeyPatch) -> None:
    env.setenv("STICKYCTX_NODES", "n1,n2,n3")
    nodes = parse_nodes("n1,n2,n3")
    owners = set()
    for letter in "ABCDEFGHIJ":
        session_id = letter * 24
        status, out, _ = run(capsys, "owner", session_id)
        info = json.loads(out)
        assert status == 0
        assert info == {"kind": "session id", "owner": place(session_id, nodes),
                        "nodes": ["n1", "n2", "n3"]}
        owners.add(info["owner"])
    assert len(owners) > 1  # the answer depends on the id


def test_usage_errors_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["owner"])
    assert exited.value.code == 2
    assert "TOKEN_OR_ID" in capsys.readouterr().err


# demo ---------------------------------------------------------------------------------------


def test_examples_are_found_in_the_source_checkout() -> None:
    root = Path(__file__).resolve().parents[2]
    assert find_example("fastapi") == root / "examples" / "fastapi" / "app.py"
    assert find_example("flask") == root / "examples" / "flask" / "app.py"


@pytest.fixture
def demo_process(request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``stickyctx demo`` as a real process on a free port, from an unrelated directory."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STICKYCTX_", "OPENAI_"))}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stickyctx", "demo", "--port", str(port), *request.param],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: port_open(port), timeout=30, what="stickyctx demo", proc=proc)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:  # the test did not stop it itself
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


@pytest.mark.parametrize("demo_process", [
    pytest.param([], id="fastapi"),
    pytest.param(["--flask"], id="flask"),
], indirect=True)
def test_demo_serves_the_example(demo_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = demo_process
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<title>stickyctx chat</title>" in page.text
        assert page.headers["x-stickyctx-affinity"] == "new"
        assert "set-cookie" not in page.headers  # the page does not use the session
        answers: list[Any] = [client.post("/chat", json={"message": m}).json()
                              for m in ("my name is Ada", "and again")]
    # No keys configured: development mode, so the plain-http cookie came back.
    assert [a["turns"] for a in answers] == [1, 2]
    assert [a["affinity"] for a in answers] == ["new", "hit"]
    assert "I remember your name: Ada." in answers[1]["reply"]

    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert f"on {url}/" in out
    for hint in ("Try next:", f"{url}/history", "X-Stickyctx-Session"):
        assert hint in out
    assert "STICKYCTX_DEV=1" in err  # the random-key warning of development mode


# version, help, progress --------------------------------------------------------------------

def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"stickyctx {__version__}"


@pytest.mark.parametrize("command", ["demo", "config", "doctor", "owner", "inspect", "purge",
                                     "simulate", "lb-config"])
def test_help_text_has_no_restructuredtext_markup(capsys: pytest.CaptureFixture[str],
                                                  command: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: stickyctx " + command)
    assert "``" not in out
    assert ":func:" not in out
    assert ":class:" not in out


def test_simulate_shows_a_progress_bar_on_standard_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "simulate", "--nodes", "4", "--sessions", "10000",
                           "--json", "--progress")
    assert status == 0
    assert json.loads(out)["sessions"] == 10000  # standard output stays machine-readable
    assert "simulating:" in err
    assert "/30.0k" in err  # tqdm's bar: three passes over 10k sessions


@pytest.mark.parametrize("sessions", [5, 4096, 10_001])
def test_simulate_reports_all_of_its_work(sessions: int) -> None:
    done: list[int] = []
    simulate(3, sessions, progress=done.append)
    assert sum(done) == steps(sessions)
    assert all(n >= 0 for n in done)


def test_simulate_without_a_terminal_shows_no_bar(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "simulate", "--nodes", "4", "--sessions", "10000")
    assert status == 0
    assert err == ""
