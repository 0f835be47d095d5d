"""What OpenTelemetry costs inside stickyctx's ASGI middleware, per request.

One raw ASGI app behind ``StickyMiddleware``, called in-process (a prepared scope, a ``receive``
that returns an empty ``http.request``, a ``send`` that discards), in three telemetry setups side
by side in one process, interleaved in rounds (shuffled order each round):

- **no SDK**: only ``opentelemetry-api`` (its no-op tracer and meter, as when the application
  configures nothing);
- **SDK, no exporter**: SDK tracer and meter providers with no span processor and no metric
  reader (spans are recorded and attributes set, then dropped);
- **SDK, batch exporter**: a ``BatchSpanProcessor`` to an exporter that discards, and a
  ``PeriodicExportingMetricReader`` (every second) to a metric exporter that discards.

Each for a request that does not touch the context and one that appends a turn (a user and an
assistant message), next to the bare app without middleware.

    python benchmarks/telemetry.py            # full run (about a minute on a quiet machine)
    python benchmarks/telemetry.py --quick    # a few seconds, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from _asgi import http_scope  # sibling modules: benchmarks run as scripts
from _machine import describe
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from stickyctx import Settings, StickyMiddleware, get_context

SETTINGS = Settings(secret_keys=["x" * 40], node_id="bench", cookie_secure=False)
USER = "What is the capital of France? Answer in one short sentence."
ASSISTANT = "The capital of France is Paris."
TURNS_PER_SESSION = 100  # the append variants start a fresh session after this many turns
SESSION_HEADER = b"x-stickyctx-session"

ns = time.perf_counter_ns
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


# The app -------------------------------------------------------------------------------------

async def _answer(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def bare_app(scope: Scope, receive: Any, send: Any) -> None:
    await _answer(send)


async def chat_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/append":
        conv = get_context(scope)
        await conv.append("user", USER)  # type: ignore[misc]
        await conv.append("assistant", ASSISTANT)  # type: ignore[misc]
    await _answer(send)


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: dict[str, Any]) -> None:
    return None


def _scope(path: str, token: str) -> Scope:
    headers = [(b"host", b"bench.local"), (b"user-agent", b"bench"), (b"accept", b"*/*"),
               (SESSION_HEADER, token.encode("latin-1"))]
    return http_scope("POST", path, headers)


# Exporters that discard ------------------------------------------------------------------------

class DiscardSpans(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class DiscardMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self.exported = 0

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        self.exported += 1
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


@dataclass
class Setup:
    name: str
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    spans: DiscardSpans | None = None

    def shutdown(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def setups() -> list[Setup]:
    spans = DiscardSpans()
    batch = TracerProvider()
    batch.add_span_processor(BatchSpanProcessor(spans))
    reader = PeriodicExportingMetricReader(DiscardMetrics(), export_interval_millis=1000)
    assert AggregationTemporality.CUMULATIVE  # the default temporality of the reader
    return [
        Setup("no SDK"),
        Setup("SDK, no exporter", TracerProvider(), MeterProvider()),
        Setup("SDK, batch exporter", batch, MeterProvider(metric_readers=[reader]), spans),
    ]


# Variants ----------------------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    app: ASGIApp
    path: str
    sticky: bool
    fresh_every: int | None = None
    token: str = "new"
    used: int = 0
    samples: list[int] = field(default_factory=list)
    rounds: list[list[int]] = field(default_factory=list)

    async def mint(self) -> None:
        """A new session (untimed): its token comes back in the session header."""
        if not self.sticky:
            return
        sent: list[dict[str, Any]] = []

        async def record(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(_scope("/", "new"), _receive, record)
        start = next(m for m in sent if m["type"] == "http.response.start")
        self.token = dict(start["headers"])[SESSION_HEADER].decode("latin-1")
        self.used = 0

    async def check(self) -> None:
        """The measured request answers 200 as a sticky hit, with no token re-issued."""
        sent: list[dict[str, Any]] = []

        async def record(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(_scope(self.path, self.token), _receive, record)
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = dict(start["headers"])
        if start["status"] != 200 or (self.sticky and (
                headers.get(b"x-stickyctx-affinity") != b"hit" or SESSION_HEADER in headers)):
            raise RuntimeError(f"{self.name}: answered {start}")
        self.used += 1

    async def batch(self, n: int) -> list[int]:
        app, out = self.app, []
        base = _scope(self.path, self.token)
        for _ in range(n):
            if self.fresh_every is not None and self.used >= self.fresh_every:
                await self.mint()
                base = _scope(self.path, self.token)
            scope = dict(base)
            start = ns()
            await app(scope, _receive, _discard)
            out.append(ns() - start)
            self.used += 1
        return out


def build(chosen: list[Setup]) -> list[Variant]:
    variants = [Variant("bare app", bare_app, "/", sticky=False)]
    for setup in chosen:
        middleware = StickyMiddleware(chat_app, SETTINGS, tracer_provider=setup.tracer_provider,
                                      meter_provider=setup.meter_provider)
        variants.append(Variant(f"{setup.name}: context untouched", middleware, "/",
                                sticky=True))
        variants.append(Variant(f"{setup.name}: appends one turn", middleware, "/append",
                                sticky=True, fresh_every=TURNS_PER_SESSION))
    return variants


# Measurement and report ---------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    rounds: int
    batch: int
    warmup: int
    seed: int = 1


FULL = Plan(rounds=60, batch=200, warmup=1000)
QUICK = Plan(rounds=12, batch=60, warmup=100)


def plan_from(argv: Sequence[str] | None, description: str | None) -> Plan:
    """The plan the command line asks for (``--quick``, ``--rounds``, ...): this benchmark's
    and those that share its harness (``audit.py``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short, noisier run")
    parser.add_argument("--rounds", type=int, help="rounds (each runs every variant once)")
    parser.add_argument("--batch", type=int, help="requests per variant per round")
    parser.add_argument("--warmup", type=int, help="untimed requests per variant first")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round shuffle")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    return Plan(rounds=args.rounds or base.rounds, batch=args.batch or base.batch,
                warmup=base.warmup if args.warmup is None else args.warmup, seed=args.seed)


async def measure(variants: list[Variant], plan: Plan) -> None:
    for variant in variants:
        await variant.mint()
        await variant.check()
    for variant in variants:
        await variant.batch(plan.warmup)
    gc.collect()
    gc.freeze()
    rng = random.Random(plan.seed)
    order = list(variants)
    for _ in range(plan.rounds):
        rng.shuffle(order)
        for variant in order:
            gc.collect()
            times = await variant.batch(plan.batch)
            variant.samples.extend(times)
            variant.rounds.append(times)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _paired(variant: Variant, other: Variant) -> list[float]:
    """Per round: the variant's median minus the other's median in the same round."""
    return [_quantile(mine, 0.5) - _quantile(theirs, 0.5)
            for mine, theirs in zip(variant.rounds, other.rounds, strict=True)]


def _us(value: float) -> str:
    return f"{value / 1000:.1f}"


def report(variants: list[Variant]) -> str:
    bare = variants[0]
    lines = ["| variant | median µs | p90 µs | overhead µs (IQR) | telemetry µs (IQR) |",
             "|---|---:|---:|---:|---:|",
             f"| {bare.name} | {_us(_quantile(bare.samples, 0.5))} | "
             f"{_us(_quantile(bare.samples, 0.9))} | — | — |"]
    baseline = {v.path: v for v in variants if v.name.startswith("no SDK")}
    for v in variants[1:]:
        over = _paired(v, bare)
        cell = (f"{_us(_quantile(over, 0.5))} ({_us(_quantile(over, 0.25))}–"
                f"{_us(_quantile(over, 0.75))})")
        base = baseline[v.path]
        if v is base:
            extra = "—"
        else:
            diff = _paired(v, base)
            extra = (f"{_us(_quantile(diff, 0.5))} ({_us(_quantile(diff, 0.25))}–"
                     f"{_us(_quantile(diff, 0.75))})")
        lines.append(f"| {v.name} | {_us(_quantile(v.samples, 0.5))} | "
                     f"{_us(_quantile(v.samples, 0.9))} | {cell} | {extra} |")
    return "\n".join(lines)


def machine() -> str:
    return describe(("stickyctx", "opentelemetry-api", "opentelemetry-sdk"))


def main(argv: Sequence[str] | None = None) -> int:
    plan = plan_from(argv, __doc__.splitlines()[0] if __doc__ else None)
    chosen = setups()
    with warnings.catch_warnings():
        # Without network, stickyctx uses the identical offline copy of cl100k_base and warns.
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        variants = build(chosen)
    began = time.monotonic()
    try:
        asyncio.run(measure(variants, plan))
    finally:
        gc.unfreeze()
    elapsed = time.monotonic() - began
    exported = sum(s.spans.exported for s in chosen if s.spans is not None)
    for setup in chosen:
        setup.shutdown()
    exported_after = sum(s.spans.exported for s in chosen if s.spans is not None)

    print("## Telemetry overhead (in-process ASGI, per request)")
    print()
    print(f"Machine: {machine()}.")
    print(f"Plan: {plan.rounds} rounds × {plan.batch} requests per variant (shuffled order each "
          f"round) after {plan.warmup} warm-up requests per variant; "
          f"{plan.rounds * plan.batch} timed requests per variant; {elapsed:.0f} s. The batch "
          f"exporter had received {exported} spans by the end of the run "
          f"({exported_after} after its final flush).")
    print("Overhead: median over rounds of (variant's median − bare app's median in that "
          "round); telemetry: the same against the no-SDK variant of the same request; "
          "interquartile ranges over rounds in brackets.")
    print()
    print(report(variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
