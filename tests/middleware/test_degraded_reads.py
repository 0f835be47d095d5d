"""A Redis outage through the handle: reads served from the hot tier and flagged, writes refused,
and everything back by itself when Redis returns."""

from __future__ import annotations

import pytest

from stickyctx import StoreUnavailableError, SyncConversation
from stickyctx.edges.request import identify
from stickyctx.sansio import run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores import open_store
from tests.conftest import make_settings
from tests.redis_fixtures import MakeRedisServer


def test_outage_reads_from_memory_flagged_writes_refused_then_recovers(
        redis_server_factory: MakeRedisServer) -> None:
    server = redis_server_factory(appendonly=True)
    settings = make_settings(store_url=server.url, hash_key="h" * 40, store_timeout=0.5,
                             stale_reads=True)  # (opted in: off by default)
    services = Services(settings)
    store = open_store(settings)
    state = identify(services, [], None)

    def request() -> tuple[Session, SyncConversation]:
        logic = Session(services, store, state, auto_lock=True)
        return logic, SyncConversation(logic)

    logic, conv = request()
    conv.append("user", "acknowledged before the outage")
    assert not conv.stale
    run_sync(logic.end(), store.sync_io)
    state.affinity = "hit"  # the next requests carry the session's cookie: not a new session

    server.kill()
    logic, conv = request()
    assert [m["content"] for m in conv.messages()] == ["acknowledged before the outage"]
    assert conv.stale  # served from this node's memory, and it says so
    with pytest.raises(StoreUnavailableError):
        conv.append("user", "cannot be made durable")
    run_sync(logic.end(), store.sync_io)

    server.restart()
    logic, conv = request()
    conv.append("user", "after the restart")  # the same store object reconnects by itself
    assert [m["content"] for m in conv.messages()] == [
        "acknowledged before the outage", "after the restart"]
    assert not conv.stale
    run_sync(logic.end(), store.sync_io)
