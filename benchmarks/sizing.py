"""Memory per session: in Redis (``INFO memory``) and in this process (``tracemalloc``).

Starts a fresh private ``redis-server`` for each variant, on a free loopback port (no persistence,
default memory settings), and writes sessions the way the middleware does: one request per turn,
with the turn lock taken and released, the user message and the assistant's reply appended
through a ``SyncConversation``. Then it reports

* Redis: the ``MEMORY USAGE`` of each key part of the session and their sum per session, and, for
  comparison, ``used_memory`` after the writes minus before (``INFO memory``), which also moves
  with Redis's client buffers (reclaimed on Redis's own timer): noise that only a large run
  averages away;
* the hot tier: how much this process's memory grows (``tracemalloc``, after a collection) while
  a second store, another node with nothing cached, loads every session once and reads all of
  it (the hot tier decodes messages when they are first read: this is its largest size);
* the embedded store: the same measure while the sessions are written to a ``MemoryStore``.

Variants: plain; with turn ids (an idempotency key per request, so the dedupe set is filled);
encrypted (``STICKYCTX_ENCRYPTION_KEY``); encrypted with turn ids.

    python benchmarks/sizing.py                              # 1,000 sessions x 20 messages
    python benchmarks/sizing.py --sessions 20 --messages 4   # a few seconds
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from _machine import describe  # a sibling module: benchmarks run as scripts

from stickyctx import Secret, Settings, SyncConversation
from stickyctx.core.flow import SessionState
from stickyctx.core.messages import Snapshot, build_message
from stickyctx.core.storekeys import SessionKey
from stickyctx.edges.request import identify
from stickyctx.sansio import run_sync
from stickyctx.session.logic import Session
from stickyctx.session.services import Services
from stickyctx.stores import Store, open_store

PARTS = ("s", "m", "d", "f")  # meta, messages, dedupe, fence counter (once a turn took a lease)
STANDARD_PORTS = frozenset({6379, 6380, 16379, 16380, 26379, 26380})


@dataclass(frozen=True)
class Variant:
    name: str
    encrypted: bool
    turn_ids: bool


VARIANTS = (
    Variant("plain", False, False),
    Variant("turn ids", False, True),
    Variant("encrypted", True, False),
    Variant("encrypted, turn ids", True, True),
)

Corpus = list[list[tuple[str, bytes]]]  # per session: (role, UTF-8 text), user first


# Text ---------------------------------------------------------------------------------------

_VOCABULARY = (
    "the of and to in is that it for on with as was be by this are or from at an have not but "
    "can which all will one there their more if would about so what when up out into time some "
    "could them other than then now only its also after use two how our work first well way "
    "even new want because any these give day most us data model request server context budget "
    "token session message reply answer question cache memory deploy latency window summary "
    "history store node user team plan report test error value result change build number "
    "order price meeting project release draft travel flight hotel weather recipe garden "
    "invoice contract schedule review Alice Paris Monday Python Kubernetes Maria Tokyo 2024 42"
)
_WORDS = tuple(_VOCABULARY.split())


def _text(rng: random.Random, low: int, high: int) -> str:
    """English-like prose of ``low``..``high`` words, in sentences."""
    words = rng.randint(low, high)
    sentences = []
    while words > 0:
        n = min(words, rng.randint(6, 20))
        words -= n
        body = " ".join(rng.choice(_WORDS) for _ in range(n))
        sentences.append(body[0].upper() + body[1:] + rng.choice("....?!"))
    return " ".join(sentences)


def corpus(sessions: int, messages: int, seed: int) -> Corpus:
    """User messages of 15-120 words, replies of 60-350 words (markdown-free chat prose)."""
    rng = random.Random(seed)
    return [[("user", _text(rng, 15, 120).encode()) if i % 2 == 0
             else ("assistant", _text(rng, 60, 350).encode()) for i in range(messages)]
            for _ in range(sessions)]


# A private redis-server -------------------------------------------------------------------

def free_port() -> int:
    """A free loopback port below the ephemeral range, never a standard Redis port."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000)
        if port in STANDARD_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found")


@contextmanager
def private_redis(binary: str) -> Iterator[redis.Redis]:
    """A ``redis-server`` of this run only, killed at exit; yields an admin client."""
    with tempfile.TemporaryDirectory(prefix="sizing-redis-") as directory:
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10.0)
        try:
            deadline = time.monotonic() + 10.0
            delay = 0.005
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {proc.returncode}")
                try:
                    # Only our own process answers with our process id.
                    if int(admin.info("server")["process_id"]) == proc.pid:
                        break
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not answer within 10 s")
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            yield admin
        finally:
            admin.close()
            proc.kill()
            proc.wait(timeout=10)


# Writing and measuring ----------------------------------------------------------------------

def settings_for(variant: Variant, store_url: str, sessions: int, ring: str) -> Settings:
    return Settings(
        secret_keys=["sizing-signing-key-" + "x" * 32], node_id="sizing", store_url=store_url,
        hash_key=Secret("sizing-hash-key-" + "h" * 32), namespace="sizing", cookie_secure=False,
        encryption_key=Secret(ring) if variant.encrypted else None,
        hot_sessions=0, memory_max_sessions=sessions + 1)


def write(engine: Services, store: Store, states: Sequence[SessionState], texts: Corpus,
          turn_ids: bool) -> list[SessionKey]:
    """One request per turn, as the middleware runs them (turn lock in ``auto`` mode)."""
    for number, (state, messages) in enumerate(zip(states, texts, strict=True)):
        for turn, start in enumerate(range(0, len(messages), 2)):
            logic = Session(engine, store, state, auto_lock=True,
                            idempotency_key=f"req-{number}-{turn}" if turn_ids else None)
            conv = SyncConversation(logic)
            for role, raw in messages[start:start + 2]:
                conv.append(role, raw.decode())  # a fresh string, as a request body gives
            run_sync(logic.end(), store.sync_io)
    return [engine.keys.derive(state.session_id) for state in states]


def traced(action: Callable[[], Any]) -> int:
    """Bytes still allocated by ``action`` after a garbage collection."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = action()
        del result
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@dataclass(frozen=True)
class Row:
    variant: Variant
    redis_bytes: float  # MEMORY USAGE of the session's keys, per session
    used_memory_bytes: float  # used_memory growth per session (client buffers make it noisy)
    keys: float  # Redis keys per session
    parts: dict[str, float]  # MEMORY USAGE per key part, per session
    hot_bytes: float  # this process's growth per cached session (hot tier)
    memory_bytes: float | None  # the embedded store's growth per session (not encrypted)


def measure(variant: Variant, binary: str, texts: Corpus, ring: str) -> tuple[Row, str]:
    sessions = len(texts)
    with private_redis(binary) as admin:
        port = admin.connection_pool.connection_kwargs["port"]
        settings = settings_for(variant, f"redis://127.0.0.1:{port}/0", sessions, ring)
        engine = Services(settings)
        writer = open_store(settings)
        warm = write(engine, writer, [identify(engine, [], None)], texts[:1], variant.turn_ids)
        states = [identify(engine, [], None) for _ in texts]
        gc.collect()
        before = int(admin.info("memory")["used_memory"])
        keys = write(engine, writer, states, texts, variant.turn_ids)
        after = int(admin.info("memory")["used_memory"])
        count = int(admin.dbsize()) - int(admin.exists(*(warm[0].key(p) for p in PARTS)))
        parts = {part: sum(int(admin.memory_usage(k.key(part), samples=0) or 0)
                           for k in keys) / sessions for part in PARTS}
        reader = open_store(settings.with_changes(hot_sessions=sessions + 1))  # another node

        def load(key: SessionKey) -> Snapshot:
            return run_sync(reader.load(key), reader.sync_io)

        load(warm[0])  # connection, scripts
        hot = traced(lambda: [list(load(k).messages) for k in keys])
        assert all(load(k).tier == "local" for k in keys[:3])  # the loads were cached
        writer.close()
        reader.close()
        version = str(admin.info("server")["redis_version"])
    memory = None
    if not variant.encrypted:
        mem_settings = settings_for(variant, "memory://", sessions, ring)
        mem_engine = Services(mem_settings)
        store = open_store(mem_settings)
        write(mem_engine, store, [identify(mem_engine, [], None)], texts[:1], variant.turn_ids)
        mem_states = [identify(mem_engine, [], None) for _ in texts]
        memory = traced(lambda: write(mem_engine, store, mem_states, texts,
                                      variant.turn_ids)) / sessions
        store.close()
    return Row(variant, sum(parts.values()), (after - before) / sessions, count / sessions, parts,
               hot / sessions, memory), version


# Report -------------------------------------------------------------------------------------

def machine(server_version: str) -> str:
    return describe(("stickyctx", "redis", "cryptography"),
                    server=f"redis-server {server_version} (default memory settings)")


def payload(texts: Corpus, engine: Services) -> tuple[float, float, float, float]:
    """Per session: JSON bytes and tokens as stored; mean bytes of a user and a reply message."""
    sizes: dict[str, list[int]] = {"user": [], "assistant": []}
    tokens = 0
    for messages in texts:
        for role, raw in messages:
            built = build_message(role, raw.decode(), {}, engine.tokenizer, 1 << 30)
            sizes[role].append(built.size)
            tokens += built.tokens
    total = sum(map(sum, sizes.values()))

    def mean(values: list[int]) -> float:
        return sum(values) / len(values) if values else 0.0

    return (total / len(texts), tokens / len(texts), mean(sizes["user"]),
            mean(sizes["assistant"]))


def report(rows: Sequence[Row], texts: Corpus, engine: Services, version: str,
           elapsed: float) -> str:
    per_session, tokens, user, reply = payload(texts, engine)
    messages = len(texts[0])
    out = [
        "## Sizing", "",
        f"Machine: {machine(version)}.", "",
        f"Run: {len(texts):,} sessions x {messages} messages ({(messages + 1) // 2} requests "
        f"per session: turn lock, user message, reply, release), {elapsed:.0f} s. Payload per "
        f"session: {per_session:,.0f} bytes of message JSON ({tokens:,.0f} tokens); a user "
        f"message {user:,.0f} bytes, a reply {reply:,.0f} bytes on average.", "",
        "Redis (`MEMORY USAGE` of the session's keys, and of each key part; `used_memory` growth "
        "for comparison):", "",
        "| variant | per session | per message | ÷ payload | keys | meta `s` | messages `m` "
        "| dedupe `d` | fence `f` | `used_memory` growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        parts = " | ".join(f"{row.parts[p]:,.0f}" if row.parts[p] else "—" for p in PARTS)
        out.append(f"| {row.variant.name} | {row.redis_bytes:,.0f} B | "
                   f"{row.redis_bytes / messages:,.0f} B | {row.redis_bytes / per_session:.2f} | "
                   f"{row.keys:.0f} | {parts} | {row.used_memory_bytes:,.0f} B |")
    out += [
        "", "This process (`tracemalloc` growth after a collection, per session):", "",
        "| variant | hot tier | ÷ payload | embedded store | ÷ payload |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        embedded = ("— | —" if row.memory_bytes is None else
                    f"{row.memory_bytes:,.0f} B | {row.memory_bytes / per_session:.2f}")
        out.append(f"| {row.variant.name} | {row.hot_bytes:,.0f} B | "
                   f"{row.hot_bytes / per_session:.2f} | {embedded} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=1000, help="sessions per variant")
    parser.add_argument("--messages", type=int, default=20, help="messages per session")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated text")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.messages < 1:
        parser.error("--sessions and --messages must be positive")
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: this script starts its own", file=sys.stderr)
        return 2
    texts = corpus(args.sessions, args.messages, args.seed)
    ring = "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    began = time.monotonic()
    with warnings.catch_warnings():
        # Without network, stickyctx uses the identical offline copy of cl100k_base and warns.
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        rows = []
        version = ""
        for variant in VARIANTS:
            row, version = measure(variant, binary, texts, ring)
            rows.append(row)
        engine = Services(settings_for(VARIANTS[0], "memory://", 1, ring))
        print(report(rows, texts, engine, version, time.monotonic() - began))
    return 0


if __name__ == "__main__":
    sys.exit(main())
