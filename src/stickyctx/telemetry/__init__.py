"""OpenTelemetry: a thin layer the rest calls into (``opentelemetry-api`` only).

Span and metric names are the constants below, mirrored by the tables in docs/observability.md.
Spans are INTERNAL children of whatever span is current (the server span of the OpenTelemetry
ASGI/WSGI instrumentation, when present); this package never starts a SERVER span. Telemetry
never carries a raw session id, a token, a cookie or message content: sessions are named by a
keyed hash. With no SDK configured the API's no-op tracer and meter cost almost nothing, and
attribute work is skipped when a span is not recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._version import __version__
from ..errors import FencedError

__all__ = ["ATTR", "METRIC", "SPAN", "Telemetry"]

SCOPE = "stickyctx"


class SPAN:
    AFFINITY = "stickyctx.affinity"
    LOAD = "stickyctx.session.lookup.load"
    SAVE = "stickyctx.session.lookup.save"
    WINDOW = "stickyctx.session.lookup.window"
    SUMMARIZE = "stickyctx.session.lookup.summarize"
    LEASE = "stickyctx.turn.lease"
    STORE = "stickyctx.store"  # other store operations: stickyctx.store <operation>
    MEMBERSHIP = "stickyctx.cluster.members.change"


class ATTR:
    SESSION_ID = "session.id"  # keyed hash, never the raw id
    SESSION_PREVIOUS_ID = "session.previous_id"
    AFFINITY = "stickyctx.affinity"
    NODE_ID = "stickyctx.node.id"
    OWNER_ID = "stickyctx.owner.id"
    TIER = "stickyctx.tier"  # local | store
    STALE = "stickyctx.stale"
    OPERATION = "stickyctx.store.operation"
    DB_SYSTEM = "db.system.name"
    MESSAGES_BEFORE = "stickyctx.messages.before"
    MESSAGES_AFTER = "stickyctx.messages.after"
    TOKENS_BEFORE = "stickyctx.tokens.before"
    TOKENS_AFTER = "stickyctx.tokens.after"
    EVICTED_GROUPS = "stickyctx.evicted.groups"
    WATERMARK = "stickyctx.summary.watermark"
    SUMMARY_APPLIED = "stickyctx.summary.applied"  # the fold won its compare-and-set
    SUMMARIZER = "stickyctx.summarizer"
    FALLBACK = "stickyctx.summary.fallback"
    LEASE_NAME = "stickyctx.lease.name"  # turn | summary
    LEASE_WAIT = "stickyctx.lease.wait"  # seconds this request had waited before this attempt
    LEASE_ACQUIRED = "stickyctx.lease.acquired"
    FENCE_REJECTED = "stickyctx.fence.rejected"
    KEY_FALLBACK = "stickyctx.key.fallback"  # the token verified with an older signing key
    DUPLICATES = "stickyctx.duplicates"
    MEMBERS = "stickyctx.members"
    JOINED = "stickyctx.members.joined"
    LEFT = "stickyctx.members.left"
    ERROR_TYPE = "error.type"
    STREAM_EVENT = "stickyctx.stream.event"  # see telemetry/streams.py
    STREAM_NODE = "stickyctx.stream.node"  # a resume served by: same (the generating node) | other


class METRIC:
    REQUESTS = "stickyctx.requests"
    SESSIONS_ACTIVE = "stickyctx.sessions.active"
    FAILOVERS = "stickyctx.failovers"
    LOAD_DURATION = "stickyctx.session.lookup.load.duration"
    SAVE_DURATION = "stickyctx.session.lookup.save.duration"
    STORE_ERRORS = "stickyctx.store.errors"
    DUPLICATES = "stickyctx.turns.duplicates"
    WINDOW_TOKENS = "stickyctx.window.tokens"
    SUMMARIES = "stickyctx.summaries"
    STREAMS = "stickyctx.streams"
    STREAM_REPLAYED = "stickyctx.stream.chunks.replayed"


_DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 0.5, 1.0, 2.5)
_TOKEN_BUCKETS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
_LOAD_OPS = frozenset({"load", "begin"})  # begin: a turn's lease and load in one step
_SAVE_OPS = frozenset({"append", "clear", "pop", "apply_summary", "recount"})


_UNCONFIGURED = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider",
                           "NoOpMeterProvider", "ProxyLoggerProvider", "NoOpLoggerProvider"})


def _configured(provider: object) -> bool:
    return type(provider).__name__ not in _UNCONFIGURED


class Telemetry:
    """Tracer, meter and instruments, obtained once. Providers are injectable for tests."""

    def __init__(
        self,
        *,
        node_id: str,
        db_system: str | None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        active_sessions: Any = None,
    ) -> None:
        self.node_id = node_id
        self.db_system = db_system
        self._active = tracer_provider is not None or meter_provider is not None
        self._recheck = 0.0  # when to look for a global SDK provider again
        # Writes go through to the store: this process's memory, or over the network.
        self._write_tier = "store" if db_system else "local"
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = self.meter = metrics.get_meter(SCOPE, __version__,
                                               meter_provider=meter_provider)
        self.requests = meter.create_counter(
            METRIC.REQUESTS, unit="{request}", description="Requests by affinity result")
        self.failovers = meter.create_counter(
            METRIC.FAILOVERS, unit="{session}", description="Sessions re-placed: owner gone")
        self.load_duration = meter.create_histogram(
            METRIC.LOAD_DURATION, unit="s", description="Context loads, by tier",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.save_duration = meter.create_histogram(
            METRIC.SAVE_DURATION, unit="s", description="Context writes, by operation and tier",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.store_errors = meter.create_counter(
            METRIC.STORE_ERRORS, unit="{error}", description="Store errors, by kind")
        self.duplicates = meter.create_counter(
            METRIC.DUPLICATES, unit="{message}",
            description="Messages dropped as retries of a stored turn (idempotency)")
        self.window_tokens = meter.create_histogram(
            METRIC.WINDOW_TOKENS, unit="{token}", description="Tokens of assembled windows",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.summaries = meter.create_counter(
            METRIC.SUMMARIES, unit="{summary}", description="Summaries applied (folds)")
        self._node = {ATTR.NODE_ID: node_id}
        if active_sessions is not None:
            meter.create_observable_gauge(
                METRIC.SESSIONS_ACTIVE, callbacks=[self._observe(active_sessions)],
                unit="{session}", description="Sessions this node owns that were recently active")

    def _observe(self, count: Any) -> Any:
        node = self._node

        def callback(_options: Any) -> Iterable[metrics.Observation]:
            yield metrics.Observation(int(count()), node)

        return callback

    def active(self) -> bool:
        """Whether an SDK is configured (injected, or set globally at any time): without one,
        the callers skip telemetry altogether, so it costs nothing.

        The global providers are looked up at most once a second (each lookup reads the
        environment); once an SDK is there it stays (OpenTelemetry sets a provider only once).
        """
        if self._active:
            return True
        now = time.monotonic()
        if now < self._recheck:
            return False
        if _configured(trace.get_tracer_provider()) or _configured(metrics.get_meter_provider()):
            self._active = True
            return True
        self._recheck = now + 1.0
        return False

    def observer(self) -> Telemetry | None:
        return self if self.active() else None

    # Request-level --------------------------------------------------------------------------

    def affinity(self, state: Any, session_hash: Callable[[str], str]) -> None:
        """The affinity decision (a ``core.flow.SessionState``): a span and the counters."""
        affinity = state.affinity
        self.requests.add(1, {ATTR.AFFINITY: affinity, **self._node})
        if affinity == "failover":
            self.failovers.add(1, self._node)
        span = self.tracer.start_span(SPAN.AFFINITY, kind=SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attributes({
                ATTR.AFFINITY: affinity, ATTR.NODE_ID: self.node_id, ATTR.OWNER_ID: state.owner,
                ATTR.SESSION_ID: session_hash(state.session_id),
                ATTR.KEY_FALLBACK: state.key_fallback,
            })
        span.end()

    # Store operations -----------------------------------------------------------------------

    def operation(self, method: str,
                  session_hash: Callable[[], str] | None) -> _Operation:
        """Wrap one store primitive (a context manager); the caller may add attributes to the
        dict it yields."""
        return _Operation(self, method, session_hash)

    # Events from the session logic ----------------------------------------------------------

    def record(self, name: str, attributes: Mapping[str, Any], started_ns: int,
               ended_ns: int) -> None:
        """A span for work done without I/O (window assembly, a fold), with its real times."""
        if name == SPAN.WINDOW and ATTR.TOKENS_AFTER in attributes:
            self.window_tokens.record(attributes[ATTR.TOKENS_AFTER], self._node)
        if name == SPAN.SUMMARIZE and attributes.get(ATTR.SUMMARY_APPLIED):
            self.summaries.add(1, self._node)
        span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, start_time=started_ns)
        if span.is_recording():
            span.set_attributes({ATTR.NODE_ID: self.node_id,
                                 **{k: v for k, v in attributes.items() if v is not None}})
        span.end(end_time=ended_ns)

    def membership(self, members: int, joined: list[str], left: list[str]) -> None:
        span = self.tracer.start_span(SPAN.MEMBERSHIP, kind=SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attributes({ATTR.NODE_ID: self.node_id, ATTR.MEMBERS: members,
                                 ATTR.JOINED: joined, ATTR.LEFT: left})
        span.end()


_OPERATION_SPANS = {"acquire_lease": SPAN.LEASE, **{m: SPAN.LOAD for m in _LOAD_OPS},
                    **{m: SPAN.SAVE for m in _SAVE_OPS}}


class _Operation:
    """One store primitive: its span and its metrics.

    The span is made current only when it records: a span that records nothing would cost a
    context switch for no trace (children of an unsampled span are not sampled either way).
    """

    __slots__ = ("extra", "method", "session_hash", "span", "started", "telemetry", "token")

    def __init__(self, telemetry: Telemetry, method: str,
                 session_hash: Callable[[], str] | None) -> None:
        self.telemetry = telemetry
        self.method = method
        self.session_hash = session_hash
        self.extra: dict[str, Any] = (
            {ATTR.TIER: telemetry._write_tier} if method in _SAVE_OPS else {})

    def __enter__(self) -> dict[str, Any]:
        name = _OPERATION_SPANS.get(self.method) or f"{SPAN.STORE} {self.method}"
        span = self.span = self.telemetry.tracer.start_span(name, kind=SpanKind.INTERNAL)
        self.token = (context.attach(trace.set_span_in_context(span)) if span.is_recording()
                      else None)
        self.started = time.perf_counter()
        return self.extra

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        elapsed = time.perf_counter() - self.started
        telemetry, method, extra = self.telemetry, self.method, self.extra
        node = telemetry._node
        failed = exc if isinstance(exc, Exception) else None
        if failed is not None:
            telemetry.store_errors.add(1, {ATTR.ERROR_TYPE: type(failed).__name__,
                                           ATTR.OPERATION: method, **node})
        if method in _LOAD_OPS:
            telemetry.load_duration.record(
                elapsed, {ATTR.TIER: extra.get(ATTR.TIER) or "store", **node})
        elif method in _SAVE_OPS:
            telemetry.save_duration.record(
                elapsed, {ATTR.OPERATION: method, ATTR.TIER: telemetry._write_tier, **node})
        if extra.get(ATTR.DUPLICATES):
            telemetry.duplicates.add(extra[ATTR.DUPLICATES], node)
        if self.token is None:
            return
        span = self.span
        try:
            attributes = {ATTR.OPERATION: method, ATTR.NODE_ID: telemetry.node_id, **extra}
            if self.session_hash is not None and ATTR.SESSION_ID not in attributes:
                attributes[ATTR.SESSION_ID] = self.session_hash()
            if telemetry.db_system:
                attributes[ATTR.DB_SYSTEM] = telemetry.db_system
            if failed is not None:
                kind = type(failed).__name__
                span.record_exception(failed)
                span.set_status(Status(StatusCode.ERROR, kind))
                attributes[ATTR.ERROR_TYPE] = kind
                if isinstance(failed, FencedError):
                    attributes[ATTR.FENCE_REJECTED] = True
            span.set_attributes(attributes)
        finally:
            span.end()
            context.detach(self.token)
