"""A bounded soak with a Redis crash in the middle: turns acknowledged, lost and duplicated.

The FastAPI example in a real uvicorn worker, on a private ``redis-server`` with the append-only
file fsynced on every write (``appendfsync always``: Redis's own durability is not what is
measured). ``--clients`` conversations, each a client with its own cookie jar, send turns one
after the other for ``--seconds``; every turn carries an ``Idempotency-Key``, and a turn that
fails (a 503 while Redis is down, a 409, a broken connection) is retried with the same key until
it is acknowledged (200). At ``--kill-at`` seconds Redis is killed (``kill -9``) and restarted on
the same port and files ``--down`` seconds later.

At the end each conversation's stored history is read and compared with what its client was
told: **lost** are acknowledged turns missing from the history, **duplicated** turns stored more
than once. Also reported: the seconds from Redis answering again to the first acknowledged turn
and to every conversation having one, and the app's resident memory (after the warm-up, its
peak, at the end).

    .venv/bin/python benchmarks/soak.py                       # 200 clients, 120 s, a crash at 40 s
    .venv/bin/python benchmarks/soak.py --clients 20 --seconds 10 --kill-at 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._machine import describe  # noqa: E402
from benchmarks._servers import free_port, start_app, wait_for  # noqa: E402

SECRET = "soak-" + "s" * 40
HASH_KEY = "soak-hash-" + "h" * 40


class Redis:
    """A redis-server of this run, on one port and directory across a kill and a restart."""

    def __init__(self, directory: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary, self.directory = binary, directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.directory,
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=2)

        def ready() -> bool:
            try:
                return bool(client.ping()) and client.info("persistence")["loading"] == 0
            except redis.RedisError:
                return False

        wait_for(ready, "redis-server", self.proc)
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@contextlib.contextmanager
def private_redis() -> Iterator[Redis]:
    with tempfile.TemporaryDirectory(prefix="soak-redis-") as directory:
        server = Redis(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Conversation:
    number: int
    acknowledged: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    first_ok_after_restart: float | None = None
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Clock:
    restarted_at: float | None = None


async def converse(conv: Conversation, url: str, until: float, clock: Clock) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        turn = 0
        while time.monotonic() < until:
            text = f"c{conv.number} t{turn}"
            while time.monotonic() < until:
                try:
                    reply = await client.post("/chat", json={"message": text},
                                              headers={"Idempotency-Key": f"k-{text}"})
                except httpx.HTTPError as exc:
                    conv.failures[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)
                    continue
                if reply.status_code == 200:
                    conv.acknowledged.append(text)
                    now = time.monotonic()
                    if (clock.restarted_at is not None and conv.first_ok_after_restart is None
                            and now > clock.restarted_at):
                        conv.first_ok_after_restart = now - clock.restarted_at
                    break
                conv.failures[str(reply.status_code)] += 1
                await asyncio.sleep(0.2)  # and the same turn again, with the same key
            turn += 1
        conv.cookies = dict(client.cookies)


async def read_back(url: str, conversations: list[Conversation]) -> dict[int, list[str]]:
    stored: dict[int, list[str]] = {}
    for conv in conversations:
        async with httpx.AsyncClient(base_url=url, timeout=30, cookies=conv.cookies) as client:
            reply = await client.get("/history")
            reply.raise_for_status()
            stored[conv.number] = [m["content"] for m in reply.json()["messages"]
                                   if m["role"] == "user"]
    return stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--kill-at", type=float, default=40.0, help="0: no crash")
    parser.add_argument("--down", type=float, default=3.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    with private_redis() as server:
        env = {"STICKYCTX_SECRET_KEYS": SECRET, "STICKYCTX_HASH_KEY": HASH_KEY,
               "STICKYCTX_NODE_ID": "n1", "STICKYCTX_COOKIE_SECURE": "0",
               "STICKYCTX_STORE_URL": server.url, "STICKYCTX_STORE_TIMEOUT": "0.5",
               "STICKYCTX_TURN_TIMEOUT": "5"}
        with start_app("fastapi", "examples.fastapi.app:app", env) as app:
            process = psutil.Process(app.proc.pid)
            conversations = [Conversation(i) for i in range(args.clients)]
            clock = Clock()
            memory: list[int] = []

            async def run() -> dict[int, list[str]]:
                start = time.monotonic()
                until = start + args.seconds

                async def crash() -> None:
                    if not args.kill_at:
                        return
                    await asyncio.sleep(args.kill_at)
                    server.kill()
                    await asyncio.sleep(args.down)
                    await asyncio.to_thread(server.start)
                    clock.restarted_at = time.monotonic()

                async def sample() -> None:
                    while time.monotonic() < until:
                        memory.append(process.memory_info().rss)
                        await asyncio.sleep(1.0)

                await asyncio.gather(crash(), sample(), *(
                    converse(c, app.url, until, clock) for c in conversations))
                return await read_back(app.url, conversations)

            stored = asyncio.run(run())
    acknowledged = sum(len(c.acknowledged) for c in conversations)
    lost = sum(len(set(c.acknowledged) - set(stored[c.number])) for c in conversations)
    duplicated = sum(n - 1 for c in conversations for n in Counter(stored[c.number]).values()
                     if n > 1)
    failures: Counter[str] = Counter()
    for c in conversations:
        failures.update(c.failures)
    recovered = [c.first_ok_after_restart for c in conversations
                 if c.first_ok_after_restart is not None]
    warm = memory[min(len(memory) - 1, 5)] if memory else 0
    mib = 1 / (1024 * 1024)
    lines = [
        "### Machine", "",
        describe(("stickyctx", "uvicorn", "fastapi", "redis"),
                 server="redis-server with appendfsync always; one uvicorn worker"), "",
        "### Command", "",
        f"`.venv/bin/python benchmarks/soak.py --clients {args.clients} --seconds "
        f"{args.seconds:g} --kill-at {args.kill_at:g} --down {args.down:g}` "
        f"({time.monotonic() - began:.0f} s)", "",
        "### Results", "",
        "| figure | value |", "|---|---|",
        f"| conversations | {args.clients} |",
        f"| turns acknowledged (200) | {acknowledged:,} |",
        f"| acknowledged turns lost | {lost} |",
        f"| turns stored twice | {duplicated} |",
        f"| failed attempts, retried with the same key | "
        f"{', '.join(f'{k}: {v:,}' for k, v in sorted(failures.items())) or 'none'} |",
        f"| Redis killed at, restarted after | {args.kill_at:g} s, {args.down:g} s |"
        if args.kill_at else "| Redis killed | no |",
    ]
    if args.kill_at and recovered:
        lines += [
            f"| first acknowledged turn after Redis answered again | {min(recovered):.2f} s |",
            f"| every conversation with an acknowledged turn after the restart | "
            f"{max(recovered):.2f} s ({len(recovered)} of {args.clients}) |",
        ]
    elif args.kill_at:
        lines.append("| acknowledged turns after the restart | none |")
    lines.append(f"| app memory (RSS) after warm-up / peak / end | {warm * mib:.0f} / "
                 f"{max(memory, default=0) * mib:.0f} / {(memory[-1] if memory else 0) * mib:.0f}"
                 f" MiB |")
    print("\n".join(lines))
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
