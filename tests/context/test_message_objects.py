"""``append`` and ``extend`` take message objects (the openai package's pydantic messages,
LangChain messages) besides dicts, over a real store; anything else is an ``InvalidMessageError``
from the handle and a 422 through the middleware, with nothing stored."""

from __future__ import annotations

from typing import Any

import flask
import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from openai.types.chat import ChatCompletionMessage
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from stickyctx import InvalidMessageError, Settings, StickyMiddleware, get_context
from stickyctx.flask import StickyCtx, current_context
from tests.formats.check import assert_chat

from .backends import MEMORY, Backing, EventLoop, on
from .harness import Chat, Driver, settings_for

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}


def completion(**message: Any) -> ChatCompletionMessage:
    return ChatCompletionMessage.model_validate({"role": "assistant", **message})


OBJECTS: list[Any] = [
    SystemMessage("Be brief."),
    HumanMessage("Weather in Oslo?"),
    completion(content=None, tool_calls=[CALL]),
    ToolMessage("4 C", tool_call_id="call_1"),
    completion(content="4 C in Oslo."),
    HumanMessage("Say it out loud, then refuse something."),
    completion(content=None, audio={"id": "audio_1", "data": "UklGRg==", "expires_at": 1,
                                    "transcript": "Four degrees."}),
    completion(content=None, refusal="I can't do that."),
    AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Bergen"}, "id": "call_2"}]),
    {"role": "tool", "tool_call_id": "call_2", "content": "9 C"},
    completion(content=None, function_call={"name": "weather", "arguments": "{}"}),
    {"role": "function", "name": "weather", "content": "sunny"},
]
STORED = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
    {"role": "assistant", "content": "4 C in Oslo."},
    {"role": "user", "content": "Say it out loud, then refuse something."},
    {"role": "assistant", "content": None,
     "audio": {"id": "audio_1", "expires_at": 1, "transcript": "Four degrees."}},
    {"role": "assistant", "content": None, "refusal": "I can't do that."},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_2", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Bergen"}'}}]},
    {"role": "tool", "tool_call_id": "call_2", "content": "9 C"},
    {"role": "assistant", "content": None,
     "function_call": {"name": "weather", "arguments": "{}"}},
    {"role": "function", "name": "weather", "content": "sunny"},
]


@on(*MEMORY, "redis-sync", "redis-async")
def test_message_objects_are_stored_as_their_dicts(kind: Driver) -> None:
    session = Chat(kind, settings_for())
    with session.turn() as request:
        assert request.extend(OBJECTS[:5]) == 5
        for message in OBJECTS[5:]:  # one at a time: append(message)
            request._call(lambda h, m=message: h.append(m), lambda h, m=message: h.append(m))
    with session.other_node().turn() as request:
        assert request.messages() == STORED
        window = request.window()
        assert_chat(window)
        assert [m["role"] for m in window] == [m["role"] for m in STORED]


@on(*MEMORY, "redis-sync", "redis-async")
def test_append_of_an_object_takes_fields_and_a_turn_id(kind: Driver) -> None:
    def append(h: Any) -> Any:
        return h.append(HumanMessage("Hi"), turn_id="t-1", source="web")

    session = Chat(kind, settings_for())
    seqs = []
    for _ in range(2):  # the request, then its retry: stored once
        with session.turn() as request:
            seqs.append(request._call(append, append))
    assert seqs == [1, 0]
    with session.turn() as request:
        assert request.messages() == [{"role": "user", "content": "Hi", "source": "web"}]


class Unsupported:
    role = "user"
    content = "an object that is not a message"


BAD = [
    pytest.param(Unsupported(), id="plain-object"),
    pytest.param(42, id="number"),
    pytest.param(("user", "a tuple"), id="tuple"),
]


@on(*MEMORY, "redis-sync", "redis-async")
@pytest.mark.parametrize("bad", BAD)
def test_anything_else_is_an_invalid_message_and_nothing_is_stored(kind: Driver,
                                                                   bad: Any) -> None:
    session = Chat(kind, settings_for())
    with session.turn() as request:
        request.append("user", "first")
        with pytest.raises(InvalidMessageError):
            request.extend([HumanMessage("fine"), bad])
        with pytest.raises(InvalidMessageError):
            request._call(lambda h: h.append(bad), lambda h: h.append(bad))
        assert request.messages() == [{"role": "user", "content": "first"}]


# Through the middleware ----------------------------------------------------------------------

def _objects(kind: str) -> list[Any]:
    if kind == "openai":
        return [completion(content="Hello from a model.")]
    if kind == "langchain":
        return [HumanMessage("Hello from LangChain.")]
    return [Unsupported()]


def starlette_app(settings: Settings, store: Backing) -> Any:
    async def add(request: StarletteRequest) -> JSONResponse:
        conv = get_context(request)
        await conv.extend(_objects((await request.json())["kind"]))
        return JSONResponse({"messages": await conv.messages()})

    middleware = Middleware(StickyMiddleware, settings=settings, store=store.store)
    return Starlette(routes=[Route("/add", add, methods=["POST"])], middleware=[middleware])


def flask_app(settings: Settings, store: Backing) -> Any:
    app = flask.Flask("stickyctx_message_objects")

    @app.post("/add")
    def add() -> Any:
        conv = current_context()
        conv.extend(_objects(flask.request.get_json()["kind"]))
        return {"messages": conv.messages()}

    StickyCtx(app, settings, store=store.store)
    return app


def post_asgi(app: Any, bodies: list[dict[str, str]]) -> list[tuple[int, Any]]:
    async def run() -> list[tuple[int, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [((r := await client.post("/add", json=b)).status_code, r.json())
                    for b in bodies]

    return EventLoop.run(run())


def post_wsgi(app: Any, bodies: list[dict[str, str]]) -> list[tuple[int, Any]]:
    client = Client(app)
    out = []
    for body in bodies:
        response = client.post("/add", json=body)
        out.append((response.status_code, response.get_json()))
        response.close()
    return out


@pytest.mark.parametrize(("build", "post"), [
    pytest.param(starlette_app, post_asgi, id="starlette"),
    pytest.param(flask_app, post_wsgi, id="flask"),
])
def test_through_the_middleware_objects_are_stored_and_others_are_a_422(
    build: Any, post: Any,
) -> None:
    settings = settings_for()
    app = build(settings, Backing.memory(settings))
    answers = post(app, [{"kind": "openai"}, {"kind": "other"}, {"kind": "langchain"}])
    assert [status for status, _ in answers] == [200, 422, 200]
    assert answers[1][1]["error"] == "invalid_message"
    assert answers[2][1]["messages"] == [
        {"role": "assistant", "content": "Hello from a model."},
        {"role": "user", "content": "Hello from LangChain."}]
