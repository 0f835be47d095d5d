"""The stickyctx example chat service, Flask edition.

Configured only by environment variables (``STICKYCTX_*``, see the README beside this folder;
the standard ``OTEL_*`` variables turn on the OpenTelemetry export, see docs/observability.md).
Run from the repository root:  flask --app examples/flask/app.py run
"""

from typing import Any

from flask import Flask, request

from stickyctx import Settings
from stickyctx.chat_example import CHAT_PAGE, BackendError, reply
from stickyctx.chat_example.flask_conversations import conversation_routes
from stickyctx.chat_example.streaming import tokens
from stickyctx.edges.health import check_store
from stickyctx.flask import StickyCtx, current_context, sse_response
from stickyctx.stores import open_store
from stickyctx.telemetry.setup import configure_from_env

SYSTEM = "You are a concise, friendly assistant."

settings = Settings.from_env()  # a bad variable fails here, at startup, naming it
configure_from_env("stickyctx-example")  # only when OTEL_* variables ask for an export
store = open_store(settings)  # opened here so that /healthz can probe the middleware's store
app = Flask(__name__)
StickyCtx(app, settings, store=store)  # also answers busy session 409, store down 503, ...
# Signed-in users: /login, /conversations, /conversations/{id}/chat, /me/memory, DELETE /me.
app.register_blueprint(conversation_routes(settings, SYSTEM))


@app.get("/")
def page() -> str:
    return CHAT_PAGE


@app.get("/healthz")
def healthz() -> dict[str, Any]:
    # 200 while this process serves, whatever the store's state: the store is shared, so a load
    # balancer gains nothing by taking every node out when it is down. Its state is reported.
    return {"node": settings.node_id, "store": check_store(store, settings).as_dict()}


@app.post("/chat")
def chat() -> Any:
    body = request.get_json(silent=True)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        detail = 'expected a JSON object {"message": "..."} with a non-empty string'
        return {"error": "invalid_message", "detail": detail}, 422
    conv = current_context()
    conv.append("user", message.strip())
    try:
        answer = reply(conv.window(system=SYSTEM))
    except BackendError as exc:
        return {"error": "backend_failed", "detail": str(exc)}, 502
    conv.append("assistant", answer)
    return {
        "reply": answer,
        "node": conv.node_id,
        "owner": conv.owner,
        "affinity": conv.affinity,
        "turns": conv.turn_count(),  # counted on the loaded history, never copied
        "tokens": conv.token_count(),
    }


@app.get("/history")
def history() -> dict[str, Any]:
    return {"messages": current_context().messages()}


@app.delete("/session")
def end_session() -> dict[str, bool]:
    current_context().destroy()
    return {"destroyed": True}


# Streamed replies (docs/streaming.md) ----------------------------------------------------------


@app.post("/chat/stream")
def chat_stream() -> Any:
    body = request.get_json(silent=True)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        detail = 'expected a JSON object {"message": "..."} with a non-empty string'
        return {"error": "invalid_message", "detail": detail}, 422
    reply = current_context().stream(message.strip(), tokens, system=SYSTEM)
    return sse_response(reply)


@app.get("/chat/stream")
def chat_resume() -> Any:
    return sse_response(current_context().resume(request.headers.get("Last-Event-ID")))


@app.post("/chat/stop")
def chat_stop() -> dict[str, bool]:
    return {"stopped": current_context().stop()}
