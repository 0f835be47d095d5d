"""Encryption at rest on a real Redis (and Cluster): nothing readable is stored, the ring
rotates without losing data, ciphertext is bound to its session, and a missing key is a clear
error."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest

from stickyctx import ConfigError, StoreError, TamperedDataError
from stickyctx.core.storekeys import SessionKey
from stickyctx.stores.crypto import parse_key_ring

from .conftest import NewKey, OpenStore, Target, msg, stored_values

MARK = "PLAINTEXT-MARKER-7c1e"


def ring_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def all_bytes(target: Target, key: SessionKey) -> bytes:
    out = b""
    for name in target.scan(f"*{{{key.tag}}}*"):
        out += b"".join(stored_values(target.raw, name))
    return out


def test_nothing_readable_is_stored_and_everything_reads_back(
        target: Target, open_store: OpenStore, new_key: NewKey) -> None:
    spec = f"k1:{ring_key()}"
    store = open_store(target.url, encryption_key=spec)
    key = new_key()
    store.append(key, [msg("user", f"{MARK} hello"), msg("assistant", f"{MARK} hi")],
                 created=time.time())
    snapshot = store.load(key)
    assert store.apply_summary(key, f"{MARK} summary", 5, watermark=1, expected_watermark=0)
    raw = all_bytes(target, key)
    assert raw  # the session is there ...
    assert MARK.encode() not in raw  # ... and none of its text is readable
    fresh = open_store(target.url, encryption_key=spec)  # another node: nothing cached
    loaded = fresh.load(key)
    assert [m.content for m in loaded.messages] == [m.content for m in snapshot.messages]
    assert loaded.summary is not None
    assert loaded.summary.text == f"{MARK} summary"
    popped = fresh.pop(key)
    assert popped is not None
    assert popped.content == f"{MARK} hi"


def test_ring_rotation_keeps_old_data_readable_and_rewraps(
        target: Target, open_store: OpenStore, new_key: NewKey) -> None:
    old, new = ring_key(), ring_key()
    key = new_key()
    first = open_store(target.url, encryption_key=f"old:{old}")
    first.append(key, [msg("user", "written under the old key")], created=time.time())
    rotated = open_store(target.url, encryption_key=f"new:{new},old:{old}")
    assert [m.content for m in rotated.load(key).messages] == ["written under the old key"]
    rotated.append(key, [msg("user", "written after the rotation")], created=time.time())
    # The data key is now wrapped by the newest ring key: the old one can be retired.
    retired = open_store(target.url, encryption_key=f"new:{new}")
    assert [m.content for m in retired.load(key).messages] == [
        "written under the old key", "written after the rotation"]
    # A ring without the key that wraps the session's data key cannot read it: a clear error.
    stranger = open_store(target.url, encryption_key=f"other:{ring_key()}")
    with pytest.raises(StoreError, match="not in STICKYCTX_ENCRYPTION_KEY"):
        stranger.load(key)


def test_ciphertext_moved_to_another_session_fails_authentication(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    spec = f"k1:{ring_key()}"
    store = open_store(standalone.url, encryption_key=spec)
    a, b = new_key(), new_key()
    store.append(a, [msg("user", "A's secret")], created=time.time())
    store.append(b, [msg("user", "B's message")], created=time.time())
    raw = standalone.raw
    raw.rpush(b.key("m"), raw.lindex(a.key("m"), 0))  # an attacker splices A's item into B
    raw.hincrby(b.key("s"), "v", 1)
    raw.hincrby(b.key("s"), "rv", 1)
    reader = open_store(standalone.url, encryption_key=spec)
    with pytest.raises(TamperedDataError):  # a repeated position, and another session's key
        list(reader.load(b).messages)  # items are opened when they are read
    raw.lset(b.key("m"), 1, raw.lindex(a.key("m"), 0).replace(b"1,", b"2,", 1))  # renumbered
    with pytest.raises(TamperedDataError, match="failed authentication"):
        list(open_store(standalone.url, encryption_key=spec).load(b).messages)


def _bump(raw: Any, key: SessionKey) -> None:
    """What an attacker does so that nodes reload the session in full."""
    raw.hincrby(key.key("s"), "v", 1)
    raw.hincrby(key.key("s"), "rv", 1)


def _encrypted(target: Target, open_store: OpenStore, new_key: NewKey,
               spec: str) -> tuple[SessionKey, list[bytes]]:
    store = open_store(target.url, encryption_key=spec)
    key = new_key()
    store.append(key, [msg("user", "one"), msg("assistant", "two")], created=time.time())
    store.append(key, [msg("user", "three")], created=time.time())
    return key, list(target.raw.lrange(key.key("m"), 0, -1))


def _body(item: bytes) -> bytes:
    return item.partition(b"\n")[2]


@pytest.mark.parametrize("attack", ["swap-bodies", "swap-items", "replay", "drop-middle",
                                    "plaintext", "strip-key", "summary-moved"])
def test_items_are_bound_to_their_position_and_plaintext_is_refused(
        standalone: Target, open_store: OpenStore, new_key: NewKey, attack: str) -> None:
    """Whoever can write to Redis cannot reorder, replay, drop or slip in messages of an
    encrypted session unnoticed: each is a typed error, never served."""
    spec = f"k1:{ring_key()}"
    key, items = _encrypted(standalone, open_store, new_key, spec)
    raw, m = standalone.raw, key.key("m")
    head = [item.partition(b"\n")[0] for item in items]
    if attack == "swap-bodies":  # headers stay in order, payloads change places
        raw.lset(m, 0, head[0] + b"\n" + _body(items[1]))
        raw.lset(m, 1, head[1] + b"\n" + _body(items[0]))
    elif attack == "swap-items":
        raw.lset(m, 0, items[1])
        raw.lset(m, 1, items[0])
    elif attack == "replay":  # the first message again, renumbered as the third
        raw.lset(m, 2, head[2] + b"\n" + _body(items[0]))
    elif attack == "drop-middle":
        raw.lrem(m, 1, items[1])
    elif attack == "plaintext":
        raw.lset(m, 2, head[2] + b'\n{"role":"user","content":"injected"}')
    elif attack == "strip-key":
        raw.hdel(key.key("s"), "dek")
    elif attack == "summary-moved":
        store = open_store(standalone.url, encryption_key=spec)
        assert store.apply_summary(key, "folded", 3, watermark=1, expected_watermark=0)
        raw.hset(key.key("s"), "sw", 2)  # the summary claims to cover more than it does
    _bump(raw, key)
    reader = open_store(standalone.url, encryption_key=spec)
    with pytest.raises(TamperedDataError):  # items are opened when they are read
        [m.content for m in reader.load(key).messages]


def test_encrypted_appends_from_nodes_with_stale_caches_and_retries(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    """Two nodes append in turn (each one's cache behind the other's write), and a retry of
    a stored turn comes again: every item is sealed for the position it got."""
    spec = f"k1:{ring_key()}"
    first, second = (open_store(standalone.url, encryption_key=spec) for _ in range(2))
    key = new_key()
    for i in range(6):
        store = (first, second)[i % 2]
        store.load(key) if i == 1 else None  # one node caches an old state
        result = store.append(key, [msg("user", f"m{i}", dedupe=f"turn-{i}")],
                              created=time.time())
        assert result.written == (True,)
    again = first.append(key, [msg("user", "m3", dedupe="turn-3"),
                               msg("user", "m6", dedupe="turn-6")], created=time.time())
    assert again.written == (False, True)
    assert again.seqs == (7,)
    reader = open_store(standalone.url, encryption_key=spec)
    assert [m.content for m in reader.load(key).messages] == [f"m{i}" for i in range(7)]
    assert [m.seq for m in reader.load(key).messages] == list(range(1, 8))


def test_a_session_encrypted_later_keeps_its_plaintext_past_and_seals_its_future(
        standalone: Target, open_store: OpenStore, new_key: NewKey) -> None:
    spec = f"k1:{ring_key()}"
    key = new_key()
    open_store(standalone.url).append(key, [msg("user", "before")], created=time.time())
    encrypted = open_store(standalone.url, encryption_key=spec)
    encrypted.append(key, [msg("assistant", "after")], created=time.time())
    raw = standalone.raw
    items = raw.lrange(key.key("m"), 0, -1)
    assert b"before" in items[0]
    assert b"after" not in items[1]
    reader = open_store(standalone.url, encryption_key=spec)
    assert [m.content for m in reader.load(key).messages] == ["before", "after"]
    # Plaintext is accepted only where the session was not yet encrypted.
    raw.lset(key.key("m"), 1, items[1].partition(b"\n")[0] + b'\n{"role":"user","content":"x"}')
    _bump(raw, key)
    with pytest.raises(TamperedDataError):
        [m.content for m in open_store(standalone.url, encryption_key=spec).load(key).messages]


@pytest.mark.parametrize("spec", [
    pytest.param("nokey", id="no-id"),
    pytest.param("k1:short", id="short-key"),
    pytest.param("k1:!!!", id="not-base64"),
    pytest.param("k-1:" + "A" * 43, id="bad-id"),
])
def test_bad_key_rings_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key_ring(spec)
    assert caught.value.variable == "STICKYCTX_ENCRYPTION_KEY"
