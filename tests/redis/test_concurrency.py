"""Concurrency on Redis: OS processes appending to one session lose and duplicate nothing, and
sessions appending interleaved never see each other's messages."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.support.stores import SyncCalls

from . import writers
from .conftest import HASH_KEY, NewKey, OpenStore, Target, msg

PROCESSES, APPENDS = 4, 50


def test_processes_appending_to_one_session_store_everything_once_in_each_writers_order(
    standalone: Target, new_key: NewKey, namespace: str, open_store: OpenStore
) -> None:
    plain, retried = new_key(), new_key()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=writers.append_turns, name=f"writer-{w}", args=(
            standalone.url, namespace, HASH_KEY, (plain.tag, retried.tag), w, APPENDS, barrier))
        for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=90)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    store = open_store(standalone.url)
    for key in (plain, retried):
        snapshot = store.load(key)
        assert [m.seq for m in snapshot.messages] == list(range(1, PROCESSES * APPENDS + 1))
        contents = [m.content for m in snapshot.messages]
        assert len(set(contents)) == len(contents)  # no duplicates, retries included
        for w in range(PROCESSES):
            assert [c for c in contents if c.startswith(f"w{w} ")] == [
                f"w{w} n{n}" for n in range(APPENDS)]
        assert snapshot.total_tokens == 5 * PROCESSES * APPENDS
    assert store.sync_io.client.scard(retried.key("d")) == PROCESSES * APPENDS


_OPS = st.lists(st.tuples(st.integers(0, 3), st.text("abcxyz: ", max_size=6)),
                min_size=1, max_size=24)
THREADS = 3


@pytest.fixture
def nodes(standalone: Target, open_store: OpenStore) -> list[SyncCalls]:
    """Two nodes: stores with a client and a hot tier each."""
    return [open_store(standalone.url) for _ in range(2)]


@hsettings(max_examples=25, deadline=None,
           # The nodes are shared by the examples on purpose: every example has fresh sessions.
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_sessions_appending_interleaved_never_see_each_others_messages(
    nodes: list[SyncCalls], new_key: NewKey, ops: list[tuple[int, str]],
) -> None:
    keys = [new_key() for _ in range(4)]
    errors: list[BaseException] = []
    created = time.time()

    def thread(t: int) -> None:
        try:
            for n, (s, text) in enumerate(ops[t::THREADS]):
                node = nodes[(n + t) % 2]
                node.append(keys[s], [msg("user", f"s{s}|t{t}|{n}|{text}")], created=created)
                seen = [m.content for m in node.load(keys[s]).messages]
                assert all(c.startswith(f"s{s}|") for c in seen), (s, seen)
                assert f"s{s}|t{t}|{n}|{text}" in seen
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for s, key in enumerate(keys):
        expected = Counter(f"s{s}|t{i % THREADS}|{i // THREADS}|{text}"
                           for i, (session, text) in enumerate(ops) if session == s)
        for node in nodes:
            snapshot = node.load(key)
            assert Counter(m.content for m in snapshot.messages) == expected
            assert [m.seq for m in snapshot.messages] == list(range(1, len(expected) + 1))
