"""The store contract (``stickyctx.stores.base``), run against every backend of ``conftest``."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stickyctx.core.messages import GROUP_OPENERS, NewMessage, Snapshot, build_message
from stickyctx.core.storekeys import SessionKey
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.errors import FencedError, IdempotencyKeyReusedError
from stickyctx.stores import Store
from tests.conftest import FakeClock
from tests.support.stores import AsyncCalls, SyncCalls

from .conftest import MakeStores, StoreConfig, Stores

NewKey = Callable[[], SessionKey]


def msg(role: str, content: Any = "hello", *, dedupe: str | None = None,
        **fields: Any) -> NewMessage:
    return build_message(role, content, fields, load_tokenizer("cl100k_base"), 1 << 20, dedupe)


def contents(snapshot: Snapshot) -> list[Any]:
    return [m.content for m in snapshot.messages]


def as_data(snapshot: Snapshot) -> tuple[object, ...]:
    """Everything a snapshot says, as plain comparable data."""
    return (snapshot.status, snapshot.version, tuple(snapshot.messages), snapshot.total_tokens,
            snapshot.summary)


def seqs(snapshot: Snapshot) -> list[int]:
    return [m.seq for m in snapshot.messages]


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` for ``i`` in ``range(count)`` on threads started together; re-raise.

    The interpreter switches threads as often as it can meanwhile, so that a missing lock shows.
    """
    barrier = threading.Barrier(count)

    def start(i: int) -> None:
        barrier.wait(timeout=30)
        work(i)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            for future in [pool.submit(start, i) for i in range(count)]:
                future.result(timeout=60)
    finally:
        sys.setswitchinterval(interval)


def test_both_forms_implement_the_protocol(stores: Stores) -> None:
    assert isinstance(stores.store, Store)


# Loading and appending ------------------------------------------------------------------------

def test_a_missing_session_loads_missing(store: SyncCalls, new_key: NewKey) -> None:
    snapshot = store.load(new_key())
    assert snapshot.status == "missing"
    assert not snapshot.exists
    assert len(snapshot.messages) == 0
    assert snapshot.total_tokens == 0


def test_append_creates_the_session_and_numbers_messages_from_one(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    first = [msg("user", "What is the capital of France?"),
             msg("assistant", "Paris.", name="bot")]
    result = store.append(key, first, created=clock())
    assert result.status == "live"
    assert result.seqs == (1, 2)
    assert result.written == (True, True)
    assert result.duplicates == 0
    assert result.total_tokens == sum(m.tokens for m in first)

    snapshot = store.load(key)
    assert snapshot.status == "live"
    assert snapshot.version == result.version
    assert [(m.seq, m.role, m.content, m.tokens) for m in snapshot.messages] == [
        (1, "user", "What is the capital of France?", first[0].tokens),
        (2, "assistant", "Paris.", first[1].tokens),
    ]
    assert snapshot.messages[1].fields == {"name": "bot"}
    assert snapshot.messages[1].as_dict() == {"role": "assistant", "content": "Paris.",
                                              "name": "bot"}
    assert {m.encoding for m in snapshot.messages} == {"cl100k_base"}
    assert snapshot.total_tokens == result.total_tokens


def test_seqs_continue_without_gaps_and_totals_add_up(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    batches = [[msg("user", f"question {i}"), msg("assistant", f"answer {i}" * i)]
               for i in range(1, 6)]
    total = 0
    for i, batch in enumerate(batches):
        result = store.append(key, batch, created=clock())
        total += sum(m.tokens for m in batch)
        assert result.seqs == (2 * i + 1, 2 * i + 2)
        assert result.total_tokens == total
    snapshot = store.load(key)
    assert seqs(snapshot) == list(range(1, 11))
    assert snapshot.total_tokens == total == sum(m.tokens for m in snapshot.messages)


def test_a_user_message_opens_a_group_that_assistant_and_tool_messages_join(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    store.append(key, [msg("system", "be brief")], created=clock())
    store.append(key, [msg("user", "weather?"), msg("assistant", None, tool_calls=call)],
                 created=clock())
    result = store.append(key, [msg("tool", "sunny", tool_call_id="c1"),
                                msg("assistant", "It is sunny.")], created=clock())
    assert result.groups == (2, 2)
    store.append(key, [msg("user", "thanks"), msg("assistant", "welcome")], created=clock())
    snapshot = store.load(key)
    assert [(m.seq, m.group, m.role) for m in snapshot.messages] == [
        (1, 1, "system"),
        (2, 2, "user"), (3, 2, "assistant"), (4, 2, "tool"), (5, 2, "assistant"),
        (6, 6, "user"), (7, 6, "assistant"),
    ]
    assert snapshot.messages[2].content is None
    assert snapshot.messages[2].fields == {"tool_calls": call}


def test_a_history_that_starts_without_a_user_message_still_has_a_group(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    result = store.append(key, [msg("assistant", "Hi, how can I help?")], created=clock())
    assert result.groups == (1,)


def test_version_grows_with_every_change(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key, other = new_key(), new_key()
    versions = [store.append(key, [msg("user", "one")], created=clock()).version]
    versions.append(store.append(key, [msg("assistant", "two")], created=clock()).version)
    versions.append(store.clear(key))
    versions.append(store.append(key, [msg("user", "three")], created=clock()).version)
    assert all(a < b for a, b in pairwise(versions)), versions
    assert store.load(key).version == versions[-1]
    store.rotate(key, other)
    assert store.load(other).version >= versions[-1]


def test_a_multi_message_append_is_stored_whole_and_contiguous(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    writers, rounds = 6, 30

    batches = [[[msg("user", f"{w}/{r}/q"), msg("assistant", f"{w}/{r}/a"),
                 msg("tool", f"{w}/{r}/t")] for r in range(rounds)] for w in range(writers)]

    def work(w: int) -> None:
        for batch in batches[w]:
            result = store.append(key, batch, created=clock())
            first = result.seqs[0]
            assert result.seqs == (first, first + 1, first + 2)

    run_threads(writers, work)
    stored = contents(store.load(key))
    assert len(stored) == writers * rounds * 3
    for i in range(0, len(stored), 3):
        prefix = stored[i].removesuffix("/q")
        assert stored[i: i + 3] == [f"{prefix}/q", f"{prefix}/a", f"{prefix}/t"]


def test_create_false_writes_nothing_to_a_missing_session(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    result = store.append(key, [msg("user", "hello")], created=clock(), create=False)
    assert result.status == "missing"
    assert result.seqs == ()
    assert store.load(key).status == "missing"
    store.append(key, [msg("user", "hello")], created=clock())
    again = store.append(key, [msg("assistant", "hi")], created=clock(), create=False)
    assert again.status == "live"
    assert contents(store.load(key)) == ["hello", "hi"]


# Idempotency ----------------------------------------------------------------------------------

def test_a_retried_append_with_the_same_dedupe_keys_stores_nothing(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    turn = [msg("user", "hi", dedupe="turn-1:0"), msg("assistant", "hello", dedupe="turn-1:1")]
    first = store.append(key, turn, created=clock())
    retry = store.append(key, turn, created=clock())
    assert retry.status == "live"
    assert retry.duplicates == 2
    assert retry.written == (False, False)
    assert retry.seqs == ()
    assert retry.total_tokens == first.total_tokens
    snapshot = store.load(key)
    assert contents(snapshot) == ["hi", "hello"]
    assert snapshot.version == first.version


def test_dedupe_drops_only_the_messages_seen_before(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.append(key, [msg("user", "a", dedupe="k1")], created=clock())
    result = store.append(key, [msg("user", "a", dedupe="k1"), msg("user", "b", dedupe="k2"),
                                msg("assistant", "c")], created=clock())
    assert result.written == (False, True, True)
    assert result.duplicates == 1
    assert result.seqs == (2, 3)
    assert contents(store.load(key)) == ["a", "b", "c"]


def test_a_key_reused_for_another_message_is_refused_and_writes_nothing(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.append(key, [msg("user", "a", dedupe="k1")], created=clock())
    version = store.load(key).version
    with pytest.raises(IdempotencyKeyReusedError):
        store.append(key, [msg("user", "new", dedupe="k2"), msg("user", "not a", dedupe="k1")],
                     created=clock())
    assert contents(store.load(key)) == ["a"]  # not even the message with a fresh key
    assert store.load(key).version == version
    # The same message again is a retry; a key never used before is a new message.
    result = store.append(key, [msg("user", "a", dedupe="k1"), msg("user", "new", dedupe="k2")],
                          created=clock())
    assert result.written == (False, True)
    assert contents(store.load(key)) == ["a", "new"]


def test_dedupe_keys_belong_to_one_session(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    one, two = new_key(), new_key()
    store.append(one, [msg("user", "in one", dedupe="same")], created=clock())
    result = store.append(two, [msg("user", "in two", dedupe="same")], created=clock())
    assert result.written == (True,)
    assert contents(store.load(two)) == ["in two"]


# Clear, rotate, destroy -----------------------------------------------------------------------

def test_clear_forgets_the_history_but_keeps_the_session_and_its_dedupe_keys(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    before = store.append(key, [msg("user", "secret plan", dedupe="t1")], created=clock())
    version = store.clear(key)
    assert version > before.version
    snapshot = store.load(key)
    assert snapshot.status == "live"
    assert len(snapshot.messages) == 0
    assert snapshot.total_tokens == 0
    assert snapshot.version == version
    late_retry = store.append(key, [msg("user", "secret plan", dedupe="t1")], created=clock())
    assert late_retry.written == (False,)
    assert len(store.load(key).messages) == 0
    fresh = store.append(key, [msg("assistant", "new start")], created=clock())
    assert fresh.written == (True,)
    assert fresh.total_tokens == msg("assistant", "new start").tokens
    assert contents(store.load(key)) == ["new start"]


def test_rotate_moves_the_data_and_revokes_the_old_key(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    old, new = new_key(), new_key()
    appended = store.append(old, [msg("user", "before login", dedupe="t1")], created=clock())
    store.rotate(old, new)
    moved = store.load(new)
    assert moved.status == "live"
    assert contents(moved) == ["before login"]
    assert moved.total_tokens == appended.total_tokens
    assert store.load(old).status == "revoked"
    assert store.append(old, [msg("user", "replay")], created=clock()).status == "revoked"
    assert store.load(old).status == "revoked"
    retry = store.append(new, [msg("user", "before login", dedupe="t1")], created=clock())
    assert retry.written == (False,)  # the dedupe keys moved with the data
    after = store.append(new, [msg("assistant", "after login")], created=clock())
    assert after.seqs == (2,)


def test_a_rotation_with_a_grace_answers_its_follow_pointer_only_for_the_grace(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    old, new, plain = new_key(), new_key(), new_key()
    store.append(old, [msg("user", "hello")], created=clock())
    store.append(plain, [msg("user", "hello")], created=clock())
    store.rotate(old, new, follow="opaque-pointer", grace=60)
    store.rotate(plain, new_key())
    assert store.load(old).follow == "opaque-pointer"
    assert store.begin(old, holder="n1:x", ttl=5).follow == "opaque-pointer"
    assert store.append(old, [msg("user", "late")], created=clock()).follow == "opaque-pointer"
    assert (store.load(plain).status, store.load(plain).follow) == ("revoked", "")
    assert contents(store.load(new)) == ["hello"]


def test_destroy_deletes_the_data_and_revokes_the_key(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key, bystander = new_key(), new_key()
    store.append(key, [msg("user", "forget me")], created=clock())
    store.append(bystander, [msg("user", "keep me")], created=clock())
    store.destroy(key)
    snapshot = store.load(key)
    assert snapshot.status == "revoked"
    assert len(snapshot.messages) == 0
    replay = store.append(key, [msg("user", "replayed")], created=clock())
    assert replay.status == "revoked"
    assert replay.seqs == ()
    assert store.load(key).status == "revoked"
    assert contents(store.load(bystander)) == ["keep me"]


def test_destroying_a_session_never_stored_still_revokes_its_key(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.destroy(key)
    assert store.load(key).status == "revoked"
    assert store.append(key, [msg("user", "x")], created=clock()).status == "revoked"


# Leases and fencing ---------------------------------------------------------------------------

def test_a_lease_is_exclusive_until_released_by_its_token(
    store: SyncCalls, new_key: NewKey
) -> None:
    key, other = new_key(), new_key()
    token = store.acquire_lease(key, holder="a", ttl=60)
    assert token is not None
    assert store.acquire_lease(key, holder="b", ttl=60) is None
    assert store.acquire_lease(other, holder="b", ttl=60) is not None  # per session
    store.release_lease(key, token + 1000)  # not the current token: nothing happens
    assert store.acquire_lease(key, holder="b", ttl=60) is None
    store.release_lease(key, token)
    second = store.acquire_lease(key, holder="b", ttl=60)
    assert second is not None
    assert second > token
    store.release_lease(key, token)  # a stale holder cannot release the new lease
    assert store.acquire_lease(key, holder="c", ttl=60) is None


def test_fencing_tokens_strictly_increase_across_grants(
    store: SyncCalls, new_key: NewKey
) -> None:
    keys = [new_key() for _ in range(3)]
    granted: dict[SessionKey, list[int]] = {k: [] for k in keys}
    for _ in range(10):
        for key in keys:
            token = store.acquire_lease(key, holder="h", ttl=60)
            assert token is not None
            granted[key].append(token)
            store.release_lease(key, token)
    for tokens in granted.values():
        assert all(a < b for a, b in pairwise(tokens)), tokens


def test_only_one_of_many_racing_holders_gets_the_lease(
    store: SyncCalls, new_key: NewKey
) -> None:
    key = new_key()
    winners: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        token = store.acquire_lease(key, holder=f"h{i}", ttl=60)
        if token is not None:
            with lock:
                winners.append(token)

    run_threads(8, work)
    assert len(winners) == 1


def test_an_append_with_a_stale_fence_is_refused_and_the_current_one_succeeds(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.append(key, [msg("user", "first")], created=clock())
    stale = store.acquire_lease(key, holder="a", ttl=60)
    assert stale is not None
    store.release_lease(key, stale)
    current = store.acquire_lease(key, holder="b", ttl=60)
    assert current is not None
    with pytest.raises(FencedError) as caught:
        store.append(key, [msg("assistant", "from the stale holder")], created=clock(),
                     fence=stale)
    assert caught.value.presented == stale
    assert caught.value.current == current
    with pytest.raises(FencedError):
        store.clear(key, fence=stale)
    assert contents(store.load(key)) == ["first"]
    result = store.append(key, [msg("assistant", "from the holder")], created=clock(),
                          fence=current)
    assert result.written == (True,)
    assert contents(store.load(key)) == ["first", "from the holder"]
    store.release_lease(key, current)
    with pytest.raises(FencedError):  # released: no lease, so the fence is stale too
        store.append(key, [msg("assistant", "late")], created=clock(), fence=current)


@pytest.mark.store_needs("clock")
def test_an_expired_lease_can_be_taken_over_and_fences_its_old_holder(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    first = store.acquire_lease(key, holder="a", ttl=30)
    assert first is not None
    clock.advance(29)
    assert store.acquire_lease(key, holder="b", ttl=30) is None
    clock.advance(2)
    second = store.acquire_lease(key, holder="b", ttl=30)
    assert second is not None
    assert second > first
    with pytest.raises(FencedError):
        store.append(key, [msg("user", "stale")], created=clock(), fence=first)
    assert store.load(key).status == "missing"
    store.release_lease(key, first)  # the old holder's release does not free the new lease
    assert store.acquire_lease(key, holder="c", ttl=30) is None
    assert store.append(key, [msg("user", "ok")], created=clock(), fence=second).seqs == (1,)


# Expiry and bounds ----------------------------------------------------------------------------

@pytest.mark.store_needs("clock")
def test_a_session_expires_after_idle_ttl_without_use(
    store: SyncCalls, new_key: NewKey, clock: FakeClock, store_config: StoreConfig
) -> None:
    key = new_key()
    idle = store_config.idle_ttl
    store.append(key, [msg("user", "hello")], created=clock())
    for _ in range(3):  # every use, a load included, restarts the idle period
        clock.advance(idle - 1)
        assert store.load(key).status == "live"
    clock.advance(idle - 1)
    store.append(key, [msg("user", "still here")], created=clock())
    clock.advance(idle + 1)
    assert store.load(key).status == "missing"
    assert store.append(key, [msg("user", "x")], created=clock(), create=False).status == "missing"


@pytest.mark.store_needs("clock")
def test_a_session_expires_at_its_absolute_lifetime_however_busy(
    store: SyncCalls, new_key: NewKey, clock: FakeClock, store_config: StoreConfig
) -> None:
    key = new_key()
    created = clock()
    store.append(key, [msg("user", "hello")], created=created)
    step = store_config.idle_ttl / 2
    while clock() + step < created + store_config.absolute_ttl - 1:
        clock.advance(step)
        assert store.append(key, [msg("user", "busy")], created=created).status == "live"
    clock.advance(store_config.absolute_ttl - (clock() - created) + 1)
    assert store.load(key).status == "missing"


@pytest.mark.store_needs("clock")
def test_the_absolute_lifetime_counts_from_the_creation_time_given(
    store: SyncCalls, new_key: NewKey, clock: FakeClock, store_config: StoreConfig
) -> None:
    key, late = new_key(), new_key()
    created = clock() - (store_config.absolute_ttl - 10)  # the session began long ago
    store.append(key, [msg("user", "hello")], created=created)
    assert store.load(key).status == "live"
    clock.advance(11)
    assert store.load(key).status == "missing"
    past = clock() - store_config.absolute_ttl - 1
    assert store.append(late, [msg("user", "too late")], created=past).status != "live"
    assert store.load(late).status != "live"


@pytest.mark.store_needs("clock")
def test_a_tombstone_lasts_until_the_absolute_lifetime_is_over(
    store: SyncCalls, new_key: NewKey, clock: FakeClock, store_config: StoreConfig
) -> None:
    key = new_key()
    created = clock()
    store.append(key, [msg("user", "hello")], created=created)
    store.destroy(key)
    clock.advance(store_config.absolute_ttl - 1)
    assert store.load(key).status == "revoked"
    clock.advance(2)
    assert store.load(key).status == "missing"


@pytest.mark.store_needs("lru")
def test_the_store_holds_at_most_max_sessions_evicting_the_least_recently_used(
    make_stores: MakeStores, new_key: NewKey, clock: FakeClock
) -> None:
    store = make_stores(max_sessions=3).sync
    keys = [new_key() for _ in range(4)]
    for key in keys[:3]:
        store.append(key, [msg("user", "hi")], created=clock())
    assert store.load(keys[0]).status == "live"  # now keys[1] is the least recently used
    store.append(keys[3], [msg("user", "hi")], created=clock())
    assert [store.load(k).status for k in keys] == ["live", "missing", "live", "live"]
    more = [new_key() for _ in range(10)]
    for key in more:
        store.append(key, [msg("user", "hi")], created=clock())
    live = [k for k in keys + more if store.load(k).status == "live"]
    assert live == more[-3:]


# Named leases, ceilings, summaries, recounts ---------------------------------------------------

def test_named_leases_are_independent_and_only_the_turn_lease_fences(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    turn = store.acquire_lease(key, holder="a", ttl=60)
    summary = store.acquire_lease(key, holder="b", ttl=60, name="summary")
    assert turn is not None
    assert summary is not None
    assert turn != summary
    assert store.acquire_lease(key, holder="c", ttl=60, name="summary") is None
    with pytest.raises(FencedError):
        store.append(key, [msg("user", "x")], created=clock(), fence=summary)
    store.release_lease(key, summary)  # the turn lease's name by default: nothing happens
    assert store.acquire_lease(key, holder="c", ttl=60, name="summary") is None
    store.release_lease(key, summary, name="summary")
    assert store.acquire_lease(key, holder="c", ttl=60, name="summary") is not None
    assert store.append(key, [msg("user", "x")], created=clock(), fence=turn).written == (True,)


def test_a_session_over_its_token_ceiling_drops_its_oldest_whole_groups(
    make_stores: MakeStores, new_key: NewKey, clock: FakeClock
) -> None:
    turns = [[msg("user", f"question {i} " * 5), msg("assistant", f"answer {i} " * 5),
              msg("tool", f"result {i} " * 5)] for i in range(4)]
    per_turn = [sum(m.tokens for m in turn) for turn in turns]
    ceiling = per_turn[0] + per_turn[1] + per_turn[2] - 1  # two turns fit, three do not
    store = make_stores(max_session_tokens=ceiling).sync
    key = new_key()
    results = [store.append(key, turn, created=clock()) for turn in turns]
    assert [r.dropped for r in results] == [0, 0, 3, 3]
    assert results[-1].seqs == (10, 11, 12)
    snapshot = store.load(key)
    assert seqs(snapshot) == [7, 8, 9, 10, 11, 12]  # whole groups left, numbers unchanged
    assert snapshot.total_tokens == per_turn[2] + per_turn[3] <= ceiling
    assert results[-1].total_tokens == snapshot.total_tokens


def test_the_newest_group_is_kept_even_over_the_ceiling(
    make_stores: MakeStores, new_key: NewKey, clock: FakeClock
) -> None:
    store = make_stores(max_session_tokens=50, max_session_bytes=10_000).sync
    key = new_key()
    store.append(key, [msg("user", "hi")], created=clock())
    big = [msg("user", "word " * 60), msg("assistant", "word " * 60)]
    result = store.append(key, big, created=clock())
    assert result.dropped == 1
    assert seqs(store.load(key)) == [2, 3]
    bulky = [msg("user", "x" * 20_000)]  # over the byte ceiling on its own
    assert store.append(key, bulky, created=clock()).dropped == 2
    assert seqs(store.load(key)) == [4]


def test_a_summary_is_a_compare_and_set_on_its_watermark(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.append(key, [msg("user", "q1"), msg("assistant", "a1"), msg("user", "q2"),
                       msg("assistant", "a2")], created=clock())
    before = store.load(key)
    assert before.summary is None
    first = store.apply_summary(key, "they said hi", 4, watermark=2, expected_watermark=0)
    assert first is not None
    assert (first.text, first.watermark, first.tokens) == ("they said hi", 2, 4)
    after = store.load(key)
    assert after.summary == first
    assert after.version > before.version
    assert seqs(after) == [1, 2, 3, 4]  # folded messages stay unless asked to go

    assert store.apply_summary(key, "late", 1, watermark=4, expected_watermark=0) is None
    assert store.apply_summary(key, "same", 1, watermark=2, expected_watermark=2) is None
    assert store.load(key).summary == first

    store.append(key, [msg("user", "q3")], created=clock())  # while a summarizer ran
    second = store.apply_summary(key, "all of it", 6, watermark=4, expected_watermark=2,
                                 delete_folded=True)
    assert second is not None
    assert second.version > first.version
    snapshot = store.load(key)
    assert snapshot.summary == second
    assert contents(snapshot) == ["q3"]  # the append made meanwhile survives
    assert snapshot.total_tokens == msg("user", "q3").tokens

    store.clear(key)
    assert store.load(key).summary is None
    assert store.apply_summary(new_key(), "x", 1, watermark=1, expected_watermark=0) is None


def test_a_summary_moves_with_a_rotation(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    old, new = new_key(), new_key()
    store.append(old, [msg("user", "q1"), msg("assistant", "a1")], created=clock())
    summary = store.apply_summary(old, "s", 1, watermark=2, expected_watermark=0)
    store.rotate(old, new)
    assert store.load(new).summary == summary


def test_recount_replaces_token_counts_unless_the_session_changed(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    store.append(key, [msg("user", "q1"), msg("assistant", "a1")], created=clock())
    version = store.load(key).version
    assert store.recount(key, "o200k_base", {1: 7}, expected_version=version - 1) is None
    new_version = store.recount(key, "o200k_base", {1: 7, 2: 9}, expected_version=version)
    assert new_version is not None
    assert new_version > version
    snapshot = store.load(key)
    assert snapshot.version == new_version
    assert [(m.tokens, m.encoding) for m in snapshot.messages] == [(7, "o200k_base"),
                                                                   (9, "o200k_base")]
    assert snapshot.total_tokens == 16
    assert snapshot.encodings == ("o200k_base",)
    assert store.recount(new_key(), "o200k_base", {}, expected_version=0) is None


# Isolation and concurrency --------------------------------------------------------------------

def test_interleaved_appends_from_threads_stay_in_their_own_sessions(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    keys = [new_key() for _ in range(12)]
    writers, rounds = 6, 20

    built = {(s, w, r): msg("user", f"s{s} w{w} r{r}")
             for s in range(len(keys)) for w in range(writers) for r in range(rounds)}

    def work(w: int) -> None:
        for r in range(rounds):
            for i in range(len(keys)):
                s = (i + w) % len(keys)
                store.append(keys[s], [built[s, w, r]], created=clock())

    run_threads(writers, work)
    for s, key in enumerate(keys):
        stored = contents(store.load(key))
        assert len(stored) == writers * rounds
        assert all(c.startswith(f"s{s} ") for c in stored)
        for w in range(writers):
            assert [c for c in stored if f" w{w} " in c] == [
                f"s{s} w{w} r{r}" for r in range(rounds)
            ]


def test_concurrent_appends_to_one_session_lose_nothing_and_keep_each_writers_order(
    store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    writers, rounds = 8, 100

    built = [[msg("user", f"w{w} r{r}") for r in range(rounds)] for w in range(writers)]

    def work(w: int) -> None:
        for message in built[w]:
            store.append(key, [message], created=clock())

    run_threads(writers, work)
    snapshot = store.load(key)
    assert seqs(snapshot) == list(range(1, writers * rounds + 1))
    stored = contents(snapshot)
    for w in range(writers):
        assert [c for c in stored if c.startswith(f"w{w} ")] == [
            f"w{w} r{r}" for r in range(rounds)
        ]
    assert snapshot.total_tokens == sum(m.tokens for m in snapshot.messages)


_ROLES = st.sampled_from(["user", "assistant", "tool", "system"])
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_DEDUPE = st.none() | st.sampled_from(["d1", "d2", "d3"])
_APPENDS = st.lists(
    st.tuples(st.integers(0, 3), st.lists(st.tuples(_ROLES, _TEXT, _DEDUPE), min_size=1,
                                          max_size=3)),
    max_size=25,
)


@hsettings(
    max_examples=60,
    deadline=None,
    # The store is shared by the examples on purpose: each example uses fresh session keys,
    # so examples cannot see each other's data (and this is itself part of the property).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(appends=_APPENDS)
def test_interleaved_appends_across_sessions_match_a_model(
    store: SyncCalls, new_key: NewKey, clock: FakeClock,
    appends: list[tuple[int, list[tuple[str, str, str | None]]]],
) -> None:
    keys = [new_key() for _ in range(4)]
    model: list[list[tuple[str, str]]] = [[] for _ in keys]
    seen: list[dict[str, tuple[str, str]]] = [{} for _ in keys]  # key -> the message stored
    for s, batch in appends:
        messages = [msg(r, t, dedupe=d) for r, t, d in batch]
        if any(d is not None and seen[s].get(d, (r, t)) != (r, t) for r, t, d in batch):
            # A key stored before, now with another message: the whole batch is refused.
            with pytest.raises(IdempotencyKeyReusedError):
                store.append(keys[s], messages, created=clock())
            continue
        expected: list[bool] = []
        for role, text, dedupe in batch:
            fresh = dedupe is None or dedupe not in seen[s]
            expected.append(fresh)
            if fresh:
                model[s].append((role, text))
                if dedupe is not None:
                    seen[s][dedupe] = (role, text)
        result = store.append(keys[s], messages, created=clock())
        assert result.written == tuple(expected)
    for s, key in enumerate(keys):
        snapshot = store.load(key)
        if not model[s] and not any(i == s for i, _ in appends):
            assert snapshot.status == "missing"
            continue
        assert [(m.role, m.content) for m in snapshot.messages] == model[s]
        assert seqs(snapshot) == list(range(1, len(model[s]) + 1))
        group = 0
        for m in snapshot.messages:
            group = m.seq if m.role in GROUP_OPENERS or group == 0 else group
            assert m.group == group
        assert snapshot.total_tokens == sum(msg(r, t).tokens for r, t in model[s])


# The async form -------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_the_async_form_appends_loads_and_dedupes_like_the_sync_form(
    astore: AsyncCalls, store: SyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    key = new_key()
    assert (await astore.load(key)).status == "missing"
    missing = await astore.append(key, [msg("user", "x")], created=clock(), create=False)
    assert missing.status == "missing"
    turn = [msg("user", "hi", dedupe="t"), msg("assistant", "hello")]
    result = await astore.append(key, turn, created=clock())
    assert result.seqs == (1, 2)
    assert result.groups == (1, 1)
    retry = await astore.append(key, turn[:1], created=clock())
    assert retry.written == (False,)
    assert retry.duplicates == 1
    snapshot = await astore.load(key)
    assert as_data(snapshot) == as_data(store.load(key))  # one store, two forms
    assert contents(snapshot) == ["hi", "hello"]
    assert snapshot.total_tokens == result.total_tokens
    version = await astore.clear(key)
    assert version > snapshot.version
    assert len((await astore.load(key)).messages) == 0


@pytest.mark.anyio
async def test_the_async_form_rotates_destroys_and_leases(
    astore: AsyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    old, new = new_key(), new_key()
    await astore.append(old, [msg("user", "hello")], created=clock())
    await astore.rotate(old, new)
    assert (await astore.load(old)).status == "revoked"
    assert contents(await astore.load(new)) == ["hello"]
    token = await astore.acquire_lease(new, holder="a", ttl=60)
    assert token is not None
    assert await astore.acquire_lease(new, holder="b", ttl=60) is None
    await astore.release_lease(new, token)
    current = await astore.acquire_lease(new, holder="b", ttl=60)
    assert current is not None
    assert current > token
    with pytest.raises(FencedError):
        await astore.append(new, [msg("user", "stale")], created=clock(), fence=token)
    ok = await astore.append(new, [msg("user", "fresh")], created=clock(), fence=current)
    assert ok.seqs == (2,)
    assert await astore.acquire_lease(new, holder="s", ttl=60, name="summary") is not None
    summary = await astore.apply_summary(new, "s", 1, watermark=1, expected_watermark=0)
    assert summary is not None
    snapshot = await astore.load(new)
    assert snapshot.summary == summary
    recounted = await astore.recount(new, "o200k_base", {1: 5, 2: 6},
                                     expected_version=snapshot.version)
    assert recounted is not None
    assert (await astore.load(new)).total_tokens == 11
    await astore.destroy(new)
    assert (await astore.load(new)).status == "revoked"
    assert (await astore.append(new, [msg("user", "x")], created=clock())).status == "revoked"


@pytest.mark.anyio
async def test_concurrent_async_appends_lose_nothing(
    astore: AsyncCalls, new_key: NewKey, clock: FakeClock
) -> None:
    keys = [new_key() for _ in range(3)]
    writers, rounds = 8, 25

    async def work(w: int) -> None:
        for r in range(rounds):
            for s, key in enumerate(keys):
                await astore.append(key, [msg("user", f"s{s} w{w} r{r}")], created=clock())

    await asyncio.gather(*(work(w) for w in range(writers)))
    for s, key in enumerate(keys):
        snapshot = await astore.load(key)
        assert seqs(snapshot) == list(range(1, writers * rounds + 1))
        stored = contents(snapshot)
        assert all(c.startswith(f"s{s} ") for c in stored)
        for w in range(writers):
            assert [c for c in stored if f" w{w} " in c] == [
                f"s{s} w{w} r{r}" for r in range(rounds)
            ]

