"""The end-to-end benchmark runs and reports every variant (a few requests each; no timings).

Real processes: uvicorn and gunicorn serving the example apps and the bare apps, a private
``redis-server``, HAProxy configured by ``stickyctx lb-config``, and the load generator.
"""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    require_binary("redis-server")
    require_binary("haproxy")
    return load_benchmark("e2e", monkeypatch)


def test_e2e_benchmark_reports_every_variant_with_two_round_trips_per_turn(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Enough requests that even the bare app's CPU spans several of the kernel's 10 ms ticks
    # (/proc counts CPU time in ticks: 60 requests of the bare app can round to none).
    assert bench.main(["--requests", "400", "--concurrency", "4", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        if line.startswith("| ") and not line.startswith(("| variant", "|---")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    assert set(rows) == {v.name for v in bench.VARIANTS}
    for name, (rps, ratio, p50, p99, _p99r, cpu, scripts, commands, errors) in rows.items():
        assert float(rps.replace(",", "")) > 0, name
        assert float(p50) <= float(p99), name
        assert float(cpu.replace(",", "")) > 0, name
        assert errors == "0", name
        is_bare = "bare" in name
        assert (ratio == "") == is_bare, name
        if not is_bare:
            assert re.fullmatch(r"\d+\.\d\d×", ratio), (name, ratio)
        if "Redis" in name:
            # A turn is begin and commit: at most two script calls (the first turn of a new
            # session needs only the commit), measured by Redis's own INFO commandstats.
            assert 1.0 <= float(scripts) <= 2.0, (name, scripts)
            assert float(commands) > float(scripts), name
        else:
            assert scripts == commands == "", name
