"""The soak runs end to end at a small scale: a Redis crash under load loses no acknowledged
turn, stores none twice, and every conversation goes on after the restart.

Real processes: a uvicorn worker serving the FastAPI example, a private ``redis-server`` with
its append-only file, killed (``kill -9``) mid-run and restarted on the same files.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    require_binary("redis-server")
    return load_benchmark("soak", monkeypatch)


def test_a_crash_under_load_loses_and_duplicates_nothing(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    code = bench.main(["--clients", "8", "--seconds", "6", "--kill-at", "2", "--down", "0.5"])
    out = capsys.readouterr().out
    rows = {cells[1].strip(): cells[2].strip() for line in out.splitlines()
            if line.startswith("| ") and len(cells := line.split("|")) >= 4}
    assert code == 0, out
    assert rows["acknowledged turns lost"] == "0"
    assert rows["turns stored twice"] == "0"
    assert int(rows["turns acknowledged (200)"].replace(",", "")) > 8
    assert "503" in rows["failed attempts, retried with the same key"]  # the crash was felt
    assert rows["every conversation with an acknowledged turn after the restart"].endswith(
        "(8 of 8)")
