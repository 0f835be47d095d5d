"""The keys of principals and conversations in Redis: every one carries an expiry (so data
nobody touches again leaves on its own), refreshed by writes, and tombstones hold nothing."""

from __future__ import annotations

from stickyctx.core.principals import ConversationRecord, MemoryItem
from stickyctx.stores.redis.users import (
    CONV_TOMBSTONE,
    INDEX,
    MEMORY,
    PRINCIPAL_TOMBSTONE,
    RECORD,
    STATE,
)
from stickyctx.stores.userdata import ConversationChange

from .conftest import NewKey, OpenStore, Target

TTL = 600.0


def test_every_key_expires_and_writes_refresh_it(target: Target, open_store: OpenStore,
                                                 new_key: NewKey) -> None:
    store = open_store(target.url)
    key, principal = new_key(), new_key()
    store.conversation_put(key, ConversationRecord("c1", "u", 1.0, 1.0), ttl=5)
    store.state_cas(key, "k", "1", check=False, ttl=5)
    store.index_add(principal, "c1", 1.0, ttl=5)
    store.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=5)
    for name in (key.key(RECORD), key.key(STATE), principal.key(INDEX), principal.key(MEMORY)):
        assert 0 < target.raw.pttl(name) <= 5000, name
    store.conversation_change(key, ConversationChange(turns=1), ttl=TTL)
    assert target.raw.pttl(key.key(RECORD)) > 5000  # refreshed by the write

    store.conversation_delete(key, ttl=TTL)
    store.principal_erase(principal, ttl=TTL)
    left = target.scan(f"*{key.tag}*") + target.scan(f"*{principal.tag}*")
    assert sorted(left) == sorted([key.key(CONV_TOMBSTONE), principal.key(PRINCIPAL_TOMBSTONE)])
    for name in left:
        assert target.raw.get(name) == b"1"  # a tombstone holds nothing
        assert 0 < target.raw.pttl(name) <= TTL * 1000
