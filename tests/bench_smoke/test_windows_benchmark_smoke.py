"""The context-window benchmark runs end to end and reports every variant (no timing assertions)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark

TIME = re.compile(r"[\d,]+\.\d\d? (µs|ms)")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    if importlib.util.find_spec("langchain_core") is None:
        pytest.skip("MISSING PACKAGE: langchain-core is not installed; the window benchmark "
                    "compares against its trim_messages (pip install -e '.[dev]' provides it)")
    return load_benchmark("windows", monkeypatch)


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            keys = 3 if cells[0] in ("sliding", "summarize") else 1  # prefix rows: 3 key columns
            rows[" | ".join(cells[:keys])] = cells[keys:]
    return rows


def test_window_benchmark_reports_every_variant(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # 120 messages exceed the 8,000-token budget, so every variant evicts; 30 turns exceed 2,000.
    assert bench.main(["--quick", "--sizes", "120", "--turns", "30"]) == 0
    rows = _rows(capsys.readouterr().out)

    for variant in (bench.LOADED, bench.FRESH, bench.SUMMARIZED, bench.TRIM, bench.APPEND):
        assert TIME.fullmatch(rows[variant][0]), (variant, rows.get(variant))
    for name, cells in rows.items():
        if name.startswith("ratio trim_messages"):
            assert re.fullmatch(r"[\d,]+×", cells[0]), name
    assert sum(name.startswith("ratio trim_messages") for name in rows) == 2
    # stickyctx with eviction="turn" keeps exactly the messages trim_messages keeps.
    assert rows['eviction="turn" keeps what trim_messages keeps'] == ["yes"]
    messages, tokens = rows["window (block eviction): messages / tokens"][0].split(" / ")
    assert 0 < int(messages) < 120
    assert 0 < int(tokens.replace(",", "")) <= bench.BUDGET

    for pruning in ("sliding", "summarize"):
        for budget in ("2,000", "8,000"):
            for eviction in ("block", "turn"):
                cells = rows[f"{pruning} | {eviction} | {budget}"]
                assert re.fullmatch(r"\d+% \(\d+/29\)", cells[0]), cells
                if pruning == "summarize":
                    assert re.fullmatch(r"\d+ / \d+", cells[3]), cells
                    assert cells[4].isdigit(), cells
    # With a 2,000-token budget, 30 turns fold something into the summary.
    inline, late = rows["summarize | block | 2,000"][3].split(" / ")
    assert int(inline) + int(late) > 0
