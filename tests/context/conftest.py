"""Fixtures of the context-window tests: the two drivers (sync handle, async handle)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import summarizers
from .harness import DRIVERS, EventLoop


@pytest.fixture(params=DRIVERS)
def kind(request: pytest.FixtureRequest) -> str:
    """``sync``: ``SyncConversation`` (the WSGI path); ``async``: ``Conversation`` (ASGI)."""
    value: str = request.param
    return value


@pytest.fixture
def folded() -> Iterator[list[str]]:
    """What the well-behaved test summarizers were handed during the test."""
    summarizers.FOLDED.clear()
    yield summarizers.FOLDED
    summarizers.FOLDED.clear()


@pytest.fixture(scope="session", autouse=True)
def async_driver_loop() -> Iterator[None]:
    """Close the async driver's event loop at the end of the run."""
    yield
    EventLoop.close()
