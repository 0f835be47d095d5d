"""A Starlette app streaming replies over a WebSocket, for real-server tests.

``/ws``: send ``{"message": ...}`` to start a reply, ``{"resume": last_event_id}`` to resume
the session's reply after a reconnect; every event comes back as ``{"id", "event", "data"}``
(``{"event": "none"}`` when there is nothing to resume). ``GET /history`` over HTTP.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from stickyctx import Conversation, Settings, StickyMiddleware, get_context
from stickyctx.chat_example.streaming import atokens


def _conv(connection: Request | WebSocket) -> Conversation:
    conv = get_context(connection)
    assert isinstance(conv, Conversation)
    return conv


async def socket(websocket: WebSocket) -> None:
    conv = _conv(websocket)
    await websocket.accept()
    while True:
        try:
            asked = await websocket.receive_json()
        except WebSocketDisconnect:
            return
        if "message" in asked:
            reply = await conv.stream(asked["message"], atokens)
        else:
            reply = await conv.resume(asked.get("resume"))
        if reply is None:
            await websocket.send_json({"event": "none"})
            continue
        try:
            async for event in reply:
                await websocket.send_json(event.as_dict())
        except (WebSocketDisconnect, OSError, RuntimeError):
            reply.disconnected()  # the socket closed mid-reply
            return


async def history(request: Request) -> JSONResponse:
    return JSONResponse({"messages": await _conv(request).messages()})


app = Starlette(
    routes=[WebSocketRoute("/ws", socket), Route("/history", history)],
    middleware=[Middleware(StickyMiddleware, settings=Settings.from_env())],
)
