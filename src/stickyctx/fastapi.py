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
    from fastapi.responses import Response
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("stickyctx.fastapi needs FastAPI: pip install 'stickyctx[fastapi]'") from exc

from .errors import StickyctxError, http_error
from .session import handle as _conversation

__all__ = ["Conversation", "get_conversation", "install_error_handlers"]


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
