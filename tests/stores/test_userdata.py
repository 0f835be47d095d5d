"""The store contract of principals and conversations (``stickyctx.stores.userdata``), run
against every backend of ``conftest`` (memory, Redis, Redis Cluster, PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from stickyctx.core.principals import ConversationRecord, MemoryItem
from stickyctx.core.storekeys import SessionKey
from stickyctx.stores.userdata import ConversationChange
from tests.conftest import FakeClock

from .conftest import Stores

NewKey = Callable[[], SessionKey]
TTL = 600.0


def record(cid: str, owner: str, at: float = 1000.0, **kw: object) -> ConversationRecord:
    return ConversationRecord(cid, owner, at, at, **kw)  # type: ignore[arg-type]


def test_a_record_is_created_once_and_read_back(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    assert s.conversation_get(key) is None
    first = record("c1", "ualice", node="n1", title="Trip", labels=("a", "b"))
    assert s.conversation_put(key, first, ttl=TTL) == first
    # A second create of the same id keeps the first record: the caller sees whose it is.
    assert s.conversation_put(key, record("c1", "ubob"), ttl=TTL) == first
    assert s.conversation_get(key) == first


def test_a_deleted_id_is_tombstoned(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    s.conversation_put(key, record("c1", "ualice"), ttl=TTL)
    s.state_cas(key, "phase", '"x"', check=False, ttl=TTL)
    s.conversation_delete(key, ttl=TTL)
    assert s.conversation_get(key) is None
    assert s.state_get(key) == {}
    assert s.conversation_put(key, record("c1", "umallory"), ttl=TTL) is None


def test_changes_apply_atomically_and_counters_add_up(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    s.conversation_put(key, record("c1", "ualice", node="n1"), ttl=TTL)
    assert s.conversation_change(new_key(), ConversationChange(turns=1), ttl=TTL) is None

    def touch() -> None:
        for _ in range(20):
            s.conversation_change(key, ConversationChange(turns=1, tokens=3, activity=2000.0),
                                  ttl=TTL)

    threads = [threading.Thread(target=touch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = s.conversation_get(key)
    assert (got.turns, got.tokens, got.last_activity) == (80, 240, 2000.0)
    # Activity never goes back; a title derived later never replaces a set one.
    s.conversation_change(key, ConversationChange(activity=1500.0, title="Set"), ttl=TTL)
    got = s.conversation_change(key, ConversationChange(title_if_empty="Derived"), ttl=TTL)
    assert (got.last_activity, got.title) == (2000.0, "Set")
    got = s.conversation_change(key, ConversationChange(labels=("x",), add_member="ubob"),
                                ttl=TTL)
    assert got.labels == ("x",)
    assert got.members == ("ubob",)
    got = s.conversation_change(key, ConversationChange(remove_member="ubob"), ttl=TTL)
    assert got.members == ()


def test_the_node_is_a_compare_and_set(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    s.conversation_put(key, record("c1", "ualice", node="n1"), ttl=TTL)
    moved = s.conversation_change(key, ConversationChange(node="n2", expected_node="n1"),
                                  ttl=TTL)
    assert moved.node == "n2"
    # A second node that saw n1 too loses the race and reads the winner.
    late = s.conversation_change(key, ConversationChange(node="n3", expected_node="n1"),
                                 ttl=TTL)
    assert late.node == "n2"


def test_the_index_is_newest_first_and_paginated(stores: Stores, new_key: NewKey) -> None:
    principal, s = new_key(), stores.sync
    for i in range(7):
        s.index_add(principal, f"c{i}", 100.0 + i, ttl=TTL)
    s.index_add(principal, "c0", 200.0, ttl=TTL)  # c0 is now the newest
    s.index_add(principal, "c6", 50.0, ttl=TTL)  # activity never goes back
    assert s.index_page(principal, offset=0, limit=3) == ["c0", "c6", "c5"]
    assert s.index_page(principal, offset=3, limit=3) == ["c4", "c3", "c2"]
    assert s.index_page(principal, offset=6, limit=3) == ["c1"]
    s.index_remove(principal, "c6")
    assert s.index_page(principal, offset=0, limit=2) == ["c0", "c5"]
    assert s.index_page(new_key(), offset=0, limit=5) == []


def test_memory_is_bounded_in_tokens(stores: Stores, new_key: NewKey) -> None:
    principal, s = new_key(), stores.sync
    assert s.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=TTL)
    assert s.memory_put(principal, "city", MemoryItem("Lisbon", 7), max_tokens=10, ttl=TTL)
    assert not s.memory_put(principal, "pet", MemoryItem("cat", 2), max_tokens=10, ttl=TTL)
    # Replacing an item counts its new size, not both.
    assert s.memory_put(principal, "city", MemoryItem("Porto", 8), max_tokens=10, ttl=TTL)
    got = s.memory_get(principal)
    assert {k: v.value for k, v in got.items()} == {"name": "Ada", "city": "Porto"}
    assert s.memory_put(principal, "city", None, max_tokens=0, ttl=TTL)
    assert set(s.memory_get(principal)) == {"name"}


def test_state_is_compare_and_set(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    assert s.state_cas(key, "phase", '"draft"', expected=None, ttl=TTL)
    assert not s.state_cas(key, "phase", '"review"', expected=None, ttl=TTL)
    assert not s.state_cas(key, "phase", '"review"', expected='"other"', ttl=TTL)
    assert s.state_cas(key, "phase", '"review"', expected='"draft"', ttl=TTL)
    assert s.state_cas(key, "n", "1", check=False, ttl=TTL)
    assert s.state_get(key) == {"phase": '"review"', "n": "1"}
    assert s.state_cas(key, "phase", None, expected='"review"', ttl=TTL)
    assert s.state_get(key) == {"n": "1"}


def test_state_cas_lets_one_of_many_writers_win(stores: Stores, new_key: NewKey) -> None:
    key, s = new_key(), stores.sync
    wins: list[int] = []

    def writer(i: int) -> None:
        if s.state_cas(key, "lock", str(i), expected=None, ttl=TTL):
            wins.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert s.state_get(key) == {"lock": str(wins[0])}


@pytest.mark.anyio
async def test_the_async_face_reads_the_same_data(stores: Stores, new_key: NewKey) -> None:
    principal = new_key()
    stores.sync.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=TTL)
    got = await stores.async_.memory_get(principal)
    assert got["name"].value == "Ada"


def test_erasing_a_principal_returns_its_ids(stores: Stores, new_key: NewKey) -> None:
    principal, s = new_key(), stores.sync
    s.index_add(principal, "c1", 1.0, ttl=TTL)
    s.index_add(principal, "c2", 2.0, ttl=TTL)
    s.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=TTL)
    assert s.principal_erase(principal, ttl=TTL) == ["c1", "c2"]
    assert s.index_page(principal, offset=0, limit=10) == []
    assert s.memory_get(principal) == {}
    assert s.principal_erase(principal, ttl=TTL) == []


@pytest.mark.store_needs("clock")
def test_everything_expires_after_its_ttl(stores: Stores, new_key: NewKey, clock: FakeClock,
                                          ) -> None:
    key, principal, s = new_key(), new_key(), stores.sync
    s.conversation_put(key, record("c1", "ualice"), ttl=10)
    s.state_cas(key, "k", "1", check=False, ttl=10)
    s.index_add(principal, "c1", 1.0, ttl=10)
    s.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=10)
    buried = new_key()
    s.conversation_delete(buried, ttl=10)
    clock.advance(11)
    for _ in range(1100):  # enough writes for a sweep of what nobody reads again
        s.index_add(new_key(), "c", 1.0, ttl=1)
    store: Any = stores.store
    assert key.tag not in store._records
    assert key.tag not in store._states
    assert principal.tag not in store._indexes
    assert principal.tag not in store._memories
    assert buried.tag not in store._buried
    assert s.conversation_get(key) is None
    assert s.memory_get(principal) == {}
