"""Encryption at rest on a real Redis (and Cluster): nothing readable is stored, the ring
rotates without losing data, ciphertext is bound to its session, and a missing key is a clear
error."""

from __future__ import annotations

import base64
import os
import time

import pytest

from stickyctx import ConfigError, StoreError
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
    with pytest.raises(StoreError, match="failed authentication"):
        list(reader.load(b).messages)  # items are opened when they are read


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
