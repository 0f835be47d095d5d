"""Streamed replies on real Redis: a stream's keys live in the session's one Cluster slot,
and a push renews the turn lease that its fence holds (``PTTL``, Redis's own clock)."""

from __future__ import annotations

import time

from redis.crc import key_slot

from stickyctx.stores.redis.schema import META, TURN_LEASE
from stickyctx.stores.redis.streams import STREAM_CHUNKS, STREAM_RECORD

from .conftest import NewKey, OpenStore, Target, msg


def test_a_streams_keys_share_the_sessions_cluster_slot(
    cluster: Target, open_store: OpenStore, new_key: NewKey, namespace: str,
) -> None:
    store, key = open_store(cluster.url), new_key()
    store.append(key, [msg("user", "hi")], created=time.time())
    store.stream_open(key, "abc", node="n1", turn="t", ttl=60)
    assert store.stream_push(key, "abc", ["one ", "two"], ttl=60) is False
    assert store.stream_end(key, "abc", "complete", ttl=60) is True
    names = [key.key(part) for part in (META, STREAM_RECORD, STREAM_CHUNKS)]
    assert len({key_slot(name.encode()) for name in names}) == 1
    holders = [server for server in cluster.masters if server.scan_keys(f"{namespace}:*")]
    assert len(holders) == 1
    assert {key.key(STREAM_RECORD), key.key(STREAM_CHUNKS)} <= set(
        holders[0].scan_keys(f"{namespace}:*"))
    assert store.stream_read(key).chunks == ("one ", "two")


def test_a_push_renews_the_lease_of_its_fence_only(
    target: Target, open_store: OpenStore, new_key: NewKey,
) -> None:
    store, key = open_store(target.url), new_key()
    token = store.acquire_lease(key, holder="n1:a", ttl=5.0)
    assert token is not None
    store.stream_open(key, "abc", node="n1", turn="", ttl=60)
    lease = key.key(TURN_LEASE)
    store.stream_push(key, "abc", ["x"], ttl=60, fence=token + 1, lease_ttl=30.0)
    assert target.raw.pttl(lease) <= 5000  # another fence renews nothing
    store.stream_push(key, "abc", ["y"], ttl=60, fence=token, lease_ttl=30.0)
    assert 5000 < target.raw.pttl(lease) <= 30_000
    assert 59_000 < target.raw.pttl(key.key(STREAM_CHUNKS)) <= 60_000
