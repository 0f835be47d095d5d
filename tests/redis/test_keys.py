"""What lands in Redis: one hash tag and one Cluster slot per session, no raw id anywhere,
namespaces apart, key names independent of the signing keys, and no ``KEYS`` command."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from stickyctx.core.ids import new_session_id
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.errors import FencedError
from stickyctx.session.services import Services
from stickyctx.stores import open_store as open_configured
from stickyctx.stores.redis.schema import (
    DEDUPE,
    FENCE,
    KEYS,
    MESSAGES,
    META,
    SUMMARY_LEASE,
    TOMBSTONE,
    TURN_LEASE,
)
from stickyctx.stores.redis.store import RedisStore
from tests.conftest import KEY_A, KEY_B, ROOT
from tests.support.stores import AsyncCalls

from .chat import Client, sticky
from .conftest import HASH_KEY, NewKey, OpenStore, Target, msg, redis_settings, stored_values

SOURCES = ROOT / "src" / "stickyctx"


def test_every_key_of_a_session_shares_one_hash_tag_and_one_cluster_slot(
    cluster: Target, open_store: OpenStore, new_key: NewKey, namespace: str
) -> None:
    key = new_key()
    names = [key.key(part) for part in KEYS]
    assert len(set(names)) == len(KEYS) == 7
    assert all(f"{{{key.tag}}}" in name for name in names)
    assert len({key_slot(name.encode()) for name in names}) == 1

    # The keys a real conversation creates on the Cluster: all of them, on one master.
    store = open_store(cluster.url)
    store.append(key, [msg("user", "hi", dedupe="t1")], created=time.time())
    assert store.acquire_lease(key, holder="a", ttl=60) is not None
    assert store.acquire_lease(key, holder="b", ttl=60, name="summary") is not None
    live = {key.key(part) for part in (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, FENCE)}
    holders = [server for server in cluster.masters if server.scan_keys(f"{namespace}:*")]
    assert len(holders) == 1
    assert set(holders[0].scan_keys(f"{namespace}:*")) == live
    slot = holders[0].command("CLUSTER", "KEYSLOT", key.key(META))
    assert slot == key_slot(key.key(META).encode())
    store.destroy(key)
    assert holders[0].scan_keys(f"{namespace}:*") == [key.key(TOMBSTONE)]


def _other_slot(new_key: NewKey, key: SessionKey) -> SessionKey:
    slot = key_slot(key.key(META).encode())
    return next(k for k in iter(new_key, None) if key_slot(k.key(META).encode()) != slot)


def test_every_script_runs_on_a_real_cluster(
    cluster: Target, open_store: OpenStore, new_key: NewKey, namespace: str
) -> None:
    store = open_store(cluster.url)
    key = new_key()
    turn = [msg("user", "q1", dedupe="t1:0"), msg("assistant", "a1", dedupe="t1:1")]
    created = time.time()
    assert store.append(key, turn, created=created).seqs == (1, 2)
    assert store.append(key, turn, created=created).written == (False, False)
    fence = store.acquire_lease(key, holder="node-a", ttl=60)
    assert fence is not None
    store.append(key, [msg("user", "q2"), msg("assistant", "a2")], created=created, fence=fence)
    with pytest.raises(FencedError):
        store.append(key, [msg("user", "stale")], created=created, fence=fence - 1)
    summary = store.apply_summary(key, "q1 and a1", 3, watermark=2, expected_watermark=0,
                                  delete_folded=True)
    assert summary is not None
    popped = store.pop(key, fence=fence)
    assert popped is not None
    assert popped.content == "a2"
    snapshot = store.load(key)
    assert [m.content for m in snapshot.messages] == ["q2"]
    assert snapshot.summary == summary
    store.release_lease(key, fence)

    moved = _other_slot(new_key, key)  # rotation crosses slots (and, here, usually nodes)
    store.rotate(key, moved)
    assert store.load(key).status == "revoked"
    after = store.load(moved)
    assert [m.content for m in after.messages] == ["q2"]
    assert after.summary == summary
    assert store.append(moved, turn, created=created).written == (False, False)  # dedupe moved

    async def through_the_async_adapter() -> None:
        opened = open_configured(redis_settings(cluster.url, namespace))
        assert isinstance(opened, RedisStore)
        astore = AsyncCalls(opened)
        try:
            assert [m.content for m in (await astore.load(moved)).messages] == ["q2"]
            result = await astore.append(moved, [msg("assistant", "a2 again")], created=created)
            assert result.seqs == (5,)  # seqs are never reused, not even after a pop
            await astore.destroy(moved)
            assert (await astore.load(moved)).status == "revoked"
        finally:
            await opened.aclose()

    asyncio.run(through_the_async_adapter())
    assert store.load(moved).status == "revoked"
    assert cluster.scan(f"{namespace}:*") == sorted([key.key(TOMBSTONE), moved.key(TOMBSTONE)])


def test_raw_session_ids_never_reach_redis(target: Target, namespace: str) -> None:
    settings = redis_settings(target.url, namespace)
    ids: list[str] = []

    async def conversation() -> None:
        async with sticky(settings) as app:
            client = Client(app)
            for text in ("my name is Ada", "what is my name?"):
                reply = await client.chat(text)
                assert reply.status == 200
            ids.append(reply.json()["session_id"])
            rotated = await client.request("POST", "/rotate")
            ids.append(rotated.json()["session_id"])
            assert (await client.chat("after the rotation")).status == 200
            other = Client(app)
            ids.append((await other.chat("another user")).json()["session_id"])

    asyncio.run(conversation())
    assert len(set(ids)) == 3
    stored = target.scan(f"{namespace}:*")
    contents = b"".join(v for key in stored for v in stored_values(target.raw, key))
    assert b"my name is Ada" in contents  # the scan sees the data, so it would see an id
    for session_id in ids:
        assert not any(session_id in key for key in stored)
        assert session_id.encode() not in contents


@pytest.mark.parametrize("bad_id", [
    pytest.param("a:messages", id="colon"),
    pytest.param("../x", id="path"),
    pytest.param("x" * 23 + "}", id="brace"),
    pytest.param("{" + "x" * 22 + "}", id="hash-tag"),
    pytest.param("x" * 23 + ":", id="colon-24"),
    pytest.param("x" * 25, id="too-long"),
    pytest.param("", id="empty"),
])
def test_an_id_of_another_shape_is_refused_before_any_key_is_built(bad_id: str) -> None:
    deriver = KeyDeriver(HASH_KEY.encode(), "app")
    with pytest.raises(ValueError, match="not a stickyctx session id"):
        deriver.derive(bad_id)
    assert deriver.derive(new_session_id()).namespace == "app"


def test_two_namespaces_do_not_see_each_others_data(
    standalone: Target, open_store: OpenStore, namespace: str
) -> None:
    session_id = new_session_id()
    one_ns, two_ns = f"{namespace}-one", f"{namespace}-two"
    one = open_store(standalone.url, namespace=one_ns)
    two = open_store(standalone.url, namespace=two_ns)
    key_one = Services(redis_settings(standalone.url, one_ns)).keys.derive(session_id)
    key_two = Services(redis_settings(standalone.url, two_ns)).keys.derive(session_id)
    assert key_one.tag == key_two.tag  # the same session id and hash key...
    one.append(key_one, [msg("user", "tenant one")], created=time.time())
    assert two.load(key_two).status == "missing"  # ...but another tenant's store
    two.append(key_two, [msg("user", "tenant two")], created=time.time())
    two.destroy(key_two)
    assert [m.content for m in one.load(key_one).messages] == ["tenant one"]
    assert two.load(key_two).status == "revoked"
    assert all(k.startswith(f"{one_ns}:") for k in standalone.scan(f"{one_ns}*"))
    assert standalone.scan(f"{two_ns}:*") == [key_two.key(TOMBSTONE)]


def tag(key: str) -> str:
    """The hash tag of a store key (``namespace:{tag}:suffix``): the session it belongs to."""
    return key.split("{", 1)[1].split("}", 1)[0]


def test_rotating_the_signing_keys_keeps_every_store_key(
    standalone: Target, namespace: str
) -> None:
    before = redis_settings(standalone.url, namespace, secret_keys=(KEY_A,))
    rotated = redis_settings(standalone.url, namespace, secret_keys=(KEY_B, KEY_A))
    other_hash = redis_settings(standalone.url, namespace,
                                hash_key="another-hash-key-0123456789abcdef")
    session_id = new_session_id()
    derived = [Services(s).keys.derive(session_id) for s in (before, rotated, other_hash)]
    assert derived[0] == derived[1]  # new signing keys in front: the same store keys
    assert derived[0] != derived[2]  # the hash key alone names them

    def session_keys() -> set[str]:
        # (Not the node registry, {members}: each node's heartbeat writes it when it beats.)
        return {k for k in standalone.scan(f"{namespace}:{{*") if tag(k) != "members"}

    async def across_the_rotation() -> tuple[str, list[Any], str]:
        async with sticky(before) as app:
            client = Client(app)
            first = await client.chat("remember me")
            token = client.token
        keys_before = session_keys()
        async with sticky(rotated) as app:
            reply = await Client(app, token).request("GET", "/history")
        # The same session's keys (its turn took the fencing counter, under the same tag):
        assert {tag(k) for k in session_keys()} == {tag(k) for k in keys_before}
        assert session_keys() >= keys_before
        return first.json()["session_id"], reply.json()["messages"], reply.json()["session_id"]

    session, messages, after = asyncio.run(across_the_rotation())
    assert after == session
    assert [m["content"] for m in messages] == ["remember me", "echo: remember me"]


# Patterns of a KEYS command: from Lua, and from redis-py in Python.
_LUA_KEYS = re.compile(r"""redis\.p?call\(\s*['"]keys['"]""", re.IGNORECASE)
_PY_KEYS = re.compile(r"""execute_command\(\s*['"]keys['"]|\.keys\(\s*(?:pattern\s*=|['"])""",
                      re.IGNORECASE)


def test_no_keys_command_anywhere_in_the_sources() -> None:
    # The patterns find what they look for (so the test below can fail).
    assert _LUA_KEYS.search("local all = redis.call('KEYS', '*')")
    assert _PY_KEYS.search("client.keys('stickyctx:*')")
    assert _PY_KEYS.search('client.execute_command("KEYS", "*")')
    lua = sorted((SOURCES / "stores" / "redis" / "lua").glob("*.lua"))
    python = sorted(SOURCES.rglob("*.py"))
    assert len(lua) >= 10
    assert Path(SOURCES / "stores" / "redis" / "schema.py") in python
    for path in lua:
        assert not _LUA_KEYS.search(path.read_text()), path.name
    for path in python:
        text = path.read_text()
        assert not _PY_KEYS.search(text), path.relative_to(SOURCES)
        assert not _LUA_KEYS.search(text), path.relative_to(SOURCES)


def test_a_conversation_and_a_principal_each_keep_to_one_cluster_slot(
    cluster: Target, namespace: str
) -> None:
    """Every script of a conversation (record, state, tombstone, beside its session's keys) or
    of a principal (index, memory, tombstone) addresses one hash tag, so one Cluster slot."""
    from stickyctx.core.principals import UserKeys
    from stickyctx.stores.redis.users import (
        CONV_TOMBSTONE,
        INDEX,
        MEMORY,
        PRINCIPAL_TOMBSTONE,
        RECORD,
        STATE,
    )

    deriver = KeyDeriver(HASH_KEY.encode(), namespace)
    users = UserKeys(deriver.digest, namespace)
    session = deriver.derive(users.conversation_session_id("a-conversation", "acme"))
    conversation = [session.key(p) for p in (*KEYS, RECORD, STATE, CONV_TOMBSTONE)]
    principal = users.principal("alice", "acme").key
    own = [principal.key(p) for p in (INDEX, MEMORY, PRINCIPAL_TOMBSTONE)]
    for names in (conversation, own):
        assert len({key_slot(name.encode()) for name in names}) == 1
        assert len({cluster.raw.keyslot(name) for name in names}) == 1
    # Raw ids never appear in a key name.
    assert not any("alice" in k or "acme" in k or "a-conversation" in k
                   for k in conversation + own)
