"""What the telemetry tests share: an SDK kit that keeps everything in memory, and a tiny chat
app behind each middleware, optionally wrapped (outside) in OpenTelemetry's own ASGI / WSGI
server instrumentation.

``OtelKit`` holds a tracer provider exporting to an ``InMemorySpanExporter`` and a meter provider
read by an ``InMemoryMetricReader``; both are injected into the middleware (never installed
globally). ``TelemetryEdge`` is one middleware around the chat app, with its store and clock; it
keeps one event loop for its ASGI requests, so that a Redis client stays on the loop it opened.

Chat app routes (raw ASGI / WSGI, JSON answers that always carry the session's id and affinity):
``GET /ping`` (does not touch the context), ``POST /chat {"message", "budget"?, "steal"?}``
(append the user message, assemble the window within ``budget``, append an echo; ``steal`` calls
``hooks.steal`` between the two appends), ``GET /history``, ``POST /rotate``, ``POST /destroy``,
``POST /clear``, ``POST /pop``. A JSON body's ``principal`` is set on the handle first.
"""

from __future__ import annotations

import asyncio
import atexit
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGI
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGI
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

try:  # the exporter's name from SDK 1.39 on (the older one warns)
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogExporter
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogExporter  # type: ignore[assignment]

from stickyctx import (
    Conversation,
    Settings,
    StickyMiddleware,
    StickyWSGIMiddleware,
    SyncConversation,
    get_context,
)
from stickyctx.core.storekeys import SessionKey
from stickyctx.telemetry import SCOPE
from tests.conftest import FakeClock
from tests.edges import RecordingStore, Reply, Req, asgi_request, make_store, wsgi_request
from tests.support.stores import SyncCalls

SESSION_HEADER = "X-Stickyctx-Session"


# The SDK, in memory ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One metric data point of stickyctx's meter."""

    name: str
    unit: str
    attributes: dict[str, Any]
    data: Any  # the SDK's NumberDataPoint or HistogramDataPoint


class OtelKit:
    def __init__(self, **tracer_options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(**tracer_options)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.log_exporter = InMemoryLogExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = self.exporter.get_finished_spans()
        return [s for s in found if name is None or s.name == name]

    def ours(self) -> list[ReadableSpan]:
        """The spans stickyctx made (its instrumentation scope)."""
        return [s for s in self.spans() if s.instrumentation_scope is not None
                and s.instrumentation_scope.name == SCOPE]

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind == SpanKind.SERVER]

    def clear(self) -> None:
        self.exporter.clear()
        self.log_exporter.clear()

    def logs(self) -> list[ReadableLogRecord]:
        """Every log record emitted through the kit's logger provider (audit events)."""
        return list(self.log_exporter.get_finished_logs())

    def metric_data(self) -> Any:
        return self.reader.get_metrics_data()

    def points(self, name: str | None = None, *, scope: str | None = SCOPE) -> list[Point]:
        """Every data point (of stickyctx's scope, by default), collected now."""
        data = self.metric_data()
        out: list[Point] = []
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                if scope is not None and scope_metrics.scope.name != scope:
                    continue
                for metric in scope_metrics.metrics:
                    if name is not None and metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        out.append(Point(metric.name, metric.unit,
                                         dict(point.attributes or {}), point))
        return out

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


T = TypeVar("T")


def one(found: Sequence[T]) -> T:
    """The only item (span or metric point) found."""
    assert len(found) == 1, found
    return found[0]


# The chat app ---------------------------------------------------------------------------------

@dataclass
class Hooks:
    """Test code the app runs mid-request: ``steal(session_id)`` between two appends."""

    steal: Callable[[str], None] | None = None


def _describe(conv: Conversation | SyncConversation) -> dict[str, Any]:
    return {"session_id": conv.session_id, "previous_id": conv.previous_id,
            "affinity": conv.affinity, "owner": conv.owner}


async def _asgi_route(conv: Conversation, path: str, body: dict[str, Any],
                      hooks: Hooks) -> dict[str, Any]:
    if "principal" in body:
        conv.principal = body["principal"]
    if path == "/ping":
        return {}
    if path == "/chat":
        await conv.append("user", body["message"])
        window = await conv.window(body.get("budget"))
        if body.get("steal") and hooks.steal is not None:
            hooks.steal(conv.session_id)
        await conv.append("assistant", "echo: " + body["message"])
        return {"window": len(window)}
    if path == "/rotate":
        await conv.rotate()
    elif path == "/destroy":
        await conv.destroy()
        return {}
    elif path == "/clear":
        await conv.clear()
        return {}
    elif path == "/pop":
        return {"popped": (await conv.pop()) is not None}
    return {"messages": len(await conv.messages())}


def _wsgi_route(conv: SyncConversation, path: str, body: dict[str, Any],
                hooks: Hooks) -> dict[str, Any]:
    if "principal" in body:
        conv.principal = body["principal"]
    if path == "/ping":
        return {}
    if path == "/chat":
        conv.append("user", body["message"])
        window = conv.window(body.get("budget"))
        if body.get("steal") and hooks.steal is not None:
            hooks.steal(conv.session_id)
        conv.append("assistant", "echo: " + body["message"])
        return {"window": len(window)}
    if path == "/rotate":
        conv.rotate()
    elif path == "/destroy":
        conv.destroy()
        return {}
    elif path == "/clear":
        conv.clear()
        return {}
    elif path == "/pop":
        return {"popped": conv.pop() is not None}
    return {"messages": len(conv.messages())}


def asgi_chat(hooks: Hooks) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        conv = get_context(scope)
        assert isinstance(conv, Conversation)
        body: dict[str, Any] = {}
        if scope["method"] == "POST":
            raw = (await receive()).get("body") or b"{}"
            body = json.loads(raw)
        out = await _asgi_route(conv, scope["path"], body, hooks)
        data = json.dumps({**_describe(conv), **out}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


def wsgi_chat(hooks: Hooks) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        conv = get_context(environ)
        assert isinstance(conv, SyncConversation)
        body: dict[str, Any] = {}
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        out = _wsgi_route(conv, environ["PATH_INFO"], body, hooks)
        data = json.dumps({**_describe(conv), **out}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(data)))])
        return [data]

    return app


# Edges ----------------------------------------------------------------------------------------

@dataclass
class TelemetryEdge:
    """The chat app behind ``StickyMiddleware`` (asgi) or ``StickyWSGIMiddleware`` (wsgi).

    ``instrument`` wraps OpenTelemetry's server middleware outside ours, on the same providers.
    ``memory`` (default) gives a recording memory store on ``clock``; ``memory=False`` lets the
    middleware open the store its settings name (Redis).
    """

    kind: str
    settings: Settings
    otel: OtelKit
    instrument: bool = True
    clock: FakeClock = field(default_factory=FakeClock)
    memory: bool = True
    hooks: Hooks = field(default_factory=Hooks)

    def __post_init__(self) -> None:
        recording: RecordingStore | None = (make_store(self.settings, self.clock)
                                            if self.memory else None)
        # Tests call its primitives directly (``edge.store.acquire_lease(...)``).
        self.store = SyncCalls(recording) if recording is not None else None
        self.loop = asyncio.new_event_loop() if self.kind == "asgi" else None
        self.sticky: Any
        if self.kind == "asgi":
            self.sticky = StickyMiddleware(
                asgi_chat(self.hooks), self.settings, clock=self.clock,
                store=recording, logger_provider=self.otel.logger_provider,
                **self.otel.providers())
            self.app: Any = (OtelASGI(self.sticky, **self.otel.providers())
                             if self.instrument else self.sticky)
        else:
            self.sticky = StickyWSGIMiddleware(wsgi_chat(self.hooks), self.settings,
                                               clock=self.clock, store=recording,
                                               logger_provider=self.otel.logger_provider,
                                               **self.otel.providers())
            self.app = OtelWSGI(self.sticky, **self.otel.providers()) if self.instrument \
                else self.sticky

    def request(self, method: str, path: str, *, token: str | None = "new",  # noqa: S107
                headers: Sequence[tuple[str, str]] = (), json: Any = None) -> Reply:
        """One request; ``token`` goes in the session header ("new" asks for a session; ``None``
        sends no session header: the cookie transport)."""
        sent = [*headers, *([(SESSION_HEADER, token)] if token is not None else [])]
        req = Req(method, path, tuple(sent), json)
        if self.loop is not None:
            return self.loop.run_until_complete(asgi_request(self.app, req))
        return wsgi_request(self.app, req)

    def key(self, session_id: str) -> SessionKey:
        return self.sticky.services.keys.derive(session_id)  # type: ignore[no-any-return]

    def close(self) -> None:
        heartbeat = self.sticky.heartbeat
        if self.loop is not None:
            if heartbeat is not None:
                self.loop.run_until_complete(heartbeat.stop(leave=False))
            if self.store is None:
                self.loop.run_until_complete(self.sticky.store.aclose())
            self.loop.close()
        else:
            if heartbeat is not None:
                heartbeat.stop(leave=False)
                atexit.unregister(heartbeat.stop)  # it would try to leave at exit
            if self.store is None:
                self.sticky.store.close()


class Client:
    """A non-browser client of one edge: keeps the token it is given."""

    def __init__(self, edge: TelemetryEdge, token: str = "new") -> None:  # noqa: S107
        self.edge = edge
        self.token = token
        self.tokens: list[str] = []  # every token issued to this client

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = self.edge.request(method, path, token=self.token, **kwargs)
        issued = reply.header(SESSION_HEADER.lower())
        if issued is not None:
            self.token = issued or "new"
            if issued:
                self.tokens.append(issued)
        return reply

    def chat(self, message: str, *, headers: Sequence[tuple[str, str]] = (),
             **fields: Any) -> Reply:
        return self.request("POST", "/chat", headers=headers, json={"message": message, **fields})
