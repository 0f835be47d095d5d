"""The hot tier: a node's cache of decoded histories, validated by one script call per load.

A hit answers ``same`` (no history crosses the network, nothing is decoded); after another
node's appends only the new tail crosses; after a rewrite (clear, pop, a summary that deletes,
a recount) the history is loaded in full. Never stale: every load equals a fresh node's load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from stickyctx.core.flow import SessionState
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import Snapshot, build_message
from stickyctx.core.storekeys import SessionKey
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.sansio import run_sync
from stickyctx.session.handle import SyncConversation
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores.redis import schema
from tests.support.stores import SyncCalls

from .conftest import NewKey, OpenStore, Target, msg, redis_settings


def as_data(snapshot: Snapshot) -> tuple[object, ...]:
    return (snapshot.status, snapshot.version, tuple(snapshot.messages), snapshot.total_tokens,
            snapshot.summary, snapshot.encodings)


class Watch:
    """What a node's load script answered (same, tail or full) and how many items were decoded."""

    def __init__(self, store: SyncCalls, monkeypatch: pytest.MonkeyPatch) -> None:
        self.store = store
        self.answers: list[str] = []
        self.decoded = 0
        perform: Callable[..., Any] = store.sync_io.perform

        def recording(step: Any) -> Any:
            reply = perform(step)
            if getattr(step, "name", None) == "load":
                first = reply[0]
                self.answers.append(first.decode() if isinstance(first, bytes) else first)
            return reply

        monkeypatch.setattr(store.sync_io, "perform", recording)
        decode = schema.decode_item

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.decoded += 1
            return decode(*args, **kwargs)

        monkeypatch.setattr(schema, "decode_item", counting)

    def load(self, key: SessionKey) -> tuple[Snapshot, list[str], int]:
        """Load and read the whole history; return the snapshot, the script's answers and the
        items decoded meanwhile (items are decoded lazily, the first time they are read)."""
        self.answers.clear()
        self.decoded = 0
        snapshot = self.store.load(key)
        list(snapshot.messages)
        return snapshot, list(self.answers), self.decoded


@contextmanager
def nodes(target: Target, open_store: OpenStore,
          monkeypatch: pytest.MonkeyPatch, **changes: Any) -> Iterator[tuple[Watch, SyncCalls]]:
    """Node A (watched) and node B, each a store with its own client and hot tier."""
    yield Watch(open_store(target.url, **changes), monkeypatch), open_store(target.url)


def test_a_hit_answers_same_and_decodes_nothing(
    standalone: Target, open_store: OpenStore, new_key: NewKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with nodes(standalone, open_store, monkeypatch) as (a, b):
        key = new_key()
        b.append(key, [msg("user", f"message {i}") for i in range(20)], created=time.time())
        first, answers, decoded = a.load(key)
        assert (answers, decoded, first.tier) == (["full"], 20, "store")
        again, answers, decoded = a.load(key)
        assert (answers, decoded, again.tier) == (["same"], 0, "local")
        assert as_data(again) == as_data(first)
        # The node's own append extends its cached history: still a hit afterwards.
        a.store.append(key, [msg("user", "one more"), msg("assistant", "ok")],
                       created=time.time())
        after, answers, decoded = a.load(key)
        assert (answers, decoded, after.tier) == (["same"], 0, "local")
        assert [m.content for m in after.messages][-3:] == ["message 19", "one more", "ok"]
        assert after.version == first.version + 1
        # A session's first write seeds the writer's hot tier: it knows the whole history.
        other = new_key()
        a.store.append(other, [msg("user", "first words")], created=time.time())
        seeded, answers, decoded = a.load(other)
        assert (answers, decoded, seeded.tier) == (["same"], 0, "local")
        assert as_data(seeded) == as_data(b.load(other))


def test_another_nodes_appends_reach_the_next_load_as_a_tail(
    target: Target, open_store: OpenStore, new_key: NewKey, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with nodes(target, open_store, monkeypatch) as (a, b):
        key = new_key()
        b.append(key, [msg("user", "from b, 0")], created=time.time())
        a.load(key)
        for turn in range(1, 4):
            written = b.append(key, [msg("user", f"from b, {turn}"),
                                     msg("assistant", f"to b, {turn}")], created=time.time())
            snapshot, answers, decoded = a.load(key)
            assert (answers, decoded) == (["tail"], 2)
            assert snapshot.version == written.version
            assert [m.content for m in snapshot.messages][-2:] == [f"from b, {turn}",
                                                                   f"to b, {turn}"]
            assert as_data(snapshot) == as_data(open_store(target.url).load(key))  # not stale
            a.store.append(key, [msg("user", f"from a, {turn}")], created=time.time())
            assert a.load(key)[1] == ["same"]


@pytest.mark.parametrize(("change", "answer", "decoded"), [
    pytest.param(lambda s, k: s.clear(k), "full", 0, id="clear"),
    pytest.param(lambda s, k: s.pop(k), "full", 3, id="pop"),
    pytest.param(lambda s, k: s.apply_summary(k, "s", 1, watermark=2, expected_watermark=0,
                                              delete_folded=True), "full", 2, id="fold-delete"),
    pytest.param(lambda s, k: s.apply_summary(k, "s", 1, watermark=2, expected_watermark=0),
                 "tail", 0, id="fold-archive"),
    pytest.param(lambda s, k: s.recount(k, "o200k_base", {1: 9},
                                        expected_version=s.load(k).version), "full", 4,
                 id="recount"),
])
def test_after_another_nodes_rewrite_the_next_load_is_never_stale(
    standalone: Target, open_store: OpenStore, new_key: NewKey,
    monkeypatch: pytest.MonkeyPatch, change: Callable[[SyncCalls, SessionKey], object],
    answer: str, decoded: int,
) -> None:
    with nodes(standalone, open_store, monkeypatch) as (a, b):
        key = new_key()
        b.append(key, [msg("user", "q1"), msg("assistant", "a1"), msg("user", "q2"),
                       msg("assistant", "a2")], created=time.time())
        before, _, _ = a.load(key)
        change(b, key)
        snapshot, answers, count = a.load(key)
        assert (answers, count) == ([answer], decoded)
        assert snapshot.version > before.version
        assert as_data(snapshot) == as_data(open_store(standalone.url).load(key))


def test_the_hot_tier_holds_at_most_hot_sessions_and_evicts_the_least_recently_used(
    standalone: Target, open_store: OpenStore, new_key: NewKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with nodes(standalone, open_store, monkeypatch, hot_sessions=3) as (a, b):
        keys = [new_key() for _ in range(5)]
        for key in keys:
            b.append(key, [msg("user", "hi")], created=time.time())
            a.load(key)
        assert len(a.store.hot) == 3  # keys 2, 3, 4

        def answer(i: int) -> str:
            return a.load(keys[i])[1][0]

        assert answer(2) == "same"  # now 3, 4, 2
        assert answer(0) == "full"  # evicted: loaded again, and 3 leaves: 4, 2, 0
        assert answer(3) == "full"  # 2, 0, 3
        assert [answer(i) for i in (2, 0, 3)] == ["same"] * 3
        assert len(a.store.hot) == 3

    with nodes(standalone, open_store, monkeypatch, hot_sessions=0) as (a, b):
        key = new_key()
        b.append(key, [msg("user", "hi")], created=time.time())
        assert [a.load(key)[1] for _ in range(3)] == [["full"]] * 3  # no hot tier at all
        assert len(a.store.hot) == 0


def test_a_cold_load_decodes_only_what_the_window_reads(
        standalone: Target, open_store: OpenStore, new_key: NewKey,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding is most of a cold load's cost: a window of the newest turns decodes those only."""
    from stickyctx.core.pruning import plan_window

    writer, reader = open_store(standalone.url), open_store(standalone.url, hot_sessions=0)
    key = new_key()
    for turn in range(200):
        writer.append(key, [msg("user", f"question {turn}"), msg("assistant", f"answer {turn}")],
                      created=time.time())
    decoded = 0
    decode = schema.decode_item

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal decoded
        decoded += 1
        return decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(schema, "decode_item", counting)
    snapshot = reader.load(key)
    assert decoded == 0
    plan = plan_window(snapshot.messages, 200, eviction="turn")
    window = snapshot.messages[plan.start:]
    assert [m.content for m in window][-1] == "answer 199"
    # The window, the messages the binary search that places it reads (a few per doubling of
    # the history) and the first one (where the summary watermark is checked): a few more than
    # the window, never the history.
    probes = 2 * math.ceil(math.log2(len(snapshot.messages)))
    assert len(window) <= decoded <= len(window) + probes
    assert decoded < len(snapshot.messages) // 4
    assert len(snapshot.messages) == 400


def test_messages_through_the_handle_are_fresh_copies_of_the_current_history(
    standalone: Target, open_store: OpenStore, namespace: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``messages()`` on a node's hot tier: what a fresh node loads, as ``as_dict()`` copies that
    the app may change; each message is decoded once, whatever was read before (a window reads
    only the newest), and after another node's appends only the new tail."""
    services = Services(redis_settings(standalone.url, namespace))
    tokenizer = load_tokenizer("cl100k_base")
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    with nodes(standalone, open_store, monkeypatch) as (a, b):
        session_id = new_session_id()
        key = services.keys.derive(session_id)
        state = SessionState(session_id, services.settings.node_id, int(time.time()), "hit",
                             "cookie")

        def handle(auto_lock: bool = False) -> tuple[Session, SyncConversation]:
            logic = Session(services, a.store.store, state, auto_lock=auto_lock)
            return logic, SyncConversation(logic)

        def current() -> list[dict[str, Any]]:
            return [m.as_dict() for m in open_store(standalone.url).load(key).messages]

        b.append(key, [
            msg("user", "what is f?"),
            build_message("assistant", None, {"tool_calls": calls}, tokenizer, 1 << 20),
            build_message("tool", "42", {"tool_call_id": "c1"}, tokenizer, 1 << 20),
            msg("user", [{"type": "text", "text": "and this?"}]),
            *[msg("assistant" if i % 2 else "user", f"message {i}") for i in range(40)],
        ], created=time.time())
        stored = current()  # (read by another node: decodes counted here too, so first)
        a.decoded = 0
        assert handle()[1].window(60)  # a window decodes only the newest messages it reads
        assert 0 < a.decoded < 20
        first = handle()[1].messages()
        assert a.decoded == 44  # the rest, now: each message decoded once
        assert first == stored
        first[0]["content"] = "changed"
        first[1]["tool_calls"][0]["id"] = "changed"
        first[3]["content"][0]["text"] = "changed"
        first.append({"role": "user", "content": "not stored"})
        a.decoded = 0
        again = handle()[1].messages()
        assert a.decoded == 0  # a hit decodes nothing
        assert again == stored == current()

        written = b.append(key, [msg("user", "from b"), msg("assistant", "to b")],
                           created=time.time())
        a.answers.clear()
        a.decoded = 0
        after = handle()[1].messages()
        assert a.answers == ["tail"]
        assert a.decoded == 2  # the tail, decoded when read
        assert after == current()
        assert after[-2:] == [{"role": "user", "content": "from b"},
                              {"role": "assistant", "content": "to b"}]
        assert a.store.load(key).version == written.version

        # Inside a turn, the staged append is handed out with the stored history.
        logic, turn = handle(auto_lock=True)
        turn.append("user", "staged")
        assert turn.messages() == [*current(), {"role": "user", "content": "staged"}]
        run_sync(logic.end(500), a.store.sync_io)  # rolled back: nothing of it stored
        assert handle()[1].messages() == current() == after
