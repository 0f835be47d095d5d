"""Faults under conversations: Redis killed (SIGKILL) and restarted. Every operation of a
principal fails with ``StoreUnavailableError`` (503), never another error; the conversation's turn
lock is never left held; once Redis is back (with its append-only file) everything acknowledged
is there and the principal carries on."""

from __future__ import annotations

import time

import pytest

from stickyctx.errors import StoreUnavailableError
from stickyctx.session.services import Services
from tests.redis_fixtures import MakeRedisServer
from tests.users.conftest import Space

from .conftest import redis_settings


def test_a_killed_redis_is_503_for_every_operation_and_nothing_acknowledged_is_lost(
    redis_server_factory: MakeRedisServer, namespace: str,
) -> None:
    from stickyctx.stores import open_store

    server = redis_server_factory(appendonly=True)
    settings = redis_settings(server.url, namespace, store_timeout=0.5, turn_timeout=2)
    store = open_store(settings)
    alice = Space(Services(settings, clock=time.time), store, "alice")
    cid = alice.create()["id"]
    alice.turn(cid, ("user", "acknowledged"), ("assistant", "yes"))
    alice.remember("name", "Ada")

    server.kill()
    for attempt in (lambda: alice.create(), lambda: alice.list(), lambda: alice.get(cid),
                    lambda: alice.memory(), lambda: alice.remember("k", "v"),
                    lambda: alice.set_state(cid, "k", 1), lambda: alice.erase(),
                    lambda: alice.turn(cid, ("user", "lost"))):
        with pytest.raises(StoreUnavailableError):
            attempt()

    server.restart()
    # Back: the acknowledged turn and memory are there, and no lease was left behind (the
    # next turn does not wait for one).
    alice.turn(cid, ("user", "after"))
    stored = alice.run(alice.open(cid).messages())
    assert [m["content"] for m in stored] == ["acknowledged", "yes", "after"]
    assert alice.memory() == {"name": "Ada"}
    assert alice.get(cid)["turns"] == 2
    store.close()
