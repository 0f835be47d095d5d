"""The audit benchmark runs end to end and reports every variant (no timing assertions)."""

from __future__ import annotations

import re

import pytest

from tests.benchmark_loader import load_benchmark


def test_audit_benchmark_reports_every_variant(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load_benchmark("audit", monkeypatch)
    assert bench.main(["--rounds", "2", "--batch", "5", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| ([^|]+?) \|(.*)$", out, re.M)
            if m.group(1) not in ("variant", "---")}
    assert set(rows) == {"bare app", "audit off: appends one turn",
                         "audit on, no logs SDK: appends one turn",
                         "audit on, batch exporter: appends one turn"}
    exported = re.search(r"The batch exporter received (\d+) audit records", out)
    assert exported is not None
    assert int(exported.group(1)) > 0  # the records really went out
