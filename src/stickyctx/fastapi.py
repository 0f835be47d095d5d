"""FastAPI helpers: the ``Conversation`` dependency and error handlers.

    from stickyctx.fastapi import Conversation

    @app.post("/chat")
    async def chat(conv: Conversation): ...
"""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = ["Conversation", "get_conversation", "install_error_handlers", "sse_response",
           "users_of"]

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


def users_of(principal: Callable[..., Any] | None = None, *, tenant: str = "") -> Any:
    """A dependency that gives the signed-in principal's ``Users`` (conversations, memory),
    from the app's own dependency ``principal`` that returns the principal's id (and raises
    its own 401 when nobody is signed in): ``Me = Annotated[Users, users_of(current_user)]``.
    Without one, the principal Starlette's ``AuthenticationMiddleware`` left on the request
    (``request.user``), else ``NotSignedInError`` (401)."""
    from .session.users_handle import Users, get_users

    def found(connection: HTTPConnection, who: str | None) -> Users:
        users = get_users(connection, who, tenant=tenant)
        assert isinstance(users, Users)
        return users

    if principal is None:
        async def from_request(connection: HTTPConnection) -> Users:
            return found(connection, None)

        return Depends(from_request)

    # ``Depends`` as a default, not in ``Annotated``: annotations are strings in this module,
    # and FastAPI could not resolve ``principal`` (a local name) from one.
    async def dependency(connection: HTTPConnection,
                         who: str = Depends(principal)) -> Users:
        return found(connection, who)

    return Depends(dependency)


def sse_response(reply: AsyncReply | None) -> Response:
    """A streamed reply (``await conv.stream(...)`` or ``await conv.resume(...)``) as a
    ``text/event-stream`` response; ``204 No Content`` when there is nothing to resume (an
    ``EventSource`` stops reconnecting on 204)."""
    if reply is None:
        return Response(status_code=204)
    return StreamingResponse(reply.sse(), media_type="text/event-stream", headers=SSE_HEADERS)
