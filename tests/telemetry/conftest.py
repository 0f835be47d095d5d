"""Fixtures of the telemetry tests: an in-memory SDK kit and edges built on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stickyctx import Settings
from tests.conftest import make_settings
from tests.telemetry.harness import OtelKit, TelemetryEdge

MakeEdge = Callable[..., TelemetryEdge]


@pytest.fixture
def otel() -> Iterator[OtelKit]:
    kit = OtelKit()
    yield kit
    kit.shutdown()


@pytest.fixture
def make_edge(otel: OtelKit) -> Iterator[MakeEdge]:
    """``make_edge(kind, settings=None, **options)``: edges on the ``otel`` kit, closed after."""
    made: list[TelemetryEdge] = []

    def make(kind: str, settings: Settings | None = None, **options: Any) -> TelemetryEdge:
        options.setdefault("otel", otel)
        edge = TelemetryEdge(kind, settings if settings is not None else make_settings(),
                             **options)
        made.append(edge)
        return edge

    yield make
    for edge in made:
        edge.close()
