"""The Redis store benchmark runs end to end against its own server and reports every variant.

No timing assertions: only that every row is there with numbers, and what does not depend on
timing (round trips per operation, and that a version-checked read is never stale).
"""

from __future__ import annotations

import importlib.util
import os
import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary

TIME = r"[\d,]+(?:\.\d)?"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    require_binary("redis-server")
    if importlib.util.find_spec("agents") is None:
        pytest.skip("MISSING PACKAGE: openai-agents is not installed; the Redis benchmark "
                    "compares against its RedisSession (pip install -e '.[bench]' provides it)")
    return load_benchmark("redis_store", monkeypatch)


def _rows(section: str) -> dict[str, list[str]]:
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_redis_benchmark_reports_every_variant(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    argv = ["--quick", "--sizes", "10", "--rounds", "1", "--stale-trials", "6",
            "--placement", "same", "--big", "1500"]
    assert bench.main(argv) == 0
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity  # the benchmark unpinned this process
    out = capsys.readouterr().out

    sections = out.split("### Placement: ")
    assert sections[0].startswith("## Redis store")
    assert len(sections) == 2, out  # one placement asked for
    timings, rest = sections[1].split("Round trips and commands")
    rows = _rows(timings)

    for name in (*bench.APPENDS, *bench.LOADS):
        assert re.fullmatch(rf"{TIME} / {TIME}", rows[name][0]), (name, rows[name])
    for name in bench.CLIENTS:
        assert all(re.fullmatch(TIME, cell) for cell in rows[name]), (name, rows[name])
    # Issue 11's figures, one row each, with the issue's figure, this run's and the aim.
    figures = [bench.FIGURE_TURN, bench.FIGURE_APPEND,
               bench.FIGURE_HIT.replace("100", "10"), bench.FIGURE_IN_TURN.replace("100", "10"),
               bench.FIGURE_MESSAGES.replace("1,000", "10"),
               bench.FIGURE_MESSAGES_IN_TURN.replace("1,000", "10"),
               bench.FIGURE_COLD.format(size=10), bench.FIGURE_COLD.format(size=1500)]
    for name in figures:
        before, now, aim, met = rows[name]
        assert re.fullmatch(r"[\d.]+×|—", before), (name, before)
        assert re.fullmatch(r"[\d.]+×( faster)?", now), (name, now)
        assert re.fullmatch(r"[≥≤] [\d.]+×", aim), (name, aim)
        assert met in ("yes", "no"), (name, met)
    assert "Long history (1,500 messages, 3 calls each" in timings
    ratios = [name for name in rows if "÷" in name and name not in figures]
    assert len(ratios) == 12
    for name in ratios:
        assert re.fullmatch(r"[\d.]+× \([\d.]+–[\d.]+\)", rows[name][0]), (name, rows[name])

    commands = _rows(rest.split("Staleness")[0])
    for name in (*bench.APPENDS, *bench.LOADS):
        assert name in commands, name
    # What does not depend on timing: stickyctx appends and loads in one round trip, a single
    # EVALSHA; the pub/sub-validated hit makes none.
    # Counted by the server: a client may send a write again when its connection broke before
    # the server read it (redis-py's retry), which the client-side count sees and Redis never ran.
    for name in (bench.S_APPEND, bench.A_APPEND, bench.S_HANDLE, bench.A_HANDLE,
                 bench.S_HIT, bench.A_HIT, bench.A_MESSAGES, bench.S_COLD, bench.A_COLD):
        trips, sent, executed = commands[name][:3]
        assert float(trips) < 2, (name, commands[name])
        assert sent.split(": ")[1].split(" ×")[0] == "EVALSHA", (name, commands[name])
        assert "EVALSHA" in executed, (name, commands[name])
        assert "EVALSHA ×" not in executed, (name, commands[name])  # one script per call
    # A turn under the lock: begin (lease + load) and commit (append + release), two scripts.
    assert commands[bench.A_LOCKED][:2] == ["2", "2: EVALSHA ×2"]
    assert commands[bench.P_HIT][:2] == ["0", "0"]
    # A read inside a begun turn rides on the begin: no round trip of its own.
    assert commands[bench.A_IN_TURN][:2] == ["0", "0"]
    assert "PUBLISH" in commands[bench.P_APPEND][2]
    assert float(commands[bench.AG_ADD][0]) >= 1

    staleness = _rows(rest.split("Staleness")[1])
    assert set(staleness) >= {"idle", "busy (500 µs slices)"}
    for loop in ("idle", "busy (500 µs slices)"):
        reads, pubsub, checked, window, never = staleness[loop]
        assert reads == "6"
        assert re.fullmatch(r"\d/3 \(\d+%\)", pubsub), pubsub
        assert checked == "0/3"  # a version-checked read is never stale
        assert re.fullmatch(r"(-?[\d,.]+ / ){2}-?[\d,.]+", window), window
        assert never == "0"
