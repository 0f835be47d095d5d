"""Shared fixtures: settings, a controllable clock, free ports, real server processes
(``tests.support.apps``)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from stickyctx import Settings

# Re-exported for the tests: the one app harness, its readiness wait, the one port helper.
from tests.support.apps import AppServer as AppServer
from tests.support.apps import port_open as port_open
from tests.support.apps import wait_until as wait_until
from tests.support.ports import free_port as free_port

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
