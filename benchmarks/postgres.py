"""PostgreSQL: the cold tier and the PostgreSQL store, next to Redis and to the OpenAI Agents
SDK's ``SQLAlchemySession`` on the same PostgreSQL, in one run.

Starts a private ``redis-server`` and a private PostgreSQL (``initdb``; fsync on, the server's
defaults) on free loopback ports and measures, interleaved in shuffled rounds, per operation on
a conversation of ``--messages`` messages (asyncio faces):

* restoring a conversation from the cold tier (the lookup in PostgreSQL, the restore into Redis,
  the load) against loading it from Redis (a hot-tier hit on this node, and a full load over the
  network with no hot tier), and what a conversation in neither tier costs (the lookup);
* the PostgreSQL store's ``load`` and one-message ``append`` against ``SQLAlchemySession``'s
  ``get_items`` and ``add_items`` (asyncpg) on the same server;
* a streamed reply's push of one chunk (with the turn lease it renews) and a signed-in user's
  turn bookkeeping (``conversation_change`` and ``index_add``) on the PostgreSQL store and on
  Redis;
* the mover: one conversation copied, verified and deleted from Redis (blocking, as the command
  runs it);
* size per conversation in PostgreSQL (the store's rows, the cold tier's rows, the SDK's rows);
* steps per operation, by tier (each PostgreSQL step is one round trip when it only reads, two
  when it writes).

    python benchmarks/postgres.py            # about a minute
    python benchmarks/postgres.py --quick    # a few seconds, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import describe  # sibling modules: benchmarks run as scripts
from _postgres import private_postgres, server_version
from _servers import private_redis

from stickyctx import Settings
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import build_message
from stickyctx.core.principals import ConversationRecord
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.sansio import run_async, run_sync
from stickyctx.stores import open_store
from stickyctx.stores.cold.mover import Mover
from stickyctx.stores.cold.tiered import TieredStore
from stickyctx.stores.postgres.io import Transaction
from stickyctx.stores.postgres.migrations import upgrade
from stickyctx.stores.postgres.pools import connect
from stickyctx.stores.userdata import ConversationChange

ns = time.perf_counter_ns
HASH_KEY = "h" * 40
USER = ("I'm planning a three-day trip to Lisbon in early October with my partner. We like "
        "walking, seafood and small museums. Could you suggest a rough plan for each day?")
ASSISTANT = ("Here is a relaxed plan. Day one: Alfama early, before the tour groups, then the "
             "castle and the Museu do Fado; day two: the train to Sintra, Pena Palace at the "
             "first slot; day three: Belem in the morning and the Gulbenkian after lunch.")
TOKENIZER = load_tokenizer("cl100k_base")


def message(i: int) -> Any:
    role, text = ("user", USER) if i % 2 == 0 else ("assistant", ASSISTANT)
    return build_message(role, f"{text} ({i})", {}, TOKENIZER, 1 << 20)


def settings(redis_url: str, pg_url: str, store: str, namespace: str, **more: Any) -> Settings:
    return Settings(secret_keys=("k" * 40,), hash_key=HASH_KEY, namespace=namespace,
                    store_url=redis_url if store == "redis" else pg_url,
                    cold_url=pg_url if store == "redis" else None,
                    idle_ttl=7200, cold_after=3600, store_timeout=5.0, **more)


class Counting:
    """An I/O adapter counting the steps it performs, by tier."""

    def __init__(self, io: Any) -> None:
        self.io, self.steps = io, Counter[str]()

    async def perform(self, step: Any) -> Any:
        self.steps["PostgreSQL" if isinstance(step, Transaction) else "Redis"] += 1
        return await self.io.perform(step)


async def measure(args: argparse.Namespace, redis_url: str, pg_url: str) -> dict[str, Any]:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    deriver_ns = f"bench{uuid.uuid4().hex[:8]}"
    tiered = open_store(settings(redis_url, pg_url, "redis", deriver_ns))
    nohot = open_store(settings(redis_url, pg_url, "redis", deriver_ns, hot_sessions=0))
    pg = open_store(settings(redis_url, pg_url, "postgres", deriver_ns))
    assert isinstance(tiered, TieredStore)
    keys = KeyDeriver(HASH_KEY.encode(), deriver_ns)
    history = [message(i) for i in range(args.messages)]
    now = time.time()

    def new_key() -> SessionKey:
        return keys.derive(new_session_id())

    async def filled(store: Any, key: SessionKey) -> SessionKey:
        await run_async(store.append(key, history, created=now), store.async_io)
        return key

    warm = await filled(tiered, new_key())
    in_pg = await filled(pg, new_key())
    sdk_url = pg_url.replace("postgresql://", "postgresql+asyncpg://")
    sdk = SQLAlchemySession.from_url("bench-load", url=sdk_url, create_tables=True)
    await sdk.add_items([{"role": m.role, "content": m.content}  # type: ignore[misc]
                         for m in history])

    total = args.rounds * args.batch + 1
    mover = Mover(tiered, namespace=deriver_ns, idle_ttl=7200, cold_after=3600)
    cold: list[SessionKey] = []  # conversations moved to the cold tier, one per restore timed
    moves: list[int] = []
    for _ in range(total):
        key = await filled(tiered, new_key())
        for name in tiered.redis.sync_io.client.keys(f"{deriver_ns}:{{{key.tag}}}:*"):
            tiered.redis.sync_io.client.pexpire(name, 3_000_000)  # idle for 70 minutes
        started = ns()
        assert await asyncio.to_thread(run_sync, mover.move(key), tiered.sync_io)
        moves.append(ns() - started)
        cold.append(key)

    # Appends go to conversations of the same length each time (one of these per append), of
    # --messages messages and of ten times as many (an append's cost as the history grows).
    longer = [message(i) for i in range(args.messages * 10)]
    pools: dict[int, tuple[list[SessionKey], list[Any]]] = {}
    for size, messages in ((args.messages, history), (len(longer), longer)):
        pg_keys = []
        sdk_sessions = []
        for i in range(total):
            key = new_key()
            await run_async(pg.append(key, messages, created=now), pg.async_io)
            pg_keys.append(key)
            session = SQLAlchemySession(f"bench-append-{size}-{i}", engine=sdk.engine)
            await session.add_items(  # type: ignore[arg-type]
                [{"role": m.role, "content": m.content} for m in messages])
            sdk_sessions.append(session)
        pools[size] = (pg_keys, sdk_sessions)

    counted = {name: Counting(store.async_io) for name, store in
               (("tiered", tiered), ("nohot", nohot), ("pg", pg))}
    steps: dict[str, Counter[str]] = {}

    def op(name: str, store: Any, call: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            return await run_async(call(), counted[name])
        return run

    variants: dict[str, Callable[[], Awaitable[Any]]] = {
        "Redis load, hot-tier hit (this node cached it)":
            op("tiered", tiered, lambda: tiered.load(warm)),
        "Redis load over the network (no hot tier)":
            op("nohot", nohot, lambda: nohot.load(warm)),
        "cold-tier restore: PostgreSQL lookup, restore into Redis, load":
            op("tiered", tiered, lambda: tiered.load(cold.pop())),
        "a conversation in neither tier: Redis miss, PostgreSQL lookup":
            op("tiered", tiered, lambda: tiered.load(new_key())),
        "PostgreSQL store: load": op("pg", pg, lambda: pg.load(in_pg)),
        "SQLAlchemySession.get_items (asyncpg)": sdk.get_items,
    }
    for size in pools:
        pg_keys, sdk_sessions = pools[size]
        variants[f"PostgreSQL store: append one message, at {size} messages"] = op(
            "pg", pg, lambda keys=pg_keys: pg.append(keys.pop(), [message(1)], created=now))
        variants[f"SQLAlchemySession.add_items, one item, at {size} items"] = (
            lambda sessions=sdk_sessions: sessions.pop().add_items(
                [{"role": "user", "content": USER}]))  # type: ignore[list-item]
    for name, store in (("pg", pg), ("nohot", nohot)):
        streamed, record, principal = new_key(), new_key(), new_key()
        await run_async(store.stream_open(streamed, "bench", node="n1", turn="", ttl=3600),
                        store.async_io)
        fence = await run_async(store.acquire_lease(streamed, holder="n1:b", ttl=3600),
                                store.async_io)
        await run_async(store.conversation_put(
            record, ConversationRecord("c1", "u", now, now), ttl=3600), store.async_io)
        label = "PostgreSQL store" if name == "pg" else "Redis"
        variants[f"{label}: stream push, one chunk (renewing the turn lease)"] = op(
            name, store, lambda s=store, k=streamed, f=fence: s.stream_push(
                k, "bench", ["a few words "], ttl=3600, fence=f, lease_ttl=60))
        variants[f"{label}: a turn's bookkeeping (conversation_change, index_add)"] = op(
            name, store, lambda s=store, k=record, p=principal: bookkeeping(s, k, p))
    for run in variants.values():  # warm-up (and the first restore's connections)
        await run()
    timings: dict[str, list[int]] = {name: [] for name in variants}
    rng = random.Random(args.seed)
    for _ in range(args.rounds):
        order = list(variants)
        rng.shuffle(order)
        for name in order:
            before = {k: Counter(c.steps) for k, c in counted.items()}
            for _ in range(args.batch):
                started = ns()
                await variants[name]()
                timings[name].append(ns() - started)
            delta = Counter[str]()
            for k, c in counted.items():
                delta.update(c.steps - before[k])
            steps[name] = Counter({t: n / args.batch for t, n in delta.items()})
    sizes = size_per_conversation(pg_url, in_pg, args.messages)
    await sdk.engine.dispose()
    for store in (tiered, nohot, pg):
        await store.aclose()
        store.close()
    return {"timings": timings, "steps": steps, "moves": moves, "sizes": sizes}


def bookkeeping(store: Any, key: SessionKey, principal: SessionKey) -> Any:
    """What a signed-in user's turn adds: the record's counters, the index's activity."""
    yield from store.conversation_change(
        key, ConversationChange(turns=1, tokens=40, activity=time.time()), ttl=3600)
    yield from store.index_add(principal, "c1", time.time(), ttl=3600)


def size_per_conversation(url: str, key: SessionKey, messages: int) -> dict[str, float]:
    """Bytes of one conversation's rows as stored (after TOAST compression), and of its
    messages' JSON for comparison."""
    with connect(url) as conn:
        def one(sql: str, *params: Any) -> float:
            return float(conn.execute(sql, params).fetchone()[0] or 0)  # type: ignore[index]

        return {
            f"message JSON ({messages} messages)": float(sum(
                m.size for m in (message(i) for i in range(messages)))),
            "PostgreSQL store row": one("SELECT pg_column_size(s.*) FROM stickyctx_sessions s "
                                        "WHERE ns = %s AND tag = %s", key.namespace, key.tag),
            "cold-tier row (plain Redis DUMPs)": one(
                "SELECT avg(pg_column_size(c.*)) FROM stickyctx_cold c WHERE ns = %s",
                key.namespace),
            f"SQLAlchemySession rows ({messages} messages)": one(
                "SELECT sum(pg_column_size(m.*)) FROM agent_messages m "
                "WHERE session_id = 'bench-load'"),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 15)
    args.batch = args.batch or (5 if args.quick else 20)
    with private_redis() as admin, private_postgres() as pg_url:
        with connect(pg_url) as conn:
            upgrade(conn)
        port = admin.connection_pool.connection_kwargs["port"]
        redis_url = f"redis://127.0.0.1:{port}/0"
        result = asyncio.run(measure(args, redis_url, pg_url))
        servers = (f"redis-server {admin.info('server')['redis_version']}; "
                   f"{server_version(pg_url)}")
        machine = describe(["stickyctx", "redis", "psycopg", "openai-agents", "SQLAlchemy",
                            "asyncpg"], server=servers)
    report(args, result, machine)
    return 0


def report(args: argparse.Namespace, result: dict[str, Any], machine: str) -> None:
    timings, steps = result["timings"], result["steps"]
    base = statistics.median(timings["Redis load over the network (no hot tier)"])
    print(f"Machine: {machine}\n")
    print(f"{args.rounds} rounds × {args.batch} operations per variant, a conversation of "
          f"{args.messages} messages, asyncio.\n")
    print("| operation | median µs | p90 µs | ÷ Redis network load | steps (Redis / PostgreSQL) |")
    print("|---|---|---|---|---|")
    for name, values in timings.items():
        median = statistics.median(values)
        p90 = sorted(values)[int(len(values) * 0.9) - 1]
        counted = steps.get(name, Counter())
        step_text = (f"{counted.get('Redis', 0):g} / {counted.get('PostgreSQL', 0):g}"
                     if counted else "")
        print(f"| {name} | {median / 1000:,.0f} | {p90 / 1000:,.0f} | {median / base:.2f}× "
              f"| {step_text} |")
    moves = result["moves"]
    print(f"\nMove to the cold tier (copy, verify, delete; blocking), per conversation: median "
          f"{statistics.median(moves) / 1000:,.0f} µs, p90 "
          f"{sorted(moves)[int(len(moves) * 0.9) - 1] / 1000:,.0f} µs over {len(moves)}.\n")
    print("| size per conversation in PostgreSQL | bytes |")
    print("|---|---|")
    for name, size in result["sizes"].items():
        print(f"| {name} | {size:,.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
