"""End to end: the example chat service under load, next to the same service without stickyctx.

Real servers in processes of their own: uvicorn (one worker) serving the FastAPI example and
gunicorn (one gthread worker) serving the Flask example, on the embedded store and on a private
``redis-server``, once directly and once behind HAProxy configured by ``stickyctx lb-config``;
and the bare apps (``benchmarks/apps/bare.py``: the same endpoint, a list per client). The load
generator (``_load.py``) runs in another process: a fixed number of ``POST /chat`` requests at a
fixed concurrency, each connection one client keeping its cookies. The app is pinned to one core
and the generator to the other (``taskset``), Redis and HAProxy are not pinned.

Per variant (medians of ``--runs`` runs, variants interleaved): requests/s, p50 and p99 latency,
server CPU per request (the app's processes, from /proc), and on Redis the round trips (script
calls) and commands per turn from Redis's own ``INFO commandstats``. Ratios are against the bare
app of the same framework, measured in the same run. One variant has another client send
messages of 1,000,000 characters all along, one after the other: its latencies are those of the
small turns around them (its CPU per request counts the large ones' work too).

    .venv/bin/python benchmarks/e2e.py            # about 2 minutes
    .venv/bin/python benchmarks/e2e.py --quick    # a few seconds per variant, noisier
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._machine import describe  # noqa: E402
from benchmarks._servers import (  # noqa: E402
    App,
    private_redis,
    script_calls,
    start_app,
    start_haproxy,
)

SECRET = "bench-" + "s" * 40
HASH_KEY = "bench-hash-" + "h" * 40
APP_CORE, LOAD_CORE = "0", "1"


@dataclass(frozen=True)
class Variant:
    name: str
    framework: str  # fastapi | flask
    target: str  # the app module:attribute
    store: str | None  # None: bare; "memory" or "redis"
    proxy: bool = False
    large: bool = False  # another client sends 1 MB messages all along (one at a time)


VARIANTS = [
    Variant("FastAPI bare", "fastapi", "benchmarks.apps.bare:app", None),
    Variant("FastAPI + stickyctx, memory://", "fastapi", "examples.fastapi.app:app", "memory"),
    Variant("FastAPI + stickyctx, memory://, while 1 MB messages arrive", "fastapi",
            "examples.fastapi.app:app", "memory", large=True),
    Variant("FastAPI + stickyctx, Redis", "fastapi", "examples.fastapi.app:app", "redis"),
    Variant("FastAPI + stickyctx, Redis, behind HAProxy", "fastapi", "examples.fastapi.app:app",
            "redis", proxy=True),
    Variant("Flask bare (gunicorn)", "flask", "benchmarks.apps.bare:flask_app", None),
    Variant("Flask + stickyctx, memory:// (gunicorn)", "flask", "examples.flask.app:app",
            "memory"),
    Variant("Flask + stickyctx, Redis (gunicorn)", "flask", "examples.flask.app:app", "redis"),
]


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    scripts: list[float] = field(default_factory=list)
    commands: list[float] = field(default_factory=list)
    errors: int = 0
    busy: list[float] = field(default_factory=list)  # the generator's CPU ÷ wall time


def env_for(variant: Variant, redis_url: str) -> dict[str, str]:
    env = {"STICKYCTX_SECRET_KEYS": SECRET, "STICKYCTX_NODE_ID": "n1",
           "STICKYCTX_NODES": "n1", "STICKYCTX_COOKIE_SECURE": "0",
           "STICKYCTX_HASH_KEY": HASH_KEY}
    if variant.store == "redis":
        env["STICKYCTX_STORE_URL"] = redis_url
    return env


def _load_command(url: str, requests: int, concurrency: int, *extra: str) -> list[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / "_load.py"), url, "/chat",
               "--requests", str(requests), "--concurrency", str(concurrency), *extra]
    if shutil.which("taskset"):
        command = ["taskset", "-c", LOAD_CORE, *command]
    return command


@contextmanager
def large_messages(url: str) -> Iterator[None]:
    """Another client sending messages of 1,000,000 characters, one after the other, all along.
    (The example app counts each one, then refuses it: 413, over the model's token budget.)"""
    command = _load_command(url, 1_000_000, 1, "--message-chars", "1000000")
    sender = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        sender.kill()
        sender.wait()


def load(url: str, requests: int, concurrency: int) -> dict[str, object]:
    command = _load_command(url, requests, concurrency)
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def measure(variant: Variant, app: App, url: str, redis: Callable[[], dict[str, int]] | None,
            requests: int, concurrency: int, result: Result) -> None:
    load(url, max(50, requests // 10), concurrency)  # warm-up: connections, caches, JIT-free
    with ExitStack() as stack:
        if variant.large:
            stack.enter_context(large_messages(url))
        cpu_before = app.cpu_seconds()
        calls_before = redis() if redis else {}
        outcome = load(url, requests, concurrency)
        cpu = app.cpu_seconds() - cpu_before
    latencies = sorted(outcome["latencies_us"])  # type: ignore[arg-type]
    count = int(outcome["requests"])  # type: ignore[call-overload]
    result.errors += int(outcome["errors"])  # type: ignore[call-overload]
    result.busy.append(float(outcome["busy"]))  # type: ignore[arg-type]
    result.rps.append(count / float(outcome["seconds"]))  # type: ignore[arg-type]
    result.p50.append(latencies[len(latencies) // 2] / 1000)
    result.p99.append(latencies[int(len(latencies) * 0.99)] / 1000)
    result.cpu_us.append(cpu / count * 1e6)
    if redis:
        after = redis()
        scripts = sum(after.get(k, 0) - calls_before.get(k, 0) for k in ("evalsha", "eval"))
        commands = sum(after.values()) - sum(calls_before.values())
        result.scripts.append(scripts / count)
        result.commands.append(commands / count)


@contextmanager
def serve(variant: Variant, redis_url: str) -> Iterator[tuple[App, str]]:
    with ExitStack() as stack:
        app = stack.enter_context(start_app(variant.framework, variant.target,
                                             env_for(variant, redis_url), core=APP_CORE))
        url = app.url
        if variant.proxy:
            url = stack.enter_context(start_haproxy(app, env_for(variant, redis_url)))
        yield app, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="400 requests, one run")
    parser.add_argument("--only", default="", help="variants whose name contains this text")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.runs = 400, 1
    variants = [v for v in VARIANTS if args.only.lower() in v.name.lower()]
    results = {v.name: Result() for v in variants}
    began = time.monotonic()
    with private_redis() as admin:
        redis_url = f"redis://127.0.0.1:{admin.connection_pool.connection_kwargs['port']}/0"

        def stats() -> dict[str, int]:
            return script_calls(admin)

        version = str(admin.info("server")["redis_version"])
        for _ in range(args.runs):
            for variant in variants:
                admin.flushdb()  # our own private server: every variant starts empty
                with serve(variant, redis_url) as (app, url):
                    measure(variant, app, url, stats if variant.store == "redis" else None,
                            args.requests, args.concurrency, results[variant.name])
    print(report(variants, results, args, version, time.monotonic() - began))
    return 0 if all(r.errors == 0 for r in results.values()) else 1


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(variants: list[Variant], results: dict[str, Result], args: argparse.Namespace,
           version: str, elapsed: float) -> str:
    bare = {v.framework: results[v.name] for v in variants if v.store is None}
    lines = [
        "### Machine", "",
        describe(("stickyctx", "uvicorn", "gunicorn", "fastapi", "flask", "redis"),
                 server=f"redis-server {version}; app on core {APP_CORE}, load generator on "
                        f"core {LOAD_CORE}"), "",
        "### Command", "",
        f"`.venv/bin/python benchmarks/e2e.py --requests {args.requests} "
        f"--concurrency {args.concurrency} --runs {args.runs}` ({elapsed:.0f} s); the load "
        f"generator's core was busy at most "
        f"{max(max(r.busy) for r in results.values()):.0%} of the time", "",
        "### Results (medians)", "",
        "| variant | requests/s | ÷ bare | p50 ms | p99 ms | p99 ÷ bare | server CPU µs/request "
        "| scripts/turn | Redis commands/turn | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        r, b = results[v.name], bare.get(v.framework)
        ratio = f"{_med(r.rps) / _med(b.rps):.2f}×" if b and b is not r else ""
        p99 = f"{_med(r.p99) / _med(b.p99):.2f}×" if b and b is not r else ""
        scripts = f"{_med(r.scripts):.2f}" if r.scripts else ""
        commands = f"{_med(r.commands):.1f}" if r.commands else ""
        lines.append(f"| {v.name} | {_med(r.rps):,.0f} | {ratio} | {_med(r.p50):.2f} | "
                     f"{_med(r.p99):.2f} | {p99} | {_med(r.cpu_us):,.0f} | {scripts} | "
                     f"{commands} | {r.errors} |")
    return "\n".join(lines)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
