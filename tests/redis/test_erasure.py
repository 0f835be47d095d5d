"""Erasure on Redis: ``destroy()`` leaves nothing of a session but its tombstone, the tombstone
lasts no longer than the session could have, and a replayed token starts afresh."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stickyctx.session.services import Services
from stickyctx.stores.redis.schema import FENCE, META, TOMBSTONE
from tests.redis_servers import poll

from .chat import Client, sticky
from .conftest import NewKey, OpenStore, Target, msg, redis_settings, stored_values
from .test_expiry import server_ms


def test_destroy_removes_every_key_of_the_session_but_its_tombstone(
    target: Target, open_store: OpenStore, new_key: NewKey, namespace: str
) -> None:
    store = open_store(target.url, idle_ttl=600, absolute_ttl=3600)
    key, bystander = new_key(), new_key()
    for k in (key, bystander):
        store.append(k, [msg("user", "q1", dedupe="t1"), msg("assistant", "a1")],
                     created=time.time())
    assert store.apply_summary(key, "a summary", 2, watermark=1, expected_watermark=0)
    assert store.acquire_lease(key, holder="a", ttl=60) is not None
    assert store.acquire_lease(key, holder="b", ttl=60, name="summary") is not None
    store.stream_open(key, "r1", node="a", turn="t", ttl=60)  # a reply streaming: its text
    store.stream_push(key, "r1", ["the reply's ", "words"], ttl=60)
    assert len(target.scan(f"{namespace}:{{{key.tag}}}:*")) == 8
    created = int(target.raw.hget(key.key(META), "cr"))

    store.destroy(key)
    assert target.scan(f"{namespace}:{{{key.tag}}}:*") == [key.key(TOMBSTONE)]
    assert target.raw.pexpiretime(key.key(TOMBSTONE)) == created + 3600_000
    assert store.load(key).status == "revoked"
    assert [m.content for m in store.load(bystander).messages] == ["q1", "a1"]

    never = new_key()  # a session never stored: revoked for a whole lifetime from now
    before = server_ms(target.raw)
    store.destroy(never)
    after = server_ms(target.raw)
    assert target.scan(f"{namespace}:{{{never.tag}}}:*") == [never.key(TOMBSTONE)]
    assert before + 3600_000 <= target.raw.pexpiretime(never.key(TOMBSTONE)) <= after + 3600_000


def test_a_tombstone_lasts_until_the_absolute_lifetime_is_over(
    standalone: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    store = open_store(standalone.url, idle_ttl=2, absolute_ttl=3)
    key = new_key()
    created = time.time() - 1.7  # 1.3 s of its life are left
    end = int(created * 1000) + 3000
    store.append(key, [msg("user", "forget me")], created=created)
    store.destroy(key)
    assert standalone.raw.pexpiretime(key.key(TOMBSTONE)) == end

    seen: list[tuple[int, str]] = []

    def over() -> bool:
        status = store.load(key).status
        seen.append((server_ms(standalone.raw), status))  # (read after the load)
        return status != "revoked"

    poll(over, timeout=10, what="the tombstone gone at the absolute lifetime")
    *revoked, (gone_at, status) = seen
    assert len(revoked) > 3
    assert all(s == "revoked" for _, s in revoked)
    assert status == "missing"  # by then the old token has expired too
    assert end <= gone_at < end + 2000


def test_a_replayed_token_after_destroy_gets_a_fresh_session(
    target: Target, namespace: str
) -> None:
    settings = redis_settings(target.url, namespace)

    async def scenario() -> dict[str, Any]:
        async with sticky(settings) as app:
            client = Client(app)
            first = (await client.chat("secret plan")).json()
            token = client.token
            destroyed = await client.request("POST", "/destroy")
            assert destroyed.status == 200
            assert destroyed.header("x-stickyctx-session") == ""  # the client forgets it
            replay = Client(app, token)
            history = (await replay.request("GET", "/history")).json()
            chat = (await replay.chat("hello again")).json()
            return {"first": first, "history": history, "chat": chat}

    out = asyncio.run(scenario())
    old = out["first"]["session_id"]
    assert out["history"]["session_id"] != old
    assert out["history"]["messages"] == []
    assert out["chat"]["session_id"] == out["history"]["session_id"]
    assert [m["content"] for m in out["chat"]["messages"]] == ["hello again",
                                                                "echo: hello again"]
    old_key = Services(settings).keys.derive(old)
    left = set(target.scan(f"{namespace}:{{{old_key.tag}}}:*"))
    assert old_key.key(TOMBSTONE) in left
    # Nothing of the data came back. (The replay took the turn lock of the old id before it
    # found the tombstone: that leaves a fencing counter, a bare number, under the old tag.)
    assert left <= {old_key.key(TOMBSTONE), old_key.key(FENCE)}
    stored = b"".join(v for name in target.scan(f"{namespace}:*")
                      for v in stored_values(target.raw, name))
    assert b"hello again" in stored
    assert b"secret plan" not in stored
