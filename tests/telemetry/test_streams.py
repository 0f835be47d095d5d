"""Metrics of streamed replies: started, resumed (same node / other node), stopped,
interrupted, and chunks replayed; read with the SDK's in-memory reader. Two middlewares (two
"nodes") share one embedded store; the app streams a fixed reply chunk by chunk, each chunk
released by the test, so every event happens at a known point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stickyctx import Conversation, StickyMiddleware, get_context
from stickyctx.fastapi import sse_response
from stickyctx.stores import MemoryStore
from stickyctx.telemetry import ATTR, METRIC
from tests.conftest import make_settings
from tests.telemetry.harness import OtelKit

CHUNKS = ["one ", "two ", "three ", "four"]


def app(gate: asyncio.Queue[None], pulled: asyncio.Event) -> Starlette:
    async def tokens(_window: Any) -> AsyncIterator[str]:
        for chunk in CHUNKS:
            await gate.get()
            pulled.set()
            yield chunk

    def conv(request: Request) -> Conversation:
        found = get_context(request)
        assert isinstance(found, Conversation)
        return found

    async def start(request: Request) -> Response:
        return sse_response(await conv(request).stream("hi", tokens))

    async def resume(request: Request) -> Response:
        return sse_response(await conv(request).resume(request.headers.get("last-event-id")))

    async def stop(request: Request) -> JSONResponse:
        return JSONResponse({"stopped": await conv(request).stop()})

    return Starlette(routes=[Route("/s", start, methods=["POST"]), Route("/s", resume),
                             Route("/stop", stop, methods=["POST"])])


def counts(kit: OtelKit) -> dict[tuple[Any, ...], int]:
    return {(p.attributes[ATTR.STREAM_EVENT], p.attributes.get(ATTR.STREAM_NODE),
             p.attributes[ATTR.NODE_ID]): p.data.value for p in kit.points(METRIC.STREAMS)}


def replayed(kit: OtelKit) -> int:
    return sum(p.data.value for p in kit.points(METRIC.STREAM_REPLAYED))


@pytest.mark.anyio
async def test_stream_metrics_count_each_event_once() -> None:
    kit = OtelKit()
    store = MemoryStore()
    gate: asyncio.Queue[None] = asyncio.Queue()
    pulled = asyncio.Event()
    nodes = {n: StickyMiddleware(app(gate, pulled), make_settings(node_id=n), store=store,
                                 **kit.providers()) for n in ("n1", "n2")}
    one = httpx.AsyncClient(transport=httpx.ASGITransport(nodes["n1"]), base_url="http://t")

    async def on_two(method: str, path: str, **headers: str) -> httpx.Response:
        """A request to the other node with the session's token (header transport)."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(nodes["n2"]),
                                     base_url="http://t") as two:
            return await two.request(method, path, headers={
                "X-Stickyctx-Session": one.cookies["stickyctx"], **headers})

    try:
        for _ in range(len(CHUNKS)):
            gate.put_nowait(None)
        first = await one.post("/s")  # generated whole on n1
        assert "event: done" in first.text
        assert counts(kit) == {("started", None, "n1"): 1}
        # A resume after chunk 1 on the generating node, and one on another node.
        resumed = await one.get("/s", headers={"Last-Event-ID": _id(first.text, 1)})
        assert resumed.text.count("event: token") == len(CHUNKS) - 1
        other = await on_two("GET", "/s")
        assert other.text.count("event: token") == len(CHUNKS)
        assert counts(kit)[("resumed", "other", "n2")] == 1
        assert counts(kit)[("resumed", "same", "n1")] == 1  # the node that generated it
        assert replayed(kit) == (len(CHUNKS) - 1) + len(CHUNKS)
        # A stop sent to n2 ends a reply generating on n1.
        gate.put_nowait(None)
        pulled.clear()
        stopping = asyncio.ensure_future(one.post("/s"))
        await pulled.wait()  # the reply streams on n1
        assert (await on_two("POST", "/stop")).json() == {"stopped": True}
        gate.put_nowait(None)  # the next chunk's push sees the stop
        assert "event: stopped" in (await stopping).text
        assert counts(kit)[("stopped", None, "n1")] == 1
        assert counts(kit)[("started", None, "n1")] == 2
    finally:
        await one.aclose()
        kit.shutdown()


def _id(text: str, number: int) -> str:
    ids = [line[4:] for line in text.splitlines() if line.startswith("id: ")]
    return next(i for i in ids if i.endswith(f":{number}"))
