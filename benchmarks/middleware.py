"""Per-request overhead of stickyctx's middleware next to the frameworks' own cookie sessions.

Every app is called in-process (ASGI: a prepared scope, a ``receive`` that returns an empty
``http.request``, a ``send`` that discards; WSGI: a prepared environ, the body iterated and
closed): no network, no test client. All variants run in one process, interleaved in rounds
(shuffled order each round) so that drift hits them alike.

    python benchmarks/middleware.py            # full run (about a minute on a quiet machine)
    python benchmarks/middleware.py --quick    # a few seconds, noisier
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import random
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import flask
from _asgi import http_scope  # sibling modules: benchmarks run as scripts
from _machine import describe
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from stickyctx import Settings, StickyMiddleware, StickyWSGIMiddleware
from stickyctx.flask import StickyCtx, current_context

SETTINGS = Settings(secret_keys=["x" * 40], node_id="bench", cookie_secure=False)
SESSION_SECRET = "s" * 40  # the frameworks' own cookie sessions
USER = "What is the capital of France? Answer in one short sentence."
ASSISTANT = "The capital of France is Paris."
WINDOW_TURNS = 20  # turns (user + assistant) stored before window() is measured
TURNS_PER_SESSION = 100  # the append variants start a fresh session after this many turns

ns = time.perf_counter_ns

# ASGI -------------------------------------------------------------------------------------

Scope = dict[str, Any]
Headers = list[tuple[str, str]]  # lower-case names
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> dict[str, Any]:
    return dict(_REQUEST)


async def _discard(message: dict[str, Any]) -> None:
    return None


def _scope(path: str, cookie: str | None) -> Scope:
    headers = [(b"host", b"bench.local"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return http_scope("GET", path, headers)


async def _asgi_call(app: ASGIApp, path: str, cookie: str | None) -> tuple[int, Headers, bytes]:
    """One request, for setup and checks: the status, the response headers and the body."""
    sent: list[dict[str, Any]] = []

    async def record(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path, cookie), _receive, record)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), headers, body


async def _plain(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _start(request: Request) -> Response:
    """Setup of the untouched variants: the session is sent once the app used it (its id)."""
    return PlainTextResponse(request.state.stickyctx.session_id and "ok")


async def _read_session(request: Request) -> Response:
    return PlainTextResponse(request.session.get("user", "no session"))


async def _login(request: Request) -> Response:
    request.session["user"] = "bench-user"
    return PlainTextResponse("ok")


async def _append_turn(request: Request) -> Response:
    conv = request.state.stickyctx
    await conv.append("user", USER)
    await conv.append("assistant", ASSISTANT)
    return PlainTextResponse("ok")


async def _read_window(request: Request) -> Response:
    await request.state.stickyctx.window()
    return PlainTextResponse("ok")


async def _seed_window(request: Request) -> Response:
    conv = request.state.stickyctx
    for _ in range(WINDOW_TURNS):
        await conv.append("user", USER)
        await conv.append("assistant", ASSISTANT)
    return PlainTextResponse("ok")


def _starlette(endpoint: Callable[[Request], Awaitable[Response]],
               setup: Callable[[Request], Awaitable[Response]],
               middleware: Sequence[Middleware] = ()) -> ASGIApp:
    # Every app has the same two routes, the measured one first, so routing costs the same.
    return Starlette(routes=[Route("/", endpoint), Route("/setup", setup)],
                     middleware=list(middleware))


# WSGI -------------------------------------------------------------------------------------

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


def _environ(path: str, cookie: str | None) -> Environ:
    environ: Environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "bench.local", "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def _drain(body: Iterable[bytes]) -> None:
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _wsgi_call(app: WSGIApp, path: str, cookie: str | None) -> tuple[int, Headers, bytes]:
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))

    environ = _environ(path, cookie)
    environ["wsgi.input"] = io.BytesIO()
    chunks: list[bytes] = []
    body = app(environ, start_response)
    try:
        chunks.extend(body)
    finally:
        _drain(body)
    status, headers = seen[-1]
    return int(status.split()[0]), [(k.lower(), v) for k, v in headers], b"".join(chunks)


def _flask(view: Callable[[], str], setup: Callable[[], str], *, secret: str | None = None,
           sticky: bool = False) -> WSGIApp:
    app = flask.Flask(__name__)
    if secret is not None:
        app.secret_key = secret
    app.add_url_rule("/", "index", view)
    app.add_url_rule("/setup", "setup", setup)
    if sticky:
        StickyCtx(app, SETTINGS)
    return app


def _f_plain() -> str:
    return "ok"


def _f_start() -> str:
    return current_context().session_id and "ok"


def _f_read_session() -> str:
    user: str = flask.session.get("user", "no session")
    return user


def _f_login() -> str:
    flask.session["user"] = "bench-user"
    return "ok"


def _f_append_turn() -> str:
    conv = current_context()
    conv.append("user", USER)
    conv.append("assistant", ASSISTANT)
    return "ok"


def _f_read_window() -> str:
    current_context().window()
    return "ok"


def _f_seed_window() -> str:
    conv = current_context()
    for _ in range(WINDOW_TURNS):
        conv.append("user", USER)
        conv.append("assistant", ASSISTANT)
    return "ok"


# Variants ---------------------------------------------------------------------------------


def _cookie_header(set_cookies: Sequence[str]) -> str:
    """What a browser sends back: ``name=value`` of every ``Set-Cookie``."""
    return "; ".join(value.split(";", 1)[0] for value in set_cookies)


@dataclass(frozen=True)
class Answer:
    status: int
    cookies: list[str]  # Set-Cookie values
    affinity: str | None  # stickyctx's affinity header
    body: str


@dataclass
class Variant:
    """One measured request shape. ``kind`` is ``bare``, ``session`` or ``sticky``."""

    name: str
    edge: str  # "ASGI" or "WSGI"
    kind: str
    app: Any
    setup_path: str | None  # request it once without a cookie to get the cookie we send
    fresh_every: int | None = None  # mint a new session after this many measured requests
    before: Callable[[], None] | None = None  # run before every timed request, untimed
    cookie: str | None = None
    used: int = 0
    samples: list[int] = field(default_factory=list)
    rounds: list[list[int]] = field(default_factory=list)

    async def call(self, path: str, cookie: str | None) -> Answer:
        """One untimed request."""
        if self.edge == "ASGI":
            status, headers, body = await _asgi_call(self.app, path, cookie)
        else:
            status, headers, body = _wsgi_call(self.app, path, cookie)
        return Answer(status, [v for k, v in headers if k == "set-cookie"],
                      dict(headers).get("x-stickyctx-affinity"), body.decode())

    async def mint(self) -> None:
        """A new session: request the setup route without a cookie (not timed)."""
        if self.setup_path is None:
            self.cookie = None
            return
        answer = await self.call(self.setup_path, None)
        if answer.status != 200 or not answer.cookies:
            raise RuntimeError(f"{self.name}: setup answered {answer}")
        self.cookie = _cookie_header(answer.cookies)
        self.used = 0

    async def check(self) -> None:
        """The measured request is what its name says: 200, no cookie re-issued, the session
        found (the frameworks' sessions answer its content) and a sticky hit."""
        answer = await self.call("/", self.cookie)
        expected = Answer(200, [], "hit" if self.kind == "sticky" else None,
                          "bench-user" if self.kind == "session" else "ok")
        if answer != expected:
            raise RuntimeError(f"{self.name}: answered {answer}, expected {expected}")
        self.used += 1

    async def batch(self, n: int) -> list[int]:
        if self.edge == "ASGI":
            return await self._asgi_batch(n)
        return await self._wsgi_batch(n)

    async def _asgi_batch(self, n: int) -> list[int]:
        app, out = self.app, []
        base = _scope("/", self.cookie)
        for _ in range(n):
            if self.fresh_every is not None and self.used >= self.fresh_every:
                await self.mint()
                base = _scope("/", self.cookie)
            scope = dict(base)
            if self.before is not None:
                self.before()
            start = ns()
            await app(scope, _receive, _discard)
            out.append(ns() - start)
            self.used += 1
        return out

    async def _wsgi_batch(self, n: int) -> list[int]:
        app, out = self.app, []
        base = _environ("/", self.cookie)
        for _ in range(n):
            if self.fresh_every is not None and self.used >= self.fresh_every:
                await self.mint()
                base = _environ("/", self.cookie)
            environ = dict(base)
            environ["wsgi.input"] = io.BytesIO()
            if self.before is not None:
                self.before()
            start = ns()
            _drain(app(environ, _start_response))
            out.append(ns() - start)
            self.used += 1
        return out


def _forget_tokens(app: Any) -> Callable[[], None]:
    """Empty the stickyctx middleware's cache of verified tokens (an internal detail, reached
    into on purpose), so that the next request verifies its token's signature: what the first
    request of a token costs on a node, e.g. after a restart."""
    found: list[Any] = []

    def forget() -> None:
        if not found:
            # Starlette builds its middleware stack on the first request; Flask's is wsgi_app.
            node: Any = app.middleware_stack if isinstance(app, Starlette) else app.wsgi_app
            while not isinstance(node, (StickyMiddleware, StickyWSGIMiddleware)):
                node = node.app
            found.append(node.services.codec._cache)
        found[0].clear()

    return forget


def build_variants() -> list[Variant]:
    sticky = [Middleware(StickyMiddleware, settings=SETTINGS)]
    session = [Middleware(SessionMiddleware, secret_key=SESSION_SECRET)]
    cold_asgi = _starlette(_plain, _start, sticky)
    cold_wsgi = _flask(_f_plain, _f_start, sticky=True)
    return [
        Variant("bare Starlette", "ASGI", "bare", _starlette(_plain, _plain), None),
        Variant("Starlette SessionMiddleware, reads the session", "ASGI", "session",
                _starlette(_read_session, _login, session), "/setup"),
        Variant("stickyctx, context untouched", "ASGI", "sticky",
                _starlette(_plain, _start, sticky), "/setup"),
        Variant("stickyctx, context untouched, uncached token", "ASGI", "sticky",
                cold_asgi, "/setup", before=_forget_tokens(cold_asgi)),
        Variant("stickyctx, appends one turn", "ASGI", "sticky",
                _starlette(_append_turn, _start, sticky), "/setup",
                fresh_every=TURNS_PER_SESSION),
        Variant(f"stickyctx, window() of {WINDOW_TURNS} turns", "ASGI", "sticky",
                _starlette(_read_window, _seed_window, sticky), "/setup"),
        Variant("bare Flask", "WSGI", "bare", _flask(_f_plain, _f_plain), None),
        Variant("Flask cookie session, reads the session", "WSGI", "session",
                _flask(_f_read_session, _f_login, secret=SESSION_SECRET), "/setup"),
        Variant("stickyctx, context untouched", "WSGI", "sticky",
                _flask(_f_plain, _f_start, sticky=True), "/setup"),
        Variant("stickyctx, context untouched, uncached token", "WSGI", "sticky",
                cold_wsgi, "/setup", before=_forget_tokens(cold_wsgi)),
        Variant("stickyctx, appends one turn", "WSGI", "sticky",
                _flask(_f_append_turn, _f_start, sticky=True), "/setup",
                fresh_every=TURNS_PER_SESSION),
        Variant(f"stickyctx, window() of {WINDOW_TURNS} turns", "WSGI", "sticky",
                _flask(_f_read_window, _f_seed_window, sticky=True), "/setup"),
    ]


# Measurement and report ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    rounds: int
    batch: int
    warmup: int
    seed: int = 1


FULL = Plan(rounds=80, batch=200, warmup=1000)
QUICK = Plan(rounds=24, batch=80, warmup=200)


async def measure(variants: list[Variant], plan: Plan) -> None:
    for variant in variants:
        await variant.mint()
        await variant.check()
    rng = random.Random(plan.seed)
    order = list(variants)
    for variant in order:  # warm-up: caches, lazily built middleware stacks, branch history
        await variant.batch(plan.warmup)
    # What setup and imports allocated is long-lived: freeze it, so that a collection (ours
    # before each batch, or one triggered inside a request) scans only what requests allocate.
    gc.collect()
    gc.freeze()
    for _ in range(plan.rounds):
        rng.shuffle(order)
        for variant in order:
            gc.collect()  # every batch starts from the same collector state
            times = await variant.batch(plan.batch)
            variant.samples.extend(times)
            variant.rounds.append(times)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _per_round_overhead(variant: Variant, bare: Variant) -> list[float]:
    """Per round, the variant's median minus the bare app's median in the same round: paired
    by round, so that drift between rounds (a busy neighbour, frequency changes) cancels."""
    return [_quantile(mine, 0.5) - _quantile(theirs, 0.5)
            for mine, theirs in zip(variant.rounds, bare.rounds, strict=True)]


def _us(value: float) -> str:
    return f"{value / 1000:.1f}"


def report(variants: list[Variant]) -> str:
    lines = []
    for edge, comparator in (("ASGI", "SessionMiddleware's"), ("WSGI", "Flask session's")):
        group = [v for v in variants if v.edge == edge]
        bare = next(v for v in group if v.kind == "bare")
        session = next(v for v in group if v.kind == "session")
        session_overhead = _quantile(_per_round_overhead(session, bare), 0.5)
        lines += [
            f"### {edge}",
            "",
            "| variant | median µs | p90 µs | overhead µs | overhead IQR µs "
            f"| overhead ÷ {comparator} |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for v in group:
            median = _quantile(v.samples, 0.5)
            p90 = _quantile(v.samples, 0.9)
            if v is bare:
                lines.append(f"| {edge}: {v.name} | {_us(median)} | {_us(p90)} | — | — | — |")
                continue
            per_round = _per_round_overhead(v, bare)
            overhead = _quantile(per_round, 0.5)
            spread = f"{_us(_quantile(per_round, 0.25))}–{_us(_quantile(per_round, 0.75))}"
            ratio = overhead / session_overhead if session_overhead > 0 else float("nan")
            lines.append(f"| {edge}: {v.name} | {_us(median)} | {_us(p90)} | {_us(overhead)} "
                         f"| {spread} | {ratio:.2f} |")
        lines.append("")
    return "\n".join(lines)


def profile(variants: list[Variant], label: str, requests: int) -> int:
    """cProfile ``requests`` requests of one variant (after a warm-up), top functions by own
    time. Profiling inflates small calls: read it for where the time goes, not for totals."""
    import cProfile
    import pstats

    chosen = next((v for v in variants if label in f"{v.edge}: {v.name}"), None)
    if chosen is None:
        print(f"no variant matches {label!r}", file=sys.stderr)
        return 2
    profiler = cProfile.Profile()

    async def run() -> None:
        await chosen.mint()
        await chosen.check()
        await chosen.batch(1000)
        profiler.enable()
        await chosen.batch(requests)
        profiler.disable()

    asyncio.run(run())
    print(f"{chosen.edge}: {chosen.name}, {requests} requests")
    order = os.environ.get("PROFILE_SORT", "tottime")  # e.g. cumulative
    lines = int(os.environ.get("PROFILE_LINES", "25"))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(lines)
    return 0


def machine() -> str:
    return describe(("stickyctx", "starlette", "flask", "werkzeug", "itsdangerous"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short, noisier run")
    parser.add_argument("--rounds", type=int, help="rounds (each runs every variant once)")
    parser.add_argument("--batch", type=int, help="requests per variant per round")
    parser.add_argument("--warmup", type=int, help="untimed requests per variant first")
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round shuffle")
    parser.add_argument("--profile", metavar="VARIANT",
                        help="instead: cProfile the first variant whose label contains this "
                             "text (e.g. 'ASGI: stickyctx, context untouched')")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(rounds=args.rounds or base.rounds, batch=args.batch or base.batch,
                warmup=base.warmup if args.warmup is None else args.warmup, seed=args.seed)

    with warnings.catch_warnings():
        # Without network, stickyctx uses the identical offline copy of cl100k_base and warns.
        warnings.filterwarnings("ignore", "stickyctx. tiktoken encoding", RuntimeWarning)
        variants = build_variants()
    if args.profile is not None:
        return profile(variants, args.profile, plan.rounds * plan.batch)
    began = time.monotonic()
    try:
        asyncio.run(measure(variants, plan))
    finally:
        gc.unfreeze()
    elapsed = time.monotonic() - began

    print("## Middleware overhead (in-process, per request)")
    print()
    print(f"Machine: {machine()}.")
    print(f"Plan: {plan.rounds} rounds × {plan.batch} requests per variant (shuffled order "
          f"each round) after {plan.warmup} warm-up requests per variant; "
          f"{plan.rounds * plan.batch} timed requests per variant; garbage collector on "
          f"(setup objects frozen, a collection before each batch); {elapsed:.0f} s.")
    print(f"The append variants store one turn (user + assistant message) per request and start "
          f"a fresh session every {TURNS_PER_SESSION} requests (untimed), so a history never "
          f"exceeds {2 * TURNS_PER_SESSION} messages. Median and p90 pool all timed requests; "
          f"overhead is the median over rounds of (variant's median − bare app's median in "
          f"that round), with its interquartile range over rounds; the ratio divides "
          f"overheads.")
    print()
    print(report(variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
