"""One tiny chat app behind each edge: Starlette and a raw ASGI app behind ``StickyMiddleware``,
Flask (``StickyCtx``) and a raw WSGI app behind ``StickyWSGIMiddleware``.

``POST /turn`` with JSON ``{"role", "content", "reply"?, "system"?}`` appends the message; with a
``reply`` it then takes the window (with ``system``) and appends the reply as the assistant, as
a chat endpoint does. It answers ``{"seq", "messages", "window"}``.

``build(settings, store)`` returns the app over that store (a ``Backing``: the ASGI apps use
its async form, the WSGI apps its sync form); ``post_all(app, bodies)`` posts the
bodies in order as one client (one session cookie) and returns ``(status, content type, JSON)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from stickyctx import (
    Conversation,
    Settings,
    StickyMiddleware,
    StickyWSGIMiddleware,
    SyncConversation,
    get_context,
)
from stickyctx.edges.asgi import Receive, Scope, Send
from stickyctx.flask import StickyCtx, current_context

from .backends import Backing, EventLoop

__all__ = ["EDGES", "EDGES_ON_EVERY_STORE", "Answer", "Build", "PostAll"]

Answer = tuple[int, str, Any]  # status, content type, JSON body


async def _turn_async(conv: Conversation, body: dict[str, Any]) -> dict[str, Any]:
    seq = await conv.append(body["role"], body["content"])
    window = None
    if body.get("reply") is not None:
        window = await conv.window(system=body.get("system"))
        await conv.append("assistant", body["reply"])
    return {"seq": seq, "messages": await conv.messages(), "window": window}


def _turn_sync(conv: SyncConversation, body: dict[str, Any]) -> dict[str, Any]:
    seq = conv.append(body["role"], body["content"])
    window = None
    if body.get("reply") is not None:
        window = conv.window(system=body.get("system"))
        conv.append("assistant", body["reply"])
    return {"seq": seq, "messages": conv.messages(), "window": window}


def starlette_app(settings: Settings, store: Backing) -> Any:
    async def turn(request: StarletteRequest) -> JSONResponse:
        conv = get_context(request)
        assert isinstance(conv, Conversation)
        return JSONResponse(await _turn_async(conv, await request.json()))

    middleware = Middleware(StickyMiddleware, settings=settings, store=store.store)
    return Starlette(routes=[Route("/turn", turn, methods=["POST"])], middleware=[middleware])


def raw_asgi_app(settings: Settings, store: Backing) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            event = await receive()
            body, more = body + event.get("body", b""), event.get("more_body", False)
        conv = get_context(scope)
        assert isinstance(conv, Conversation)
        payload = json.dumps(await _turn_async(conv, json.loads(body))).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    return StickyMiddleware(app, settings, store=store.store)


def flask_app(settings: Settings, store: Backing) -> Any:
    app = flask.Flask("stickyctx_context_tests")

    @app.post("/turn")
    def turn() -> Any:
        return _turn_sync(current_context(), flask.request.get_json())

    StickyCtx(app, settings, store=store.store)
    return app


def raw_wsgi_app(settings: Settings, store: Backing) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        conv = environ["stickyctx"]
        assert isinstance(conv, SyncConversation)
        payload = json.dumps(_turn_sync(conv, json.loads(environ["wsgi.input"].read(length))))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [payload.encode()]

    return StickyWSGIMiddleware(app, settings, store=store.store)


def post_all_asgi(app: Any, bodies: list[Any]) -> list[Answer]:
    async def run() -> list[Answer]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            out = []
            for body in bodies:
                response = await client.post("/turn", json=body)
                out.append((response.status_code, response.headers["content-type"],
                            response.json()))
            return out

    return EventLoop.run(run())  # where the async Redis stores live


def post_all_wsgi(app: Any, bodies: list[Any]) -> list[Answer]:
    client = Client(app)  # keeps the session cookie between requests
    out = []
    for body in bodies:
        response = client.post("/turn", json=body)
        out.append((response.status_code, response.headers["content-type"],
                    json.loads(response.get_data())))
        response.close()  # the end of the request: the middleware finishes it here
    return out


Build = Callable[[Settings, Backing], Any]
PostAll = Callable[[Any, list[Any]], list[Answer]]

EDGES: list[Any] = [
    pytest.param(starlette_app, post_all_asgi, id="starlette"),
    pytest.param(raw_asgi_app, post_all_asgi, id="asgi"),
    pytest.param(flask_app, post_all_wsgi, id="flask"),
    pytest.param(raw_wsgi_app, post_all_wsgi, id="wsgi"),
]

# Each edge on the memory store, then on Redis with the store form it uses (the ``kind`` fixture,
# parametrized indirectly: the kind's store and settings are the node's).
EDGES_ON_EVERY_STORE: list[Any] = [
    pytest.param(starlette_app, post_all_asgi, "async", id="starlette-memory"),
    pytest.param(raw_asgi_app, post_all_asgi, "async", id="asgi-memory"),
    pytest.param(flask_app, post_all_wsgi, "sync", id="flask-memory"),
    pytest.param(raw_wsgi_app, post_all_wsgi, "sync", id="wsgi-memory"),
    pytest.param(starlette_app, post_all_asgi, "redis-async", id="starlette-redis"),
    pytest.param(raw_asgi_app, post_all_asgi, "cluster-async", id="asgi-cluster"),
    pytest.param(flask_app, post_all_wsgi, "redis-sync", id="flask-redis"),
    pytest.param(raw_wsgi_app, post_all_wsgi, "cluster-sync", id="wsgi-cluster"),
]
