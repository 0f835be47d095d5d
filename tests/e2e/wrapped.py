"""A raw ASGI app wrapped directly in ``StickyMiddleware`` (the middleware built at import)."""

from __future__ import annotations

from typing import Any

from stickyctx import StickyMiddleware


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


app = StickyMiddleware(_hello)
