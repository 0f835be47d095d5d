"""The WebSocket path of the ASGI middleware: the cookie is read from the handshake, cookies are
set on ``websocket.accept``, and what a socket appends is the same session's history over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from stickyctx import Conversation, StickyMiddleware, get_context

from ..conftest import FakeClock, make_settings
from ..edges import make_store, parse_set_cookie


def handle(connection: Request | WebSocket) -> Conversation:
    conv = get_context(connection)
    assert isinstance(conv, Conversation)
    return conv


async def socket(websocket: WebSocket) -> None:
    conv = handle(websocket)
    await websocket.accept()
    await websocket.send_json({"session_id": conv.session_id, "affinity": conv.affinity})
    while True:
        try:
            text = await websocket.receive_text()
        except WebSocketDisconnect:
            return
        await conv.append("user", text)
        await conv.append("assistant", "echo: " + text)
        await websocket.send_json({"messages": await conv.messages()})


async def history(request: Request) -> JSONResponse:
    conv = handle(request)
    messages = await conv.messages()
    return JSONResponse({"session_id": conv.session_id, "affinity": conv.affinity,
                         "messages": messages})


async def chat(request: Request) -> JSONResponse:
    conv = handle(request)
    await conv.append("user", (await request.json())["message"])
    return JSONResponse({"session_id": conv.session_id})


@pytest.fixture
def client(clock: FakeClock) -> Any:
    settings = make_settings(turn_timeout=0)
    store = make_store(settings, clock)
    app = Starlette(
        routes=[WebSocketRoute("/ws", socket), Route("/history", history),
                Route("/chat", chat, methods=["POST"])],
        middleware=[Middleware(StickyMiddleware, settings=settings, store=store, clock=clock)],
    )
    with TestClient(app) as test_client:
        yield test_client


def cookies_of(headers: list[tuple[bytes, bytes]] | None) -> dict[str, str]:
    found = [parse_set_cookie(v.decode("latin-1")) for k, v in headers or []
             if k.lower() == b"set-cookie"]
    return {c.name: c.value for c in found}


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def get_history(client: TestClient, jar: dict[str, str]) -> dict[str, Any]:
    client.cookies.clear()
    response = client.get("/history", headers=cookie_header(jar))
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("sent", [
    pytest.param(None, id="no-cookie"),
    pytest.param("stickyctx=forged.token.value", id="bad-cookie"),
])
def test_a_socket_starts_a_session_and_sets_its_cookie_on_accept(
    client: TestClient, sent: str | None,
) -> None:
    headers = {"cookie": sent} if sent else {}
    with client.websocket_connect("/ws", headers=headers) as ws:
        hello = ws.receive_json()
        jar = cookies_of(ws.extra_headers)
        ws.send_text("over the socket")
        assert [m["content"] for m in ws.receive_json()["messages"]] == [
            "over the socket", "echo: over the socket"]
    assert hello["affinity"] == "new"
    assert set(jar) == {"stickyctx", "stickyctx_node"}

    after = get_history(client, jar)
    assert after["session_id"] == hello["session_id"]
    assert after["affinity"] == "hit"
    assert [m["content"] for m in after["messages"]] == ["over the socket",
                                                         "echo: over the socket"]


def test_a_socket_continues_the_session_of_its_handshake_cookie(client: TestClient) -> None:
    started = client.post("/chat", json={"message": "over http"})
    jar = {k: v for k, v in started.cookies.items()}
    client.cookies.clear()
    with client.websocket_connect("/ws", headers=cookie_header(jar)) as ws:
        hello = ws.receive_json()
        assert cookies_of(ws.extra_headers) == {}  # nothing to set for a known session
        ws.send_text("over the socket")
        messages = ws.receive_json()["messages"]
    assert hello == {"session_id": started.json()["session_id"], "affinity": "hit"}
    assert [m["content"] for m in messages] == [
        "over http", "over the socket", "echo: over the socket"]
    assert len(get_history(client, jar)["messages"]) == 3


def test_an_open_socket_does_not_hold_the_turn(client: TestClient) -> None:
    """A socket lives long; it must not lock HTTP requests of its session out (timeout 0)."""
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        jar = cookies_of(ws.extra_headers)
        ws.send_text("first")
        ws.receive_json()
        during = get_history(client, jar)  # while the socket is still open
    assert len(during["messages"]) == 2
