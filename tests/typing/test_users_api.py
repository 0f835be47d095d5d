"""Typed examples of the conversations API (``mypy --strict`` checks this file, pytest runs
it): what an application with signed-in users writes, in FastAPI and in Flask."""

from __future__ import annotations

from typing import Annotated, Any

import flask
from fastapi import FastAPI, Header, HTTPException
from starlette.testclient import TestClient
from werkzeug.test import Client

from stickyctx import ANY, StickyMiddleware, Users
from stickyctx.fastapi import install_error_handlers, users_of
from stickyctx.flask import StickyCtx, current_users
from tests.conftest import make_settings


def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
    """The app's own authentication (here: a header a gateway set)."""
    if x_user is None:
        raise HTTPException(401)
    return x_user


Me = Annotated[Users, users_of(current_user)]


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=make_settings())
    install_error_handlers(app)

    @app.post("/conversations")
    async def create(me: Me) -> dict[str, Any]:
        return await me.create(title="First")

    @app.post("/conversations/{cid}/chat")
    async def chat(cid: str, body: dict[str, str], me: Me) -> dict[str, Any]:
        conv = await me.open(cid)
        await conv.append("user", body["message"])
        window = await conv.window(system="Be brief.")
        await conv.append("assistant", f"{len(window)} messages")
        changed: bool = await me.set_state(cid, "phase", "chatting", expected=ANY)
        return {"window": window, "changed": changed, "turns": await conv.turn_count()}

    @app.put("/me/memory/{key}")
    async def remember(key: str, body: dict[str, str], me: Me) -> dict[str, int]:
        return {"tokens": await me.remember(key, body["value"])}

    return app


def test_fastapi_users() -> None:
    with TestClient(fastapi_app()) as client:
        ada, bob = {"x-user": "ada"}, {"x-user": "bob"}
        assert client.post("/conversations").status_code == 401  # the app's own answer
        made = client.post("/conversations", headers=ada)
        cid = made.json()["id"]
        assert made.headers["x-stickyctx-node"] == "n1"
        assert made.headers["x-stickyctx-affinity"] == "new"
        assert client.put("/me/memory/name", json={"value": "Ada"}, headers=ada).json() == {
            "tokens": 1}
        said = client.post(f"/conversations/{cid}/chat", json={"message": "hi"}, headers=ada)
        body = said.json()
        assert said.headers["x-stickyctx-affinity"] == "hit"
        assert body["window"][0] == {
            "role": "system",
            "content": "Be brief.\n\nWhat you know about the user (keep using it):\n- name: Ada"}
        assert (body["changed"], body["turns"]) == (True, 1)
        denied = client.post(f"/conversations/{cid}/chat", json={"message": "x"}, headers=bob)
        assert (denied.status_code, denied.json()["error"]) == (404, "not_found")


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)
    StickyCtx(app, make_settings())

    def me() -> Any:
        user = flask.request.headers.get("X-User")
        if user is None:
            flask.abort(401)
        return current_users(user)

    @app.post("/conversations")
    def create() -> dict[str, Any]:
        made: dict[str, Any] = me().create()
        return made

    @app.get("/conversations")
    def listing() -> dict[str, Any]:
        page: dict[str, Any] = me().list(limit=10)
        return page

    @app.post("/conversations/<cid>/chat")
    def chat(cid: str) -> dict[str, Any]:
        conv = me().open(cid)
        conv.append("user", flask.request.get_json()["message"])
        return {"turns": conv.turn_count()}

    return app


def test_flask_users() -> None:
    client = Client(flask_app())
    ada, bob = {"X-User": "ada"}, {"X-User": "bob"}
    cid = client.post("/conversations", headers=ada).get_json()["id"]
    said = client.post(f"/conversations/{cid}/chat", json={"message": "hello"}, headers=ada)
    assert said.get_json() == {"turns": 1}
    listed = client.get("/conversations", headers=ada).get_json()["conversations"]
    assert [(c["id"], c["title"], c["turns"]) for c in listed] == [(cid, "hello", 1)]
    denied = client.post(f"/conversations/{cid}/chat", json={"message": "x"}, headers=bob)
    assert denied.status_code == 404
    assert client.get("/conversations", headers=bob).get_json()["conversations"] == []


def test_the_principal_from_the_apps_authentication_middleware() -> None:
    """Starlette's ``AuthenticationMiddleware`` (``request.user``) names the principal."""
    from starlette.applications import Starlette
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        BaseUser,
        SimpleUser,
    )
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from stickyctx import get_users

    class HeaderAuth(AuthenticationBackend):
        async def authenticate(
            self, conn: HTTPConnection,
        ) -> tuple[AuthCredentials, BaseUser] | None:
            user = conn.headers.get("x-user")
            return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None

    async def create(request: Request) -> JSONResponse:
        users = get_users(request)
        assert isinstance(users, Users)
        return JSONResponse(await users.create())

    async def listing(request: Request) -> JSONResponse:
        users = get_users(request)
        assert isinstance(users, Users)
        return JSONResponse(await users.list())

    app = Starlette(routes=[Route("/c", create, methods=["POST"]), Route("/c", listing)],
                    middleware=[Middleware(StickyMiddleware, settings=make_settings()),
                                Middleware(AuthenticationMiddleware, backend=HeaderAuth())])
    with TestClient(app) as client:
        cid = client.post("/c", headers={"x-user": "ada"}).json()["id"]
        assert [c["id"] for c in client.get("/c", headers={"x-user": "ada"}).json()[
            "conversations"]] == [cid]
        assert client.get("/c", headers={"x-user": "bob"}).json()["conversations"] == []
        nobody = client.get("/c")
        assert (nobody.status_code, nobody.json()["error"]) == (401, "not_signed_in")


def test_the_principal_from_remote_user_in_flask() -> None:
    app = flask.Flask(__name__)
    StickyCtx(app, make_settings())

    @app.post("/c")
    def create() -> dict[str, Any]:
        made: dict[str, Any] = current_users().create()
        return made

    @app.get("/c")
    def listing() -> dict[str, Any]:
        page: dict[str, Any] = current_users().list()
        return page

    client = Client(app)
    ada = {"REMOTE_USER": "ada"}
    cid = client.post("/c", environ_overrides=ada).get_json()["id"]
    listed = client.get("/c", environ_overrides=ada).get_json()["conversations"]
    assert [c["id"] for c in listed] == [cid]
    assert client.get("/c").status_code == 401
