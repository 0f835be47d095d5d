"""A node frozen in the middle of a transaction (it holds a session's lock and never commits):
other requests get a typed error within the store timeout instead of waiting forever, and the
server ends the frozen transaction, so the session is usable again without anyone's help."""

from __future__ import annotations

import time

import psycopg
import pytest

from stickyctx.errors import StoreUnavailableError
from stickyctx.sansio import run_sync
from tests.postgres.conftest import msg, new_key, pg_settings, pg_store
from tests.postgres_servers import PostgresServer
from tests.support.waiting import poll

pytestmark = pytest.mark.slow


def test_a_frozen_transaction_neither_blocks_nor_locks_for_good(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url, store_timeout=1.0)
    store = pg_store(settings)
    key = new_key(settings)
    # The frozen node: a connection of the store's own kind, stopped inside a transaction that
    # holds the session's lock (as the store's reads take it).
    frozen = psycopg.connect(postgres_server_session.url,
                             options="-c idle_in_transaction_session_timeout=3000")
    try:
        run_sync(store.append(key, [msg("user", "before")], created=time.time()),
                 store.sync_io)
        frozen.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       (f"{key.namespace}/{key.tag}",))
        with pytest.raises(StoreUnavailableError):  # the lock timeout: not a wait without end
            run_sync(store.append(key, [msg("user", "blocked")], created=time.time()),
                     store.sync_io)

        def appended() -> bool:
            try:
                run_sync(store.append(key, [msg("user", "after")], created=time.time()),
                         store.sync_io)
            except StoreUnavailableError:
                return False
            return True

        poll(appended, timeout=20, what="the server ending the frozen transaction")
        loaded = run_sync(store.load(key), store.sync_io)
        assert [m.content for m in loaded.messages] == ["before", "after"]
    finally:
        frozen.close()
        store.close()
