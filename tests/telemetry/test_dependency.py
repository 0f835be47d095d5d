"""stickyctx needs ``opentelemetry-api`` only; it gets its tracer and meter once, under its own
instrumentation scope, from injected providers; and it skips attribute work for spans that are
not recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

import stickyctx
from stickyctx.telemetry import METRIC, SCOPE, SPAN
from tests.conftest import ROOT
from tests.edges import EDGES
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit

SERVE_BOTH = textwrap.dedent("""
    import asyncio, io, sys

    import stickyctx

    settings = stickyctx.Settings(secret_keys=["k" * 40], node_id="n1", cookie_secure=False)

    async def asgi_app(scope, receive, send):
        await stickyctx.get_context(scope).append("user", "hello")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi_app(environ, start_response):
        stickyctx.get_context(environ).append("user", "hello")
        start_response("200 OK", [])
        return [b"ok"]

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "headers": [], "client": None,
             "server": None}
    asyncio.run(stickyctx.StickyMiddleware(asgi_app, settings)(scope, receive, send))
    assert sent[0]["status"] == 200, sent

    statuses = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http"}
    body = stickyctx.StickyWSGIMiddleware(wsgi_app, settings)(
        environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert b"".join(body) == b"ok" and statuses == ["200 OK"], statuses
    body.close()

    assert "opentelemetry.trace" in sys.modules  # the API is what it uses
    sdk = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
    print("SDK MODULES:", sdk)
""")


def clean_env() -> dict[str, str]:
    """The environment without any OTEL_* or STICKYCTX_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STICKYCTX_"))}


def test_serving_requests_imports_nothing_from_the_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", SERVE_BOTH], env=clean_env(), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SDK MODULES: []"


@pytest.mark.parametrize("kind", EDGES)
def test_spans_and_metrics_carry_the_package_scope_and_version(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    Client(make_edge(kind, instrument=False)).chat("hello")
    spans = otel.spans()
    assert spans
    for span in spans:
        assert span.instrumentation_scope is not None
        assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
            SCOPE, stickyctx.__version__) == ("stickyctx", stickyctx.__version__)
    scopes = [s.scope for s in otel.metric_data().resource_metrics[0].scope_metrics]
    assert [(s.name, s.version) for s in scopes] == [("stickyctx", stickyctx.__version__)]


class CountingTracerProvider(TracerProvider):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracers = 0

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        self.tracers += 1
        return super().get_tracer(*args, **kwargs)


class CountingMeterProvider(MeterProvider):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meters = 0

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        self.meters += 1
        return super().get_meter(*args, **kwargs)


@pytest.mark.parametrize("kind", EDGES)
def test_the_tracer_and_meter_are_obtained_once(kind: str, make_edge: MakeEdge) -> None:
    kit = OtelKit()
    kit.tracer_provider = CountingTracerProvider()
    kit.meter_provider = CountingMeterProvider()
    client = Client(make_edge(kind, instrument=False, otel=kit))
    for text in ("one", "two", "three"):
        client.chat(text)
    client.request("POST", "/rotate")
    assert (kit.tracer_provider.tracers, kit.meter_provider.meters) == (1, 1)
    kit.shutdown()


@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize(("sampler", "recorded"), [
    pytest.param(ALWAYS_OFF, False, id="not-recording"),
    pytest.param(ALWAYS_ON, True, id="recording"),
])
def test_attribute_work_is_skipped_when_spans_are_not_recorded(
    kind: str, sampler: Sampler, recorded: bool, make_edge: MakeEdge,
) -> None:
    kit = OtelKit(sampler=sampler)
    edge = make_edge(kind, instrument=False, otel=kit)
    services = edge.sticky.services
    hashed: list[str] = []
    real = services.session_hash

    def counting(session_id: str) -> str:
        hashed.append(session_id)
        return str(real(session_id))

    services.session_hash = counting  # the one costly attribute: a keyed hash per span
    client = Client(edge)
    for text in ("one", "two"):
        client.chat(text)
    assert bool(hashed) is recorded
    assert bool(kit.spans(SPAN.AFFINITY)) is recorded
    # Metrics do not depend on sampling.
    requests = kit.points(METRIC.REQUESTS)
    assert sum(p.data.value for p in requests) == 2
    kit.shutdown()
