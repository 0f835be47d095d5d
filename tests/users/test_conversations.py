"""Conversations of principals on every backend: ownership, listing, metadata, memory, state,
pinned facts in the window, erasure. Driven through ``UserSpace`` and the sessions it opens."""

from __future__ import annotations

import pytest

from stickyctx import ANY
from stickyctx.errors import (
    ConversationNotFoundError,
    InvalidPrincipalError,
    MemoryFullError,
    SessionBusyError,
)
from stickyctx.sansio import run_sync

from .conftest import MakeWorld, World


def test_a_conversation_is_its_owners_only(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    cid = alice.create(title="Plans")["id"]
    alice.turn(cid, ("user", "hello"), ("assistant", "hi"))
    assert alice.get(cid)["title"] == "Plans"
    for attempt in (lambda: bob.get(cid), lambda: bob.open(cid), lambda: bob.state(cid),
                    lambda: bob.rename(cid, "mine"), lambda: bob.delete(cid),
                    lambda: bob.set_state(cid, "k", 1), lambda: bob.add_member(cid, "bob")):
        with pytest.raises(ConversationNotFoundError) as caught:
            attempt()
        assert str(caught.value) == "conversation not found"  # the same for every reason
    # Nor does creating its id reveal it: the same error as an unknown id.
    with pytest.raises(ConversationNotFoundError):
        bob.create(cid)
    with pytest.raises(ConversationNotFoundError):
        bob.get("no-such-conversation")
    assert bob.list()["conversations"] == []
    assert [m["content"] for m in alice.run(alice.open(cid).messages())] == ["hello", "hi"]


@pytest.mark.parametrize("bad", ["", "a" * 65, "../x", "a b", "ä", "x\n"])
def test_malformed_ids_are_not_found(world: World, bad: str) -> None:
    alice = world.user("alice")
    with pytest.raises(ConversationNotFoundError):
        alice.open(bad)
    with pytest.raises(ConversationNotFoundError):
        alice.create(bad)


@pytest.mark.parametrize("bad", ["", "x" * 257, "a\x00b"])
def test_malformed_principals_are_refused(world: World, bad: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        world.user(bad).list()


def test_tenants_namespace_principals_and_ids(world: World) -> None:
    acme, globex = world.user("alice", tenant="acme"), world.user("alice", tenant="globex")
    acme.create("shared-id")
    with pytest.raises(ConversationNotFoundError):
        globex.get("shared-id")
    globex.create("shared-id")  # the same app id in another tenant is another conversation
    globex.turn("shared-id", ("user", "globex only"))
    assert acme.get("shared-id")["turns"] == 0
    acme.remember("name", "Ada")
    assert globex.memory() == {}


def test_the_app_may_bring_its_own_ids_and_create_is_idempotent(world: World) -> None:
    alice = world.user("alice")
    first = alice.create("9b2f6c1e-0d6a-4b8e-9a34-2f1e7c0d5a11", title="From our DB")
    again = alice.create("9b2f6c1e-0d6a-4b8e-9a34-2f1e7c0d5a11", title="ignored")
    assert again == first
    assert [c["id"] for c in alice.list()["conversations"]] == [first["id"]]


def test_listing_is_newest_activity_first_and_paginated(world: World) -> None:
    alice = world.user("alice")
    ids = [alice.create()["id"] for _ in range(5)]
    alice.turn(ids[1], ("user", "bump the second"))
    page = alice.list(limit=2)
    assert [c["id"] for c in page["conversations"]] == [ids[1], ids[4]]
    rest = alice.list(limit=2, cursor=page["next"])
    assert [c["id"] for c in rest["conversations"]] == [ids[3], ids[2]]
    last = alice.list(limit=2, cursor=rest["next"])
    assert [c["id"] for c in last["conversations"]] == [ids[0]]
    assert last["next"] is None


def test_metadata_counts_committed_turns_and_titles_itself(world: World) -> None:
    alice = world.user("alice")
    cid = alice.create(labels=["support"])["id"]
    created = alice.get(cid)
    alice.turn(cid, ("user", "My printer is on fire, what now?"), ("assistant", "Unplug it."))
    alice.turn(cid, ("user", "rolled back"), status=500)  # never stored, never counted
    retry = "turn-7"
    alice.turn(cid, ("user", "again"), ("assistant", "ok"), turn_id=retry)
    alice.turn(cid, ("user", "again"), ("assistant", "ok"), turn_id=retry)  # a retry: once
    got = alice.get(cid)
    stored = alice.run(alice.open(cid).messages())
    assert [m["content"] for m in stored] == [
        "My printer is on fire, what now?", "Unplug it.", "again", "ok"]
    assert got["turns"] == 2
    assert got["tokens"] > 0
    assert got["title"] == "My printer is on fire, what now?"
    assert got["labels"] == ["support"]
    assert got["created"] == created["created"]
    assert got["last_activity"] >= created["last_activity"]
    assert alice.rename(cid, "  Printer\nfire ")["title"] == "Printer fire"
    assert alice.relabel(cid, ["a", "b", "a"])["labels"] == ["a", "b"]


def test_delete_erases_the_history_and_the_id_stays_dead(world: World) -> None:
    alice = world.user("alice")
    cid = alice.create()["id"]
    alice.turn(cid, ("user", "secret"))
    alice.set_state(cid, "phase", "draft")
    alice.delete(cid)
    for attempt in (lambda: alice.get(cid), lambda: alice.open(cid), lambda: alice.create(cid)):
        with pytest.raises(ConversationNotFoundError):
            attempt()
    assert alice.list()["conversations"] == []


def test_members_share_a_conversation_but_not_its_management(world: World) -> None:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    cid = alice.create(title="Standup")["id"]
    alice.add_member(cid, "bob")
    bob.turn(cid, ("user", "bob was here"))
    assert [c["id"] for c in bob.list()["conversations"]] == [cid]
    assert alice.get(cid)["turns"] == 1
    with pytest.raises(ConversationNotFoundError):
        bob.add_member(cid, "carol")  # members do not manage it
    with pytest.raises(ConversationNotFoundError):
        carol.get(cid)
    bob.delete(cid)  # a member's delete is leaving
    assert alice.get(cid)["title"] == "Standup"
    with pytest.raises(ConversationNotFoundError):
        bob.get(cid)


def test_memory_follows_the_user_into_every_window(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    first, second = alice.create()["id"], alice.create()["id"]
    alice.remember("account", "ACC-1234")
    alice.turn(first, ("user", "x " * 50))
    session = alice.open(second)
    window = alice.run(session.window(system="Be brief."))
    run_sync(session.end(200), world.store.sync_io)
    assert window[0]["role"] == "system"
    assert window[0]["content"].startswith("Be brief.")
    assert "- account: ACC-1234" in window[0]["content"]
    assert alice.memory() == {"account": "ACC-1234"}
    assert bob.memory() == {}
    alice.forget("account")
    assert alice.memory() == {}


def test_pinned_facts_are_inside_the_budget_and_never_pruned(world: World) -> None:
    alice = world.user("alice")
    cid = alice.create()["id"]
    alice.remember("account", "ACC-1234")
    for i in range(30):
        alice.turn(cid, ("user", f"message {i} " + "words " * 20), ("assistant", "noted"))
    counter = world.services.tokenizer.count_message
    for budget in (400, 800, 2000):
        session = alice.open(cid)
        window = alice.run(session.window(budget))
        run_sync(session.end(200), world.store.sync_io)
        assert "- account: ACC-1234" in window[0]["content"]
        assert sum(counter(m) for m in window) <= budget
        if budget < 2000:
            assert len(window) < 61  # history was pruned, the facts were not


def test_memory_is_bounded_in_tokens(make_world: MakeWorld) -> None:
    alice = make_world(memory_tokens=20).user("alice")
    alice.remember("a", "one two three")
    with pytest.raises(MemoryFullError):
        alice.remember("b", "word " * 40)
    assert alice.memory() == {"a": "one two three"}


def test_state_is_compare_and_set_per_conversation(world: World) -> None:
    alice = world.user("alice")
    one, two = alice.create()["id"], alice.create()["id"]
    assert alice.set_state(one, "phase", "collect", expected=None)
    assert not alice.set_state(one, "phase", "review", expected=None)
    assert alice.set_state(one, "phase", "review", expected="collect")
    assert alice.set_state(one, "found", {"items": [1, 2]}, expected=ANY)
    assert alice.state(one) == {"found": {"items": [1, 2]}, "phase": "review"}
    assert alice.state(two) == {}
    assert alice.set_state(one, "phase", None, expected="review")
    assert alice.state(one) == {"found": {"items": [1, 2]}}


def test_a_conversation_has_one_turn_at_a_time(make_world: MakeWorld) -> None:
    alice = make_world(turn_timeout=0).user("alice")
    cid = alice.create()["id"]
    holder = alice.open(cid)
    alice.run(holder.append("user", "first"))  # the turn lock is this request's now
    other = alice.open(cid)
    with pytest.raises(SessionBusyError):
        alice.run(other.append("user", "second"))
    alice.run(other.end(409))
    alice.run(holder.end(200))
    assert alice.get(cid)["turns"] == 1


def test_erase_removes_everything_of_the_principal_only(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    mine = [alice.create()["id"] for _ in range(3)]
    theirs = bob.create()["id"]
    bob.add_member(theirs, "alice")
    for cid in mine:
        alice.turn(cid, ("user", "my data"))
        alice.set_state(cid, "k", 1)
    alice.remember("name", "Ada")
    bob.turn(theirs, ("user", "bob's data"))
    assert alice.erase() == 3
    for cid in mine:
        with pytest.raises(ConversationNotFoundError):
            alice.open(cid)
    assert alice.list()["conversations"] == []
    assert alice.memory() == {}
    with pytest.raises(ConversationNotFoundError):
        alice.get(theirs)  # left bob's conversation
    assert bob.get(theirs)["turns"] == 1
    assert alice.erase() == 0


def test_a_conversation_fails_over_when_its_node_leaves(make_world: MakeWorld) -> None:
    from stickyctx.core.nodes import NodeSpec

    everyone = tuple(NodeSpec(n) for n in ("n1", "n2", "n3"))
    before = make_world(node_id="n1", nodes=everyone)
    alice = before.user("alice")
    owners = {}
    for _ in range(40):  # (with static membership, rendezvous hashing: each node ~1/3)
        cid = alice.create()["id"]
        owners[cid] = alice.open(cid).state.owner
    assert set(owners.values()) == {"n1", "n2", "n3"}  # spread, not all on one node
    gone = next(cid for cid, owner in owners.items() if owner == "n3")
    alice.turn(gone, ("user", "kept across the failover"))

    # n3 has left; two nodes see it at once and re-place the conversation: they agree.
    survivors = tuple(NodeSpec(n) for n in ("n1", "n2"))
    views = [make_world(node_id=n, nodes=survivors).user("alice") for n in ("n1", "n2")]
    first, second = (view.open(gone) for view in views)
    assert first.state.affinity == "failover"
    assert first.state.owner in ("n1", "n2")
    assert second.state.owner == first.state.owner
    again = views[1].open(gone)  # the record was updated: an ordinary hit or miss now
    assert again.state.affinity in ("hit", "miss")
    assert again.state.owner == first.state.owner
    history = views[0].run(again.messages())
    assert [m["content"] for m in history] == ["kept across the failover"]
    stayed = next(cid for cid, owner in owners.items() if owner == "n1")
    assert views[1].open(stayed).state.owner == "n1"  # the others do not move


def test_a_conversation_keeps_its_id_and_its_handle_deletes_it(world: World) -> None:
    from stickyctx.errors import ConversationIdError

    alice, bob = world.user("alice"), world.user("bob")
    cid = alice.create()["id"]
    alice.add_member(cid, "bob")
    session = alice.open(cid)
    with pytest.raises(ConversationIdError):
        alice.run(session.rotate())
    leaving = bob.open(cid)
    bob.run(leaving.destroy())  # a member's destroy() leaves
    assert alice.get(cid)["id"] == cid
    alice.run(session.destroy())  # the owner's deletes the conversation
    with pytest.raises(ConversationNotFoundError):
        alice.get(cid)


def test_a_conversation_deleted_under_an_open_handle_is_not_found(world: World) -> None:
    alice = world.user("alice")
    cid = alice.create()["id"]
    alice.turn(cid, ("user", "hello"))
    session = alice.open(cid)
    alice.delete(cid)  # another request, meanwhile
    with pytest.raises(ConversationNotFoundError):
        alice.run(session.messages())  # never a fresh conversation under another id
    alice.run(session.end(500))
