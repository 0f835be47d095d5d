"""Affinity end to end: real app processes, a real Redis and a real load balancer.

One scenario, run behind HAProxy and behind nginx (each configured by ``stickyctx lb-config``):

1. Steady state: 50 concurrent conversations of 10 turns. After each one's first request, at
   least 99% of requests are ``hit``s, no conversation changes owner, and the owners are spread
   over the three nodes (none above 1.25x the average).
2. Failure: one node is SIGKILLed while conversations are in flight, and every conversation goes
   on for 5+ turns. Every turn is eventually acknowledged (a request caught by the dying node is
   retried with the same ``Idempotency-Key``), every stored history is exactly the acknowledged
   turns in order, only the dead node's conversations change owner (through ``failover``), and
   they spread over both survivors.
3. Scale out: a fourth node starts. Old conversations keep their owners (all hits); the new node
   takes new conversations.
4. Clean shutdown: the fourth node, stopped with SIGTERM, leaves the membership at once rather
   than three heartbeat intervals later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from .chat import Chat, Turn
from .cluster import Deployment
from .conftest import FIRST, MakeDeployment

CONVERSATIONS = 50
FIRST_TURNS = 10
TURNS_AFTER_KILL = 5
KILL_AFTER = 25  # responses into the failure phase: the others are in flight at the kill
VICTIM = "n2"
SURVIVORS = {"n1", "n3"}
JOINER = "n4"
NEW_CONVERSATIONS = 20
PHASE_DEADLINE = 40.0  # seconds; each phase takes a few on a loaded two-core machine


@pytest.mark.parametrize("kind", [pytest.param("haproxy", id="haproxy"),
                                  pytest.param("nginx", id="nginx")])
def test_affinity_failover_and_scale_out(deployment: MakeDeployment, kind: str) -> None:
    setup = deployment(kind)
    asyncio.run(_scenario(setup))


async def _scenario(setup: Deployment) -> None:
    assert setup.lb is not None
    chats = [Chat(f"c{i:02d}", setup.lb.url, setup.addresses) for i in range(CONVERSATIONS)]
    newcomers = [Chat(f"d{i:02d}", setup.lb.url, setup.addresses)
                 for i in range(NEW_CONVERSATIONS)]
    took: dict[str, float] = {}
    try:
        async with _timed(took, "steady state"):
            await _steady_state(chats)
        async with _timed(took, "failover"):
            await _failover(setup, chats)
            await _histories_match(chats)
        async with _timed(took, "scale out"):
            await _scale_out(setup, chats, newcomers)
            await _histories_match(chats + newcomers)
        _clean_shutdown_leaves_at_once(setup)
    finally:
        print("phases (s):", {k: round(v, 1) for k, v in took.items()})  # shown on failure
        await asyncio.gather(*(chat.aclose() for chat in chats + newcomers))


@contextlib.asynccontextmanager
async def _timed(took: dict[str, float], phase: str) -> AsyncIterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        took[phase] = time.monotonic() - started


async def _run(chat: Chat, turns: int, phase: str) -> None:
    for _ in range(turns):
        await chat.say(phase)


def _affinities(turns: list[Turn]) -> Counter[str]:
    return Counter(t.affinity for t in turns)


async def _steady_state(chats: list[Chat]) -> None:
    await asyncio.gather(*(_run(chat, FIRST_TURNS, "steady") for chat in chats))
    assert _affinities([c.turns[0] for c in chats]) == {"new": len(chats)}
    steady = [t for chat in chats for t in chat.turns[1:]]
    hits = _affinities(steady)["hit"]
    assert hits >= 0.99 * len(steady), _affinities(steady)
    for chat in chats:
        assert {t.owner for t in chat.turns} == {chat.turns[0].owner}, chat.turns
    owners = Counter(chat.owner for chat in chats)
    assert set(owners) == set(FIRST), owners
    assert max(owners.values()) <= 1.25 * len(chats) / len(FIRST), owners


async def _failover(setup: Deployment, chats: list[Chat]) -> None:
    before = {chat.name: chat.owner for chat in chats}
    victims = {chat.name for chat in chats if before[chat.name] == VICTIM}
    start = {chat.name: len(chat.turns) for chat in chats}
    killed = asyncio.Event()
    responses = 0
    deadline = time.monotonic() + PHASE_DEADLINE

    async def go_on(chat: Chat) -> None:
        nonlocal responses
        after = 0
        while after < TURNS_AFTER_KILL or chat.owner == VICTIM:
            assert time.monotonic() < deadline, f"{chat} did not recover in time"
            started_after_kill = killed.is_set()
            await chat.say("after-kill" if started_after_kill else "around-kill")
            after += started_after_kill
            responses += 1
            if responses == KILL_AFTER:
                setup.kill_node(VICTIM)  # SIGKILL, with requests of its sessions in flight
                killed.set()

    await asyncio.gather(*(go_on(chat) for chat in chats))
    assert killed.is_set()

    new_owners: Counter[str] = Counter()
    for chat in chats:
        turns = chat.turns[start[chat.name]:]
        if chat.name not in victims:
            # Untouched: same owner, served by it, and no request of theirs failed.
            assert {t.owner for t in turns} == {before[chat.name]}, turns
            assert _affinities(turns) == {"hit": len(turns)}, turns
            assert all(t.attempts == 1 for t in turns), chat.failed_attempts
            continue
        # The dead node's conversation: served from the store (miss) until the survivors
        # drop the node, re-placed once (failover), then hits on its new owner.
        moved = next(i for i, t in enumerate(turns) if t.owner != VICTIM)
        assert turns[moved].affinity == "failover", turns
        assert all(t.owner == VICTIM and t.affinity in ("hit", "miss")
                   for t in turns[:moved]), turns
        assert all(t.affinity == "hit" and t.owner == turns[moved].owner
                   for t in turns[moved + 1:]), turns
        assert turns[moved].owner in SURVIVORS
        new_owners[turns[moved].owner] += 1
    assert set(new_owners) == SURVIVORS, new_owners  # spread over both survivors
    retried = {chat.name for chat in chats if chat.failed_attempts}
    assert retried <= victims, {c.name: c.failed_attempts for c in chats if c.failed_attempts}


async def _histories_match(chats: list[Chat]) -> None:
    """Each stored history is exactly the acknowledged turns, in order, once each."""
    histories = await asyncio.gather(*(chat.history() for chat in chats))
    for chat, messages in zip(chats, histories, strict=True):
        users = [m["content"] for m in messages if m["role"] == "user"]
        assert users == [t.message for t in chat.turns], chat.name
        assert sum(m["role"] == "assistant" for m in messages) == len(chat.turns), chat.name
        assert [t.stored_turns for t in chat.turns] == list(range(1, len(chat.turns) + 1))


async def _scale_out(setup: Deployment, chats: list[Chat], newcomers: list[Chat]) -> None:
    setup.start_node(JOINER)
    live = SURVIVORS | {JOINER}
    setup.wait_membership(live)
    setup.wait_routes({JOINER})
    before = {chat.name: chat.owner for chat in chats}
    start = {chat.name: len(chat.turns) for chat in chats}
    await asyncio.gather(*(_run(chat, 1, "scale-old") for chat in chats),
                         *(_run(chat, 2, "scale-new") for chat in newcomers))
    for chat in chats:  # no old conversation moves
        turns = chat.turns[start[chat.name]:]
        assert {t.owner for t in turns} == {before[chat.name]}, turns
        assert _affinities(turns) == {"hit": len(turns)}, turns
    assert _affinities([c.turns[0] for c in newcomers]) == {"new": len(newcomers)}
    later = [t for chat in newcomers for t in chat.turns[1:]]
    assert _affinities(later) == {"hit": len(later)}, _affinities(later)
    owners = Counter(chat.owner for chat in newcomers)
    assert set(owners) <= live, owners
    # The empty node is the least loaded wherever it ranks first or second: it takes the
    # largest share of new sessions (about two thirds), never less than a quarter.
    assert owners[JOINER] >= len(newcomers) / 4, owners
    assert owners[JOINER] == max(owners.values()), owners


def _clean_shutdown_leaves_at_once(setup: Deployment) -> None:
    expires = setup.expiry(JOINER)
    assert expires is not None
    setup.apps[JOINER].stop()  # SIGTERM: uvicorn runs the lifespan shutdown, which leaves
    left_at = setup.now_ms()
    assert setup.expiry(JOINER) is None
    assert left_at < expires, "gone only because its heartbeat expired, not because it left"
