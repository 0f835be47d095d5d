"""A raw ASGI chat app behind ``StickyMiddleware`` on Redis, and a client that keeps its token.

The app has no framework: a ``StickyctxError`` it raises reaches the middleware, which answers it
(503 JSON when the store is down). Routes: ``GET /ping`` (never touches the context),
``POST /chat {"message"}`` (appends a user and an assistant message), ``GET /history``,
``POST /rotate`` and ``POST /destroy``; every answer that touches the context includes the
session id and whether the context was served stale (from the node's memory while Redis was
unreachable). Run a whole scenario inside one event loop (``asyncio.run``): the Redis client's
connections belong to the loop that opened them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from stickyctx import Conversation, Settings, StickyMiddleware, get_context
from stickyctx.edges.asgi import Receive, Scope, Send
from tests.edges import Reply, Req, asgi_request

SESSION_HEADER = "X-Stickyctx-Session"
NEW = "new"  # what a client without a token sends to ask for one


async def _answer(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def chat_app(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/ping":
        await _answer(send, 200, {"pong": True})
        return
    conv = get_context(scope)
    assert isinstance(conv, Conversation)
    out: dict[str, Any] = {}
    if path == "/chat":
        body = json.loads((await receive())["body"])
        await conv.append("user", body["message"])
        await conv.append("assistant", "echo: " + body["message"])
    elif path == "/rotate":
        out["old"] = conv.session_id
        await conv.rotate()
    elif path == "/destroy":
        out["destroyed"] = conv.session_id
        await conv.destroy()
        await _answer(send, 200, out)
        return
    out["messages"] = await conv.messages()
    out["session_id"] = conv.session_id
    out["stale"] = conv.stale
    await _answer(send, 200, out)


@asynccontextmanager
async def sticky(settings: Settings) -> AsyncIterator[StickyMiddleware]:
    """The chat app behind the middleware on ``settings``' store; closed inside the loop."""
    middleware = StickyMiddleware(chat_app, settings)
    try:
        yield middleware
    finally:
        if middleware.heartbeat is not None:
            await middleware.heartbeat.stop(leave=False)
        await middleware.store.aclose()


class Client:
    """A non-browser client: sends its token in the session header, keeps the one it gets."""

    def __init__(self, app: StickyMiddleware, token: str = NEW) -> None:
        self.app = app
        self.token = token

    async def request(self, method: str, path: str, body: Any = None) -> Reply:
        reply = await asgi_request(self.app, Req(method, path, [(SESSION_HEADER, self.token)],
                                                 body))
        token = reply.header(SESSION_HEADER)
        if token is not None:
            self.token = token or NEW
        return reply

    async def chat(self, message: str) -> Reply:
        return await self.request("POST", "/chat", {"message": message})
