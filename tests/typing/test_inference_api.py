"""Typed examples of the routing hints: ``mypy --strict`` checks this file, pytest runs it.

``ask_model`` is what an app writes: the openai client's ``create`` gets ``openai_options(conv)``
unpacked, so mypy checks those keyword arguments against the openai client's own signature.
"""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import FastAPI
from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typing_extensions import assert_type

from stickyctx import Conversation, Settings, StickyMiddleware
from stickyctx.fastapi import Conversation as ConversationDependency
from stickyctx.integrations.inference import (
    OpenAIOptions,
    RoutingHints,
    openai_options,
    routing_hints,
)


async def ask_model(client: AsyncOpenAI, conv: Conversation, text: str) -> str:
    hints = routing_hints(conv)
    assert_type(hints, RoutingHints)
    assert_type(hints.headers, dict[str, str])
    assert_type(hints.body, dict[str, str])
    assert_type(conv.routing_hints("openai", user="user-1"), RoutingHints)
    options = openai_options(conv, extra_headers={"x-tenant": "t1"})
    assert_type(options, OpenAIOptions)
    completion = await client.chat.completions.create(
        model="stub-model", messages=[{"role": "user", "content": text}], **options)
    return completion.choices[0].message.content or ""


# What reached the model server, and an in-process model server that records it.
SEEN: list[dict[str, Any]] = []


async def _complete(request: Request) -> JSONResponse:
    SEEN.append({"headers": dict(request.headers), "body": await request.json()})
    return JSONResponse({
        "id": "c1", "object": "chat.completion", "created": 0, "model": "stub-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello"}}],
    })


MODEL_SERVER = Starlette(routes=[Route("/v1/chat/completions", _complete, methods=["POST"])])


def make_app() -> FastAPI:
    client = AsyncOpenAI(
        base_url="http://model/v1", api_key="unused",
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=MODEL_SERVER)))
    app = FastAPI()
    settings = Settings(secret_keys=("k" * 40,), node_id="typed", cookie_secure=False,
                        inference_router="sglang")
    app.add_middleware(StickyMiddleware, settings=settings)

    @app.post("/ask")
    async def ask(conv: ConversationDependency) -> dict[str, str]:
        return {"reply": await ask_model(client, conv, "hi")}

    return app


def test_the_hints_reach_the_model_server_with_the_apps_own_headers() -> None:
    SEEN.clear()
    with TestClient(make_app()) as http:
        for _ in range(2):
            assert http.post("/ask").json() == {"reply": "hello"}
    first, second = (seen["headers"] for seen in SEEN)
    assert first["x-tenant"] == "t1"
    assert first["x-smg-routing-key"].startswith("sc-")
    assert first["x-smg-routing-key"] == second["x-smg-routing-key"]  # one conversation
