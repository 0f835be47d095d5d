"""An OpenAI Agents SDK session keyed by the app's own conversation id: ``StickySession`` over
the handle ``Users.open`` gives, inside a request, with the user's pinned memory in windows."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stickyctx import StickyMiddleware, Users, get_users
from tests.conftest import make_settings

pytest.importorskip("agents")

from stickyctx.integrations.agents import StickySession


async def turn(request: Request) -> JSONResponse:
    users = get_users(request, request.headers["x-user"])
    assert isinstance(users, Users)
    cid = request.path_params["cid"]
    try:
        await users.get(cid)
    except LookupError:
        await users.create(cid)  # the app's own id, e.g. its database's
    session = StickySession(await users.open(cid), token_budget=2000)
    body: dict[str, Any] = await request.json()
    await session.add_items([{"role": "user", "content": body["message"]}])
    items = await session.get_items()
    return JSONResponse({"items": items})


def test_an_agents_session_per_app_conversation_id() -> None:
    app = Starlette(routes=[Route("/c/{cid}", turn, methods=["POST"])],
                    middleware=[Middleware(StickyMiddleware, settings=make_settings())])
    with TestClient(app) as client:
        ada = {"x-user": "ada"}
        client.post("/c/ticket-1", json={"message": "first"}, headers=ada)
        got = client.post("/c/ticket-1", json={"message": "second"}, headers=ada).json()
        assert [i["content"] for i in got["items"]] == ["first", "second"]
        other = client.post("/c/ticket-2", json={"message": "elsewhere"}, headers=ada).json()
        assert [i["content"] for i in other["items"]] == ["elsewhere"]
        # Another user's request for ticket-1 cannot create nor read it.
        denied = client.post("/c/ticket-1", json={"message": "x"}, headers={"x-user": "bob"})
        assert (denied.status_code, denied.json()["error"]) == (404, "not_found")
