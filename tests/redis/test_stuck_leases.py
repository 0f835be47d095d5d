"""A Redis crash in the middle of a turn leaves no session busy once Redis answers again.

The turn's lease is taken at the begin; Redis is killed (``kill -9``) before the commit, so
neither the commit nor the release reaches it, and with its append-only file Redis comes back
still holding the lease (for ``STICKYCTX_TURN_LEASE_TTL``, two minutes by default). The node
remembers the lease it could not release and releases it once Redis answers: the next turn
of that session on this node, and, after any request ends here, on another node, goes
through at once (the turn timeout is far shorter than the lease's TTL: waiting for the TTL
would answer 409). Fencing stays intact: the lost request's token writes nothing.
"""

from __future__ import annotations

import pytest
import redis

from stickyctx import FencedError, StoreUnavailableError, SyncConversation
from stickyctx.core.flow import SessionState
from stickyctx.core.messages import build_message
from stickyctx.edges.request import identify
from stickyctx.sansio import run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores import open_store
from stickyctx.stores.base import Store
from stickyctx.stores.redis.schema import TURN_LEASE
from tests.conftest import make_settings
from tests.redis_fixtures import MakeRedisServer

pytestmark = pytest.mark.slow


def _node(url: str, node_id: str) -> tuple[Services, Store]:
    settings = make_settings(store_url=url, node_id=node_id, hash_key="h" * 40,
                             store_timeout=0.5, turn_timeout=1.0)
    return Services(settings), open_store(settings)


def _turn(services: Services, store: Store, state: SessionState,
          text: str) -> tuple[Session, SyncConversation]:
    logic = Session(services, store, state, auto_lock=True)
    conv = SyncConversation(logic)
    conv.append("user", text)
    return logic, conv


def test_a_crash_mid_turn_leaves_no_session_busy(redis_server_factory: MakeRedisServer) -> None:
    server = redis_server_factory(appendonly=True)
    services, store = _node(server.url, "n1")
    other_services, other_store = _node(server.url, "n2")
    sessions = []
    for name in ("one", "two"):  # two sessions with a stored first turn
        state = identify(services, [], None)
        logic, _ = _turn(services, store, state, f"{name}: first")
        run_sync(logic.end(), store.sync_io)
        state.affinity = "hit"  # their next requests carry the cookie
        sessions.append(state)

    cut = []
    for state in sessions:  # a turn of each begins: lease taken, the append staged
        logic, conv = _turn(services, store, state, "lost in the crash")
        assert logic.turn.fence is not None
        cut.append(logic)
    fences = [logic.turn.fence for logic in cut]
    server.kill()
    for logic in cut:
        with pytest.raises(StoreUnavailableError):
            run_sync(logic.settle(200), store.sync_io)  # the commit cannot reach Redis
        run_sync(logic.finish(), store.sync_io)  # nor the release: remembered by the node
    assert len(services.orphans) == 2
    server.restart()
    admin = redis.Redis.from_url(server.url)
    leases = [services.keys.derive(s.session_id).key(TURN_LEASE) for s in sessions]
    assert all(admin.exists(k) for k in leases)  # Redis came back holding both leases

    # The same node, the same session: its next turn releases the old lease first.
    logic, conv = _turn(services, store, sessions[0], "one: after the crash")
    run_sync(logic.end(), store.sync_io)
    assert [m["content"] for m in conv.messages()] == ["one: first", "one: after the crash"]
    # That request's end released this node's other orphaned lease: another node gets the
    # second session at once.
    assert len(services.orphans) == 0
    assert not admin.exists(leases[1])
    logic, conv = _turn(other_services, other_store, sessions[1], "two: on another node")
    run_sync(logic.end(), other_store.sync_io)
    assert [m["content"] for m in conv.messages()] == ["two: first", "two: on another node"]

    # Fencing is intact: a write with the lost request's token is refused.
    key = services.keys.derive(sessions[0].session_id)
    late = build_message("user", "late writer", {}, services.tokenizer, 1 << 20, None)
    with pytest.raises(FencedError):
        run_sync(store.append(key, [late], created=float(sessions[0].created), fence=fences[0]),
                 store.sync_io)
    admin.close()
    for s in (store, other_store):
        s.close()
