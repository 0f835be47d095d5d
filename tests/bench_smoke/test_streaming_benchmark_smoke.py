"""The streaming benchmark runs end to end and reports every variant (no timing assertions)."""

from __future__ import annotations

import re

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary

pytestmark = pytest.mark.slow


def test_streaming_benchmark_reports_every_variant(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    require_binary("redis-server")
    bench = load_benchmark("streaming", monkeypatch)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1) for m in re.finditer(r"^\| ([^|]+?) \| [\d.]+ \|", out, re.M)}
    shapes = ("chunks at hand", "one chunk per loop turn")
    variants = {f"{name}, {shape}" for shape in shapes for name in (
        "bare StreamingResponse", "stickyctx, embedded store", "stickyctx, Redis")}
    assert variants | set(bench.RESUMES) <= rows
