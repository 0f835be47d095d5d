"""A tiny FastAPI chat app for real-server tests, configured only by ``STICKYCTX_*`` variables.

``POST /chat {"message", "hold"?}`` appends a user message and its echo. With ``hold`` the
handler stops between the two appends (holding the session's turn) until the store has refused
the turn lease to another request; ``GET /probe`` tells whether a handler is holding.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from stickyctx import Settings, StickyMiddleware
from stickyctx.core.messages import Begun
from stickyctx.fastapi import Conversation
from stickyctx.sansio import Op
from stickyctx.stores import MemoryStore

HOLD_DEADLINE = 10.0

settings = Settings.from_env()
holding = asyncio.Event()
refused = asyncio.Event()


class ObservedStore(MemoryStore):
    """The embedded store, noting when a turn lease is refused (taken alone or at a begin)."""

    def acquire_lease(self, *args: Any, **kwargs: Any) -> Op[int | None]:
        token = yield from super().acquire_lease(*args, **kwargs)
        if token is None:
            refused.set()
        return token

    def begin(self, *args: Any, **kwargs: Any) -> Op[Begun]:
        begun = yield from super().begin(*args, **kwargs)
        if begun.status == "live" and begun.token is None:
            refused.set()
        return begun


class ChatIn(BaseModel):
    message: str
    hold: bool = False


app = FastAPI()
app.add_middleware(StickyMiddleware, settings=settings, store=ObservedStore())


@app.post("/chat")
async def chat(body: ChatIn, conv: Conversation) -> dict[str, Any]:
    await conv.messages()
    await conv.append("user", body.message)
    if body.hold:
        holding.set()
        await asyncio.wait_for(refused.wait(), HOLD_DEADLINE)
    await conv.append("assistant", "echo: " + body.message)
    messages = await conv.messages()
    return {"session_id": conv.session_id, "affinity": conv.affinity, "node": conv.node_id,
            "turns": sum(1 for m in messages if m["role"] == "user"), "messages": messages}


@app.get("/probe")
async def probe() -> dict[str, bool]:
    return {"holding": holding.is_set(), "refused": refused.is_set()}
