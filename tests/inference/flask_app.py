"""The Flask code of docs/affinity-all-the-way-down.md, served by the router tests.

The same service as ``fastapi_app`` with the synchronous openai client; served through a2wsgi
(``asgi``) so that the tests start it like the FastAPI one.
"""

from __future__ import annotations

import os
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask, request
from openai import APIError, OpenAI

from stickyctx import Settings
from stickyctx.flask import StickyCtx, current_context
from stickyctx.integrations.inference import openai_options

client = OpenAI(base_url=os.environ["MODEL_BASE_URL"], api_key="unused",
                max_retries=0, timeout=10)  # the tests retry, and count what failed
app = Flask(__name__)
StickyCtx(app, Settings.from_env())


@app.post("/ask")
def ask() -> Any:
    body = request.get_json()
    conv = current_context()
    conv.append("user", body["message"])
    options: dict[str, Any] = dict(openai_options(conv)) if body.get("hints", True) else {}
    try:
        completion = client.chat.completions.create(
            model="stub-model", messages=conv.window(), **options)
    except APIError as exc:
        return {"error": type(exc).__name__}, 502
    reply = completion.choices[0].message.content or ""
    conv.append("assistant", reply)
    # The session id goes back only so that the tests can check that no model server saw it.
    return {"backend": reply, "session": conv.session_id}


@app.post("/login")
def login() -> dict[str, str]:
    """The examples' sign-in stand-in: a new session id for the same conversation."""
    return {"session": current_context().rotate()}


asgi = WSGIMiddleware(app)
