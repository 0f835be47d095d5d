"""What only the ASGI edge does: raw ASGI apps, lifespan, split cookie headers, error answers,
the handle from a Starlette request, a scope and the FastAPI dependency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stickyctx import (
    ConfigError,
    Conversation,
    InvalidMessageError,
    NoContextError,
    SessionBusyError,
    SessionGoneError,
    StickyMiddleware,
    StoreUnavailableError,
    get_context,
)
from stickyctx import fastapi as sticky_fastapi

from ..conftest import KEY_A, FakeClock, make_settings
from ..edges import Browser, Req, asgi_request, make_edge, make_store

Scope = dict[str, Any]


def wrap(app: Any, clock: FakeClock, **changes: Any) -> StickyMiddleware:
    settings = make_settings(**changes)
    return StickyMiddleware(app, settings, store=make_store(settings, clock),
                            clock=clock)


def call(app: Any, req: Req) -> Any:
    return asyncio.run(asgi_request(app, req))


async def raw_call(app: Any, scope: Scope, sent: list[dict[str, Any]] | None = None) -> None:
    """Call ``app`` with a bare scope, an empty request body, and a ``send`` that collects."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if sent is not None:
            sent.append(message)

    await app(scope, receive, send)


async def ok(send: Any, body: bytes = b"ok", headers: list[tuple[bytes, bytes]] | None = None,
             ) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


def test_a_raw_asgi_app_gets_the_handle_in_its_scope(clock: FakeClock) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        conv = get_context(scope)
        seen["handle"] = conv
        seen["state"] = scope["state"]
        assert isinstance(conv, Conversation)
        await conv.append("user", "raw")
        seen["messages"] = await conv.messages()
        await ok(send, headers=[(b"x-app", b"1")])

    reply = call(wrap(app, clock), Req("GET", "/"))
    assert reply.status == 200
    assert seen["messages"] == [{"role": "user", "content": "raw"}]
    assert seen["state"]["stickyctx"] is seen["handle"]
    assert reply.header("x-app") == "1"  # the app's own headers are kept
    assert reply.header("x-stickyctx-affinity") == "new"
    assert set(reply.cookies) == {"stickyctx", "stickyctx_node"}


def test_the_handle_goes_into_the_servers_state_dict(clock: FakeClock) -> None:
    shared: dict[str, Any] = {"from_lifespan": 1}
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.update(scope["state"])
        await ok(send)

    asyncio.run(raw_call(wrap(app, clock), {"type": "http", "headers": [], "state": shared}))
    assert seen["from_lifespan"] == 1
    assert isinstance(shared["stickyctx"], Conversation)  # outer middleware can see it too


def test_cookies_split_over_several_headers_are_read(clock: FakeClock) -> None:
    """HTTP/2 clients may send one ``cookie`` header per cookie."""
    edge = make_edge("asgi", clock=clock)
    browser = Browser(edge)
    first = browser.chat("hello").json()
    split = [("Cookie", "theme=dark"), *[("Cookie", f"{k}={v}") for k, v in browser.jar.items()]]
    reply = edge.request("GET", "/history", headers=split)
    assert reply.json()["session_id"] == first["session_id"]
    assert len(reply.json()["messages"]) == 2
    assert reply.all("set-cookie") == []  # the routing cookie was read from its own header too


def test_a_session_cookie_repeated_over_several_headers_starts_a_fresh_session(
    clock: FakeClock,
) -> None:
    edge = make_edge("asgi", clock=clock)
    browser = Browser(edge)
    first = browser.chat("hello").json()
    token = browser.jar["stickyctx"]
    edge.store.calls.clear()
    reply = edge.request("GET", "/history", headers=[("Cookie", f"stickyctx={token}"),
                                                      ("Cookie", f"stickyctx={token}")])
    assert reply.json()["session_id"] != first["session_id"]
    assert reply.json()["messages"] == []
    assert edge.tag(first["session_id"]) not in {tag for _, tag in edge.store.calls}


def test_two_session_headers_start_a_fresh_session(clock: FakeClock) -> None:
    edge = make_edge("asgi", clock=clock)
    token = edge.request("POST", "/chat", headers=[("X-Stickyctx-Session", "new")],
                         json={"message": "hi"}).header("x-stickyctx-session")
    assert token
    reply = edge.request("GET", "/history", headers=[("X-Stickyctx-Session", token),
                                                      ("X-Stickyctx-Session", token)])
    assert reply.json()["messages"] == []
    assert reply.json()["affinity"] == "new"


@pytest.mark.parametrize(("error", "status", "code"), [
    pytest.param(SessionBusyError(0.0), 409, "session_busy", id="busy"),
    pytest.param(SessionGoneError("destroyed"), 410, "session_gone", id="gone"),
    pytest.param(InvalidMessageError("no such role"), 422, "invalid_message", id="invalid"),
    pytest.param(StoreUnavailableError("load"), 503, "store_unavailable", id="store-down"),
])
def test_a_stickyctx_error_before_the_response_gets_its_http_answer(
    clock: FakeClock, error: Exception, status: int, code: str,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await get_context(scope).messages()  # type: ignore[misc]
        raise error

    mw = wrap(app, clock, turn_timeout=0)
    reply = call(mw, Req("GET", "/"))
    assert reply.status == status
    assert reply.header("content-type") == "application/json"
    assert reply.json()["error"] == code
    assert reply.header("x-stickyctx-affinity") == "new"  # the session is still set up
    assert "stickyctx" in reply.cookies

    # The turn the failing request held is free again.
    async def reader(scope: Scope, receive: Any, send: Any) -> None:
        await get_context(scope).messages()  # type: ignore[misc]
        await ok(send)

    again = StickyMiddleware(reader, mw.settings, store=mw.store, clock=clock)
    cookie = "; ".join(f"{c.name}={c.value}" for c in reply.cookies.values())
    assert call(again, Req("GET", "/", [("Cookie", cookie)])).status == 200


def test_an_error_after_the_response_started_is_not_answered_twice(clock: FakeClock) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise SessionBusyError(0.0)

    sent: list[dict[str, Any]] = []
    with pytest.raises(SessionBusyError):
        asyncio.run(raw_call(wrap(app, clock), {"type": "http", "headers": []}, sent))
    assert [(m["type"], m["status"]) for m in sent] == [("http.response.start", 200)]


def test_other_errors_propagate(clock: FakeClock) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise LookupError("app bug")

    with pytest.raises(LookupError):
        call(wrap(app, clock), Req("GET", "/"))


def test_lifespan_passes_through(clock: FakeClock) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"model": "loaded"}
        events.append("shutdown")

    async def index(request: Request) -> JSONResponse:
        conv = get_context(request)
        return JSONResponse({"model": request.state.model, "affinity": conv.affinity})

    inner = Starlette(routes=[Route("/", index)], lifespan=lifespan)
    with TestClient(wrap(inner, clock)) as client:
        assert events == ["startup"]
        response = client.get("/")
        assert response.json() == {"model": "loaded", "affinity": "new"}
    assert events == ["startup", "shutdown"]


def test_other_scope_types_pass_through_untouched(clock: FakeClock) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    asyncio.run(wrap(app, clock)(scope, None, None))
    assert seen == [scope]
    assert "state" not in seen[0]


def test_fastapi_dependency_and_add_middleware(clock: FakeClock) -> None:
    settings = make_settings()
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=settings,  # type: ignore[arg-type]
                       store=make_store(settings, clock), clock=clock)

    @app.post("/chat")
    async def chat(conv: sticky_fastapi.Conversation, message: str) -> dict[str, Any]:
        await conv.append("user", message)
        return {"id": conv.session_id, "messages": await conv.messages()}

    with TestClient(app, base_url="http://testserver") as client:
        first = client.post("/chat", params={"message": "one"})
        second = client.post("/chat", params={"message": "two"})
    assert first.json()["id"] == second.json()["id"]
    assert [m["content"] for m in second.json()["messages"]] == ["one", "two"]
    assert "set-cookie" in first.headers
    assert "set-cookie" not in second.headers


def test_settings_come_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await ok(send)

    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", KEY_A)
    monkeypatch.setenv("STICKYCTX_NODE_ID", "from-env")
    monkeypatch.setenv("STICKYCTX_COOKIE_NAME", "envcookie")
    monkeypatch.setenv("STICKYCTX_COOKIE_ISSUE", "eager")  # the app never uses the session
    reply = call(StickyMiddleware(app), Req("GET", "/"))
    assert reply.header("x-stickyctx-node") == "from-env"
    assert "envcookie" in reply.cookies

    monkeypatch.delenv("STICKYCTX_SECRET_KEYS")
    with pytest.raises(ConfigError) as info:
        StickyMiddleware(app)
    assert info.value.variable == "STICKYCTX_SECRET_KEYS"


def test_no_handle_without_the_middleware() -> None:
    failures: list[str] = []

    async def index(request: Request) -> PlainTextResponse:
        try:
            get_context(request)
        except NoContextError:
            failures.append("request")
        try:
            get_context(request.scope)
        except NoContextError:
            failures.append("scope")
        return PlainTextResponse("ok")

    with TestClient(Starlette(routes=[Route("/", index)])) as client:
        assert client.get("/").status_code == 200
    assert failures == ["request", "scope"]
    with pytest.raises(NoContextError):
        get_context({"type": "http", "headers": []})
    with pytest.raises(NoContextError):
        get_context(object())


def test_the_fastapi_dependency_without_the_middleware_raises() -> None:
    app = FastAPI()

    @app.get("/")
    async def index(conv: sticky_fastapi.Conversation) -> str:
        return conv.session_id

    with TestClient(app) as client, pytest.raises(NoContextError):
        client.get("/")
