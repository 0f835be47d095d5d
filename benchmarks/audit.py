"""What the audit trail costs inside stickyctx's ASGI middleware, per turn.

The harness of ``benchmarks/telemetry.py`` (a raw ASGI app behind ``StickyMiddleware``, called
in-process, variants interleaved in shuffled rounds), for a request that appends one turn (a
user and an assistant message; a read and a write, so two audit events) on an existing session,
with tracing and metrics left to the API alone (no SDK), in three audit setups side by side:

- **audit off**: ``STICKYCTX_AUDIT`` unset (the default);
- **audit on, no logs SDK**: on, but no logger provider configured (nothing would keep a record);
- **audit on, batch exporter**: an SDK ``LoggerProvider`` with a ``BatchLogRecordProcessor`` to
  an exporter that discards.

    python benchmarks/audit.py            # full run (about half a minute on a quiet machine)
    python benchmarks/audit.py --quick    # a few seconds, noisier
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from _machine import describe  # sibling modules: benchmarks run as scripts
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

from stickyctx import StickyMiddleware
from telemetry import (
    SETTINGS,
    TURNS_PER_SESSION,
    Variant,
    _paired,
    _quantile,
    _us,
    bare_app,
    chat_app,
    measure,
    plan_from,
)


class DiscardLogs(LogRecordExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.exported += len(batch)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def build(logs: DiscardLogs) -> tuple[list[Variant], LoggerProvider]:
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    on = replace(SETTINGS, audit=("otel",))
    variants = [Variant("bare app", bare_app, "/", sticky=False)]
    for name, settings, logger_provider in (("audit off", SETTINGS, None),
                                            ("audit on, no logs SDK", on, None),
                                            ("audit on, batch exporter", on, provider)):
        middleware = StickyMiddleware(chat_app, settings, logger_provider=logger_provider)
        variants.append(Variant(f"{name}: appends one turn", middleware, "/append", sticky=True,
                                fresh_every=TURNS_PER_SESSION))
    return variants, provider


def report(variants: list[Variant]) -> str:
    bare, off = variants[0], variants[1]
    lines = ["| variant | median µs | p90 µs | overhead µs (IQR) | audit µs (IQR) |",
             "|---|---:|---:|---:|---:|",
             f"| {bare.name} | {_us(_quantile(bare.samples, 0.5))} | "
             f"{_us(_quantile(bare.samples, 0.9))} | — | — |"]
    for v in variants[1:]:
        over = _paired(v, bare)
        cells = [f"{_us(_quantile(over, 0.5))} ({_us(_quantile(over, 0.25))}–"
                 f"{_us(_quantile(over, 0.75))})", "—"]
        if v is not off:
            diff = _paired(v, off)
            cells[1] = (f"{_us(_quantile(diff, 0.5))} ({_us(_quantile(diff, 0.25))}–"
                        f"{_us(_quantile(diff, 0.75))})")
        lines.append(f"| {v.name} | {_us(_quantile(v.samples, 0.5))} | "
                     f"{_us(_quantile(v.samples, 0.9))} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    plan = plan_from(argv, __doc__.splitlines()[0] if __doc__ else None)
    logs = DiscardLogs()
    with warnings.catch_warnings():
        # Without network, stickyctx uses the identical offline copy of cl100k_base and warns.
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        variants, provider = build(logs)
    began = time.monotonic()
    try:
        asyncio.run(measure(variants, plan))
    finally:
        gc.unfreeze()
    elapsed = time.monotonic() - began
    provider.shutdown()

    print("## Audit trail overhead (in-process ASGI, per appended turn)")
    print()
    print(f"Machine: {describe(('stickyctx', 'opentelemetry-api', 'opentelemetry-sdk'))}.")
    print(f"Plan: {plan.rounds} rounds × {plan.batch} requests per variant (shuffled order each "
          f"round) after {plan.warmup} warm-up requests per variant; "
          f"{plan.rounds * plan.batch} timed requests per variant; {elapsed:.0f} s. The batch "
          f"exporter received {logs.exported} audit records.")
    print("Overhead: median over rounds of (variant's median − bare app's median in that "
          "round); audit: the same against the audit-off variant; interquartile ranges over "
          "rounds in brackets.")
    print()
    print(report(variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
