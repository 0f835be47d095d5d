"""``get_context``: find the handle from whatever the framework hands the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import NoContextError
from .handle import Conversation, SyncConversation

__all__ = ["get_context"]


def get_context(obj: Any) -> Conversation | SyncConversation:
    """The session handle of a request.

    Accepts a Starlette/FastAPI request or WebSocket, a Flask/Werkzeug request, an ASGI scope or
    a WSGI environ. Raises ``NoContextError`` when no stickyctx middleware saw the request.
    """
    scope = getattr(obj, "scope", None)
    environ = getattr(obj, "environ", None)
    if isinstance(scope, Mapping):
        found = (scope.get("state") or {}).get("stickyctx")
    elif isinstance(environ, Mapping):
        found = environ.get("stickyctx")
    elif isinstance(obj, Mapping):
        found = (obj.get("state") or {}).get("stickyctx") if "type" in obj else obj.get("stickyctx")
    else:
        found = None
    if isinstance(found, (Conversation, SyncConversation)):
        return found
    raise NoContextError("no stickyctx handle on this request: is the middleware installed?")
