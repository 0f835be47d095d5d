"""Flask helpers: the ``StickyCtx`` extension and ``current_context()``.

    app = Flask(__name__)
    StickyCtx(app)

    @app.post("/chat")
    def chat():
        conv = current_context()
"""

from __future__ import annotations

from typing import Any

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("stickyctx.flask needs Flask: pip install 'stickyctx[flask]'") from exc

from .edges.wsgi import StickyWSGIMiddleware
from .errors import NoContextError, StickyctxError, http_error
from .session.handle import SyncConversation
from .session.replies import SyncReply
from .settings import Settings

__all__ = ["StickyCtx", "current_context", "sse_response"]

# Server-sent events must not be cached or buffered by a proxy (nginx honours the second).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StickyCtx:
    """Wrap a Flask app's WSGI callable in ``StickyWSGIMiddleware``; usable with ``init_app``."""

    def __init__(self, app: flask.Flask | None = None, settings: Settings | None = None,
                 **options: Any) -> None:
        self.settings = settings
        self.options = options
        self.middleware: StickyWSGIMiddleware | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        self.middleware = StickyWSGIMiddleware(app.wsgi_app, self.settings, **self.options)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        app.extensions["stickyctx"] = self

        def handler(exc: StickyctxError) -> Any:
            answer = http_error(exc)
            if answer is None:
                raise exc
            status, body = answer
            return flask.Response(body, status=status, mimetype="application/json")

        app.register_error_handler(StickyctxError, handler)


def current_context() -> SyncConversation:
    """The session handle of the current Flask request."""
    handle = flask.request.environ.get("stickyctx")
    if not isinstance(handle, SyncConversation):
        raise NoContextError("StickyCtx is not installed on this Flask app")
    return handle


def sse_response(reply: SyncReply | None) -> flask.Response:
    """A streamed reply (``conv.stream(...)`` or ``conv.resume(...)``) as a
    ``text/event-stream`` response; ``204 No Content`` when there is nothing to resume (an
    ``EventSource`` stops reconnecting on 204)."""
    if reply is None:
        return flask.Response(status=204)
    return flask.Response(reply.sse(), mimetype="text/event-stream", headers=SSE_HEADERS)
