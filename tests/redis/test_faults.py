"""Faults: Redis killed, restarted, frozen, and failed over by Sentinel. Operations fail fast
with ``StoreUnavailableError`` (503 through the middleware), sessions in the hot tier are served
stale, and the same store object recovers by itself without losing an acknowledged write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from stickyctx.errors import StoreUnavailableError
from tests.redis_fixtures import MakeRedisServer
from tests.redis_servers import RedisSentinelSetup, RedisServer, poll

from .chat import Client, sticky
from .conftest import NewKey, OpenStore, msg, redis_settings

TIMEOUT = 0.5  # STICKYCTX_STORE_TIMEOUT of these tests
T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def unavailable(call: Callable[[], Any]) -> float:
    """How long ``call`` took to raise ``StoreUnavailableError``."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        call()
    return time.monotonic() - started


def contents(snapshot: Any) -> list[Any]:
    return [m.content for m in snapshot.messages]


def test_a_killed_redis_fails_fast_serves_hot_sessions_stale_and_comes_back_whole(
    redis_server_factory: MakeRedisServer, open_store: OpenStore, new_key: NewKey
) -> None:
    server = redis_server_factory(appendonly=True)
    store = open_store(server.url, store_timeout=TIMEOUT, stale_reads=True)  # (opted in)
    hot, cold = new_key(), new_key()
    acknowledged = [f"turn {i}" for i in range(5)]
    for text in acknowledged:
        assert store.append(hot, [msg("user", text)], created=time.time()).status == "live"
    assert contents(store.load(hot)) == acknowledged  # now in this node's hot tier
    open_store(server.url).append(cold, [msg("user", "elsewhere")], created=time.time())

    server.kill()
    assert unavailable(lambda: store.append(hot, [msg("user", "lost")],
                                            created=time.time())) < 2 * TIMEOUT
    stale, took = timed(lambda: store.load(hot))
    assert stale.stale
    assert stale.tier == "local"
    assert contents(stale) == acknowledged
    assert took < 2 * TIMEOUT
    assert unavailable(lambda: store.load(cold)) < 2 * TIMEOUT

    server.restart()  # (append-only file: every acknowledged write is back)
    assert store.append(hot, [msg("user", "after the restart")], created=time.time()).seqs == (6,)
    fresh = store.load(hot)
    assert not fresh.stale
    assert contents(fresh) == [*acknowledged, "after the restart"]
    assert contents(store.load(cold)) == ["elsewhere"]


def test_through_the_middleware_only_the_requests_that_need_redis_fail_and_then_recover(
    redis_server_factory: MakeRedisServer, namespace: str
) -> None:
    server = redis_server_factory(appendonly=True)
    settings = redis_settings(server.url, namespace, store_timeout=TIMEOUT, stale_reads=True)

    async def scenario() -> None:
        async with sticky(settings) as app:
            client = Client(app)
            for text in ("first", "second"):
                assert (await client.chat(text)).status == 200

            server.kill()
            ping, took = await asyncio.wait_for(_timed(client.request("GET", "/ping")), 10)
            assert ping.status == 200  # it never touches the context: Redis is not needed
            assert took < TIMEOUT
            failed, took = await asyncio.wait_for(_timed(client.chat("while down")), 10)
            assert failed.status == 503
            assert failed.header("content-type") == "application/json"
            assert failed.json()["error"] == "store_unavailable"
            assert took < 2 * TIMEOUT
            # A read is served from the node's hot tier, flagged stale.
            read = await asyncio.wait_for(client.request("GET", "/history"), 10)
            assert read.status == 200
            assert read.json()["stale"] is True
            assert [m["content"] for m in read.json()["messages"]] == [
                "first", "echo: first", "second", "echo: second"]

            server.restart()
            after = await client.chat("after the restart")
            assert after.status == 200
            assert after.json()["stale"] is False
            assert [m["content"] for m in after.json()["messages"]] == [
                "first", "echo: first", "second", "echo: second",
                "after the restart", "echo: after the restart"]

    asyncio.run(scenario())


async def _timed(awaitable: Any) -> tuple[Any, float]:
    started = time.monotonic()
    value = await awaitable
    return value, time.monotonic() - started


def test_a_frozen_redis_fails_within_the_timeout_instead_of_hanging(
    redis_server: RedisServer, open_store: OpenStore, new_key: NewKey
) -> None:
    store = open_store(redis_server.url, store_timeout=TIMEOUT, stale_reads=True)
    hot, cold = new_key(), new_key()
    store.append(hot, [msg("user", "before")], created=time.time())
    store.load(hot)
    open_store(redis_server.url).append(cold, [msg("user", "elsewhere")], created=time.time())
    retried = msg("user", "sent while frozen", dedupe="turn-7:0")

    redis_server.pause()
    try:
        assert unavailable(lambda: store.append(hot, [retried], created=time.time())) \
            < 2 * TIMEOUT
        assert unavailable(lambda: store.load(cold)) < 2 * TIMEOUT
        stale, took = timed(lambda: store.load(hot))
        assert stale.stale
        assert took < 2 * TIMEOUT
        assert unavailable(lambda: store.acquire_lease(cold, holder="a", ttl=5)) < 2 * TIMEOUT
    finally:
        redis_server.resume()

    # The timed-out append may or may not have been applied when the server woke up: the
    # client's retry of the same turn (same dedupe key) stores it exactly once either way.
    store.append(hot, [retried], created=time.time())
    assert contents(store.load(hot)) == ["before", "sent while frozen"]
    assert contents(store.load(cold)) == ["elsewhere"]


def test_a_conversation_continues_across_a_sentinel_failover(
    redis_sentinel: RedisSentinelSetup, open_store: OpenStore, new_key: NewKey
) -> None:
    store = open_store(redis_sentinel.url, store_timeout=TIMEOUT)
    key = new_key()
    acknowledged = [f"turn {i}" for i in range(10)]
    for text in acknowledged:
        store.append(key, [msg("user", text, dedupe=text)], created=time.time())
    # Replication is asynchronous: the test starts the failover once the replica has caught up.
    master, replica = redis_sentinel.master, redis_sentinel.replica
    offset = int(master.info("replication")["master_repl_offset"])
    poll(lambda: int(replica.info("replication")["slave_repl_offset"]) >= offset, timeout=10,
         what="the replica caught up")

    master.kill()  # the failover window opens: the Sentinels have not promoted anyone yet
    assert unavailable(lambda: store.append(key, [msg("user", "during", dedupe="during")],
                                            created=time.time())) < 2 * TIMEOUT
    redis_sentinel.failover()  # waits until the Sentinels agree on the promoted replica

    failures: list[BaseException] = []

    def append_after() -> bool:
        try:
            store.append(key, [msg("user", "after", dedupe="after")], created=time.time())
        except StoreUnavailableError as exc:  # the store is still finding the new master
            failures.append(exc)
            return False
        return True

    poll(append_after, timeout=20, what="appends succeeding on the new master")
    assert len(failures) < 50
    snapshot = store.load(key)
    assert contents(snapshot)[:10] == acknowledged
    assert contents(snapshot)[-1] == "after"
    assert set(contents(snapshot)) <= {*acknowledged, "during", "after"}
