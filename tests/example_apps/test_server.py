"""The ASGI middleware in a real uvicorn process, driven over loopback with httpx."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from ..conftest import KEY_A, AppServer, wait_until

TARGET = "tests.apps.fastapi_chat:app"
ENV = {
    "STICKYCTX_SECRET_KEYS": KEY_A,
    "STICKYCTX_NODE_ID": "node-a",
    "STICKYCTX_COOKIE_SECURE": "0",
    "STICKYCTX_TURN_TIMEOUT": "10",
}
TIMEOUT = 10.0

Start = Callable[..., AppServer]


def contents(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"]]


def test_a_five_turn_conversation_keeps_its_history(app_server: Start) -> None:
    server = app_server(TARGET, ENV)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        ids = set()
        for turn in range(1, 6):
            response = client.post("/chat", json={"message": f"m{turn}"})
            assert response.status_code == 200
            body = response.json()
            ids.add(body["session_id"])
            assert body["turns"] == turn
            assert contents(body)[-2:] == [f"m{turn}", f"echo: m{turn}"]
            assert body["affinity"] == ("new" if turn == 1 else "hit")
            assert response.headers["x-stickyctx-node"] == "node-a"
            assert ("set-cookie" in response.headers) == (turn == 1)
    assert len(ids) == 1


def test_a_bad_cookie_gets_a_fresh_session(app_server: Start) -> None:
    server = app_server(TARGET, ENV)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        first = client.post("/chat", json={"message": "mine"}).json()
        token = client.cookies["stickyctx"]
    # A signature character whose bits all count (the last one's low bits are padding).
    tampered = token[:-5] + ("A" if token[-5] != "A" else "Q") + token[-4:]
    for bad in (tampered, token[:20], "garbage", first["session_id"]):
        response = httpx.post(server.url + "/chat", json={"message": "other"},
                              headers={"cookie": f"stickyctx={bad}"}, timeout=TIMEOUT)
        assert response.status_code == 200
        body = response.json()
        assert body["affinity"] == "new"
        assert body["session_id"] != first["session_id"]
        assert contents(body) == ["other", "echo: other"]
        assert "stickyctx=" in response.headers["set-cookie"]


def test_concurrent_requests_of_one_session_are_serialized(app_server: Start) -> None:
    # Eager issue: /probe never uses the session, yet its response starts one.
    server = app_server(TARGET, {**ENV, "STICKYCTX_COOKIE_ISSUE": "eager"})
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        client.get("/probe")  # start the session; nothing stored yet
        assert "stickyctx" in client.cookies
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        headers = {"cookie": cookie}
        held: dict[str, Any] = {}

        def first() -> None:
            held["response"] = httpx.post(server.url + "/chat", headers=headers, timeout=TIMEOUT,
                                          json={"message": "u1", "hold": True})

        thread = threading.Thread(target=first)
        thread.start()
        try:
            wait_until(lambda: bool(client.get("/probe").json()["holding"]), timeout=TIMEOUT,
                       what="the first request holding its turn")
            second = httpx.post(server.url + "/chat", headers=headers, timeout=TIMEOUT,
                                json={"message": "u2"})
        finally:
            thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert client.get("/probe").json() == {"holding": True, "refused": True}

    first_response = held["response"]
    assert (first_response.status_code, second.status_code) == (200, 200)
    assert contents(first_response.json()) == ["u1", "echo: u1"]
    assert contents(second.json()) == ["u1", "echo: u1", "u2", "echo: u2"]


def test_a_port_taken_before_the_server_binds_it_is_replaced(
    app_server: Start, monkeypatch: Any,
) -> None:
    # Another process takes the chosen port between the choice and the bind: the server exits
    # at once, and the starter tries again on another port instead of failing the test.
    import socket

    from tests import conftest

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real = conftest.free_port
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or real())
        server = app_server(TARGET, ENV)
        assert server.port != taken
        reply = httpx.post(f"{server.url}/chat", json={"message": "hello"}, timeout=TIMEOUT)
        assert reply.status_code == 200
