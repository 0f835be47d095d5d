"""The store's turn primitives (contract suite, every backend): ``begin`` takes the turn lease
and loads in one atomic step; ``append(..., release=True)`` commits a turn and releases it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from stickyctx.core.messages import dedupe_key
from stickyctx.core.storekeys import SessionKey
from stickyctx.errors import FencedError
from tests.support.stores import AsyncCalls, SyncCalls

from .test_contract import contents, msg

NewKey = Callable[[], SessionKey]


def test_begin_on_a_missing_session_takes_no_lease_and_writes_nothing(
        store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    begun = store.begin(key, holder="n1:a", ttl=30)
    assert begun.status == "missing"
    assert begun.token is None
    assert begun.snapshot is None
    # Nothing was taken: a lease is free for anyone, and the session still does not exist.
    assert store.acquire_lease(key, holder="n1:b", ttl=30) is not None
    assert store.load(key).status == "missing"


def test_begin_takes_the_lease_and_loads_the_history_in_one_step(
        store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    store.append(key, [msg("user", "one"), msg("assistant", "two")], created=time.time())
    begun = store.begin(key, holder="n1:a", ttl=30)
    assert begun.status == "live"
    assert begun.token is not None
    assert begun.snapshot is not None
    assert contents(begun.snapshot) == ["one", "two"]
    assert begun.snapshot.next_seq == 3
    assert begun.snapshot.group == 1
    assert begun.snapshot.cum == sum(m.tokens for m in begun.snapshot.messages)
    # Held: another begin gets no token and loads nothing.
    other = store.begin(key, holder="n2:b", ttl=30)
    assert other.status == "live"
    assert other.token is None
    assert other.snapshot is None
    # A holder whose node is not live is taken over, with a larger fencing token.
    taken = store.begin(key, holder="n2:b", ttl=30, live=("n2",))
    assert taken.token is not None
    assert taken.token > begun.token


def test_begin_on_a_revoked_session_takes_no_lease(store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    store.append(key, [msg("user", "gone")], created=time.time())
    store.destroy(key)
    assert store.begin(key, holder="n1:a", ttl=30).status == "revoked"
    assert store.acquire_lease(key, holder="n1:b", ttl=30) is not None


def test_begin_tells_which_idempotency_keys_are_stored(store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    first, second, third = (dedupe_key("turn-1", n) for n in range(3))
    store.append(key, [msg("user", "q", dedupe=first), msg("assistant", "a", dedupe=second)],
                 created=time.time())
    begun = store.begin(key, holder="n1:a", ttl=30, probe=[first, second, third])
    assert begun.seen == frozenset({first, second})


def test_a_commit_appends_and_releases_the_lease_atomically(
        store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    store.append(key, [msg("user", "before")], created=time.time())
    begun = store.begin(key, holder="n1:a", ttl=30)
    assert begun.token is not None
    result = store.append(key, [msg("user", "q"), msg("assistant", "a")], created=time.time(),
                          fence=begun.token, release=True)
    assert result.status == "live"
    assert result.seqs == (2, 3)
    assert contents(store.load(key)) == ["before", "q", "a"]
    assert store.acquire_lease(key, holder="n1:c", ttl=30) is not None  # released


def test_a_commit_with_a_stale_fence_is_refused_and_releases_nothing(
        store: SyncCalls, new_key: NewKey) -> None:
    key = new_key()
    store.append(key, [msg("user", "before")], created=time.time())
    old = store.begin(key, holder="n1:a", ttl=30)
    new = store.begin(key, holder="n2:b", ttl=30, live=("n2",))  # n1 left: taken over
    assert old.token is not None
    assert new.token is not None
    with pytest.raises(FencedError):
        store.append(key, [msg("user", "late")], created=time.time(), fence=old.token,
                     release=True)
    assert store.begin(key, holder="n3:c", ttl=30).token is None  # still n2's
    assert contents(store.load(key)) == ["before"]


@pytest.mark.anyio
async def test_the_async_form_begins_and_commits(astore: AsyncCalls, new_key: NewKey) -> None:
    key = new_key()
    await astore.append(key, [msg("user", "one")], created=time.time())
    begun = await astore.begin(key, holder="n1:a", ttl=30)
    assert begun.token is not None
    assert contents(begun.snapshot) == ["one"]
    await astore.append(key, [msg("assistant", "two")], created=time.time(), fence=begun.token,
                        release=True)
    assert contents(await astore.load(key)) == ["one", "two"]
    assert (await astore.begin(key, holder="n1:b", ttl=30)).token is not None
