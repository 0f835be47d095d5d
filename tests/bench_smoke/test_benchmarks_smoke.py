"""The middleware benchmark runs end to end and reports every variant (no timing assertions)."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_benchmark("middleware", monkeypatch)


def test_middleware_benchmark_reports_every_variant(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Enough requests that an append variant mints a fresh session mid-run.
    batch = bench.TURNS_PER_SESSION // 2 + 1
    assert bench.main(["--rounds", "2", "--batch", str(batch), "--warmup", "1"]) == 0
    out = capsys.readouterr().out

    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| ((?:ASGI|WSGI): [^|]+?) \|(.*)$",
                                                        out, re.M)}
    expected = {f"{v.edge}: {v.name}" for v in bench.build_variants()}
    assert len(expected) == 12
    assert set(rows) == expected
    for name, cells in rows.items():
        values = [c.strip() for c in cells.strip().strip("|").split("|")]
        assert len(values) == 5, name
        median, p90 = float(values[0]), float(values[1])
        assert 0 < median <= p90, name
        if name.endswith(("bare Starlette", "bare Flask")):
            assert values[2:] == ["—", "—", "—"], name
        else:
            float(values[2])  # an overhead figure, whatever its sign
            assert re.fullmatch(r"-?\d+\.\d+", values[4]), name
