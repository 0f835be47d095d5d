"""Fixtures of the context-window tests: the kinds (a handle path over a store backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import summarizers
from .backends import KINDS, MEMORY, Driver, EventLoop


@pytest.fixture(params=[pytest.param(name, id=name) for name in MEMORY])
def kind(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """``sync``: ``SyncConversation`` (the WSGI path); ``async``: ``Conversation`` (ASGI), on the
    memory store; ``@on(...)`` adds the Redis kinds (see ``backends``). The stores a Redis kind
    opened are closed when the test ends; the shared servers are never flushed."""
    name: str = request.param
    server = KINDS[name].server
    if server is None:
        yield Driver.memory(name)
        return
    driver = Driver.on_server(name, request.getfixturevalue(server).url)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def folded() -> Iterator[list[str]]:
    """What the well-behaved test summarizers were handed during the test."""
    summarizers.FOLDED.clear()
    yield summarizers.FOLDED
    summarizers.FOLDED.clear()


@pytest.fixture(scope="session", autouse=True)
def async_driver_loop() -> Iterator[None]:
    """Close the async kinds' event loop at the end of the run."""
    yield
    EventLoop.close()
