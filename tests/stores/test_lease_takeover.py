"""A turn lease held by a node that left the membership is taken over, not waited for.

A node that dies mid-turn leaves its session's turn lease behind until the lease's TTL
(``STICKYCTX_TURN_LEASE_TTL``, two minutes by default). Callers that know the live node ids pass
them; a lease whose holder (``node:nonce``) names a node outside them is granted afresh, with a
larger fencing token, so the dead holder's late writes are refused. Run on every store backend.
"""

from __future__ import annotations

import pytest

from stickyctx.errors import FencedError
from tests.conftest import FakeClock
from tests.support.stores import AsyncCalls, SyncCalls

from .test_contract import NewKey, contents, msg

LIVE = frozenset({"n1", "n3"})


@pytest.mark.parametrize(("live", "taken"), [
    pytest.param(frozenset(), False, id="liveness-unknown-waits"),
    pytest.param(frozenset({"n1", "n2", "n3"}), False, id="live-holder-waits"),
    pytest.param(LIVE, True, id="departed-holder-taken-over"),
])
def test_a_lease_is_taken_over_only_from_a_departed_node(
    store: SyncCalls, new_key: NewKey, clock: FakeClock, live: frozenset[str], taken: bool
) -> None:
    key = new_key()
    store.append(key, [msg("user", "first")], created=clock())
    dead = store.acquire_lease(key, holder="n2:0a1b2c", ttl=60)
    assert dead is not None
    token = store.acquire_lease(key, holder="n1:3d4e5f", ttl=60, live=live)
    assert (token is not None) == taken
    if token is None:
        return
    assert token > dead
    with pytest.raises(FencedError):  # the departed holder's late write
        store.append(key, [msg("assistant", "late")], created=clock(), fence=dead)
    store.release_lease(key, dead)  # a stale token releases nothing
    assert store.acquire_lease(key, holder="n3:6a7b8c", ttl=60, live=LIVE) is None
    store.append(key, [msg("assistant", "taken over")], created=clock(), fence=token)
    assert contents(store.load(key)) == ["first", "taken over"]


def test_a_holder_without_a_node_id_is_never_taken_over(
    store: SyncCalls, new_key: NewKey
) -> None:
    key = new_key()
    assert store.acquire_lease(key, holder="someone", ttl=60) is not None
    assert store.acquire_lease(key, holder="n1:3d4e5f", ttl=60, live=LIVE) is None


@pytest.mark.anyio
async def test_the_async_form_takes_over_too(astore: AsyncCalls, new_key: NewKey) -> None:
    key = new_key()
    dead = await astore.acquire_lease(key, holder="n2:0a1b2c", ttl=60)
    assert dead is not None
    assert await astore.acquire_lease(key, holder="n1:3d4e5f", ttl=60) is None
    token = await astore.acquire_lease(key, holder="n1:3d4e5f", ttl=60, live=LIVE)
    assert token is not None
    assert token > dead
