"""Store keys: a keyed hash of the session id, stable across signing-key rotation, one slot."""

from __future__ import annotations

import re

import pytest
from redis.crc import key_slot

from stickyctx.core.ids import new_session_id
from stickyctx.core.storekeys import KeyDeriver, derive_hash_key
from tests.conftest import KEY_A, KEY_B

KEY_C = "c" * 40
SECRET = b"s" * 32


def test_derivation_is_stable_and_distinct() -> None:
    session_id, other = new_session_id(), new_session_id()
    key = KeyDeriver(SECRET, "app").derive(session_id)
    assert KeyDeriver(SECRET, "app").derive(session_id) == key  # another process, same key
    assert KeyDeriver(SECRET, "app").derive(other) != key
    assert KeyDeriver(b"t" * 32, "app").derive(session_id).tag != key.tag  # keyed
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", key.tag)  # 128 bits, no brace, no colon


def test_no_raw_id_reaches_a_key() -> None:
    session_id = new_session_id()
    key = KeyDeriver(SECRET, "app").derive(session_id)
    for part in ("messages", "meta", "dedupe", "lease"):
        assert session_id not in key.key(part)
    assert session_id not in repr(key)


def test_namespaces_keep_tenants_apart() -> None:
    session_id = new_session_id()
    one = KeyDeriver(SECRET, "tenant-1").derive(session_id)
    two = KeyDeriver(SECRET, "tenant-2").derive(session_id)
    assert one != two
    assert one.key("messages") != two.key("messages")
    assert one.key("messages").startswith("tenant-1:")


def test_every_key_of_a_session_shares_one_hash_tag_and_cluster_slot() -> None:
    key = KeyDeriver(SECRET, "app").derive(new_session_id())
    parts = ["messages", "meta", "dedupe", "lease:turn", "lease:summary", "summary"]
    names = [key.key(part) for part in parts]
    assert all(f"{{{key.tag}}}" in name for name in names)
    assert len({key_slot(name.encode()) for name in names}) == 1
    assert len(set(names)) == len(parts)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("short", id="short"),
        pytest.param("a" * 20 + ":msg", id="colon-injection"),
        pytest.param("a" * 22 + "}{", id="brace-injection"),
        pytest.param("", id="empty"),
    ],
)
def test_derive_refuses_ids_this_package_would_not_issue(bad: str) -> None:
    with pytest.raises(ValueError, match="session id"):
        KeyDeriver(SECRET, "app").derive(bad)


def test_the_hash_key_survives_adding_a_new_signing_key_in_front() -> None:
    before = derive_hash_key(None, (KEY_A,))
    assert derive_hash_key(None, (KEY_B, KEY_A)) == before
    assert derive_hash_key(None, (KEY_C, KEY_B, KEY_A)) == before
    session_id = new_session_id()
    assert (KeyDeriver(before, "app").derive(session_id)
            == KeyDeriver(derive_hash_key(None, (KEY_C, KEY_A)), "app").derive(session_id))


def test_the_hash_key_is_neither_a_signing_key_nor_the_same_for_another_anchor() -> None:
    derived = derive_hash_key(None, (KEY_A,))
    assert derived != KEY_A.encode()
    assert KEY_A.encode() not in derived
    assert derive_hash_key(None, (KEY_B,)) != derived


def test_an_explicit_hash_key_wins_over_the_signing_keys() -> None:
    explicit = derive_hash_key("h" * 40, (KEY_A,))
    assert explicit == derive_hash_key("h" * 40, (KEY_B, KEY_C))
    assert explicit != derive_hash_key(None, (KEY_A,))
