"""The telemetry benchmark runs end to end and reports every variant (no timing assertions)."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_benchmark("telemetry", monkeypatch)


def test_telemetry_benchmark_reports_every_variant(
    bench: ModuleType, capsys: pytest.CaptureFixture[str],
) -> None:
    # Enough requests that an append variant mints a fresh session mid-run.
    batch = bench.TURNS_PER_SESSION // 2 + 1
    assert bench.main(["--rounds", "2", "--batch", str(batch), "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| ([^|]+?) \|(.*)$", out, re.M)
            if m.group(1) not in ("variant", "---")}
    setups = ("no SDK", "SDK, no exporter", "SDK, batch exporter")
    requests = ("context untouched", "appends one turn")
    assert set(rows) == {"bare app"} | {f"{s}: {r}" for s in setups for r in requests}
    for name, cells in rows.items():
        numbers = re.findall(r"\d+\.\d", cells)
        assert len(numbers) >= (2 if name == "bare app" else 5), (name, cells)
    # The batch exporter really exported.
    exported = re.search(r"received (\d+) spans by the end of the run \((\d+) after", out)
    assert exported is not None
    assert int(exported.group(2)) > 0
