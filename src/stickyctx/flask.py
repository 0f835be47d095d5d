"""Flask helpers: the ``StickyCtx`` extension and ``current_context()``.

    app = Flask(__name__)
    app.config["STICKYCTX_SECRET_KEYS"] = [...]  # or the environment; config wins
    StickyCtx(app)

    @app.post("/chat")
    def chat():
        conv = current_context()

Without explicit ``settings``, the extension reads ``STICKYCTX_*`` keys of ``app.config`` over
the ``STICKYCTX_*`` environment variables, as Flask extensions do: values are the variables'
text or plain Python values (numbers, booleans, lists for the comma-separated ones).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("stickyctx.flask needs Flask: pip install 'stickyctx[flask]'") from exc

from .edges.wsgi import StickyWSGIMiddleware
from .errors import ConfigError, NoContextError, StickyctxError, http_error
from .session.handle import SyncConversation
from .session.replies import SyncReply
from .session.users_handle import SyncUsers, get_users
from .settings import ENV_VARIABLES, Secret, Settings

__all__ = ["StickyCtx", "current_context", "current_users", "settings_from_config",
           "sse_response"]

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
        settings = self.settings if self.settings is not None else settings_from_config(
            app.config)
        self.middleware = StickyWSGIMiddleware(app.wsgi_app, settings, **self.options)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        app.extensions["stickyctx"] = self

        def handler(exc: StickyctxError) -> Any:
            answer = http_error(exc)
            if answer is None:
                raise exc
            status, body = answer
            return flask.Response(body, status=status, mimetype="application/json")

        app.register_error_handler(StickyctxError, handler)


def _text(name: str, value: Any) -> str:
    """A config value as the text of its environment variable."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, Secret)) for v in value):
        return ",".join(v.reveal() if isinstance(v, Secret) else v for v in value)
    if value is None:
        return ""
    raise ConfigError(name, f"expected text, a number, a boolean or a list of text, "
                            f"not {type(value).__name__}")


def settings_from_config(config: Mapping[str, Any],
                         environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings`` from a Flask app's ``STICKYCTX_*`` config keys over the environment's
    (``os.environ`` by default). A key that names no setting is a ``ConfigError`` (a typo
    would otherwise be ignored silently)."""
    merged = dict(os.environ if environ is None else environ)
    known = set(ENV_VARIABLES)
    for name, value in config.items():
        if not name.startswith("STICKYCTX_"):
            continue
        if name not in known:
            raise ConfigError(name, "app.config names no such stickyctx setting")
        merged[name] = _text(name, value)
    return Settings.from_env(merged)


def current_context() -> SyncConversation:
    """The session handle of the current Flask request."""
    handle = flask.request.environ.get("stickyctx")
    if not isinstance(handle, SyncConversation):
        raise NoContextError("StickyCtx is not installed on this Flask app")
    return handle


def current_users(principal: str | None = None, *, tenant: str = "") -> SyncUsers:
    """The conversations and memory of ``principal`` (the signed-in user's id in the app's own
    authentication; by default the request's ``REMOTE_USER``) for the current Flask request."""
    found = get_users(flask.request, principal, tenant=tenant)
    assert isinstance(found, SyncUsers)
    return found


def sse_response(reply: SyncReply | None) -> flask.Response:
    """A streamed reply (``conv.stream(...)`` or ``conv.resume(...)``) as a
    ``text/event-stream`` response; ``204 No Content`` when there is nothing to resume (an
    ``EventSource`` stops reconnecting on 204)."""
    if reply is None:
        return flask.Response(status=204)
    return flask.Response(reply.sse(), mimetype="text/event-stream", headers=SSE_HEADERS)
