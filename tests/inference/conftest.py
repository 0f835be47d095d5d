"""Fixtures of the inference-router tests: stub model servers, a real router, the test apps."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import KEY_A, AppServer

from .servers import Router, StubModelServer

FASTAPI = "tests.inference.fastapi_app:app"
FLASK = "tests.inference.flask_app:asgi"


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's shell reaches the app processes."""
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture
def model_servers(tmp_path: Path) -> Iterator[Callable[[str], StubModelServer]]:
    """``model_servers("A")``: a running stub model server named A; all killed at the end."""
    with ExitStack() as stack:
        def start(name: str) -> StubModelServer:
            server = StubModelServer(name, tmp_path / f"stub-{name}.log")
            stack.callback(server.close)
            return server

        yield start


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Callable[[str, list[StubModelServer]], Router]]:
    """``router("sglang", servers)``: a real router in front of ``servers``, stopped at the end."""
    with ExitStack() as stack:
        def start(kind: str, servers: list[StubModelServer]) -> Router:
            started = Router(kind, servers, tmp_path / f"router-{kind}.log")
            stack.callback(started.close)
            return started

        yield start


@pytest.fixture
def chat_app(clean_environ: None,
             app_server: Callable[..., AppServer]) -> Callable[[str, str, str], AppServer]:
    """``chat_app(target, router_kind, base_url)``: a test app (FASTAPI or FLASK) that calls
    ``base_url`` with the hints of ``router_kind``."""
    def start(target: str, kind: str, base_url: str) -> AppServer:
        return app_server(target, {
            "STICKYCTX_SECRET_KEYS": KEY_A,
            "STICKYCTX_NODE_ID": "n1",
            "STICKYCTX_COOKIE_SECURE": "0",
            "STICKYCTX_INFERENCE_ROUTER": kind,
            "MODEL_BASE_URL": base_url,
        })

    return start
