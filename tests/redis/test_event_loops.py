"""One async store, many event loops: a client per loop, closed when its loop shuts down.

Threads that each run ``asyncio.run`` (as the Agents SDK's ``Runner.run_sync`` does) share one
store opened once; short loops one after another leave no client, connection or loop behind.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import wait_until
from tests.redis_servers import RedisServer
from tests.support.stores import open_async

from .conftest import NewKey, msg, redis_settings

THREADS = 8
OPERATIONS = 40  # appends and loads per thread


def open_store(server: RedisServer, namespace: str, name: str) -> Any:
    return open_async(redis_settings(f"{server.url}?client_name={name}", namespace))


def connections(server: RedisServer, name: str) -> int:
    return sum(c["name"] == name for c in server.client().client_list())


def test_one_store_used_from_eight_threads_each_with_its_own_loop(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    store = open_store(redis_server, namespace, "many-loops")
    keys = [new_key() for _ in range(THREADS)]
    started = threading.Barrier(THREADS)

    def thread(index: int) -> int:
        async def work() -> int:
            key = keys[index]
            for i in range(OPERATIONS):
                await store.append(key, [msg("user", f"{index}-{i}")], created=time.time())
                assert len((await store.load(key)).messages) == i + 1
            return len((await store.load(key)).messages)

        started.wait(timeout=30)  # all loops at once
        return asyncio.run(work())

    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(thread, range(THREADS))) == [OPERATIONS] * THREADS
    # Every loop closed its client as it shut down.
    assert len(store.clients) == 0
    wait_until(lambda: connections(redis_server, "many-loops") == 0, timeout=10,
               what="the loops' connections closed")

    async def check() -> None:  # and the store still serves a new loop
        try:
            assert [len((await store.load(key)).messages) for key in keys] == [OPERATIONS] * 8
        finally:
            await store.close()

    asyncio.run(check())


def test_many_short_loops_leave_no_client_connection_or_loop_behind(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    # Garbage earlier tests left (connections of servers they killed) is collected now, not in
    # the collection below that looks for this test's loops: it would warn here, about others.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    store = open_store(redis_server, namespace, "short-loops")
    key = new_key()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    peak = 0

    async def turn(i: int) -> None:
        nonlocal peak
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await store.append(key, [msg("user", f"turn {i}")], created=time.time())
        assert len((await store.load(key)).messages) == i + 1
        assert len(store.clients) == 1
        peak = max(peak, await asyncio.to_thread(connections, redis_server, "short-loops"))

    for i in range(50):
        asyncio.run(turn(i))
        assert len(store.clients) == 0
    assert peak == 1  # one connection at a time: nothing piles up
    wait_until(lambda: connections(redis_server, "short-loops") == 0, timeout=10,
               what="the short loops' connections closed")
    gc.collect()
    # The store keeps no loop alive (the scripts may keep the first client, not a pile of them).
    assert sum(ref() is not None for ref in loops) <= 1


def test_a_loop_closed_without_cancelling_its_tasks_is_forgotten_later(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    store = open_store(redis_server, namespace, "unclean-loop")

    async def use_then_close_the_client_only() -> None:
        await store.load(new_key())
        await store.client.aclose()  # (its keeper task is left pending)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(use_then_close_the_client_only())
    loop.close()  # closed the old way: nothing cancels the keeper
    assert len(store.clients) == 1

    async def other() -> int:
        await store.load(new_key())
        return len(store.clients)

    assert asyncio.run(other()) == 1  # only this loop's: the closed one is forgotten
    assert len(store.clients) == 0


def test_close_from_one_loop_closes_the_clients_of_other_running_loops(
    redis_server: RedisServer, namespace: str, new_key: NewKey
) -> None:
    store = open_store(redis_server, namespace, "closed-elsewhere")
    background = asyncio.new_event_loop()
    runner = threading.Thread(target=background.run_forever, daemon=True)
    runner.start()
    try:
        asyncio.run_coroutine_threadsafe(store.load(new_key()), background).result(timeout=10)
        assert len(store.clients) == 1
        assert connections(redis_server, "closed-elsewhere") == 1

        async def close_here() -> None:
            await store.load(new_key())  # a client of this loop too
            assert len(store.clients) == 2
            await store.close()

        asyncio.run(close_here())
        assert len(store.clients) == 0
        wait_until(lambda: connections(redis_server, "closed-elsewhere") == 0, timeout=10,
                   what="both loops' connections closed")
    finally:
        background.call_soon_threadsafe(background.stop)
        runner.join(timeout=10)
        background.close()
