"""A PostgreSQL server SIGKILLed in the middle of a turn: after its restart the session is
usable again, nothing acknowledged is lost, and the fencing token still fences."""

from __future__ import annotations

import asyncio
import time

import pytest

from stickyctx.errors import FencedError, StoreUnavailableError
from stickyctx.sansio import run_async, run_sync
from tests.postgres.conftest import msg, new_key, pg_settings, pg_store
from tests.postgres_servers import PostgresServer
from tests.support.waiting import poll

pytestmark = pytest.mark.slow


def test_kill_9_mid_turn_then_restart(postgres_server: PostgresServer) -> None:
    settings = pg_settings(postgres_server.url)
    store = pg_store(settings)
    key = new_key(settings)
    try:
        run_sync(store.append(key, [msg("user", "acknowledged")], created=time.time()),
                 store.sync_io)
        begun = run_sync(store.begin(key, holder="n1:turn", ttl=60, live={"n1"}),
                         store.sync_io)
        assert begun.token is not None

        postgres_server.kill()  # mid-turn: the lease is held, the commit not yet sent
        with pytest.raises(StoreUnavailableError):
            run_sync(store.append(key, [msg("assistant", "lost")], created=time.time(),
                                  fence=begun.token, release=True), store.sync_io)
        postgres_server.restart()

        # The lease outlived the crash (it was committed): the same node's holder still waits.
        again = run_sync(store.begin(key, holder="n1:retry", ttl=60, live={"n1"}),
                         store.sync_io)
        assert again.token is None
        # Node n1 is gone: n2 takes the turn over with a larger fencing token.
        taken = run_sync(store.begin(key, holder="n2:turn", ttl=60, live={"n2"}),
                         store.sync_io)
        assert taken.token is not None
        assert taken.token > begun.token
        assert taken.snapshot is not None
        assert [m.content for m in taken.snapshot.messages] == ["acknowledged"]
        # The stale holder is fenced off; the new one commits.
        with pytest.raises(FencedError):
            run_sync(store.append(key, [msg("assistant", "stale")], created=time.time(),
                                  fence=begun.token), store.sync_io)
        run_sync(store.append(key, [msg("assistant", "fresh")], created=time.time(),
                              fence=taken.token, release=True), store.sync_io)
        loaded = run_sync(store.load(key), store.sync_io)
        assert [m.content for m in loaded.messages] == ["acknowledged", "fresh"]
    finally:
        store.close()


def test_a_lease_left_by_a_crash_expires(postgres_server: PostgresServer) -> None:
    """Nothing stays locked: the lease of a holder that never comes back lapses by its TTL,
    also across a server crash, and the async face works over the new connections."""
    settings = pg_settings(postgres_server.url)
    store = pg_store(settings)
    key = new_key(settings)
    try:
        first = run_sync(store.begin(key, holder="n1:a", ttl=1.0, writing=True), store.sync_io)
        assert first.token is not None
        postgres_server.kill()
        postgres_server.restart()

        def taken() -> int | None:
            return run_sync(store.acquire_lease(key, holder="n1:b", ttl=30), store.sync_io)

        token = poll(taken, timeout=15, what="the crashed holder's lease expiring")
        assert token > first.token

        async def commit() -> list[str]:
            await run_async(store.append(key, [msg("user", "after")], created=time.time(),
                                         fence=token, release=True), store.async_io)
            snapshot = await run_async(store.load(key), store.async_io)
            await store.aclose()
            return [m.content for m in snapshot.messages]

        assert asyncio.run(commit()) == ["after"]
    finally:
        store.close()
