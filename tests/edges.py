"""The two edges under test, driven the same way: one chat app behind ASGI and behind WSGI.

``make_edge("asgi" | "wsgi", settings, clock=..., store=...)`` returns an ``Edge``: a tiny chat
app (Starlette + ``StickyMiddleware``, or Flask + ``stickyctx.flask.StickyCtx``) over a real
``MemoryStore`` that records the calls it serves. The ASGI app is called as a raw ASGI callable
(exact header bytes, concurrent requests as asyncio tasks); the WSGI app through werkzeug's test
client (concurrent requests in threads). ``Browser`` keeps cookies between requests.

Routes of the chat app (JSON answers, every one includes the handle's attributes):
``GET /whoami`` (does not touch the context; also reports the request annotations the app saw),
``POST /chat {"message", "turn_id"?, "pause"?, "explicit_turn"?}`` (load, append user, optional
pause at a gate, append assistant), ``GET /history``, ``POST /rotate``, ``POST /destroy``,
``POST /clear``, ``POST /fail`` (touches the context, then raises).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from stickyctx import Conversation, Settings, StickyMiddleware, SyncConversation, get_context
from stickyctx.core.messages import Begun
from stickyctx.core.storekeys import SessionKey
from stickyctx.flask import StickyCtx, current_context
from stickyctx.sansio import Op
from stickyctx.session.services import Services
from stickyctx.stores import MemoryStore, Store

from .conftest import FakeClock, make_settings

EDGES = ("asgi", "wsgi")
TIMEOUT = 10.0  # a deadline for events that must happen; never a pause


# Replies ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str]  # lower-cased attribute names; flags map to ""

    @property
    def max_age(self) -> int | None:
        """``None``: a browser-session cookie (no ``Max-Age``)."""
        return int(self.attrs["max-age"]) if "max-age" in self.attrs else None


def parse_set_cookie(header: str) -> SetCookie:
    first, *rest = header.split(";")
    name, _, value = first.strip().partition("=")
    attrs: dict[str, str] = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attrs[key.lower()] = val
    return SetCookie(name, value, attrs)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in order
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def cookies(self) -> dict[str, SetCookie]:
        parsed = [parse_set_cookie(h) for h in self.all("set-cookie")]
        by_name = {c.name: c for c in parsed}
        assert len(by_name) == len(parsed), f"a cookie set twice: {self.all('set-cookie')}"
        return by_name


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: Sequence[tuple[str, str]] = ()
    json: Any = None


# A store that records what it serves ----------------------------------------------------------

class RecordingStore(MemoryStore):
    """The real memory store, recording every protocol primitive called (name, key tag).

    ``on_refused`` is called whenever a turn lease is refused because another request holds it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str]] = []
        self.refused = 0  # turn leases refused (another request held the turn)
        self.on_refused: Callable[[], None] | None = None

    def acquire_lease(self, key: SessionKey, *args: Any, **kwargs: Any) -> Op[int | None]:
        token = yield from super().acquire_lease(key, *args, **kwargs)
        if token is None:
            self._refused()
        return token

    def _refused(self) -> None:
        self.refused += 1
        if self.on_refused is not None:
            self.on_refused()

    def begin(self, key: SessionKey, *args: Any, **kwargs: Any) -> Op[Begun]:
        begun = yield from super().begin(key, *args, **kwargs)
        if begun.status == "live" and begun.token is None:
            self._refused()
        return begun


def _recording(name: str) -> Callable[..., Any]:
    inner = getattr(RecordingStore, name)

    def method(self: RecordingStore, key: SessionKey, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, key.tag))
        return inner(self, key, *args, **kwargs)

    method.__name__ = name
    return method


# Every primitive of the store protocol that takes a session key is recorded.
for _name in [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]:
    if _name not in ("close", "aclose", "heartbeat"):
        setattr(RecordingStore, _name, _recording(_name))


def make_store(settings: Settings, clock: Callable[[], float]) -> RecordingStore:
    """The store ``memory://`` would give for these settings, recording, on ``clock``."""
    return RecordingStore(max_sessions=settings.memory_max_sessions, idle_ttl=settings.idle_ttl,
                          absolute_ttl=settings.absolute_ttl,
                          max_session_tokens=settings.max_session_tokens,
                          max_session_bytes=settings.max_session_bytes, clock=clock)


def store_tag(settings: Settings, session_id: str) -> str:
    """The store's name (key tag) for a session id under these settings."""
    return Services(settings).keys.derive(session_id).tag


# Gates: hold a handler in the middle of its turn ----------------------------------------------

class AsyncGate:
    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()

    async def pause(self) -> None:
        self.holding.set()
        await asyncio.wait_for(self.released.wait(), TIMEOUT)


class ThreadGate:
    def __init__(self) -> None:
        self.holding = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()

    def pause(self) -> None:
        self.holding.set()
        if not self.released.wait(TIMEOUT):
            raise AssertionError("the gate was never released")


@dataclass
class Hooks:
    gate: Any = None


# The chat app, twice --------------------------------------------------------------------------

def describe(conv: Conversation | SyncConversation) -> dict[str, Any]:
    return {"session_id": conv.session_id, "affinity": conv.affinity, "owner": conv.owner,
            "node_id": conv.node_id, "is_new": conv.is_new}


def starlette_chat_app(hooks: Hooks, middleware: Sequence[Middleware]) -> Starlette:
    def handle(request: Request) -> Conversation:
        conv = get_context(request)
        assert isinstance(conv, Conversation)
        return conv

    async def whoami(request: Request) -> JSONResponse:
        conv = handle(request)
        return JSONResponse({
            **describe(conv),
            "seen_owner": request.headers.getlist("x-stickyctx-owner"),
            "seen_affinity": request.headers.getlist("x-stickyctx-affinity"),
        })

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        conv = handle(request)
        turn_id = body.get("turn_id")

        async def one_turn() -> None:
            await conv.messages()
            await conv.append("user", body["message"], turn_id=turn_id)
            if body.get("pause"):
                await hooks.gate.pause()
            await conv.append("assistant", f"echo: {body['message']}", turn_id=turn_id)

        if body.get("explicit_turn"):
            async with conv.turn():
                await one_turn()
        else:
            await one_turn()
        if body.get("fail") == "raise":
            raise RuntimeError("the app failed after its appends")
        messages = await conv.messages()
        status = 422 if body.get("fail") == "status" else 200
        return JSONResponse({**describe(conv), "messages": messages}, status_code=status)

    async def history(request: Request) -> JSONResponse:
        conv = handle(request)
        messages = await conv.messages()
        return JSONResponse({**describe(conv), "messages": messages})

    async def rotate(request: Request) -> JSONResponse:
        conv = handle(request)
        old = conv.session_id
        new = await conv.rotate()
        messages = await conv.messages()
        return JSONResponse({**describe(conv), "old": old, "new": new, "messages": messages})

    async def destroy(request: Request) -> JSONResponse:
        conv = handle(request)
        await conv.destroy()
        return JSONResponse(describe(conv))

    async def clear(request: Request) -> JSONResponse:
        conv = handle(request)
        await conv.clear()
        messages = await conv.messages()
        return JSONResponse({**describe(conv), "messages": messages})

    async def fail(request: Request) -> JSONResponse:
        await handle(request).messages()
        raise RuntimeError("the app failed mid-turn")

    async def page(request: Request) -> JSONResponse:
        """Uses the session only when asked (``?use=1``); sets ``Vary`` when given (``?vary=``)."""
        has_handle = "stickyctx" in request.scope.get("state", {})
        if request.query_params.get("use"):
            handle(request).session_id  # noqa: B018 - reading the id is a use
        vary = request.query_params.get("vary")
        return JSONResponse({"has_handle": has_handle},
                            headers={"Vary": vary} if vary else None)

    return Starlette(routes=[
        Route("/page", page),
        Route("/static/{name}", page),
        Route("/whoami", whoami),
        Route("/fail", fail, methods=["POST"]),
        Route("/chat", chat, methods=["POST"]),
        Route("/history", history),
        Route("/rotate", rotate, methods=["POST"]),
        Route("/destroy", destroy, methods=["POST"]),
        Route("/clear", clear, methods=["POST"]),
    ], middleware=middleware)


def flask_chat_app(hooks: Hooks) -> flask.Flask:
    app = flask.Flask("stickyctx_test_chat")

    @app.get("/whoami")
    def whoami() -> Any:
        environ = flask.request.environ
        return {**describe(current_context()),
                "seen_owner": [environ.get("HTTP_X_STICKYCTX_OWNER")],
                "seen_affinity": [environ.get("HTTP_X_STICKYCTX_AFFINITY")]}

    @app.post("/chat")
    def chat() -> Any:
        body = flask.request.get_json()
        conv = current_context()
        turn_id = body.get("turn_id")

        def one_turn() -> None:
            conv.messages()
            conv.append("user", body["message"], turn_id=turn_id)
            if body.get("pause"):
                hooks.gate.pause()
            conv.append("assistant", f"echo: {body['message']}", turn_id=turn_id)

        if body.get("explicit_turn"):
            with conv.turn():
                one_turn()
        else:
            one_turn()
        if body.get("fail") == "raise":
            raise RuntimeError("the app failed after its appends")
        messages = conv.messages()
        return {**describe(conv), "messages": messages}, 422 if body.get("fail") == "status" \
            else 200

    @app.get("/history")
    def history() -> Any:
        conv = current_context()
        messages = conv.messages()
        return {**describe(conv), "messages": messages}

    @app.post("/rotate")
    def rotate() -> Any:
        conv = current_context()
        old = conv.session_id
        new = conv.rotate()
        messages = conv.messages()
        return {**describe(conv), "old": old, "new": new, "messages": messages}

    @app.post("/destroy")
    def destroy() -> Any:
        conv = current_context()
        conv.destroy()
        return describe(conv)

    @app.post("/clear")
    def clear() -> Any:
        conv = current_context()
        conv.clear()
        messages = conv.messages()
        return {**describe(conv), "messages": messages}

    @app.post("/fail")
    def fail() -> Any:
        current_context().messages()
        raise RuntimeError("the app failed mid-turn")

    @app.get("/page")
    @app.get("/static/<name>")
    def page(name: str | None = None) -> Any:
        has_handle = "stickyctx" in flask.request.environ
        if flask.request.args.get("use"):
            current_context().session_id  # noqa: B018 - reading the id is a use
        vary = flask.request.args.get("vary")
        return {"has_handle": has_handle}, 200, {"Vary": vary} if vary else {}

    return app


# Drivers ------------------------------------------------------------------------------------

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def asgi_request(app: ASGIApp, req: Req) -> Reply:
    """Call an ASGI app once with an HTTP request; collect the response."""
    path, _, query = req.path.partition("?")
    headers: list[tuple[bytes, bytes]] = [(b"host", b"testserver")]
    body = b""
    if req.json is not None:
        body = json.dumps(req.json).encode()
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in req.headers]
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": req.method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    sent_body = False
    done = asyncio.Event()
    status = 0
    out_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            assert status == 0, "the response started twice"
            status = message["status"]
            out_headers.extend((k.decode("latin-1").lower(), v.decode("latin-1"))
                               for k, v in message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception:
        if not status:
            raise
        # Raised after its (error) response was sent, as Starlette does: a server logs it.
    assert status, "the app returned without a response"
    return Reply(status, out_headers, b"".join(chunks))


def wsgi_request(app: Any, req: Req) -> Reply:
    """Call a WSGI app once through werkzeug's test client (no cookie jar of its own)."""
    client = Client(app, use_cookies=False)
    response = client.open(req.path, method=req.method, headers=list(req.headers),
                           json=req.json, buffered=True)
    try:
        headers = [(k.lower(), v) for k, v in response.headers.items()]
        return Reply(response.status_code, headers, response.get_data())
    finally:
        response.close()


# Edges --------------------------------------------------------------------------------------

@dataclass
class Edge:
    """One middleware edge around the chat app, with its settings, store and clock."""

    kind: str
    settings: Settings
    store: RecordingStore
    clock: FakeClock
    hooks: Hooks = field(default_factory=Hooks)
    app: Any = None

    def __post_init__(self) -> None:
        if self.kind == "asgi":
            mw = Middleware(StickyMiddleware, settings=self.settings,
                            store=self.store, clock=self.clock)
            self.app = starlette_chat_app(self.hooks, [mw])
        else:
            flask_app = flask_chat_app(self.hooks)
            StickyCtx(flask_app, self.settings, store=self.store, clock=self.clock)
            self.app = flask_app

    def request(self, method: str, path: str, *, headers: Iterable[tuple[str, str]] = (),
                json: Any = None) -> Reply:
        req = Req(method, path, tuple(headers), json)
        if self.kind == "asgi":
            return asyncio.run(asgi_request(self.app, req))
        return wsgi_request(self.app, req)

    def tag(self, session_id: str) -> str:
        return store_tag(self.settings, session_id)

    def overlap(self, first: Req, second: Req, *, open_after_second: bool = False,
                ) -> tuple[Reply, Reply]:
        """Send ``first``, whose handler pauses at the gate mid-turn; once it is there, send
        ``second``. The gate opens when the store refuses a turn lease (the second request found
        the turn taken), so a broken turn lock shows as a gate that never opens; or, with
        ``open_after_second``, only once the second request has been answered.
        """
        if self.kind == "asgi":
            return asyncio.run(self._overlap_async(first, second, open_after_second))
        return self._overlap_threads(first, second, open_after_second)

    async def _overlap_async(self, first: Req, second: Req, open_after_second: bool,
                             ) -> tuple[Reply, Reply]:
        gate = self.hooks.gate = AsyncGate()
        if not open_after_second:
            self.store.on_refused = gate.release
        try:
            task = asyncio.create_task(asgi_request(self.app, first))
            holding = asyncio.create_task(gate.holding.wait())
            await asyncio.wait({task, holding}, timeout=TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
            holding.cancel()
            assert gate.holding.is_set(), "the first request never reached the gate"
            second_reply = await asgi_request(self.app, second)
            gate.release()
            first_reply = await asyncio.wait_for(task, TIMEOUT)
        finally:
            self.store.on_refused = None
            self.hooks.gate = None
        return first_reply, second_reply

    def _overlap_threads(self, first: Req, second: Req, open_after_second: bool,
                         ) -> tuple[Reply, Reply]:
        gate = self.hooks.gate = ThreadGate()
        if not open_after_second:
            self.store.on_refused = gate.release
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(wsgi_request, self.app, first)
            future.add_done_callback(lambda _: gate.holding.set())  # a failure ends the wait too
            try:
                assert gate.holding.wait(TIMEOUT), "the first request never reached the gate"
                assert not future.done(), f"the first request ended early: {future.result()}"
                second_reply = wsgi_request(self.app, second)
            finally:
                gate.release()
                self.store.on_refused = None
                self.hooks.gate = None
            return future.result(timeout=TIMEOUT), second_reply


def make_edge(kind: str, settings: Settings | None = None, *, clock: FakeClock | None = None,
              store: RecordingStore | None = None) -> Edge:
    settings = settings if settings is not None else make_settings()
    clock = clock if clock is not None else FakeClock()
    # ``is None``, not ``or``: a store is falsy while it holds no session.
    return Edge(kind, settings, store if store is not None else make_store(settings, clock), clock)


class Browser:
    """A client that keeps the cookies an edge sets, as a browser would (no Secure filtering)."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.jar: dict[str, str] = {}

    def cookie_header(self) -> list[tuple[str, str]]:
        if not self.jar:
            return []
        return [("Cookie", "; ".join(f"{k}={v}" for k, v in self.jar.items()))]

    def request(self, method: str, path: str, *, headers: Iterable[tuple[str, str]] = (),
                json: Any = None) -> Reply:
        reply = self.edge.request(method, path, headers=[*self.cookie_header(), *headers],
                                  json=json)
        for cookie in reply.cookies.values():
            if cookie.max_age is not None and cookie.max_age <= 0:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
        return reply

    def chat(self, message: str, **extra: Any) -> Reply:
        return self.request("POST", "/chat", json={"message": message, **extra})
