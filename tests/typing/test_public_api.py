"""Typed examples of the public API: ``mypy --strict`` checks this file, pytest runs it.

Each example is what an application would write; the tests below serve it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import flask
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typing_extensions import assert_type
from werkzeug.test import Client

import stickyctx
from stickyctx import (
    Conversation,
    NoContextError,
    Settings,
    StickyMiddleware,
    StickyWSGIMiddleware,
    SyncConversation,
    get_context,
)
from stickyctx.fastapi import Conversation as ConversationDependency
from stickyctx.flask import StickyCtx, current_context

Affinity = Literal["new", "hit", "miss", "failover"]
Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def make_settings() -> Settings:
    settings = Settings(secret_keys=("k" * 40,), node_id="typed", cookie_secure=False)
    assert_type(settings.idle_ttl, int)
    assert_type(settings.secure_cookies, bool)
    from_env: Settings = Settings.from_env({"STICKYCTX_SECRET_KEYS": "e" * 40})
    assert from_env.node_id
    return settings


# ASGI ---------------------------------------------------------------------------------------

async def one_turn(conv: Conversation, text: str) -> list[dict[str, Any]]:
    assert_type(conv.session_id, str)
    assert_type(conv.node_id, str)
    assert_type(conv.owner, str)
    assert_type(conv.affinity, Affinity)
    assert_type(conv.is_new, bool)
    assert_type(conv.principal, str | None)
    conv.principal = "user-42"  # who the audit trail names
    async with conv.turn() as held:
        assert_type(held, Conversation)
        seq = await conv.append("user", text, turn_id="turn-1", name="alice")
        assert_type(seq, int)
        await conv.append("assistant", "echo: " + text)
    window = await conv.window(1000, system="Be brief.")
    assert_type(window, list[dict[str, Any]])
    tokens = await conv.token_count()
    assert_type(tokens, int)
    return await conv.messages()


async def start_over(conv: Conversation) -> str:
    await conv.clear()
    new_id = await conv.rotate()
    assert_type(new_id, str)
    await conv.destroy()
    return new_id


async def starlette_chat(request: Request) -> JSONResponse:
    conv = get_context(request)
    assert_type(conv, Conversation | SyncConversation)
    assert isinstance(conv, Conversation)
    messages = await one_turn(conv, "hello")
    return JSONResponse({"messages": messages, "affinity": conv.affinity})


async def starlette_reset(request: Request) -> JSONResponse:
    conv = get_context(request)
    assert isinstance(conv, Conversation)
    return JSONResponse({"new_id": await start_over(conv)})


def starlette_app(settings: Settings) -> Starlette:
    return Starlette(
        routes=[Route("/chat", starlette_chat, methods=["POST"]),
                Route("/reset", starlette_reset, methods=["POST"])],
        middleware=[Middleware(StickyMiddleware, settings=settings)],
    )


def wrapped_starlette_app(settings: Settings) -> StickyMiddleware:
    inner = Starlette(routes=[Route("/chat", starlette_chat, methods=["POST"])])
    return StickyMiddleware(inner, settings)


def fastapi_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=settings)

    @app.post("/chat")
    async def chat(conv: ConversationDependency) -> dict[str, Any]:
        assert_type(conv, Conversation)
        return {"messages": await one_turn(conv, "hello")}

    return app


# WSGI ---------------------------------------------------------------------------------------

def sync_turn(conv: SyncConversation, text: str) -> list[dict[str, Any]]:
    assert_type(conv.affinity, Affinity)
    with conv.turn() as held:
        assert_type(held, SyncConversation)
        seq = conv.append("user", text, turn_id="turn-1")
        assert_type(seq, int)
        conv.append("assistant", "echo: " + text)
    assert_type(conv.window(1000, system="Be brief."), list[dict[str, Any]])
    assert_type(conv.token_count(), int)
    messages = conv.messages()
    conv.clear()
    assert_type(conv.rotate(), str)
    conv.destroy()
    return messages


def flask_app(settings: Settings) -> flask.Flask:
    app = flask.Flask(__name__)
    StickyCtx(app, settings)

    @app.post("/chat")
    def chat() -> dict[str, Any]:
        conv = current_context()
        assert_type(conv, SyncConversation)
        assert get_context(flask.request) is conv
        return {"messages": sync_turn(conv, "hello")}

    return app


def raw_wsgi_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    conv = get_context(environ)
    assert isinstance(conv, SyncConversation)
    count = len(sync_turn(conv, "hello"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(count).encode()]


def wsgi_app(settings: Settings) -> StickyWSGIMiddleware:
    return StickyWSGIMiddleware(raw_wsgi_app, settings)


# The examples, served -----------------------------------------------------------------------

def test_starlette() -> None:
    with TestClient(starlette_app(make_settings())) as client:
        chat = client.post("/chat")
        assert [m["content"] for m in chat.json()["messages"]] == ["hello", "echo: hello"]
        assert chat.json()["affinity"] == "new"
        reset = client.post("/reset")
        assert reset.status_code == 200
        assert reset.json()["new_id"]
    with TestClient(wrapped_starlette_app(make_settings())) as client:
        assert client.post("/chat").status_code == 200


def test_fastapi() -> None:
    with TestClient(fastapi_app(make_settings())) as client:
        response = client.post("/chat")
        assert [m["role"] for m in response.json()["messages"]] == ["user", "assistant"]


def test_flask() -> None:
    response = flask_app(make_settings()).test_client().post("/chat")
    assert response.status_code == 200
    assert len(response.get_json()["messages"]) == 2


def test_raw_wsgi() -> None:
    response = Client(wsgi_app(make_settings())).get("/")
    assert response.get_data() == b"2"
    assert response.headers["X-Stickyctx-Affinity"] == "new"


def test_errors_are_typed() -> None:
    with pytest.raises(NoContextError) as info:
        get_context({"type": "http"})
    assert_type(info.value, NoContextError)
    assert isinstance(info.value, stickyctx.StickyctxError)


# Flask configuration and a health endpoint ----------------------------------------------------

def flask_app_configured_by_app_config() -> flask.Flask:
    from stickyctx.edges.health import StoreHealth, check_store
    from stickyctx.flask import settings_from_config
    from stickyctx.stores import open_store

    app = flask.Flask("typed_config")
    app.config.update(STICKYCTX_SECRET_KEYS=["k" * 40], STICKYCTX_NODE_ID="typed",
                      STICKYCTX_EXCLUDE_PATHS=["/healthz"], STICKYCTX_COOKIE_SECURE=False)
    settings = settings_from_config(app.config, environ={})
    store = open_store(settings)
    StickyCtx(app, settings, store=store)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        health = check_store(store, settings)
        assert_type(health, StoreHealth)
        return {"node": settings.node_id, "store": health.as_dict()}

    return app


def test_flask_app_configured_by_app_config() -> None:
    reply = flask_app_configured_by_app_config().test_client().get("/healthz")
    assert reply.get_json()["store"]["ok"] is True
    assert "Set-Cookie" not in reply.headers  # an excluded path: no session at all
