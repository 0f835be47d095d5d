"""The turn-cost benchmark runs end to end and reports every step (no figures asserted)."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_benchmark("turn_cost", monkeypatch)


def test_turn_cost_benchmark_reports_every_variant(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    require_binary("redis-server")  # the row of two PINGs runs on a private one
    # CPU time, not callgrind: a few requests per variant, each in a process of its own.
    assert bench.main(["--measure", "cpu", "--clients", "2", "--turns", "1,3"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| ([a-zA-Z0-9 +,]+) \|(.*)$", out, re.M)
            if m.group(1) != "variant"}
    assert list(rows) == list(bench.VARIANTS)
    for name, cells in rows.items():
        values = [c.strip() for c in cells.strip().strip("|").split("|")]
        assert float(values[0].replace(",", "")) > 0, name
        assert (values[1] != "") == (name in bench.STEPS[1:]), name
        assert re.fullmatch(r"\d+\.\d\d×", values[2]), name
    assert rows["bare app"].strip().endswith("1.00× |")


def test_a_failing_variant_is_an_error_not_a_figure(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variant whose requests fail must not report a cost (e.g. a 422 from a broken route).
    monkeypatch.setitem(bench.ENV, "STICKYCTX_STORE_URL", "nosuch://")
    with pytest.raises(RuntimeError, match="the run failed"):
        bench.main(["--measure", "cpu", "--clients", "1", "--turns", "1,1", "--only", "noop"])
