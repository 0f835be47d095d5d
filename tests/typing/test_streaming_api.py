"""Typed examples of the streaming API (docs/streaming.md): ``mypy --strict`` checks this file,
pytest serves each example once through its framework's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Annotated, Any

import flask
from fastapi import FastAPI, Header
from fastapi.responses import Response
from starlette.testclient import TestClient
from typing_extensions import assert_type

from stickyctx import Settings, StickyMiddleware
from stickyctx.core.streams import Event
from stickyctx.fastapi import Conversation, install_error_handlers
from stickyctx.fastapi import sse_response as asgi_sse
from stickyctx.flask import StickyCtx, current_context
from stickyctx.flask import sse_response as wsgi_sse
from stickyctx.session.replies import AsyncReply, SyncReply

SETTINGS = Settings(secret_keys=("k" * 40,), node_id="n1", cookie_secure=False)


async def model_tokens(window: Sequence[Mapping[str, Any]]) -> AsyncIterator[str]:
    for word in ("You", " sent", f" {len(window)}", " messages."):
        yield word


def sync_tokens(window: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    yield from ("You", " sent", f" {len(window)}", " messages.")


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(StickyMiddleware, settings=SETTINGS)
    install_error_handlers(app)

    @app.post("/chat/stream")
    async def chat_stream(conv: Conversation) -> Response:
        reply = await conv.stream("hello", model_tokens, system="Be brief.")
        assert_type(reply, AsyncReply)
        return asgi_sse(reply)

    @app.get("/chat/stream")
    async def chat_resume(conv: Conversation,
                          last_event_id: Annotated[str | None, Header()] = None) -> Response:
        reply = await conv.resume(last_event_id)
        assert_type(reply, AsyncReply | None)
        return asgi_sse(reply)

    @app.post("/chat/stop")
    async def chat_stop(conv: Conversation) -> dict[str, bool]:
        stopped = await conv.stop()
        assert_type(stopped, bool)
        return {"stopped": stopped}

    return app


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)
    StickyCtx(app, SETTINGS)

    @app.post("/chat/stream")
    def chat_stream() -> flask.Response:
        reply = current_context().stream("hello", sync_tokens)
        assert_type(reply, SyncReply)
        return wsgi_sse(reply)

    @app.get("/chat/events")
    def chat_events() -> list[dict[str, str]]:
        reply = current_context().resume(flask.request.headers.get("Last-Event-ID"))
        events: list[Event] = list(reply) if reply is not None else []
        return [event.as_dict() for event in events]

    return app


def test_the_fastapi_example_streams_and_resumes() -> None:
    with TestClient(fastapi_app()) as client:
        body = client.post("/chat/stream").text
        assert "event: done" in body
        assert "You sent 2 messages." in body  # the system message and the user's
        last = next(line for line in body.splitlines() if line.startswith("id: "))[4:]
        assert client.get("/chat/stream", headers={"Last-Event-ID": last}).text.count(
            "event: token") == 3
        assert client.post("/chat/stop").json() == {"stopped": False}


def test_the_flask_example_streams_and_replays() -> None:
    client = flask_app().test_client()
    assert "event: done" in client.post("/chat/stream").get_data(as_text=True)
    events = client.get("/chat/events").get_json()
    assert [e["event"] for e in events] == ["token"] * 4 + ["done"]
