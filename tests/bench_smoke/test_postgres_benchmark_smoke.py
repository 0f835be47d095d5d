"""The PostgreSQL benchmark runs end to end on its own Redis and PostgreSQL and reports every
variant. No timing assertions: only the rows, and the steps that do not depend on timing (a
cold-tier restore costs one PostgreSQL step)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary
from tests.postgres_servers import find_binary

pytestmark = pytest.mark.slow


def test_postgres_benchmark_reports_every_variant(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    require_binary("redis-server")
    if find_binary("initdb") is None:
        require_binary("initdb")  # skips loudly (fails in CI)
    for package in ("agents", "asyncpg", "sqlalchemy"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"MISSING PACKAGE: {package} (pip install -e '.[bench]' provides it)")
    bench = load_benchmark("postgres", monkeypatch)
    assert bench.main(["--rounds", "1", "--batch", "2", "--messages", "4"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    for name in ("Redis load over the network (no hot tier)",
                 "cold-tier restore: PostgreSQL lookup, restore into Redis, load",
                 "PostgreSQL store: load", "SQLAlchemySession.get_items (asyncpg)",
                 "PostgreSQL store: append one message, at 4 messages",
                 "PostgreSQL store: append one message, at 40 messages",
                 "SQLAlchemySession.add_items, one item, at 4 items",
                 "SQLAlchemySession.add_items, one item, at 40 items",
                 "PostgreSQL store: stream push, one chunk (renewing the turn lease)",
                 "Redis: stream push, one chunk (renewing the turn lease)",
                 "PostgreSQL store: a turn's bookkeeping (conversation_change, index_add)",
                 "Redis: a turn's bookkeeping (conversation_change, index_add)",
                 "PostgreSQL store row", "cold-tier row (plain Redis DUMPs)"):
        assert name in rows, name
    restore = rows["cold-tier restore: PostgreSQL lookup, restore into Redis, load"]
    assert restore[-1] == "3 / 1"  # a miss, the restore, the load in Redis; one lookup in PG
    assert rows["PostgreSQL store: load"][-1] == "0 / 1"
    assert rows["a conversation in neither tier: Redis miss, PostgreSQL lookup"][-1] == "1 / 1"
    # One transaction per primitive: a push is one step, a turn's bookkeeping two.
    assert rows["PostgreSQL store: stream push, one chunk (renewing the turn lease)"][-1] == (
        "0 / 1")
    assert rows["PostgreSQL store: a turn's bookkeeping (conversation_change, index_add)"][
        -1] == "0 / 2"
    assert "Move to the cold tier" in out
