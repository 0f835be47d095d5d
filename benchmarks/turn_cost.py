"""Where a chat turn's CPU goes: the example's ``POST /chat`` built up step by step, in-process.

The same FastAPI app with ``StickyMiddleware`` on the embedded store answers ``POST /chat`` with
more of the example's turn at each step: the handle taken and nothing done (``noop``), the
user's message appended (the turn begins: lease and load), the reply appended too, the window
read, the offline reply computed from it, and finally the whole example turn (``turn_count()``,
``token_count()``, the response fields). Next to them: the bare app of the end-to-end benchmark
(``benchmarks/apps/bare.py``) and the example app itself (``examples/fastapi/app.py``).

Each variant runs in a process of its own, 16 clients (``--clients``) taking turns on an
in-process ASGI call (no sockets, no server). What is measured, per request:

- ``--measure instructions`` (the default when ``valgrind`` is installed): instructions counted
  by callgrind, from two runs of different lengths (``--turns A,B``) so that start-up cancels.
  Repeatable to about 1 % whatever else the machine does: the measure to compare
  two versions of the code with (``--tree`` runs another checkout's sources).
- ``--measure cpu``: process CPU time of one run of the longer length, after a warm-up request.
  Noisy on a shared machine; needs no valgrind.

The step column is what each step added to the one before; the ratio divides the bare app's
cost by the variant's (the throughput ratio the end-to-end benchmark would see if the server's
own work were the same).

    .venv/bin/python benchmarks/turn_cost.py                   # about 8 minutes with valgrind
    .venv/bin/python benchmarks/turn_cost.py --measure cpu     # a few seconds, noisy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._asgi import http_scope  # noqa: E402
from benchmarks._machine import describe  # noqa: E402
from benchmarks._servers import private_redis  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from stickyctx import Settings, StickyMiddleware  # noqa: E402
from stickyctx.chat_example import areply  # noqa: E402
from stickyctx.fastapi import Conversation, install_error_handlers  # noqa: E402

SYSTEM = "You are a concise, friendly assistant."
STEPS = ("noop", "append user", "append reply", "window", "offline reply", "whole turn")
# On a private redis-server: the bare app's turn with two redis-py asyncio PINGs awaited in it,
# what any turn of two round trips through redis-py costs at the least. (The example app on
# Redis is not a row: under callgrind the app runs some 50 times slower, its turn leases and
# socket timeouts expire, and the run measures waiting; benchmarks/e2e.py measures it.)
ON_REDIS = ("bare app + 2 PINGs, Redis",)
VARIANTS = ("bare app", *STEPS, "example app", *ON_REDIS)
ENV = {"STICKYCTX_SECRET_KEYS": "bench-" + "s" * 40, "STICKYCTX_HASH_KEY": "bench-" + "h" * 40,
       "STICKYCTX_STORE_URL": "memory://", "OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}



class ChatIn(BaseModel):  # at module level: FastAPI resolves the route's annotations here
    message: str


def steps_app(step: str) -> Any:
    """The FastAPI app answering ``POST /chat`` with the example's turn up to ``step``."""
    upto = STEPS.index(step)
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=Settings.from_env())
    install_error_handlers(app)

    @app.post("/chat", response_model=None)
    async def chat(body: ChatIn, conv: Conversation) -> dict[str, Any]:
        answer = "Fine."
        if upto >= 1:
            await conv.append("user", body.message)
        window = await conv.window(system=SYSTEM) if upto >= 3 else []
        if upto >= 4:
            answer = await areply(window)
        if upto >= 2:
            await conv.append("assistant", answer)
        if upto < 5:
            return {"reply": answer}
        return {"reply": answer, "node": conv.node_id, "owner": conv.owner,
                "affinity": conv.affinity, "turns": await conv.turn_count(),
                "tokens": await conv.token_count()}

    return app


def pings_app(url: str) -> Any:
    """The bare app's ``POST /chat`` with two awaited PINGs (a client per event loop)."""
    import redis.asyncio
    from benchmarks.apps.bare import chat as bare_chat

    clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
    app = FastAPI()

    @app.post("/chat")
    async def chat(body: ChatIn, request: Request, response: Response) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        client = clients.get(loop) or clients.setdefault(loop, redis.asyncio.Redis.from_url(url))
        await client.ping()
        await client.ping()
        return await bare_chat(body, request, response)  # type: ignore[arg-type]

    return app


def load_app(variant: str) -> Any:
    if variant == ON_REDIS[0]:
        return pings_app(os.environ["BENCH_REDIS_URL"])
    if variant == "example app":
        from examples.fastapi.app import app as example

        return example
    if variant == "bare app":
        from benchmarks.apps.bare import app as bare

        return bare
    return steps_app(variant)


async def _post(app: Any, cookies: dict[str, str], message: str) -> None:
    body = json.dumps({"message": message}).encode()
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    scope = http_scope("POST", "/chat", headers)
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a client that never disconnects
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            for name, value in message["headers"]:
                if name == b"set-cookie":
                    key, _, rest = value.decode("latin-1").partition("=")
                    cookies[key] = rest.split(";", 1)[0]

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"POST /chat answered {status}")


async def _clients(app: Any, clients: int, turns: int) -> None:
    async def client(i: int) -> None:
        cookies: dict[str, str] = {}
        for t in range(turns):
            await _post(app, cookies, f"hello number {t}, my name is Ann {i}")

    await asyncio.gather(*(client(i) for i in range(clients)))


def child(variant: str, clients: int, turns: int) -> None:
    """One measured run (in the process valgrind or the parent started): prints CPU µs."""
    sys.path.insert(0, os.getcwd())  # the tree under test (``--tree``) first
    app = load_app(variant)
    asyncio.run(_post(app, {}, "warm up"))  # lazy set-up (the tokenizer, the stack) first
    start = time.process_time()
    asyncio.run(_clients(app, clients, turns))
    print(f"cpu_us_per_request {(time.process_time() - start) / (clients * turns) * 1e6:.1f}")


def _run(variant: str, clients: int, turns: int, tree: Path, valgrind: bool,
         redis_url: str = "") -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", variant,
               "--clients", str(clients), "--turns", str(turns)]
    if valgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    env = {**os.environ, **ENV, "PYTHONPATH": str(tree / "src"), "BENCH_REDIS_URL": redis_url}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                          check=False)
    pattern = r"Collected : (\d+)" if valgrind else r"cpu_us_per_request ([\d.]+)"
    found = re.search(pattern, done.stderr if valgrind else done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{variant}: the run failed\n{done.stdout[-2000:]}"
                           f"{done.stderr[-2000:]}")
    return float(found.group(1))


def measure(variant: str, args: argparse.Namespace) -> float:
    """Instructions (or CPU µs) per request of ``variant``."""
    short, long = args.turns
    url = args.redis_url if variant in ON_REDIS else ""
    if args.measure == "cpu":
        return _run(variant, args.clients, long, args.tree, False, url)
    few = _run(variant, args.clients, short, args.tree, True, url)
    many = _run(variant, args.clients, long, args.tree, True, url)
    return (many - few) / (args.clients * (long - short))


def report(results: dict[str, float], args: argparse.Namespace) -> str:
    unit = "instructions" if args.measure == "instructions" else "CPU µs"
    short, long = args.turns
    lines = [
        "## Where a turn's CPU goes (in-process, per request)", "",
        f"Machine: {describe(['fastapi', 'starlette', 'tiktoken'])}.",
        f"Measure: {unit} per request, "
        + (f"from callgrind runs of {short} and {long} turns per client (the difference)"
           if args.measure == "instructions" else f"one run of {long} turns per client")
        + f"; {args.clients} clients; the embedded store (the row marked Redis: a private"
        " redis-server on loopback, of which only the app process's own work is counted).", "",
        f"| variant | {unit} per request | step adds | bare app ÷ variant |",
        "|---|---:|---:|---:|",
    ]
    bare = results["bare app"]
    before: float | None = None
    for variant in [v for v in VARIANTS if v in results]:
        value = results[variant]
        step = "" if before is None or variant not in STEPS[1:] else f"{value - before:,.0f}"
        lines.append(f"| {variant} | {value:,.0f} | {step} | {bare / value:.2f}× |")
        before = value if variant in STEPS else before
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--measure", choices=("instructions", "cpu"),
                        default="instructions" if shutil.which("valgrind") else "cpu")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--turns", default="10,50",
                        help="turns per client of the short and the long run (A,B)")
    parser.add_argument("--only", default="", help="variants whose name contains this text")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the checkout whose sources run (to compare two versions)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    short, _, long = args.turns.partition(",")
    args.turns = (int(short), int(long or short))
    if args.child:
        child(args.child, args.clients, args.turns[1])
        return 0
    if args.measure == "instructions" and args.turns[0] >= args.turns[1]:
        parser.error("--turns A,B needs A < B to count instructions")
    chosen = [v for v in VARIANTS if args.only in v] or list(VARIANTS)
    needed = [v for v in VARIANTS if v in chosen or v == "bare app"]
    # Instruction counts do not depend on what runs beside them: one run per core at once.
    workers = (os.cpu_count() or 1) if args.measure == "instructions" else 1
    with ExitStack() as stack:
        args.redis_url = ""
        if any(v in ON_REDIS for v in needed):
            admin = stack.enter_context(private_redis())
            args.redis_url = f"redis://127.0.0.1:{admin.connection_pool.connection_kwargs['port']}/0"
        with ThreadPoolExecutor(max_workers=workers) as pool:
            values = dict(zip(needed, pool.map(lambda v: measure(v, args), needed), strict=True))
    print(report(values, args))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
