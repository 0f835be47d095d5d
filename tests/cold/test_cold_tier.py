"""The cold tier end to end on a real Redis and PostgreSQL: idle conversations move out of
Redis and come back on their next request; erasure, expiry, encryption and namespaces cover
both tiers."""

from __future__ import annotations

import asyncio
import base64
import os
import time

from stickyctx.core.messages import build_message
from stickyctx.core.tokenizer import load_tokenizer
from tests.redis.chat import Client, sticky

from .conftest import Tiers

MARK = "PLAINTEXT-MARKER-c01d"


def msg(role: str, content: str, dedupe: str | None = None) -> object:
    return build_message(role, content, {}, load_tokenizer("cl100k_base"), 1 << 20, dedupe)


def contents(tiers: Tiers, key: object) -> list[str]:
    return [m.content for m in tiers.calls.load(key).messages]


def test_an_idle_conversation_moves_and_its_next_request_restores_it(tiers: Tiers) -> None:
    async def scenario() -> None:
        async with sticky(tiers.settings) as app:
            client = Client(app)
            await client.chat("one")
            reply = await client.chat("two")
            session_id = reply.json()["session_id"]
            key = app.services.keys.derive(session_id)
            active = Client(app)
            await active.chat("still talking")

            tiers.age(key)
            report = tiers.move()
            assert (report.moved, report.kept) == (1, 0)  # the active one stays
            assert not tiers.in_redis(key)
            assert tiers.in_cold(key)

            again = await client.chat("three")  # transparently restored, then appended
            assert [m["content"] for m in again.json()["messages"]] == [
                "one", "echo: one", "two", "echo: two", "three", "echo: three"]
            assert tiers.in_redis(key)
            report = tiers.move()  # the copy the restore left is deleted by the next pass
            assert (report.moved, report.cleaned) == (0, 1)
            assert not tiers.in_cold(key)

    asyncio.run(scenario())


def test_idempotency_keys_and_fencing_survive_the_move(tiers: Tiers) -> None:
    key = tiers.new_key()
    begun = tiers.calls.begin(key, holder="n1:a", ttl=30, writing=True)
    tiers.calls.append(key, [msg("user", "q", dedupe="turn-1")], created=time.time(),
                       fence=begun.token, release=True)
    tiers.age(key)
    assert tiers.move().moved == 1
    again = tiers.calls.begin(key, holder="n1:b", ttl=30, probe=["turn-1"])
    assert again.status == "live"
    assert again.seen == frozenset({"turn-1"})  # the retried turn is known as stored
    assert again.token > begun.token  # fencing tokens kept growing across the move
    result = tiers.calls.append(key, [msg("user", "q", dedupe="turn-1")],
                                created=time.time(), fence=again.token, release=True)
    assert result.duplicates == 1
    assert contents(tiers, key) == ["q"]


def test_a_cold_session_restored_by_an_append_is_not_hidden(tiers: Tiers) -> None:
    """An append that would create the session (no turn begun first) restores it first."""
    key = tiers.new_key()
    created = time.time() - tiers.settings.cold_after  # old enough to have gone cold
    tiers.calls.append(key, [msg("user", "before")], created=created)
    tiers.age(key)
    assert tiers.move().moved == 1
    tiers.calls.append(key, [msg("user", "after")], created=created, create=True)
    assert contents(tiers, key) == ["before", "after"]


def test_destroy_and_rotate_erase_both_tiers(tiers: Tiers) -> None:
    gone, rotated = tiers.new_key(), tiers.new_key()
    for key in (gone, rotated):
        tiers.calls.append(key, [msg("user", "secret")], created=time.time())
        tiers.age(key)
    assert tiers.move().moved == 2
    tiers.calls.destroy(gone)
    assert not tiers.in_cold(gone)
    assert tiers.calls.load(gone).status == "revoked"

    new = tiers.new_key()
    tiers.calls.rotate(rotated, new)
    assert not tiers.in_cold(rotated)
    assert tiers.calls.load(rotated).status == "revoked"
    assert contents(tiers, new) == ["secret"]


def test_a_copy_past_its_lifetime_is_never_restored(tiers: Tiers) -> None:
    key = tiers.new_key()
    tiers.calls.append(key, [msg("user", "old")], created=time.time())
    tiers.age(key)
    assert tiers.move().moved == 1
    with tiers.postgres.connect() as conn:  # its deadline passes (as by waiting IDLE_TTL)
        conn.execute("UPDATE stickyctx_cold SET expires = 0 WHERE ns = %s AND tag = %s",
                     (key.namespace, key.tag))
    assert tiers.calls.load(key).status == "missing"
    assert not tiers.in_cold(key)  # and the expired copy was deleted on the way


def test_encryption_at_rest_covers_the_cold_tier(make_tiers: object) -> None:
    ring = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    tiers: Tiers = make_tiers(encryption_key=f"k1:{ring}")  # type: ignore[operator]
    key = tiers.new_key()
    tiers.calls.append(key, [msg("user", f"{MARK} hello")], created=time.time())
    tiers.age(key)
    assert tiers.move().moved == 1
    with tiers.postgres.connect() as conn:
        payload = conn.execute("SELECT payload FROM stickyctx_cold WHERE ns = %s AND tag = %s",
                               (key.namespace, key.tag)).fetchone()[0]
    assert MARK.encode() not in bytes(payload)
    assert contents(tiers, key) == [f"{MARK} hello"]


def test_the_mover_keeps_to_its_namespace(make_tiers: object) -> None:
    """Even a namespace with glob characters (``*``) matches only its own keys."""
    base = f"g{os.urandom(4).hex()}"
    one: Tiers = make_tiers(namespace=f"{base}*")  # type: ignore[operator]
    two: Tiers = make_tiers(namespace=f"{base}x")  # type: ignore[operator]
    key_two = two.new_key()
    two.calls.append(key_two, [msg("user", "tenant two")], created=time.time())
    two.age(key_two)
    assert list(one.mover().candidates()) == []  # never even a candidate
    assert one.move().moved == 0
    assert two.in_redis(key_two)
    assert two.move().moved == 1


def test_a_session_in_redis_costs_no_cold_lookup(tiers: Tiers) -> None:
    """Only a session missing in Redis is looked up in PostgreSQL: a turn (begin, commit) and
    an append to a session old enough to have gone cold, but in Redis, make no PostgreSQL step."""
    from stickyctx.sansio import run_sync
    from stickyctx.stores.postgres.io import Transaction

    class Counting:
        def __init__(self, io: object) -> None:
            self.io, self.postgres = io, 0

        def perform(self, step: object) -> object:
            self.postgres += isinstance(step, Transaction)
            return self.io.perform(step)  # type: ignore[attr-defined]

    key = tiers.new_key()
    created = time.time() - tiers.settings.cold_after  # old enough to have gone cold
    tiers.calls.append(key, [msg("user", "first")], created=created)
    io = Counting(tiers.store.sync_io)
    begun = run_sync(tiers.store.begin(key, holder="n1:a", ttl=30), io)
    run_sync(tiers.store.append(key, [msg("user", "second")], created=created,
                                fence=begun.token, release=True), io)
    run_sync(tiers.store.append(key, [msg("user", "third")], created=created), io)
    run_sync(tiers.store.load(key), io)
    assert io.postgres == 0
    run_sync(tiers.store.load(tiers.new_key()), io)  # missing: one lookup
    assert io.postgres == 1


def test_the_cold_tier_behind_a_redis_cluster(make_tiers: object) -> None:
    """The mover scans every master; a restore lands in the session's own slot."""
    tiers: Tiers = make_tiers(cluster=True)  # type: ignore[operator]
    keys = [tiers.new_key() for _ in range(6)]  # spread over the three masters
    for key in keys:
        tiers.calls.append(key, [msg("user", key.tag)], created=time.time())
        tiers.age(key)
    assert tiers.move().moved == len(keys)
    assert not any(tiers.in_redis(key) for key in keys)
    assert [contents(tiers, key) for key in keys] == [[key.tag] for key in keys]
    assert tiers.move().cleaned == len(keys)
