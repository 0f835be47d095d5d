"""A reply whose generator is gone while its node lives on (the process died, and a new one took
its node id): the next reply finds the turn lease free, stores the old reply's chunks as
``interrupted`` and starts; while a generation holds the lease, the next one is refused (409).
In-process (Starlette over the embedded store), the dead generation written into the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stickyctx import Conversation, StickyMiddleware, get_context
from stickyctx.errors import StickyctxError, http_error
from stickyctx.fastapi import sse_response
from stickyctx.sansio import run_sync
from stickyctx.stores import MemoryStore
from tests.conftest import make_settings


async def tokens(_window: Any) -> AsyncIterator[str]:
    for chunk in ("fresh ", "reply"):
        yield chunk


def conv(request: Request) -> Conversation:
    found = get_context(request)
    assert isinstance(found, Conversation)
    return found


async def stream(request: Request) -> Response:
    return sse_response(await conv(request).stream((await request.json())["message"], tokens))


async def resume(request: Request) -> Response:
    return sse_response(await conv(request).resume(request.headers.get("last-event-id")))


async def history(request: Request) -> JSONResponse:
    handle = conv(request)
    return JSONResponse({"id": handle.session_id, "messages": await handle.messages()})


@pytest.fixture
def setup() -> tuple[StickyMiddleware, MemoryStore]:
    store = MemoryStore()
    async def refused(_request: Request, exc: Exception) -> Response:
        answer = http_error(exc)
        assert answer is not None
        return Response(answer[1], status_code=answer[0], media_type="application/json")

    app = Starlette(routes=[Route("/s", stream, methods=["POST"]), Route("/s", resume),
                            Route("/h", history)],
                    exception_handlers={StickyctxError: refused})
    return StickyMiddleware(app, make_settings(node_id="n1", turn_timeout=0), store=store), store


@pytest.mark.anyio
async def test_a_reply_left_running_by_a_dead_process_is_stored_interrupted(
    setup: tuple[StickyMiddleware, MemoryStore],
) -> None:
    sticky, store = setup
    async with httpx.AsyncClient(transport=httpx.ASGITransport(sticky),
                                 base_url="http://t") as client:
        assert "event: done" in (await client.post("/s", json={"message": "one"})).text
        key = sticky.services.keys.derive((await client.get("/h")).json()["id"])
        # A generation of this node's previous process: running, two chunks, no lease.
        run_sync(store.stream_open(key, "deadbeef", node="n1", turn="", ttl=60))
        run_sync(store.stream_push(key, "deadbeef", ["half ", "done"], ttl=60))
        answer = await client.post("/s", json={"message": "two"})
        assert answer.status_code == 200
        assert "event: done" in answer.text
        messages = (await client.get("/h")).json()["messages"]
    assert [(m["role"], m["content"], m.get("status")) for m in messages] == [
        ("user", "one", None), ("assistant", "fresh reply", "complete"),
        ("assistant", "half done", "interrupted"),
        ("user", "two", None), ("assistant", "fresh reply", "complete")]


@pytest.mark.anyio
async def test_a_running_reply_whose_lease_is_held_makes_the_next_one_busy(
    setup: tuple[StickyMiddleware, MemoryStore],
) -> None:
    sticky, store = setup
    async with httpx.AsyncClient(transport=httpx.ASGITransport(sticky),
                                 base_url="http://t") as client:
        await client.post("/s", json={"message": "one"})
        key = sticky.services.keys.derive((await client.get("/h")).json()["id"])
        run_sync(store.stream_open(key, "elsewhere", node="n1", turn="", ttl=60))
        assert run_sync(store.acquire_lease(key, holder="n1:other", ttl=60)) is not None
        busy = await client.post("/s", json={"message": "two"})
        assert busy.status_code == 409
        assert busy.json()["error"] == "session_busy"
        assert len((await client.get("/h")).json()["messages"]) == 2  # nothing of "two"


@pytest.mark.anyio
async def test_a_resume_of_a_reply_nobody_generates_gets_it_interrupted(
    setup: tuple[StickyMiddleware, MemoryStore],
) -> None:
    sticky, store = setup
    async with httpx.AsyncClient(transport=httpx.ASGITransport(sticky),
                                 base_url="http://t") as client:
        await client.post("/s", json={"message": "one"})
        key = sticky.services.keys.derive((await client.get("/h")).json()["id"])
        run_sync(store.stream_open(key, "deadbeef", node="n1", turn="", ttl=60))
        run_sync(store.stream_push(key, "deadbeef", ["half ", "done"], ttl=60))
        resumed = await client.get("/s", headers={"Last-Event-ID": "deadbeef:1"})
        assert resumed.status_code == 200
        lines = [line for line in resumed.text.splitlines() if line.startswith(("id:", "event:"))]
        assert lines == ["id: deadbeef:2", "event: token", "id: deadbeef:3",
                         "event: interrupted"]
        messages = (await client.get("/h")).json()["messages"]
        assert (messages[-1]["content"], messages[-1]["status"]) == ("half done", "interrupted")
        # The lease the check took is given back: the next reply starts at once.
        assert "event: done" in (await client.post("/s", json={"message": "two"})).text
