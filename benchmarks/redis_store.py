"""Redis store: stickyctx next to the OpenAI Agents SDK's ``RedisSession``, on one private server.

Starts its own ``redis-server`` on a free loopback port (no persistence), pins the server and
this process to cores and measures, in one run, interleaved in shuffled rounds:

* one appended user message at 10, 100 and 1,000 stored messages: ``RedisStore.append``,
  ``AsyncRedisStore.append``, the handles (``SyncConversation`` / ``Conversation``: validation
  and token counting included; with and without the turn lock) and the Agents SDK's
  ``RedisSession.add_items`` (one item);
* loads at the same sizes: a hot-tier hit (the store already caches the session at its current
  version), a cold load (``hot_sessions=0``), sync and async, ``Conversation.messages()`` on a
  fresh handle (the hit plus the copy handed to the app), and ``RedisSession.get_items``;
* a cold load of one long history (100,000 messages by default, ``--big``) against
  ``get_items`` of the same, alternated call by call;
* issue 11's figures, as ratios, in one table per placement;
* redis-py client settings: PING and a hot-tier hit with the asyncio client's ``socket_timeout``
  set (stickyctx's default ``STICKYCTX_STORE_TIMEOUT``) and unset;
* a prototype, in this file only, of hot-tier validation by pub/sub invalidation: its hit
  cost, its write cost, and how often a read right after another node's write is stale;
* round trips and commands per operation (client-side writes; ``INFO commandstats`` deltas).

    python benchmarks/redis_store.py            # full run (about two and a half minutes)
    python benchmarks/redis_store.py --quick    # under 30 s, noisier
    python benchmarks/redis_store.py --big 0    # without the long history
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aioredis
from _machine import describe  # a sibling module: benchmarks run as scripts

from stickyctx import Conversation, Secret, Settings, SyncConversation
from stickyctx.core.flow import SessionState
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import AppendResult, NewMessage, Snapshot, build_message
from stickyctx.core.storekeys import KeyDeriver, SessionKey, derive_hash_key
from stickyctx.sansio import run_async, run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores import redis_store
from stickyctx.stores.redis import schema
from stickyctx.stores.redis.store import RedisStore as StoreLogic

ns = time.perf_counter_ns
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+
SECRET = "k" * 40
HASH_KEY = "h" * 40
NAMESPACE = "bench"
STORE_TIMEOUT = 1.0  # stickyctx's default STICKYCTX_STORE_TIMEOUT, in seconds
CHANNEL = "bench:invalidate"
# One user message of realistic length (334 bytes, 75 tokens as a chat message) and a longer
# answer (628 bytes, 163 tokens); stored histories alternate the two.
USER = ("I'm planning a three-day trip to Lisbon in early October with my partner. We like "
        "walking, seafood and small museums, and we'd rather avoid long queues. Could you "
        "suggest a rough plan for each day, including one day trip outside the city, and tell "
        "me which neighbourhoods are best to stay in if we want quiet evenings but short walks?")
ASSISTANT = ("Here is a relaxed plan. Day one: start in Alfama early, before the tour groups, "
             "walk up to the Miradouro de Santa Luzia and the castle, then head down to the "
             "Museu do Fado; lunch on grilled sardines near the river, and spend the late "
             "afternoon in Baixa and Chiado. Day two: take the train from Rossio to Sintra, "
             "buy Pena Palace tickets online for the first slot, and keep the afternoon for "
             "Quinta da Regaleira. Day three: Belem in the morning (the monastery opens at ten, "
             "go at opening time), the Gulbenkian in the afternoon, and dinner in Campo de "
             "Ourique. For quiet evenings with short walks, stay in Principe Real or Estrela.")
SIZES = (10, 100, 1000)
BIG = 100_000  # the long history of the cold-load figure (--big)


def _room(size: int) -> int:
    """Appends a session takes before it is refilled: its history stays in [size, size+room)."""
    return max(10, size // 10)


# Private server and placement ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A ``redis-server`` of this run only: loopback, free port, no persistence, killed at exit."""

    def __init__(self, binary: str, core: int | None) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", self.dir.name, "--loglevel", "warning"]
        taskset = shutil.which("taskset")
        if core is not None and taskset:
            command = [taskset, "-c", str(core), *command]
        self.log = os.path.join(self.dir.name, "redis.log")
        with open(self.log, "wb") as log:  # never our stdout: a pipe reader would wait for it
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.admin = redis.Redis(port=self.port, socket_timeout=5.0)
        deadline = time.monotonic() + 10.0
        while True:
            if self.proc.poll() is not None:
                with open(self.log, encoding="utf-8", errors="replace") as log:
                    tail = log.read()[-500:]
                self.stop()
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {tail}")
            try:
                if self.admin.ping():
                    break
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("redis-server did not answer PING within 10 s")
            time.sleep(0.02)
        self.version = str(self.admin.info("server")["redis_version"])

    def pin(self, core: int) -> None:
        """Move every thread of the server to ``core``."""
        taskset = shutil.which("taskset")
        if taskset:
            subprocess.run([taskset, "-a", "-p", "-c", str(core), str(self.proc.pid)],
                           check=True, stdout=subprocess.DEVNULL)
            return
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            os.sched_setaffinity(int(tid), {core})

    def renice(self, nice: int) -> bool:
        tids = [int(t) for t in os.listdir(f"/proc/{self.proc.pid}/task")]
        return all([raise_priority(tid, nice) for tid in tids])

    def stop(self) -> None:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.dir.cleanup()

    def __enter__(self) -> PrivateRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Placement:
    name: str
    server: int | None
    client: int | None

    def describe(self) -> str:
        if self.server is None:
            return "unpinned (the scheduler places server and client)"
        return f"server on core {self.server}, client on core {self.client}"


def placements(choice: str) -> list[Placement]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2 or choice == "unpinned":
        if len(cores) == 1:
            return [Placement("same core", cores[0], cores[0])]
        return [Placement("unpinned", None, None)]
    same = Placement("same core", cores[1], cores[1])
    different = Placement("different cores", cores[0], cores[1])
    return {"same": [same], "different": [different], "both": [same, different]}[choice]


def pin_self(core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})  # what taskset does, for this process


def raise_priority(pid: int, nice: int) -> bool:
    """Lower the nice value of one of our processes (needs the privilege; False without it)."""
    if not nice:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (PermissionError, OSError):
        return False
    return True


# Messages ---------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """What both sides store: the same messages, as stickyctx's validated ``NewMessage`` and as
    the plain dicts the Agents SDK stores."""

    user: NewMessage
    history: list[NewMessage]  # alternating user / assistant, as long as the largest size
    items: list[dict[str, str]]

    @classmethod
    def build(cls, engine: Services, longest: int) -> Corpus:
        def message(role: str, text: str) -> NewMessage:
            return build_message(role, text, {}, engine.tokenizer,
                                 engine.settings.max_message_bytes)

        pair = [message("user", USER), message("assistant", ASSISTANT)]
        items = [{"role": "user", "content": USER}, {"role": "assistant", "content": ASSISTANT}]
        return cls(pair[0], [pair[i % 2] for i in range(longest)],
                   [items[i % 2] for i in range(longest)])


# Sessions the variants work on -----------------------------------------------------------------

class RedisStore:
    """The Redis store's primitives driven blocking (the WSGI path)."""

    def __init__(self, store: StoreLogic) -> None:
        self.ops = self.store = store

    @property
    def client(self) -> Any:
        return self.store.sync_io.client

    def __getattr__(self, name: str) -> Any:
        primitive = getattr(self.store, name)
        return lambda *args, **kwargs: run_sync(primitive(*args, **kwargs), self.store.sync_io)

    def close(self) -> None:
        self.store.close()


class AsyncRedisStore:
    """The same primitives driven on the running event loop (the ASGI path)."""

    def __init__(self, store: StoreLogic) -> None:
        self.ops = self.store = store

    @property
    def client(self) -> Any:
        return self.store.async_io.client  # the running loop's

    def __getattr__(self, name: str) -> Any:
        primitive = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await run_async(primitive(*args, **kwargs), self.store.async_io)

        return call

    async def close(self) -> None:
        await self.store.aclose()


AnyStore = RedisStore | AsyncRedisStore


async def _call(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


class StickySession:
    """A stickyctx session of ``size`` messages in ``store``, cached in the store's hot tier (as
    on its owner node). ``grows``: refilled (untimed) once appends added ``_room(size)``."""

    def __init__(self, store: AnyStore, corpus: Corpus, size: int, *, grows: bool) -> None:
        self.store, self.corpus, self.size, self.grows = store, corpus, size, grows
        self.session_id = ""
        self.key: SessionKey | None = None
        self.created = 0
        self.appended = 0

    async def refill(self, deriver: KeyDeriver) -> None:
        if self.key is not None:
            await _call(self.store.destroy(self.key))
        self.session_id = new_session_id()
        self.key = deriver.derive(self.session_id)
        self.created = int(time.time())
        await _call(self.store.append(self.key, self.corpus.history[:self.size],
                                      created=self.created))
        await _call(self.store.load(self.key))  # now in the hot tier, at its current version
        self.appended = 0

    async def ready(self, deriver: KeyDeriver) -> None:
        if self.key is None or (self.grows and self.appended >= _room(self.size)):
            await self.refill(deriver)


class AgentsSession:
    """The same for the Agents SDK: a ``RedisSession`` holding ``size`` items."""

    def __init__(self, client: aioredis.Redis, corpus: Corpus, size: int, *, grows: bool) -> None:
        self.client, self.corpus, self.size, self.grows = client, corpus, size, grows
        self.session: Any = None  # a RedisSession (imported late: node A does without it)
        self.appended = 0

    async def ready(self) -> None:
        from agents.extensions.memory.redis_session import RedisSession

        if self.session is not None and not (self.grows and self.appended >= _room(self.size)):
            return
        if self.session is not None:
            await self.session.clear_session()
        self.session = RedisSession(new_session_id(), redis_client=self.client)
        await self.session.add_items(list(self.corpus.items[:self.size]))
        self.appended = 0


# The pub/sub prototype (benchmark only) --------------------------------------------------------

_PUBLISH = "if wrote then redis.call('PUBLISH', ARGV[#ARGV], ARGV[#ARGV - 1] .. ' ' .. v) end"


def publishing_append_script() -> str:
    """stickyctx's append script, publishing ``tag version`` to the channel (the last two
    arguments) after a write, in the same atomic step and round trip."""
    text = schema.script("append")
    head, anchor, tail = text.rpartition("\nreturn reply")
    if not anchor:
        raise RuntimeError("append.lua no longer ends with 'return reply': update the prototype")
    return f"{head}\n{_PUBLISH}{anchor}{tail}"


def _append_keys(key: SessionKey) -> list[str]:
    return schema.keys(key, schema.META, schema.MESSAGES, schema.DEDUPE, schema.TURN_LEASE,
                       schema.TOMBSTONE)


def publishing_args(store: AnyStore, key: SessionKey, messages: Sequence[NewMessage],
                    created: float) -> list[Any]:
    args = schema.append_args(messages, store.ops.limits, created=created, create=True,
                              fence=None)
    return [*args, key.tag, CHANNEL]


def absorb(store: AnyStore, key: SessionKey, messages: Sequence[NewMessage],
           reply: Any) -> AppendResult:
    """What ``RedisOps.append`` does with the reply (unencrypted sessions)."""
    result = schema.parse_append(reply, None)
    hot = store.ops.hot
    if result.status == "live":
        stored = schema.stored_from(messages, result)
        hot.after_append(key.tag, stored, result, [m.encoding for m in stored])
    else:
        hot.invalidate(key.tag)
    return result


class PubSubNode:
    """Prototype: a node's hot tier trusted until a message invalidates it.

    Every write publishes ``tag version`` from inside the append script; every node subscribes
    and drops its cached entry when a message names a version newer than the cached one. A hit is
    the version-check hit minus its script call: no round trip at all. Versions seen in messages
    are remembered, so a load racing an invalidation does not cache a history already stale.
    A broken subscription must empty the whole hot tier (messages sent meanwhile are lost).
    """

    def __init__(self, store: AsyncRedisStore) -> None:
        self.store = store
        self.hot = store.ops.hot
        self.script = store.client.register_script(publishing_append_script())
        self.latest: dict[str, int] = {}  # newest version announced per tag
        self.heard: dict[str, tuple[int, int]] = {}  # tag -> (version, monotonic ns) of the last
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self.store.client.pubsub()
        await self._pubsub.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            await self._pubsub.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        tag, _, version = message["data"].decode().partition(" ")
                        self.invalidate(tag, int(version))
            except redis.ConnectionError:
                self.hot._entries.clear()  # messages were lost: trust nothing cached
                await asyncio.sleep(0.01)
                await self._pubsub.subscribe(CHANNEL)

    def invalidate(self, tag: str, version: int) -> None:
        self.heard[tag] = (version, time.monotonic_ns())
        if version > self.latest.get(tag, -1):
            self.latest[tag] = version
        seen = self.hot.known(tag)
        if seen is not None and seen[1][0] < version:
            self.hot.invalidate(tag)

    async def load(self, key: SessionKey) -> Snapshot:
        seen = self.hot.known(key.tag)
        if seen is not None:
            return replace(seen[0].snapshot(), tier="local")  # trusted: no round trip
        snapshot = await self.store.load(key)
        if self.latest.get(key.tag, -1) > snapshot.version:
            self.hot.invalidate(key.tag)  # an invalidation overtook this load: do not trust it
        return snapshot

    async def append(self, key: SessionKey, messages: Sequence[NewMessage],
                     created: float) -> AppendResult:
        reply = await self.script(keys=_append_keys(key),
                                  args=publishing_args(self.store, key, messages, created))
        return absorb(self.store, key, messages, reply)


# A prototype of a cheaper cold load (benchmark only) -------------------------------------------

_META_ONLY = """
-- load.lua's checks and expiry refresh, without the items: the LRANGE queued after this script
-- in the same MULTI returns them, so they never cross into Lua and back.
if redis.call('EXISTS', KEYS[4]) == 1 then return {'revoked'} end
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return {'missing'} end
local h = {}
for i = 1, #meta, 2 do h[meta[i]] = meta[i + 1] end
local now = now_ms()
if now - tonumber(h.rf or '0') >= tonumber(ARGV[6]) then
  expire_all({KEYS[1], KEYS[2], KEYS[3]}, now, tonumber(h.cr), tonumber(ARGV[1]),
             tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'rf', now)
end
return {'full', cjson.encode(h)}
"""


class OutsideLuaLoader:
    """Prototype: a full load as ``MULTI; EVALSHA meta-only; LRANGE messages 0 -1; EXEC`` (one
    round trip, atomic), decoded by the store's own code, instead of one script that copies
    every stored message into Lua and back."""

    def __init__(self, store: AsyncRedisStore) -> None:
        self.store = store
        prelude = (resources.files("stickyctx.stores.redis") / "lua" / "_prelude.lua").read_text()
        self.source = prelude + _META_ONLY
        self.sha = ""

    async def load(self, key: SessionKey) -> Snapshot:
        if not self.sha:
            self.sha = await self.store.client.script_load(self.source)
        names = schema.keys(key, schema.META, schema.MESSAGES, schema.DEDUPE, schema.TOMBSTONE)
        pipe = self.store.client.pipeline(transaction=True)
        pipe.evalsha(self.sha, len(names), *names, *schema.load_args(self.store.ops.limits, None))
        pipe.lrange(names[1], 0, -1)
        head, items = await pipe.execute()
        ops = self.store.ops
        loaded = schema.parse_load([*head, *items], ops.keys.opener(key.tag))
        if loaded.kind in ("revoked", "missing"):
            return Snapshot(loaded.kind)  # type: ignore[arg-type]
        snapshot = ops.hot.apply(key.tag, None, loaded)
        assert snapshot is not None
        return snapshot


# Variants --------------------------------------------------------------------------------------

Op = Callable[[], Any]


@dataclass
class Variant:
    """One measured operation. ``op`` is a plain call or returns an awaitable; ``before`` runs
    untimed before every call (it refills sessions and builds per-request handles)."""

    name: str
    group: str  # append | load | client
    size: int | None
    op: Op
    before: Callable[[], Awaitable[None]] | None = None
    after: Callable[[], None] | None = None  # untimed bookkeeping after every call
    asynchronous: bool = True
    batch: int = 1
    samples: list[int] = field(default_factory=list)
    rounds: list[list[int]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.size is None else f"{self.name} @ {self.size}"

    async def run(self, n: int) -> list[int]:
        out = []
        op, before, after = self.op, self.before, self.after
        for _ in range(n):
            if before is not None:
                await before()
            if self.asynchronous:
                start = ns()
                await op()
                out.append(ns() - start)
            else:
                start = ns()
                op()
                out.append(ns() - start)
            if after is not None:
                after()
        return out


# Names used in tables and by the smoke test.
S_APPEND = "stickyctx RedisStore.append (sync)"
A_APPEND = "stickyctx AsyncRedisStore.append"
S_HANDLE = "stickyctx SyncConversation.append"
A_HANDLE = "stickyctx Conversation.append"
A_LOCKED = "stickyctx Conversation.append, turn lock auto (begin + commit with release)"
AG_ADD = "Agents RedisSession.add_items (one item)"
P_APPEND = "prototype: AsyncRedisStore.append + in-script PUBLISH"
S_HIT = "stickyctx RedisStore.load, hot-tier hit (sync)"
A_HIT = "stickyctx AsyncRedisStore.load, hot-tier hit"
P_HIT = "prototype: pub/sub-validated hot-tier hit (no round trip)"
S_COLD = "stickyctx RedisStore.load, cold (sync, hot_sessions=0)"
A_COLD = "stickyctx AsyncRedisStore.load, cold (hot_sessions=0)"
X_COLD = "prototype: cold load, items outside Lua (MULTI: EVALSHA + LRANGE)"
AG_GET = "Agents RedisSession.get_items"
A_MESSAGES = "stickyctx Conversation.messages() (hot-tier hit, turn lock manual)"
A_IN_TURN = "stickyctx Conversation.messages() in a begun turn (turn lock auto: rides on begin)"
APPENDS = (S_APPEND, A_APPEND, S_HANDLE, A_HANDLE, A_LOCKED, AG_ADD, P_APPEND)
LOADS = (S_HIT, A_HIT, P_HIT, A_MESSAGES, A_IN_TURN, S_COLD, A_COLD, X_COLD, AG_GET)
PING_SYNC = "redis-py sync PING (socket_timeout 1 s)"
PING_TIMEOUT = "redis-py asyncio PING, socket_timeout 1 s (stickyctx's store timeout)"
PING_DEFAULT = "redis-py asyncio PING, socket_timeout 5 s (redis-py's default)"
PING_NONE = "redis-py asyncio PING, socket_timeout None"
HIT_TIMEOUT = "AsyncRedisStore hot-tier hit, socket_timeout 1 s (as shipped)"
HIT_NONE = "AsyncRedisStore hot-tier hit, socket_timeout None"
HIT_DEADLINE = "AsyncRedisStore hot-tier hit, socket_timeout None + asyncio.timeout(1 s) per op"
REPLY_ARRAY = "asyncio EVALSHA answering an append's reply as it is (10 elements)"
REPLY_STRING = "asyncio EVALSHA answering the same reply packed in one string"
META_ARRAY = "asyncio EVALSHA answering a load's kind and meta as they are (24 elements)"
META_STRING = "asyncio EVALSHA answering the same packed in two strings"
CLIENTS = (PING_SYNC, PING_TIMEOUT, PING_DEFAULT, PING_NONE, HIT_TIMEOUT, HIT_NONE, HIT_DEADLINE,
           REPLY_ARRAY, REPLY_STRING, META_ARRAY, META_STRING)
# Constant replies of the shapes stickyctx's scripts answer, to price each element of a reply.
_REPLIES = {
    REPLY_ARRAY: "return {'live', 12, 11975, 0, '1', '1795272818.469241', '1795272818.429517', "
                 "101, 101, 11975}",
    REPLY_STRING: "return 'live 12 11975 0 1 1795272818.469241 1795272818.429517 101,101,11975'",
    META_ARRAY: "return {'full', 'v', '1', 'rv', '0', 'n', '101', 'g', '99', 't', '11900', 'b', "
                "'51150', 'c', '11900', 'cr', '1795272669000', 'enc', 'cl100k_base', 'rf', "
                "'1795272669208', 'w', '1795272669.208682', '|'}",
    META_STRING: "return {'full', 'v=1 rv=0 n=101 g=99 t=11900 b=51150 c=11900 cr=1795272669000 "
                 "enc=cl100k_base rf=1795272669208 w=1795272669.208682'}",
}
CLIENT_SIZE = 100  # the history size of the client-settings hits


def client_size(sizes: Sequence[int]) -> int:
    return CLIENT_SIZE if CLIENT_SIZE in sizes else sizes[0]


@dataclass
class Bench:
    """Everything the variants share, built once per run against one server."""

    url: str
    sizes: tuple[int, ...]
    settings: Settings = field(init=False)
    engine: Services = field(init=False)
    corpus: Corpus = field(init=False)
    deriver: KeyDeriver = field(init=False)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    node: PubSubNode | None = None

    def __post_init__(self) -> None:
        self.settings = _settings(self.url)
        self.engine = Services(self.settings)
        self.corpus = Corpus.build(self.engine, max(self.sizes) + 1)
        self.deriver = self.engine.keys

    def sync_store(self, hot: int = 10_000) -> RedisStore:
        store = RedisStore(redis_store(replace(self.settings, hot_sessions=hot)))
        self.closers.append(store.close)
        return store

    def async_store(self, hot: int = 10_000, socket_timeout: float | None = STORE_TIMEOUT,
                    ) -> AsyncRedisStore:
        store = AsyncRedisStore(redis_store(replace(self.settings, hot_sessions=hot)))
        if socket_timeout != STORE_TIMEOUT:  # before its first connection is made
            store.client.connection_pool.connection_kwargs["socket_timeout"] = socket_timeout
        self.closers.append(store.close)
        return store

    def state(self, session: StickySession) -> SessionState:
        """What the middleware hands a request of this session on its owner node."""
        return SessionState(session.session_id, self.settings.node_id, session.created, "hit",
                            "header")


def _settings(url: str) -> Settings:
    # Ceilings high enough for the long history (--big) to be stored whole.
    return Settings(secret_keys=(SECRET,), node_id="bench", cookie_secure=False, store_url=url,
                    hash_key=Secret(HASH_KEY), namespace=NAMESPACE, store_timeout=STORE_TIMEOUT,
                    turn_lock="manual", max_session_tokens=100_000_000,
                    max_session_bytes=1 << 30)


def _store_append(b: Bench, name: str, store: AnyStore, size: int) -> Variant:
    session = StickySession(store, b.corpus, size, grows=True)
    message = [b.corpus.user]

    def op() -> Any:
        assert session.key is not None
        return store.append(session.key, message, created=session.created)

    def after() -> None:
        session.appended += 1

    return Variant(name, "append", size, op, lambda: session.ready(b.deriver), after,
                   asynchronous=isinstance(store, AsyncRedisStore))


def _handle_append(b: Bench, name: str, store: AnyStore, size: int, *, lock: bool) -> Variant:
    """One ``append("user", ...)`` on a fresh handle (a request's): validation, token counting,
    key derivation, telemetry hooks and the store call; with ``lock``, the whole turn as the
    middleware runs it: begun (lease and load in one step), the append staged, and committed
    with the lease's release at the response's start (``end``)."""
    session = StickySession(store, b.corpus, size, grows=True)
    current: list[Any] = []

    async def before() -> None:
        await session.ready(b.deriver)
        logic = Session(b.engine, store.store, b.state(session), auto_lock=lock)
        if isinstance(store, AsyncRedisStore):
            current[:] = [logic, Conversation(logic)]
        else:
            current[:] = [logic, SyncConversation(logic)]

    def after() -> None:
        session.appended += 1

    if isinstance(store, RedisStore):
        def sync_op() -> Any:
            return current[1].append("user", USER)
        return Variant(name, "append", size, sync_op, before, after, asynchronous=False)

    async def async_op() -> None:
        logic, handle = current
        await handle.append("user", USER)
        if lock:
            await run_async(logic.end(), store.store.async_io)

    return Variant(name, "append", size, async_op, before, after)


def _agents_add(b: Bench, client: aioredis.Redis, size: int) -> Variant:
    session = AgentsSession(client, b.corpus, size, grows=True)
    item = [b.corpus.items[0]]

    def op() -> Any:
        assert session.session is not None
        return session.session.add_items(item)

    def after() -> None:
        session.appended += 1

    return Variant(AG_ADD, "append", size, op, session.ready, after)


def _store_load(b: Bench, name: str, store: AnyStore, size: int,
                deadline: float | None = None) -> Variant:
    session = StickySession(store, b.corpus, size, grows=False)

    def op() -> Any:
        assert session.key is not None
        return store.load(session.key)

    if deadline is not None:
        async def bounded() -> Any:
            if _timeout is None:  # Python 3.10
                return await asyncio.wait_for(op(), deadline)
            async with _timeout(deadline):
                return await op()
        return Variant(name, "load", size, bounded, lambda: session.ready(b.deriver))
    return Variant(name, "load", size, op, lambda: session.ready(b.deriver),
                   asynchronous=isinstance(store, AsyncRedisStore))


def _handle_messages(b: Bench, store: AsyncRedisStore, size: int) -> Variant:
    """``messages()`` on a fresh handle (a request's), turn lock manual: the hot-tier hit and
    the list of message dicts handed to the app."""
    session = StickySession(store, b.corpus, size, grows=False)
    current: list[Conversation] = []

    async def before() -> None:
        await session.ready(b.deriver)
        current[:] = [Conversation(Session(b.engine, store.store, b.state(session),
                                           auto_lock=False))]

    def op() -> Any:
        return current[0].messages()

    return Variant(A_MESSAGES, "load", size, op, before)


def _in_turn_messages(b: Bench, store: AsyncRedisStore, size: int) -> Variant:
    """``messages()`` in a request whose turn has begun (turn lock ``auto``, the default): the
    begin (lease and load in one script) and the previous request's release run untimed; the
    read itself is served from what the begin validated, with no round trip of its own."""
    session = StickySession(store, b.corpus, size, grows=False)
    current: list[Any] = []
    io = store.store.async_io

    async def before() -> None:
        if current:  # the previous request's end: its lease released
            await run_async(current[0].end(), io)
        await session.ready(b.deriver)
        logic = Session(b.engine, store.store, b.state(session), auto_lock=True)
        await run_async(logic.turn.enter(write=False), io)  # the turn's begin
        if logic.turn.fence is None or logic._snapshot is None:
            raise RuntimeError("the turn did not begin with the lease and the history")
        current[:] = [logic, Conversation(logic)]

    def op() -> Any:
        return current[1].messages()

    return Variant(A_IN_TURN, "load", size, op, before)


def _outside_lua(b: Bench, loader: OutsideLuaLoader, size: int) -> Variant:
    session = StickySession(loader.store, b.corpus, size, grows=False)

    def op() -> Any:
        assert session.key is not None
        return loader.load(session.key)

    return Variant(X_COLD, "load", size, op, lambda: session.ready(b.deriver))


def _agents_get(b: Bench, client: aioredis.Redis, size: int) -> Variant:
    session = AgentsSession(client, b.corpus, size, grows=False)

    def op() -> Any:
        assert session.session is not None
        return session.session.get_items()

    return Variant(AG_GET, "load", size, op, session.ready)


def _pubsub_variants(b: Bench, node: PubSubNode, size: int) -> list[Variant]:
    hit = StickySession(node.store, b.corpus, size, grows=False)
    writes = StickySession(node.store, b.corpus, size, grows=True)
    message = [b.corpus.user]

    def load() -> Any:
        assert hit.key is not None
        return node.load(hit.key)

    def append() -> Any:
        assert writes.key is not None
        return node.append(writes.key, message, writes.created)

    def after() -> None:
        writes.appended += 1

    return [Variant(P_HIT, "load", size, load, lambda: hit.ready(b.deriver)),
            Variant(P_APPEND, "append", size, append, lambda: writes.ready(b.deriver), after)]


async def build_variants(b: Bench) -> list[Variant]:
    sync_hot, sync_cold = b.sync_store(), b.sync_store(hot=0)
    async_hot, async_cold = b.async_store(), b.async_store(hot=0)
    # The client a user of the Agents SDK builds (RedisSession.from_url does the same).
    agents = aioredis.Redis.from_url(b.url)
    b.closers.append(agents.aclose)
    b.node = PubSubNode(b.async_store())
    outside = OutsideLuaLoader(b.async_store(hot=0))
    await b.node.start()
    out: list[Variant] = []
    for size in b.sizes:
        out += [
            _store_append(b, S_APPEND, sync_hot, size),
            _store_append(b, A_APPEND, async_hot, size),
            _handle_append(b, S_HANDLE, sync_hot, size, lock=False),
            _handle_append(b, A_HANDLE, async_hot, size, lock=False),
            _handle_append(b, A_LOCKED, async_hot, size, lock=True),
            _agents_add(b, agents, size),
            _store_load(b, S_HIT, sync_hot, size),
            _store_load(b, A_HIT, async_hot, size),
            _handle_messages(b, async_hot, size),
            _in_turn_messages(b, async_hot, size),
            _store_load(b, S_COLD, sync_cold, size),
            _store_load(b, A_COLD, async_cold, size),
            _outside_lua(b, outside, size),
            _agents_get(b, agents, size),
            *_pubsub_variants(b, b.node, size),
        ]
    # Client settings: PING on each client, and the same hit over clients that differ only in
    # socket_timeout (None: redis-py skips its per-read timeout and its wait_for per write).
    none = b.async_store(socket_timeout=None)
    default = aioredis.Redis(port=int(b.url.rsplit(":", 1)[1].split("/")[0]))
    b.closers.append(default.aclose)
    size = client_size(b.sizes)
    out += [
        Variant(PING_SYNC, "client", None, sync_hot.client.ping, asynchronous=False),
        Variant(PING_TIMEOUT, "client", None, async_hot.client.ping),
        Variant(PING_DEFAULT, "client", None, default.ping),
        Variant(PING_NONE, "client", None, none.client.ping),
        replace(_store_load(b, HIT_TIMEOUT, async_hot, size), group="client"),
        replace(_store_load(b, HIT_NONE, none, size), group="client"),
        replace(_store_load(b, HIT_DEADLINE, none, size, deadline=STORE_TIMEOUT),
                group="client"),
    ]
    for name, source in _REPLIES.items():
        out.append(Variant(name, "client", None, async_hot.client.register_script(source)))
    return out


async def check(b: Bench, variants: Sequence[Variant]) -> None:
    """Each variant does what its name says (checked once, untimed)."""
    for v in variants:
        if v.before is not None:
            await v.before()
        if v.asynchronous:
            result = await v.op()
        else:
            result = v.op()
        if v.after is not None:
            v.after()
        if v.name in (S_HIT, A_HIT, P_HIT, HIT_TIMEOUT, HIT_NONE, HIT_DEADLINE):
            ok = result.tier == "local" and len(result.messages) == v.size
        elif v.name in (S_COLD, A_COLD, X_COLD):
            ok = result.tier != "local" and len(result.messages) == v.size
        elif v.name in (AG_GET, A_MESSAGES, A_IN_TURN):
            ok = len(result) == v.size
        elif v.name in (S_APPEND, A_APPEND, P_APPEND):
            ok = result.status == "live" and len(result.seqs) == 1
        else:
            ok = True
        if not ok:
            raise RuntimeError(f"{v.label}: unexpected result {result!r:.200}")


# Measurement -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    rounds: int
    batch_ms: float  # each variant's batch lasts about this long
    warmup_ms: float
    stale_trials: int
    long_calls: int  # timed calls of each side on the long history
    seed: int = 1
    nice: int = 0  # lower (negative) nice value for server, client and node A; 0 = unchanged


FULL = Plan(rounds=30, batch_ms=20.0, warmup_ms=60.0, stale_trials=200, long_calls=15)
QUICK = Plan(rounds=4, batch_ms=8.0, warmup_ms=15.0, stale_trials=60, long_calls=3)


async def measure(variants: list[Variant], plan: Plan) -> None:
    rng = random.Random(plan.seed)
    for v in variants:  # warm-up, and a batch size that lasts about batch_ms
        started, n = ns(), 0
        while n < 3 or (ns() - started) < plan.warmup_ms * 1e6:
            await v.run(1)
            n += 1
        per_op = (ns() - started) / n
        v.batch = max(3, round(plan.batch_ms * 1e6 / per_op))
    gc.collect()
    gc.freeze()
    try:
        order = list(variants)
        for _ in range(plan.rounds):
            rng.shuffle(order)
            for v in order:
                gc.collect()
                times = await v.run(v.batch)
                v.samples.extend(times)
                v.rounds.append(times)
    finally:
        gc.unfreeze()


@dataclass
class Long:
    """The cold load of one long history against ``get_items`` of the same, call by call."""

    size: int
    cold: list[int] = field(default_factory=list)
    get: list[int] = field(default_factory=list)

    def ratio(self) -> float:
        """Cold load ÷ ``get_items``, of medians."""
        return quantile(self.cold, 0.5) / quantile(self.get, 0.5)


_FILL = 1000  # messages per append while filling the long history (untimed)


async def measure_long(b: Bench, size: int, calls: int) -> Long:
    """Fill one stickyctx session and one ``RedisSession`` with ``size`` messages (untimed),
    then time ``calls`` cold loads and ``get_items`` calls, alternated in a shuffled order."""
    from agents.extensions.memory.redis_session import RedisSession

    store = b.async_store(hot=0)
    agents = aioredis.Redis.from_url(b.url)
    b.closers.append(agents.aclose)
    pair, items = b.corpus.history[:2], b.corpus.items[:2]
    key = b.deriver.derive(new_session_id())
    created = int(time.time())
    session = RedisSession(new_session_id(), redis_client=agents)
    for start in range(0, size, _FILL):
        count = min(_FILL, size - start)
        await store.append(key, [pair[i % 2] for i in range(count)], created=created)
        await session.add_items([items[i % 2] for i in range(count)])
    result = Long(size)
    rng = random.Random(size)
    try:
        loaded = await store.load(key)
        got = await session.get_items()  # each once untimed: a warm-up and a check
        if len(loaded.messages) != size or len(got) != size or loaded.tier == "local":
            raise RuntimeError(f"long history: {len(loaded.messages)} messages loaded "
                               f"({loaded.tier}), {len(got)} items, {size} expected")
        del loaded, got
        for _ in range(calls):
            order = [True, False]
            rng.shuffle(order)
            for cold in order:
                gc.collect()
                start_ns = ns()
                if cold:
                    await store.load(key)
                    result.cold.append(ns() - start_ns)
                else:
                    await session.get_items()
                    result.get.append(ns() - start_ns)
    finally:
        await store.destroy(key)
        await session.clear_session()
    return result


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


# Round trips and commands ----------------------------------------------------------------------

def _command_names(payload: Any) -> list[str]:
    """The command names in a packed RESP payload (what one write sends)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = b"".join(bytes(p) if not isinstance(p, str) else p.encode() for p in payload)
    names, pos = [], 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        count = int(data[pos + 1:end])
        pos = end + 2
        for i in range(count):
            end = data.index(b"\r\n", pos)
            length = int(data[pos + 1:end])
            if i == 0:
                names.append(data[end + 2:end + 2 + length].decode().lower())
            pos = end + 2 + length + 2
    return names


@contextlib.contextmanager
def counting_writes() -> Iterator[list[list[str]]]:
    """Record every write of redis-py connections (sync and asyncio): one list of command names
    per write. A write followed by its replies is one round trip."""
    import redis.asyncio.connection as aconn
    import redis.connection as sconn

    writes: list[list[str]] = []
    sync_send: Any = sconn.AbstractConnection.send_packed_command
    async_send = aconn.AbstractConnection.send_packed_command

    def sync_wrapper(self: Any, command: Any, check_health: bool = True) -> Any:
        writes.append(_command_names(command))
        return sync_send(self, command, check_health)

    async def async_wrapper(self: Any, command: Any, check_health: bool = True) -> Any:
        writes.append(_command_names(command))
        return await async_send(self, command, check_health)

    sconn.AbstractConnection.send_packed_command = sync_wrapper  # type: ignore[method-assign]
    aconn.AbstractConnection.send_packed_command = async_wrapper  # type: ignore[method-assign]
    try:
        yield writes
    finally:
        sconn.AbstractConnection.send_packed_command = sync_send  # type: ignore[method-assign]
        aconn.AbstractConnection.send_packed_command = async_send  # type: ignore[method-assign]


@dataclass
class Commands:
    round_trips: float
    sent: Counter[str]
    executed: Counter[str]  # by the server, scripts' own commands included
    calls: int
    server_us: float  # per call: the server's time in what the client sent (scripts included)


async def count_commands(server: PrivateRedis, v: Variant, calls: int) -> Commands:
    sent: Counter[str] = Counter()
    executed: Counter[str] = Counter()
    trips = 0
    usec = 0
    for _ in range(calls):
        if v.before is not None:
            await v.before()
        server.admin.config_resetstat()
        with counting_writes() as writes:
            if v.asynchronous:
                await v.op()
            else:
                v.op()
        stats = server.admin.info("commandstats")
        if v.after is not None:
            v.after()
        trips += len(writes)
        for names in writes:
            sent.update(names)
        for name, row in stats.items():
            command = name.removeprefix("cmdstat_").lower()
            if command not in ("config|resetstat", "config", "info"):
                executed[command] += int(row["calls"])
        usec += sum(int(stats[f"cmdstat_{name}"]["usec"]) for name in _top_level(writes))
    return Commands(trips / calls, sent, executed, calls, usec / calls)


def _top_level(writes: list[list[str]]) -> set[str]:
    """The names of the commands sent outside MULTI ... EXEC: Redis counts a script's own
    commands inside its EVALSHA's time and a transaction's inside its EXEC's."""
    names, queued = set(), False
    for name in (n for write in writes for n in write):
        if name == "exec":
            queued = False
        if not queued:
            names.add(name)
        if name == "multi":
            queued = True
    return names


# Staleness: a write on node B, then an immediate read on node A --------------------------------

async def node_a(url: str) -> None:
    """Node A, in its own process: a pub/sub prototype node answering reads over a socket.

    Lines in, one answer each: ``load ID`` (a validated load, caching the session) → version;
    ``pubsub ID`` (a read trusting the cache) → version; ``check ID`` (a version-checked read)
    → version; ``heard ID VERSION`` → the monotonic ns at which that version's invalidation was
    processed (waiting for it up to a second; -1 if it never came); ``busy US`` → 0, after which
    a background task keeps the event loop busy as other requests would, ``US`` µs at a time
    (0: idle).
    """
    settings = _settings(url)
    store = AsyncRedisStore(redis_store(settings))
    node = PubSubNode(store)
    await node.start()
    deriver = KeyDeriver(derive_hash_key(HASH_KEY, (SECRET,)), NAMESPACE)
    busy: list[asyncio.Task[None]] = []

    async def spin(slice_us: int) -> None:
        while True:
            end = time.perf_counter_ns() + slice_us * 1000
            while time.perf_counter_ns() < end:
                pass
            await asyncio.sleep(0)

    async def answer(command: str, argument: str, rest: list[str]) -> int:
        if command == "busy":
            for task in busy:
                task.cancel()
            busy[:] = [asyncio.create_task(spin(int(argument)))] if int(argument) else []
            return 0
        key = deriver.derive(argument)
        if command in ("load", "check"):
            return (await store.load(key)).version
        if command == "pubsub":
            return (await node.load(key)).version
        wanted, deadline = int(rest[0]), time.monotonic() + 1.0
        while node.heard.get(key.tag, (-1, 0))[0] < wanted:
            if time.monotonic() > deadline:
                return -1
            await asyncio.sleep(0.0005)
        return node.heard[key.tag][1]

    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command, argument, *rest = line.decode().split()
                writer.write(f"{await answer(command, argument, rest)}\n".encode())
                await writer.drain()
            writer.close()
        finally:
            closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent
    await asyncio.wait_for(closed.wait(), 10.0)  # the parent closed its connection first
    for task in busy:
        task.cancel()
    server.close()
    await node.stop()
    await store.close()


@dataclass
class Staleness:
    busy_us: int
    pubsub_reads: int = 0
    stale_pubsub: int = 0
    check_reads: int = 0
    stale_check: int = 0
    windows_ns: list[int] = field(default_factory=list)  # heard on A minus acknowledged on B
    lost: int = 0  # invalidations never heard within a second


BUSY_SLICES_US = (0, 500)  # node A idle, then with its event loop busy in 500 µs slices


def stale_experiment(b: Bench, core: int | None, trials: int, nice: int) -> list[Staleness]:
    """Node B (this process, sync) appends one message with the publishing script; right after
    the acknowledgement it asks node A (another process) to read the session, alternately
    trusting A's pub/sub-validated cache and checking the version."""
    command = [sys.executable, os.path.abspath(__file__), "--node-a", b.url]
    taskset = shutil.which("taskset")
    if core is not None and taskset:
        command = [taskset, "-c", str(core), *command]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    raise_priority(child.pid, nice)
    store = RedisStore(redis_store(b.settings))
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child prints its port once ready
        if not line.startswith("ready "):
            raise RuntimeError(f"node A did not start: {line!r}")
        port = int(line.split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn, \
                conn.makefile("rwb") as stream:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def ask(text: str) -> int:
                stream.write(f"{text}\n".encode())
                stream.flush()
                return int(stream.readline())

            return [_stale_trials(b, store, ask, busy, trials) for busy in BUSY_SLICES_US]
    finally:
        store.close()
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def _stale_trials(b: Bench, store: RedisStore, ask: Callable[[str], int], busy: int,
                  trials: int) -> Staleness:
    ask(f"busy {busy}")
    script = store.client.register_script(publishing_append_script())
    session_id = new_session_id()
    key = b.deriver.derive(session_id)
    created = int(time.time())
    store.append(key, b.corpus.history[:100], created=created)
    message = [b.corpus.user]
    result = Staleness(busy)
    for trial in range(trials):
        pubsub = trial % 2 == 0
        ask(f"load {session_id}")  # A caches the current version
        reply = script(keys=_append_keys(key), args=publishing_args(store, key, message, created))
        acked = time.monotonic_ns()
        written = schema.parse_append(reply, None).version
        seen = ask(f"{'pubsub' if pubsub else 'check'} {session_id}")  # at once
        heard = ask(f"heard {session_id} {written}")
        if pubsub:
            result.pubsub_reads += 1
            result.stale_pubsub += seen < written
        else:
            result.check_reads += 1
            result.stale_check += seen < written
        if heard < 0:
            result.lost += 1
        else:
            result.windows_ns.append(heard - acked)
    return result


# Report ----------------------------------------------------------------------------------------

def _us(value_ns: float) -> str:
    us = value_ns / 1000
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


@dataclass
class Result:
    placement: Placement
    variants: list[Variant]
    commands: dict[tuple[str, int | None], Commands]  # by (name, size)
    staleness: list[Staleness]
    long: Long | None
    seconds: float

    def find(self, name: str, size: int | None) -> Variant:
        return next(v for v in self.variants if v.name == name and v.size == size)

    def median(self, name: str, size: int | None) -> float:
        return quantile(self.find(name, size).samples, 0.5)

    def value(self, slow: str, fast: str, size: int | None) -> float:
        """Ratio of medians: how many times ``fast`` is faster than ``slow``."""
        return self.median(slow, size) / self.median(fast, size)

    def ratio(self, slow: str, fast: str, size: int | None) -> str:
        """Ratio of medians, and its interquartile range over rounds (paired by round)."""
        a, b = self.find(slow, size), self.find(fast, size)
        per_round = [quantile(x, 0.5) / quantile(y, 0.5)
                     for x, y in zip(a.rounds, b.rounds, strict=True)]
        value = quantile(a.samples, 0.5) / quantile(b.samples, 0.5)
        return (f"{value:.1f}× ({quantile(per_round, 0.25):.1f}–"
                f"{quantile(per_round, 0.75):.1f})")


# Issue 11's figures: (figure, the issue's "now" when it was filed, aim, how it is computed).
FIGURE_TURN = "append one turn through the handle, default turn lock (begin + commit), ÷ add_items"
FIGURE_APPEND = "store-level append (AsyncRedisStore.append) ÷ add_items (no TTL)"
FIGURE_HIT = "read of a 100-message history on its owner (async hot-tier hit) vs get_items"
FIGURE_IN_TURN = ("read of a 100-message history on its owner inside a begun turn (messages(), "
                  "riding on begin) vs get_items")
FIGURE_MESSAGES = "messages() of 1,000 messages through the handle vs get_items"
FIGURE_MESSAGES_IN_TURN = ("messages() of 1,000 messages through the handle inside a begun turn "
                           "(riding on begin) vs get_items")
FIGURE_COLD = "cold load (async, hot_sessions=0) ÷ get_items at {size:,} messages"


def _figures_table(r: Result, sizes: Sequence[int]) -> list[str]:
    """Issue 11's figures. "faster" rows: the Agents SDK's time ÷ stickyctx's (over every
    size, the row meets its aim only at every size); cold loads: stickyctx's ÷ the SDK's."""
    lines = ["| figure | before (issue 11) | now | aim | met? |", "|---|---:|---:|---:|---|"]

    def faster(label: str, before: str, slow: str, fast: str, at: Sequence[int],
               aim: float) -> None:
        values = [r.value(slow, fast, s) for s in at]
        if len(at) == 1:
            now = f"{values[0]:.2f}× faster"
        else:
            now = (f"{min(values):.2f}–{max(values):.2f}× faster at "
                   f"{'/'.join(f'{s:,}' for s in at)} msgs")
        met = "yes" if min(values) >= aim else "no"
        lines.append(f"| {label} | {before} | {now} | ≥ {aim:g}× | {met} |")

    def slower(label: str, before: str, value: float) -> None:
        met = "yes" if value <= 1.0 else "no"
        lines.append(f"| {label} | {before} | {value:.2f}× | ≤ 1.0× | {met} |")

    middle = 100 if 100 in sizes else sizes[len(sizes) // 2]
    top = 1000 if 1000 in sizes else sizes[-1]
    faster(FIGURE_TURN, "0.70×", AG_ADD, A_LOCKED, sizes, 3)
    faster(FIGURE_APPEND, "2.19×", AG_ADD, A_APPEND, sizes, 5)
    faster(FIGURE_HIT.replace("100", f"{middle:,}"), "2.27×", AG_GET, A_HIT, [middle], 10)
    faster(FIGURE_IN_TURN.replace("100", f"{middle:,}"), "—", AG_GET, A_IN_TURN, [middle], 10)
    faster(FIGURE_MESSAGES.replace("1,000", f"{top:,}"), "1.3×", AG_GET, A_MESSAGES, [top], 10)
    faster(FIGURE_MESSAGES_IN_TURN.replace("1,000", f"{top:,}"), "—", AG_GET, A_IN_TURN, [top],
           10)
    low = sizes[0]
    slower(FIGURE_COLD.format(size=low), "1.69×" if low == 10 else "—",
           r.median(A_COLD, low) / r.median(AG_GET, low))
    if r.long is not None:
        slower(FIGURE_COLD.format(size=r.long.size), "1.09×" if r.long.size == BIG else "—",
               r.long.ratio())
    return lines


def _long_line(long: Long) -> str:
    return (f"Long history ({long.size:,} messages, {len(long.cold)} calls each, alternated): "
            f"async cold load median {_us(quantile(long.cold, 0.5))} µs (p90 "
            f"{_us(quantile(long.cold, 0.9))}), get_items median {_us(quantile(long.get, 0.5))} "
            f"µs (p90 {_us(quantile(long.get, 0.9))}).")


def _sized_table(r: Result, names: Sequence[str], sizes: Sequence[int]) -> list[str]:
    head = " | ".join(f"{s:,} msgs median / p90 µs" for s in sizes)
    lines = [f"| variant | {head} |", "|---|" + "---:|" * len(sizes)]
    for name in names:
        cells = []
        for size in sizes:
            samples = r.find(name, size).samples
            cells.append(f"{_us(quantile(samples, 0.5))} / {_us(quantile(samples, 0.9))}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def _commands_table(r: Result, sizes: Sequence[int]) -> list[str]:
    middle = sizes[len(sizes) // 2]
    lines = ["| operation | round trips | commands sent | commands Redis ran (scripts' own "
             "included) | Redis's own time µs at " + " / ".join(f"{s:,}" for s in sizes) + " |",
             "|---|---:|---|---|---:|"]

    def fmt(counter: Counter[str], calls: int) -> str:
        parts = []
        for name, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            per = count / calls
            shown = f"{per:g}" if per != 1 else ""
            parts.append(f"{name.upper()}{' ×' + shown if shown else ''}")
        total = sum(counter.values()) / calls
        return f"{total:g}: " + ", ".join(parts) if parts else "0"

    for name in (*APPENDS, *LOADS):
        c = r.commands[name, middle]
        server = " / ".join(f"{r.commands[name, s].server_us:,.1f}" for s in sizes)
        lines.append(f"| {name} | {c.round_trips:g} | {fmt(c.sent, c.calls)} "
                     f"| {fmt(c.executed, c.calls)} | {server} |")
    return lines


def _staleness_table(r: Result) -> list[str]:
    lines = ["| node A's event loop | reads | stale, pub/sub-trusted cache | stale, version "
             "check | invalidation heard after B's ack: median / p90 / max µs | never heard |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in r.staleness:
        w = s.windows_ns
        window = (f"{_us(quantile(w, 0.5))} / {_us(quantile(w, 0.9))} / {_us(max(w))}"
                  if w else "—")
        loop = f"busy ({s.busy_us} µs slices)" if s.busy_us else "idle"
        pct = 100 * s.stale_pubsub / max(1, s.pubsub_reads)
        lines.append(f"| {loop} | {s.pubsub_reads + s.check_reads} | {s.stale_pubsub}/"
                     f"{s.pubsub_reads} ({pct:.0f}%) | {s.stale_check}/{s.check_reads} "
                     f"| {window} | {s.lost} |")
    return lines


def report(r: Result, sizes: Sequence[int]) -> str:
    lines = [f"### Placement: {r.placement.name} ({r.placement.describe()})", "",
             f"Measured in {r.seconds:.0f} s. Appends: one user message "
             f"({len(USER.encode())} bytes) into a session of "
             f"{', '.join(f'{s:,}' for s in sizes)} messages, refilled (untimed) after "
             f"{', '.join(f'{_room(s)}' for s in sizes)} appends.", "",
             "Issue 11's figures (ratios of medians):", ""]
    lines += _figures_table(r, sizes)
    if r.long is not None:
        lines += ["", _long_line(r.long)]
    lines += ["", "Appends:", ""]
    lines += _sized_table(r, APPENDS, sizes)
    lines += ["", "Loads (the full history):", ""]
    lines += _sized_table(r, LOADS, sizes)
    lines += ["", "Ratios (of medians; in brackets the interquartile range of the per-round "
              "ratio):", "", "| comparison | " + " | ".join(f"{s:,} msgs" for s in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]
    comparisons = [
        ("add_items ÷ AsyncRedisStore.append", AG_ADD, A_APPEND),
        ("add_items ÷ RedisStore.append (sync)", AG_ADD, S_APPEND),
        ("add_items ÷ Conversation.append", AG_ADD, A_HANDLE),
        ("add_items ÷ Conversation.append with turn lock", AG_ADD, A_LOCKED),
        ("get_items ÷ async hot-tier hit", AG_GET, A_HIT),
        ("get_items ÷ Conversation.messages()", AG_GET, A_MESSAGES),
        ("get_items ÷ Conversation.messages() in a begun turn", AG_GET, A_IN_TURN),
        ("get_items ÷ pub/sub-validated hit", AG_GET, P_HIT),
        ("get_items ÷ async cold load", AG_GET, A_COLD),
        ("get_items ÷ prototype cold load (items outside Lua)", AG_GET, X_COLD),
        ("async hot-tier hit ÷ pub/sub-validated hit", A_HIT, P_HIT),
        ("append with in-script PUBLISH ÷ append", P_APPEND, A_APPEND),
    ]
    for label, slow, fast in comparisons:
        lines.append(f"| {label} | " + " | ".join(r.ratio(slow, fast, s) for s in sizes) + " |")
    hits = client_size(sizes)
    lines += ["", f"redis-py client settings (hits at {hits:,} messages):", "",
              "| variant | median µs | p90 µs |", "|---|---:|---:|"]
    for name in CLIENTS:
        samples = next(v for v in r.variants if v.name == name).samples
        lines.append(f"| {name} | {_us(quantile(samples, 0.5))} | "
                     f"{_us(quantile(samples, 0.9))} |")
    calls = next(iter(r.commands.values())).calls if r.commands else 0
    lines += ["", f"Round trips and commands per operation (at {sizes[len(sizes) // 2]:,} "
              f"messages; Redis's own time, from INFO commandstats, at every size; averaged "
              f"over {calls} calls):", ""]
    lines += _commands_table(r, sizes)
    lines += ["", "Staleness: node B appends (publishing from the script), then at once asks "
              "node A (another process) to read; alternate reads trust the cache (pub/sub) or "
              "check the version:", ""]
    lines += _staleness_table(r)
    return "\n".join(lines) + "\n"


def machine(server_version: str) -> str:
    hiredis = "hiredis parser" if _has_hiredis() else "pure-Python parser (no hiredis)"
    return describe(("stickyctx", "redis", "openai-agents"),
                    server=f"redis-server {server_version}") + f" ({hiredis})"


def _has_hiredis() -> bool:
    return importlib.util.find_spec("hiredis") is not None


# Main ------------------------------------------------------------------------------------------

async def profile(server: PrivateRedis, placement: Placement, sizes: tuple[int, ...],
                  label: str, calls: int = 3000) -> int:
    """cProfile ``calls`` calls of one variant after a warm-up, top functions by own time.
    Profiling inflates small calls: read it for where the time goes, not for totals."""
    import cProfile
    import pstats

    if placement.server is not None:
        server.pin(placement.server)
    pin_self(placement.client)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        b = Bench(server.url, sizes)
    try:
        variants = await build_variants(b)
        chosen = next((v for v in variants if label in v.label), None)
        if chosen is None:
            print(f"no variant matches {label!r}", file=sys.stderr)
            return 2
        await chosen.run(200)
        profiler = cProfile.Profile()
        for _ in range(calls):  # the untimed before/after hooks stay out of the profile
            if chosen.before is not None:
                await chosen.before()
            profiler.enable()
            if chosen.asynchronous:
                await chosen.op()
            else:
                chosen.op()
            profiler.disable()
            if chosen.after is not None:
                chosen.after()
    finally:
        if b.node is not None:
            await b.node.stop()
        for close in reversed(b.closers):
            await _call(close())
    print(f"{chosen.label}, {calls} calls ({placement.describe()})")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
    return 0


_last = [time.monotonic()]


def _phase(name: str) -> None:
    if os.environ.get("BENCH_PHASES"):
        now = time.monotonic()
        print(f"[{name}: {now - _last[0]:.1f} s]", file=sys.stderr)
        _last[0] = now


async def run_placement(server: PrivateRedis, placement: Placement, sizes: tuple[int, ...],
                        plan: Plan, count_calls: int, big: int) -> Result:
    if placement.server is not None:
        server.pin(placement.server)
    pin_self(placement.client)
    began = time.monotonic()
    b = Bench(server.url, sizes)
    try:
        variants = await build_variants(b)
        await check(b, variants)
        _phase("setup")
        await measure(variants, plan)
        _phase("measure")
        commands: dict[tuple[str, int | None], Commands] = {}
        for v in variants:
            if v.group in ("append", "load"):
                commands[v.name, v.size] = await count_commands(server, v, count_calls)
        _phase("commands")
        staleness = stale_experiment(b, placement.client, plan.stale_trials, plan.nice)
        _phase("staleness")
        long = await measure_long(b, big, plan.long_calls) if big else None
        _phase("long history")
    finally:
        if b.node is not None:
            await b.node.stop()
        for close in reversed(b.closers):
            await _call(close())
    server.admin.flushall()
    return Result(placement, variants, commands, staleness, long, time.monotonic() - began)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short, noisier run")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="stored messages, comma-separated (default 10,100,1000)")
    parser.add_argument("--rounds", type=int, help="rounds (each runs every variant once)")
    parser.add_argument("--placement", choices=("both", "same", "different", "unpinned"),
                        default="both", help="server and client on the same / different cores")
    parser.add_argument("--stale-trials", type=int, help="reads per staleness scenario")
    parser.add_argument("--big", type=int, default=BIG,
                        help=f"messages of the long history whose cold load is timed against "
                             f"get_items (default {BIG:,}; 0: skip)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round shuffle")
    parser.add_argument("--nice", type=int, default=0,
                        help="run server, client and node A at this nice value (e.g. -10; needs "
                             "the privilege) so that other load on a shared machine weighs less")
    parser.add_argument("--profile", metavar="VARIANT",
                        help="instead: cProfile the first variant whose label contains this "
                             "text (e.g. 'AsyncRedisStore.append @ 100'), same-core placement")
    parser.add_argument("--node-a", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.node_a:
        asyncio.run(node_a(args.node_a))
        return 0
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: this benchmark starts its own", file=sys.stderr)
        return 2
    base = QUICK if args.quick else FULL
    plan = replace(base, rounds=args.rounds or base.rounds, seed=args.seed,
                   stale_trials=args.stale_trials or base.stale_trials, nice=args.nice)
    sizes = args.sizes or SIZES
    chosen = placements(args.placement)
    began = time.monotonic()
    server = PrivateRedis(binary, chosen[0].server)
    priority = "default priority"
    if plan.nice and server.renice(plan.nice) and raise_priority(0, plan.nice):
        priority = f"nice {plan.nice} for the server, this process and node A"
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    results = []
    try:
        if args.profile:
            return asyncio.run(profile(server, chosen[0], sizes, args.profile))
        with warnings.catch_warnings():
            # Without network, stickyctx uses the identical offline copy of cl100k_base.
            warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
            for placement in chosen:
                results.append(asyncio.run(run_placement(
                    server, placement, sizes, plan, count_calls=5 if args.quick else 20,
                    big=args.big)))
        version = server.version
    finally:
        server.stop()
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    print("## Redis store")
    print()
    print(f"Machine: {machine(version)}.")
    print(f"Run: {'quick' if args.quick else 'full'}, {time.monotonic() - began:.0f} s; "
          f"{plan.rounds} rounds per placement, every variant once per round in a shuffled "
          f"order, batches of about {plan.batch_ms:g} ms after a warm-up of "
          f"{plan.warmup_ms:g} ms; garbage collector on (setup frozen, a collection before "
          f"each batch). One private redis-server (no persistence) on loopback; {priority}.")
    print()
    for result in results:
        print(report(result, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
