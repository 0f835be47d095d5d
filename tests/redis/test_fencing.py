"""Fenced turns across nodes: two store instances (two "nodes", each its own client) on one
session. The lease is exclusive, fencing tokens only grow, and a stale writer is refused."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import pytest

from stickyctx.core.flow import SessionState, new_session
from stickyctx.errors import FencedError
from stickyctx.sansio import run_sync
from stickyctx.session.handle import SyncConversation
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from tests.redis_servers import poll
from tests.support.stores import SyncCalls

from .conftest import NewKey, OpenStore, Target, msg, redis_settings


def test_the_lease_is_exclusive_across_nodes_and_its_tokens_only_grow(
    target: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    node_a, node_b = open_store(target.url), open_store(target.url)
    key = new_key()
    tokens: list[int] = []
    for holder, other in [(node_a, node_b), (node_b, node_a)] * 5:
        token = holder.acquire_lease(key, holder="h", ttl=60)
        assert token is not None
        assert other.acquire_lease(key, holder="o", ttl=60) is None
        assert holder.acquire_lease(key, holder="h", ttl=60) is None  # not re-entrant
        other.release_lease(key, token - 1)  # an older token releases nothing
        assert other.acquire_lease(key, holder="o", ttl=60) is None
        other.release_lease(key, token)  # the current token does, from any node
        tokens.append(token)
    assert all(a < b for a, b in pairwise(tokens)), tokens

    # A rotation carries the lease and the counter: tokens keep growing under the new id.
    held = node_a.acquire_lease(key, holder="h", ttl=60)
    assert held is not None
    node_a.append(key, [msg("user", "hi")], created=time.time(), fence=held)
    moved = new_key()
    node_b.rotate(key, moved)
    assert node_b.acquire_lease(moved, holder="o", ttl=60) is None  # still held
    node_a.append(moved, [msg("user", "after")], created=time.time(), fence=held)
    node_a.release_lease(moved, held)
    after = node_b.acquire_lease(moved, holder="o", ttl=60)
    assert after is not None
    assert after > held


def test_a_writer_whose_lease_expired_and_was_taken_over_is_fenced(
    standalone: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    node_a, node_b = open_store(standalone.url), open_store(standalone.url)
    key = new_key()
    node_a.append(key, [msg("user", "before")], created=time.time())
    started = time.monotonic()
    first = node_a.acquire_lease(key, holder="a", ttl=0.3)
    assert first is not None
    assert node_b.acquire_lease(key, holder="b", ttl=30) is None
    second = poll(lambda: node_b.acquire_lease(key, holder="b", ttl=30), timeout=5,
                  what="the expired lease taken over")
    assert time.monotonic() - started >= 0.3 - 0.002  # not before its TTL was over (ms)
    assert second is not None
    assert second > first

    with pytest.raises(FencedError) as fenced:
        node_a.append(key, [msg("assistant", "from the stale holder")], created=time.time(),
                      fence=first)
    assert (fenced.value.presented, fenced.value.current) == (first, second)
    with pytest.raises(FencedError):
        node_a.clear(key, fence=first)
    with pytest.raises(FencedError):
        node_a.pop(key, fence=first)
    node_a.release_lease(key, first)  # the old holder's release does not free the new lease
    assert node_a.acquire_lease(key, holder="c", ttl=30) is None
    assert node_b.append(key, [msg("user", "ok")], created=time.time(), fence=second).seqs == (2,)
    assert [m.content for m in node_a.load(key).messages] == ["before", "ok"]


def test_a_paused_nodes_late_append_is_rejected_rather_than_interleaved(
    standalone: Target, open_store: OpenStore, namespace: str
) -> None:
    settings_a = redis_settings(standalone.url, namespace, node_id="n1", turn_lease_ttl=0.5)
    settings_b = redis_settings(standalone.url, namespace, node_id="n2", turn_timeout=10)
    services_a, services_b = Services(settings_a), Services(settings_b)
    store_a = open_store(standalone.url, node_id="n1")
    store_b = open_store(standalone.url, node_id="n2")

    fresh = new_session(services_a.flow, services_a.members.view(), time.time(), "cookie")
    key = services_a.keys.derive(fresh.session_id)
    store_a.append(key, [msg("user", "before")], created=time.time())  # an existing session

    def request(services: Services, store: SyncCalls, node: str) -> tuple[Session, Any]:
        state = SessionState(fresh.session_id, "n1", fresh.created, "hit" if node == "n1"
                             else "miss", "cookie")
        logic = Session(services, store.store, state, auto_lock=True)
        return logic, SyncConversation(logic)

    logic_a, node_a = request(services_a, store_a, "n1")
    assert node_a.append("user", "question to node A") == 2  # staged under A's turn
    assert node_a.holds_turn
    # Node A now pauses (a long GC pause, a stalled model call) for longer than its lease.

    # The next request of the session lands on node B: it waits for the turn, then takes it.
    logic_b, node_b = request(services_b, store_b, "n2")
    assert [m["content"] for m in node_b.messages()] == ["before"]
    assert node_b.holds_turn
    node_b.append("user", "question to node B")
    node_b.append("assistant", "answer to node B")
    run_sync(logic_b.end(), store_b.sync_io)  # B's turn is stored

    # Node A wakes up and finishes its turn: its commit is refused, nothing of it is written
    # between B's messages, and its release does not free a lease it no longer holds.
    node_a.append("assistant", "late answer to node A")
    with pytest.raises(FencedError):
        run_sync(logic_a.end(), store_a.sync_io)
    assert store_a.acquire_lease(key, holder="x", ttl=30) is not None  # B released it; free
    stored = store_a.load(key)
    assert [m.content for m in stored.messages] == [
        "before", "question to node B", "answer to node B"]
