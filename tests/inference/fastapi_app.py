"""The FastAPI code of docs/affinity-all-the-way-down.md, served by the router tests.

``MODEL_BASE_URL`` is the router (or model server) the openai client calls; the routing hints
come from ``openai_options(conv)`` for the router ``STICKYCTX_INFERENCE_ROUTER`` names.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from openai import APIError, AsyncOpenAI
from pydantic import BaseModel

from stickyctx import Settings, StickyMiddleware
from stickyctx.fastapi import Conversation
from stickyctx.integrations.inference import openai_options

client = AsyncOpenAI(base_url=os.environ["MODEL_BASE_URL"], api_key="unused",
                     max_retries=0, timeout=10)  # the tests retry, and count what failed
app = FastAPI()
app.add_middleware(StickyMiddleware, settings=Settings.from_env())


class Ask(BaseModel):
    message: str
    hints: bool = True  # False: the control, a request without the routing hints


@app.post("/ask", response_model=None)
async def ask(body: Ask, conv: Conversation) -> dict[str, Any] | JSONResponse:
    await conv.append("user", body.message)
    options: dict[str, Any] = dict(openai_options(conv)) if body.hints else {}
    try:
        completion = await client.chat.completions.create(
            model="stub-model", messages=await conv.window(), **options)
    except APIError as exc:
        return JSONResponse({"error": type(exc).__name__}, status_code=502)
    reply = completion.choices[0].message.content or ""
    await conv.append("assistant", reply)
    # The session id goes back only so that the tests can check that no model server saw it.
    return {"backend": reply, "session": conv.session_id}


@app.post("/login")
async def login(conv: Conversation) -> dict[str, str]:
    """The examples' sign-in stand-in: a new session id for the same conversation."""
    return {"session": await conv.rotate()}
