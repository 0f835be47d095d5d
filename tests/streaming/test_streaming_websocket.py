"""Streamed replies over a WebSocket, on a real uvicorn server: a client that reconnects
resumes after its last event exactly once; with ``STICKYCTX_STREAM_ON_DISCONNECT=cancel`` a
reconnect within ``STICKYCTX_STREAM_DISCONNECT_GRACE`` keeps the reply going, and a client that
does not come back leaves the partial reply stored as ``cancelled``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from stickyctx.chat_example import offline_reply
from tests.conftest import KEY_A, AppServer
from tests.support.waiting import poll

MESSAGE = "my name is Ada and this reply goes over a socket that will drop"
ENV = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1",
       "STICKYCTX_COOKIE_SECURE": "0", "DEMO_TOKEN_DELAY_MS": "40"}
TERMINAL = {"done", "stopped", "cancelled", "interrupted"}


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch,
          app_server: Callable[..., AppServer]) -> Callable[..., AppServer]:
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    return lambda **extra: app_server("tests.apps.ws_stream:app", {**ENV, **extra})


def ws_url(server: AppServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


def receive(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(ws.recv(timeout=20))
    return event


def first_events(server: AppServer, count: int) -> tuple[str, list[dict[str, Any]]]:
    """Start a reply, read ``count`` events, drop the socket; the session cookie and events."""
    with connect(ws_url(server)) as ws:
        cookies = [v.split(";", 1)[0] for k, v in ws.response.headers.raw_items()
                   if k.lower() == "set-cookie"]
        ws.send(json.dumps({"message": MESSAGE}))
        seen = [receive(ws) for _ in range(count)]
    assert [e["event"] for e in seen] == ["token"] * count
    return "; ".join(cookies), seen


def resume(server: AppServer, cookie: str, last: str) -> list[dict[str, Any]]:
    with connect(ws_url(server), additional_headers={"Cookie": cookie}) as ws:
        ws.send(json.dumps({"resume": last}))
        events = [receive(ws)]
        while events[-1]["event"] not in TERMINAL:
            events.append(receive(ws))
    return events


def number(event: dict[str, Any]) -> int:
    return int(event["id"].rsplit(":", 1)[1])


def text(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"] for e in events if e["event"] == "token")


def stored(server: AppServer, cookie: str) -> list[dict[str, Any]]:
    messages = httpx.get(server.url + "/history", headers={"Cookie": cookie}).json()["messages"]
    return [m for m in messages if m["role"] == "assistant"]


def test_a_reconnect_resumes_after_the_last_event_exactly_once(
    start: Callable[..., AppServer],
) -> None:
    server = start()
    cookie, seen = first_events(server, 3)
    rest = resume(server, cookie, seen[-1]["id"])
    assert [number(e) for e in seen + rest] == list(range(1, len(seen) + len(rest) + 1))
    assert rest[-1]["event"] == "done"
    full = offline_reply([{"role": "user", "content": MESSAGE}])
    assert text(seen + rest) == json.loads(rest[-1]["data"])["reply"] == full


def test_a_reconnect_within_the_grace_keeps_a_cancellable_reply(
    start: Callable[..., AppServer],
) -> None:
    server = start(STICKYCTX_STREAM_ON_DISCONNECT="cancel",
                   STICKYCTX_STREAM_DISCONNECT_GRACE="60")
    cookie, seen = first_events(server, 2)
    rest = resume(server, cookie, seen[-1]["id"])
    assert rest[-1]["event"] == "done"
    assert [m["status"] for m in stored(server, cookie)] == ["complete"]


def test_no_reconnect_within_the_grace_cancels_and_stores_the_partial(
    start: Callable[..., AppServer],
) -> None:
    server = start(STICKYCTX_STREAM_ON_DISCONNECT="cancel",
                   STICKYCTX_STREAM_DISCONNECT_GRACE="0.2")
    cookie, seen = first_events(server, 2)
    found = poll(lambda: stored(server, cookie), timeout=20.0, what="the cancelled reply")
    assert [m["status"] for m in found] == ["cancelled"]
    full = offline_reply([{"role": "user", "content": MESSAGE}])
    assert found[0]["content"].startswith(text(seen))
    assert full.startswith(found[0]["content"])
    assert found[0]["content"] != full
