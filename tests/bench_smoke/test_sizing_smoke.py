"""The sizing script runs end to end on its own redis-server and reports every variant."""

from __future__ import annotations

import re
from types import ModuleType

import pytest

from tests.benchmark_loader import load_benchmark
from tests.conftest import require_binary

BYTES = r"([\d,]+) B"


@pytest.fixture
def sizing(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    require_binary("redis-server")
    return load_benchmark("sizing", monkeypatch)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_sizing_reports_every_variant_with_memory_above_the_payload(
    sizing: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sizing.main(["--sessions", "3", "--messages", "4"]) == 0
    out = capsys.readouterr().out

    payload = _number(re.search(r"Payload per session: ([\d,]+) bytes", out).group(1))  # type: ignore[union-attr]
    assert payload > 0
    names = [v.name for v in sizing.VARIANTS]
    redis_rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        rf"^\| ([a-z, ]+) \| {BYTES} \| {BYTES} \| ([\d.]+) \| (\d+) \|", out, re.M)}
    process_rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        rf"^\| ([a-z, ]+) \| {BYTES} \| ([\d.]+) \| (?:{BYTES} \| [\d.]+|— \| —) \|$", out, re.M)}
    assert sorted(redis_rows) == sorted(names)
    assert sorted(process_rows) == sorted(names)
    for name in names:
        per_session, _per_message, _ratio, keys = redis_rows[name]
        # Redis holds every message's JSON (sealed or not) plus its keys: never less.
        assert _number(per_session) > payload, name
        # meta and messages (a new session's first turn takes no lease: no fence counter yet);
        # the dedupe set with turn ids.
        assert int(keys) == (3 if "turn ids" in name else 2), name
        hot, _ratio, embedded = process_rows[name]
        assert _number(hot) > payload, name  # the hot tier holds the decoded history
        if "encrypted" in name:
            assert embedded is None, name  # the embedded store never encrypts
        else:
            assert _number(embedded) > payload, name
    # Sealing makes every stored message longer (nonce, tag, base64).
    assert _number(redis_rows["encrypted"][0]) > _number(redis_rows["plain"][0])
