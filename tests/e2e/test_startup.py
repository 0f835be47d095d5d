"""Real servers: a configuration error stops the process at startup, naming the variable, in
every documented way of starting; a Flask node stopped by SIGTERM leaves the membership at once.

Before: with ``app.add_middleware(StickyMiddleware, ...)`` under uvicorn's default lifespan mode,
a bad model name or Redis URL option did not stop startup (uvicorn took the error for "lifespan
unsupported"), and then every route answered 500.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import KEY_A, ROOT, free_port, port_open, require_binary, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HASH_KEY = "startup-hash-" + "h" * 40
BAD = {
    "STICKYCTX_MODEL": "no-such-model-anywhere",
    "STICKYCTX_STORE_URL": "redis://127.0.0.1:1/0?no_such_option=1",
}
WAYS = {
    "uvicorn, FastAPI add_middleware (lifespan auto)":
        ["-m", "uvicorn", "examples.fastapi.app:app", "--lifespan", "auto"],
    "uvicorn, FastAPI add_middleware (lifespan on)":
        ["-m", "uvicorn", "examples.fastapi.app:app", "--lifespan", "on"],
    "uvicorn, raw ASGI app wrapped directly":
        ["-m", "uvicorn", "tests.e2e.wrapped:app"],
    "gunicorn, Flask StickyCtx(app)":
        ["-m", "gunicorn", "examples.flask.app:app", "--workers", "1"],
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STICKYCTX_", "OTEL_"))}
    env.update({"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1",
                "STICKYCTX_COOKIE_SECURE": "0", "STICKYCTX_HASH_KEY": HASH_KEY,
                # This tree's package first, as the app servers of tests.conftest have it (an
                # installed copy of another tree would otherwise be imported).
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}, **extra)
    return env


def _command(way: list[str], port: int) -> list[str]:
    bind = (["--bind", f"127.0.0.1:{port}"] if "gunicorn" in way
            else ["--host", "127.0.0.1", "--port", str(port)])
    return [sys.executable, *way, *bind]


@pytest.mark.parametrize("variable", sorted(BAD))
@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_bad_setting_stops_the_server_at_startup_naming_the_variable(
    way: str, variable: str, tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(_command(WAYS[way], port), env=_env(**{variable: BAD[variable]}),
                                  cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            served = port_open(port)
            server.kill()
            server.wait()
            pytest.fail(f"{way}: still running after 60 s (port open: {served})")
    assert code != 0
    assert variable in log.read_text(errors="replace")


def test_a_flask_node_stopped_by_sigterm_leaves_the_membership_at_once(redis_server: object,
                                                                       tmp_path: Path) -> None:
    require_binary("redis-server")
    port, url = free_port(), redis_server.url  # type: ignore[attr-defined]
    env = _env(STICKYCTX_STORE_URL=url, STICKYCTX_NAMESPACE="startup",
               STICKYCTX_HEARTBEAT_INTERVAL="20")  # a beat lives 60 s: leaving must be explicit
    log = tmp_path / "server.log"
    raw = redis.Redis.from_url(url)
    with log.open("wb") as out:
        server = subprocess.Popen(_command(WAYS["gunicorn, Flask StickyCtx(app)"], port),
                                  env=env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_open(port), timeout=30, what="gunicorn", proc=server)
            import httpx

            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            members = "startup:{members}:h"
            wait_until(lambda: raw.hexists(members, "n1"), timeout=10,
                       what="the node in the membership")
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    try:
        assert not raw.hexists(members, "n1"), log.read_text(errors="replace")
    finally:
        raw.close()
