"""The stickyctx example chat service, FastAPI edition.

Configured only by environment variables (``STICKYCTX_*``, see the README beside this folder;
the standard ``OTEL_*`` variables turn on the OpenTelemetry export, see docs/observability.md).
Run from the repository root:  uvicorn examples.fastapi.app:app
"""

from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, StringConstraints

from stickyctx import Settings, StickyMiddleware
from stickyctx.chat_example import CHAT_PAGE, BackendError, areply
from stickyctx.chat_example.fastapi_conversations import add_conversation_routes
from stickyctx.chat_example.streaming import atokens
from stickyctx.edges.health import acheck_store
from stickyctx.fastapi import Conversation, install_error_handlers, sse_response
from stickyctx.stores import open_store
from stickyctx.telemetry.setup import configure_from_env

SYSTEM = "You are a concise, friendly assistant."

settings = Settings.from_env()  # a bad variable fails here, at startup, naming it
configure_from_env("stickyctx-example")  # only when OTEL_* variables ask for an export
store = open_store(settings)  # opened here so that /healthz can probe the middleware's store
app = FastAPI(title="stickyctx example chat")
app.add_middleware(StickyMiddleware, settings=settings, store=store)
install_error_handlers(app)  # busy session 409, store down 503, message too large 413, ...


class ChatIn(BaseModel):
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return CHAT_PAGE


@app.get("/healthz")
async def healthz() -> dict[str, Any]:
    # 200 while this process serves, whatever the store's state: the store is shared, so a load
    # balancer gains nothing by taking every node out when it is down. Its state is reported.
    return {"node": settings.node_id, "store": (await acheck_store(store, settings)).as_dict()}


@app.post("/chat", response_model=None)
async def chat(body: ChatIn, conv: Conversation) -> dict[str, Any] | JSONResponse:
    await conv.append("user", body.message)
    try:
        answer = await areply(await conv.window(system=SYSTEM))
    except BackendError as exc:
        return JSONResponse({"error": "backend_failed", "detail": str(exc)}, status_code=502)
    await conv.append("assistant", answer)
    return {
        "reply": answer,
        "node": conv.node_id,
        "owner": conv.owner,
        "affinity": conv.affinity,
        "turns": await conv.turn_count(),  # counted on the loaded history, never copied
        "tokens": await conv.token_count(),
    }


@app.get("/history")
async def history(conv: Conversation) -> dict[str, Any]:
    return {"messages": await conv.messages()}


@app.delete("/session")
async def end_session(conv: Conversation) -> dict[str, bool]:
    await conv.destroy()
    return {"destroyed": True}


# Streamed replies (docs/streaming.md) ----------------------------------------------------------


@app.post("/chat/stream")
async def chat_stream(body: ChatIn, conv: Conversation) -> Response:
    reply = await conv.stream(body.message, atokens, system=SYSTEM)
    return sse_response(reply)


@app.get("/chat/stream")
async def chat_resume(conv: Conversation,
                      last_event_id: Annotated[str | None, Header()] = None) -> Response:
    return sse_response(await conv.resume(last_event_id))


@app.post("/chat/stop")
async def chat_stop(conv: Conversation) -> dict[str, bool]:
    return {"stopped": await conv.stop()}


# Signed-in users: /login, /conversations, /conversations/{id}/chat, /me/memory, DELETE /me.
# Added last: Starlette tries routes in order, and /chat is the route every turn takes.
add_conversation_routes(app, settings, SYSTEM)
