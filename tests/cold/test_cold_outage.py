"""PostgreSQL down (SIGKILLed) under the cold tier: conversations in Redis carry on untouched;
only a session missing in Redis, which could be cold, fails (503), and nothing stays locked."""

from __future__ import annotations

import time

import pytest

from stickyctx.errors import StoreUnavailableError
from stickyctx.stores import open_store
from stickyctx.stores.cold.tiered import TieredStore
from tests.postgres_servers import PostgresServer
from tests.redis_servers import RedisServer
from tests.support.stores import SyncCalls

from .conftest import tiers_settings
from .test_cold_tier import msg

pytestmark = pytest.mark.slow


def test_hot_conversations_carry_on_while_postgres_is_down(
        redis_server_session: RedisServer, postgres_server: PostgresServer) -> None:
    settings = tiers_settings(redis_server_session, postgres_server)
    store = open_store(settings)
    assert isinstance(store, TieredStore)
    calls = SyncCalls(store)
    from stickyctx.core.ids import new_session_id
    from stickyctx.core.storekeys import KeyDeriver

    keys = KeyDeriver(b"cold-suite-hash-key-0123456789abcdef", settings.namespace)
    hot, unknown = keys.derive(new_session_id()), keys.derive(new_session_id())
    try:
        calls.append(hot, [msg("user", "q1")], created=time.time())
        postgres_server.kill()
        begun = calls.begin(hot, holder="n1:a", ttl=30)
        assert begun.status == "live"
        calls.append(hot, [msg("user", "q2")], created=time.time(), fence=begun.token,
                     release=True)
        assert [m.content for m in calls.load(hot).messages] == ["q1", "q2"]
        with pytest.raises(StoreUnavailableError):
            calls.load(unknown)  # it could be cold: no answer without PostgreSQL
        with pytest.raises(StoreUnavailableError):
            calls.begin(unknown, holder="n1:b", ttl=30, writing=True)
        postgres_server.restart()
        assert calls.load(unknown).status == "missing"
        # The failed begin left no lease behind that would keep the session busy.
        assert calls.begin(unknown, holder="n1:c", ttl=30, writing=True).token is not None
    finally:
        store.close()
