"""The ``StreamStore`` primitives (streamed replies), on every backend of ``conftest``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stickyctx.core.storekeys import SessionKey
from tests.conftest import FakeClock

from .conftest import Stores

NewKey = Callable[[], SessionKey]
TTL = 60.0


def test_a_stream_keeps_its_chunks_in_order_and_reads_after_a_position(
    stores: Stores, new_key: NewKey,
) -> None:
    s, key = stores.sync, new_key()
    assert s.stream_read(key) is None
    s.stream_open(key, "abc", node="n1", turn="turn-1", ttl=TTL)
    assert s.stream_push(key, "abc", ["Hel", "lo"], ttl=TTL) is False
    assert s.stream_push(key, "abc", [" world", "\nline"], ttl=TTL) is False
    whole = s.stream_read(key)
    assert (whole.stream_id, whole.status, whole.node, whole.turn, whole.count) == (
        "abc", "running", "n1", "turn-1", 4)
    assert whole.chunks == ("Hel", "lo", " world", "\nline")
    later = s.stream_read(key, 3)
    assert (later.first, later.chunks, later.count) == (3, ("\nline",), 4)
    assert s.stream_read(key, 9).chunks == ()


def test_the_end_is_set_once_and_pushes_after_it_change_nothing(
    stores: Stores, new_key: NewKey,
) -> None:
    s, key = stores.sync, new_key()
    s.stream_open(key, "abc", node="n1", turn="", ttl=TTL)
    s.stream_push(key, "abc", ["a"], ttl=TTL)
    assert s.stream_end(key, "abc", "interrupted", ttl=TTL) is True
    assert s.stream_end(key, "abc", "complete", ttl=TTL) is False  # the first caller won
    assert s.stream_push(key, "abc", ["late"], ttl=TTL) is True  # "stop": not appended
    info = s.stream_read(key)
    assert (info.status, info.chunks) == ("interrupted", ("a",))


def test_a_newer_stream_replaces_the_older_which_can_no_longer_write(
    stores: Stores, new_key: NewKey,
) -> None:
    s, key = stores.sync, new_key()
    s.stream_open(key, "old", node="n1", turn="", ttl=TTL)
    s.stream_push(key, "old", ["x", "y"], ttl=TTL)
    s.stream_open(key, "new", node="n2", turn="", ttl=TTL)
    assert s.stream_push(key, "old", ["z"], ttl=TTL) is True
    assert s.stream_end(key, "old", "complete", ttl=TTL) is False
    info = s.stream_read(key)
    assert (info.stream_id, info.node, info.count, info.chunks) == ("new", "n2", 0, ())


def test_a_stop_is_seen_by_the_next_push_and_only_while_running(
    stores: Stores, new_key: NewKey,
) -> None:
    s, key = stores.sync, new_key()
    assert s.stream_stop(key) is None
    s.stream_open(key, "abc", node="n1", turn="", ttl=TTL)
    assert s.stream_push(key, "abc", ["a"], ttl=TTL) is False
    assert s.stream_stop(key) == "abc"
    assert s.stream_read(key).stop is True
    assert s.stream_push(key, "abc", ["b"], ttl=TTL) is True  # the generator is told to stop
    s.stream_end(key, "abc", "stopped", ttl=TTL)
    assert s.stream_stop(key) is None


def test_sessions_streams_are_their_own(stores: Stores, new_key: NewKey) -> None:
    s, one, two = stores.sync, new_key(), new_key()
    s.stream_open(one, "abc", node="n1", turn="", ttl=TTL)
    s.stream_push(one, "abc", ["mine"], ttl=TTL)
    assert s.stream_read(two) is None
    assert s.stream_push(two, "abc", ["not mine"], ttl=TTL) is True
    assert s.stream_read(one).chunks == ("mine",)


@pytest.mark.anyio
async def test_the_async_form_reads_what_the_sync_form_wrote(
    stores: Stores, new_key: NewKey,
) -> None:
    key = new_key()
    stores.sync.stream_open(key, "abc", node="n1", turn="", ttl=TTL)
    assert await stores.async_.stream_push(key, "abc", ["a", "b"], ttl=TTL) is False
    info = await stores.async_.stream_read(key, 1)
    assert info.chunks == ("b",)


@pytest.mark.store_needs("clock")
def test_a_push_extends_the_turn_lease_its_fence_holds(
    stores: Stores, new_key: NewKey, clock: FakeClock,
) -> None:
    s, key = stores.sync, new_key()
    token = s.acquire_lease(key, holder="n1:aa", ttl=1.0)
    s.stream_open(key, "abc", node="n1", turn="", ttl=TTL)
    s.stream_push(key, "abc", ["a"], ttl=TTL, fence=token + 1, lease_ttl=30.0)  # not its fence
    s.stream_push(key, "abc", ["b"], ttl=TTL, fence=token, lease_ttl=30.0)
    clock.advance(2.0)
    assert s.acquire_lease(key, holder="n2:bb", ttl=1.0) is None  # still held: extended
    clock.advance(30.0)
    assert s.acquire_lease(key, holder="n2:bb", ttl=1.0) is not None


@pytest.mark.store_needs("clock")
def test_a_stream_expires_ttl_after_its_last_write(
    stores: Stores, new_key: NewKey, clock: FakeClock,
) -> None:
    s, key = stores.sync, new_key()
    s.stream_open(key, "abc", node="n1", turn="", ttl=10)
    clock.advance(8)
    s.stream_push(key, "abc", ["a"], ttl=10)
    clock.advance(8)
    assert s.stream_read(key).chunks == ("a",)
    clock.advance(3)
    assert s.stream_read(key) is None


def test_the_stream_keys_share_the_sessions_hash_tag() -> None:
    from stickyctx.stores.redis import schema
    from stickyctx.stores.redis.streams import STREAM_CHUNKS, STREAM_RECORD

    tag = SessionKey("ns", "TAG")
    names = schema.keys(tag, STREAM_RECORD, STREAM_CHUNKS, schema.META, schema.TURN_LEASE)
    assert {n.split("}")[0] for n in names} == {"ns:{TAG"}
    assert STREAM_RECORD not in schema.KEYS
    assert STREAM_CHUNKS not in schema.KEYS
