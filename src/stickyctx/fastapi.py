"""FastAPI helpers: the ``Conversation`` dependency and error handlers.

    from stickyctx.fastapi import Conversation

    @app.post("/chat")
    async def chat(conv: Conversation): ...
"""

from __future__ import annotations

from typing import Annotated, Any

try:
    from fastapi import Depends, FastAPI
    from fastapi.requests import HTTPConnection
    from fastapi.responses import Response, StreamingResponse
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("stickyctx.fastapi needs FastAPI: pip install 'stickyctx[fastapi]'") from exc

from .errors import StickyctxError, http_error
from .session import handle as _conversation
from .session.replies import AsyncReply

__all__ = ["Conversation", "get_conversation", "install_error_handlers", "sse_response"]

# Server-sent events must not be cached or buffered by a proxy (nginx honours the second).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def get_conversation(connection: HTTPConnection) -> _conversation.Conversation:
    """The dependency: the request's (or WebSocket's) session handle. A coroutine function:
    FastAPI runs a plain function dependency in its thread pool, a hop that cost more than
    the whole turn's work in the store."""
    handle = connection.scope.get("state", {}).get("stickyctx")
    if not isinstance(handle, _conversation.Conversation):
        from .errors import NoContextError

        raise NoContextError("StickyMiddleware is not installed on this app")
    return handle


Conversation = Annotated[_conversation.Conversation, Depends(get_conversation)]


def install_error_handlers(app: FastAPI) -> None:
    """Answer stickyctx errors (busy session 409, store down 503, ...) as JSON responses."""

    async def handler(_request: Any, exc: Exception) -> Response:
        answer = http_error(exc)
        if answer is None:
            raise exc
        status, body = answer
        return Response(body, status_code=status, media_type="application/json")

    app.add_exception_handler(StickyctxError, handler)


def sse_response(reply: AsyncReply | None) -> Response:
    """A streamed reply (``await conv.stream(...)`` or ``await conv.resume(...)``) as a
    ``text/event-stream`` response; ``204 No Content`` when there is nothing to resume (an
    ``EventSource`` stops reconnecting on 204)."""
    if reply is None:
        return Response(status_code=204)
    return StreamingResponse(reply.sse(), media_type="text/event-stream", headers=SSE_HEADERS)
