"""The example chat service without stickyctx: the bare apps of the end-to-end benchmark.

``POST /chat {"message"}`` keeps each client's history in a list in this process (a cookie
names it), answers with the same offline reply function as the examples over the newest 40
messages, and returns the same body fields. ``app`` is the FastAPI app, ``flask_app`` the
Flask one. What stickyctx adds on top (signed sessions, placement, a store, budgets, the turn
lock) is what the benchmark measures.
"""

from __future__ import annotations

import secrets
from typing import Any

import flask
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from stickyctx.chat_example import offline_reply

WINDOW = 40
_histories: dict[str, list[dict[str, Any]]] = {}


def _turn(sid: str, message: str) -> dict[str, Any]:
    history = _histories.setdefault(sid, [])
    history.append({"role": "user", "content": message})
    reply = offline_reply(history[-WINDOW:])
    history.append({"role": "assistant", "content": reply})
    return {"reply": reply, "node": "bare", "owner": "bare", "affinity": "hit",
            "turns": (len(history) + 1) // 2, "tokens": 0}


app = FastAPI()


class ChatIn(BaseModel):
    message: str


@app.post("/chat")
async def chat(body: ChatIn, request: Request, response: Response) -> dict[str, Any]:
    sid = request.cookies.get("sid")
    if sid is None:
        sid = secrets.token_urlsafe(18)
        response.set_cookie("sid", sid, httponly=True)
    return _turn(sid, body.message)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"node": "bare"}


flask_app = flask.Flask(__name__)


@flask_app.post("/chat")
def flask_chat() -> Any:
    sid = flask.request.cookies.get("sid")
    fresh = sid is None
    sid = sid or secrets.token_urlsafe(18)
    response = flask.jsonify(_turn(sid, flask.request.get_json()["message"]))
    if fresh:
        response.set_cookie("sid", sid, httponly=True)
    return response


@flask_app.get("/healthz")
def flask_healthz() -> dict[str, str]:
    return {"node": "bare"}
