"""Streamed replies: what ``conv.stream`` costs per chunk next to a bare ``StreamingResponse``,
and how long a client that comes back waits for its first resumed chunk.

ASGI apps called in-process (no sockets between client and app), on the embedded store and on
a private ``redis-server`` (started on a free loopback port; needs the binary):

* **per chunk**: one reply of ``--chunks`` chunks from an async generator, as server-sent
  events, through Starlette's ``StreamingResponse`` alone and through ``StickyMiddleware`` +
  ``conv.stream`` (each chunk pushed to the store before it is sent); the generator yields its
  chunks at once ("at hand": stickyctx pushes what is at hand together, up to 64) or after a
  turn of the event loop each ("one chunk per loop turn": one push per chunk, a model whose
  tokens arrive one by one).
  Per-chunk cost = (stickyctx's median reply time - the bare app's, same round) / chunks.
* **time to first resumed chunk**: a reply is in flight (half its chunks sent, the generator
  waiting); a client resumes with ``Last-Event-ID`` on the generating node (served from its
  memory) and on another node over the same Redis (served from the store); and once the reply
  has ended (from the store). Time from the request to the first ``token`` event's bytes.

Usage: ``.venv/bin/python benchmarks/streaming.py`` (about a minute), ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from _asgi import http_scope  # sibling modules: benchmarks run as scripts
from _machine import describe
from _servers import private_redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from stickyctx import Conversation, Settings, StickyMiddleware, get_context
from stickyctx.core.streams import Event, encode_sse
from stickyctx.fastapi import sse_response
from stickyctx.settings import Secret

KEY = "k" * 40
HASH_KEY = "h" * 40
CHUNK = "word "
App = Callable[..., Any]


# In-process ASGI calls ----------------------------------------------------------------------

class Call:
    """One request to an ASGI app, in a task: its response headers, body, and the seconds to
    its first ``token`` event (``first``, ``got_first``) and to its end (``task``)."""

    def __init__(self, app: App, method: str, path: str,
                 headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.first = 0.0
        self.got_headers = asyncio.Event()
        self.got_first = asyncio.Event()
        self._done = asyncio.Event()
        self._sent = False
        self._body = body
        scope = http_scope(method, path, [(k.lower().encode(), v.encode())
                                          for k, v in (headers or {}).items()])
        scope["state"] = {}
        self.started = time.perf_counter()
        self.task = asyncio.ensure_future(self._run(app, scope))

    async def _run(self, app: App, scope: dict[str, Any]) -> float:
        await app(scope, self._receive, self._send)
        return time.perf_counter() - self.started

    async def _receive(self) -> dict[str, Any]:
        if not self._sent:
            self._sent = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._done.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.headers = [(k.decode(), v.decode()) for k, v in message["headers"]]
            self.got_headers.set()
        elif message["type"] == "http.response.body":
            data = message.get("body", b"")
            if not self.first and b"event: token" in data:
                self.first = time.perf_counter() - self.started
                self.got_first.set()
            self.chunks.append(data)
            if not message.get("more_body", False):
                self._done.set()

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


# The apps -------------------------------------------------------------------------------------

def bare_app(chunks: int, spaced: bool) -> App:
    async def events() -> AsyncIterator[bytes]:
        for n in range(1, chunks + 1):
            if spaced:
                await asyncio.sleep(0)
            yield encode_sse(Event(f"s:{n}", "token", CHUNK))
        yield encode_sse(Event(f"s:{chunks + 1}", "done", CHUNK * chunks))

    async def stream(_request: Request) -> Response:
        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/s", stream, methods=["POST"])])


class Gate:
    """Lets a reply's generator stop half way until released (a reply in flight)."""

    def __init__(self) -> None:
        self.hold_at: int | None = None
        self.reached = asyncio.Event()
        self.release = asyncio.Event()


def sticky_app(settings: Settings, chunks: int, gate: Gate, spaced: bool = False) -> App:
    async def tokens(_window: Any) -> AsyncIterator[str]:
        for n in range(chunks):
            if n == gate.hold_at:
                gate.reached.set()
                await gate.release.wait()
            if spaced:  # each chunk comes after a turn of the event loop: one push each
                await asyncio.sleep(0)
            yield CHUNK

    def conv(request: Request) -> Conversation:
        found = get_context(request)
        assert isinstance(found, Conversation)
        return found

    async def stream(request: Request) -> Response:
        return sse_response(await conv(request).stream("hi", tokens))

    async def resume(request: Request) -> Response:
        return sse_response(await conv(request).resume(request.headers.get("last-event-id")))

    return StickyMiddleware(Starlette(routes=[Route("/s", stream, methods=["POST"]),
                                              Route("/s", resume)]), settings)


def settings_for(store_url: str, node: str) -> Settings:
    return Settings(secret_keys=(KEY,), node_id=node, store_url=store_url,
                    hash_key=Secret(HASH_KEY), cookie_secure=False)


# Measurements ---------------------------------------------------------------------------------

async def per_chunk(variants: dict[str, App], rounds: int, chunks: int,
                    rng: random.Random) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for app in variants.values():  # warm-up
        await Call(app, "POST", "/s").task
    for _ in range(rounds):
        order = list(variants)
        rng.shuffle(order)
        for name in order:
            call = Call(variants[name], "POST", "/s")
            times[name].append(await call.task)
            assert call.body.count(b"event: token") == chunks, name
    return times


RESUMES = ("generating node, reply in flight (its memory)",
           "another node, reply in flight (the store)",
           "another node, reply ended (the store)")


async def first_resumed(owner: App, other: App, gate: Gate, chunks: int,
                        trials: int) -> dict[str, list[float]]:
    """Seconds to the first resumed ``token`` event, ten chunks behind the reply's head."""
    found: dict[str, list[float]] = {name: [] for name in RESUMES}
    half = chunks // 2
    for _ in range(trials + 1):  # the first is a warm-up
        gate.hold_at, gate.reached, gate.release = half, asyncio.Event(), asyncio.Event()
        start = Call(owner, "POST", "/s")
        await gate.reached.wait()
        await start.got_first.wait()
        cookie = next(v for k, v in start.headers
                      if k == "set-cookie" and v.startswith("stickyctx="))
        token = cookie.split("=", 1)[1].split(";", 1)[0]
        stream_id = start.body.split(b"id: ", 1)[1].split(b":", 1)[0].decode()
        asked = {"X-Stickyctx-Session": token, "Last-Event-ID": f"{stream_id}:{half - 10}"}
        pending = []
        for name, app in zip(RESUMES[:2], (owner, other), strict=True):
            resumed = Call(app, "GET", "/s", asked)
            await resumed.got_first.wait()
            found[name].append(resumed.first)
            pending.append(resumed.task)
        gate.release.set()
        await asyncio.gather(start.task, *pending)
        ended = Call(other, "GET", "/s", asked)
        await ended.task
        found[RESUMES[2]].append(ended.first)
    return {name: values[1:] for name, values in found.items()}


def table(times: dict[str, list[float]], chunks: int) -> str:
    """Per-chunk figures; each variant's overhead is paired with the bare app of its shape
    (the first row of each group)."""
    rows = [f"| variant | reply of {chunks} chunks, median (ms) | per chunk (µs) "
            "| over bare, per chunk (µs) |", "|---|---|---|---|"]
    base: list[float] = []
    for name, values in times.items():
        median = statistics.median(values)
        if name.startswith("bare"):
            base, over = values, "—"
        else:
            over = "%.1f" % (statistics.median(
                [v - b for v, b in zip(values, base, strict=True)]) / chunks * 1e6)
        rows.append(f"| {name} | {median * 1e3:.2f} | {median / chunks * 1e6:.1f} | {over} |")
    return "\n".join(rows)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with private_redis() as admin:
        port = admin.connection_pool.connection_kwargs["port"]
        redis_url = f"redis://127.0.0.1:{port}/0"
        gate = Gate()
        variants: dict[str, App] = {}
        for spaced, shape in ((False, "chunks at hand"), (True, "one chunk per loop turn")):
            variants[f"bare StreamingResponse, {shape}"] = bare_app(args.chunks, spaced)
            variants[f"stickyctx, embedded store, {shape}"] = sticky_app(
                settings_for("memory://", "n1"), args.chunks, gate, spaced)
            variants[f"stickyctx, Redis, {shape}"] = sticky_app(
                settings_for(redis_url, "n1"), args.chunks, gate, spaced)
        times = await per_chunk(variants, args.rounds, args.chunks, rng)
        version = admin.info("server")["redis_version"]
        machine = describe(("stickyctx", "starlette", "redis"), server=f"Redis {version}")
        print(f"Machine: {machine}\n")
        print("## Streaming: cost per chunk\n")
        print(table(times, args.chunks))
        gate.hold_at = None
        owner = variants["stickyctx, Redis, chunks at hand"]
        other = sticky_app(settings_for(redis_url, "n2"), args.chunks, gate)
        resumed = await first_resumed(owner, other, gate, args.chunks, args.trials)
        print(f"\n## Time to the first resumed chunk (Redis, {args.trials} trials)\n")
        print("| resumed on | median (ms) | p90 (ms) |\n|---|---|---|")
        for name, values in resumed.items():
            ordered = sorted(values)
            p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
            print(f"| {name} | {statistics.median(values) * 1e3:.2f} | {p90 * 1e3:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.chunks, args.trials = 3, 50, 3
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
