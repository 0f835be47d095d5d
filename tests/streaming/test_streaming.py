"""Streamed replies through the example apps, on real servers: uvicorn (FastAPI) and gunicorn
with threaded workers (Flask), each one node on the embedded store.

Event ids grow by one per chunk; a client that leaves mid-reply resumes after its last event
exactly once; the reply is stored once, with its status; a second message while a reply streams
is refused (409) and the same submit (``Idempotency-Key``) attaches; a stop ends the reply and
stores the partial; the cancel-on-disconnect setting stores the partial marked ``cancelled``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from stickyctx.chat_example import offline_reply
from tests.conftest import KEY_A, AppServer
from tests.support.sse import SSE, TERMINAL, read_events
from tests.support.waiting import poll

APPS = {
    "fastapi": ("examples.fastapi.app:app", "asgi3"),
    "flask": ("examples.flask.app:app", "gunicorn"),
}
ENV = {
    "STICKYCTX_SECRET_KEYS": KEY_A,
    "STICKYCTX_NODE_ID": "n1",
    "STICKYCTX_COOKIE_SECURE": "0",
    "DEMO_TOKEN_DELAY_MS": "40",  # a reply of ~20 words takes ~0.8 s: room to act mid-reply
}
MESSAGE = "my name is Ada and I would like a long answer please"

StartNode = Callable[..., AppServer]


@pytest.fixture
def start_node(monkeypatch: pytest.MonkeyPatch,
               app_server: Callable[..., AppServer]) -> StartNode:
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)

    def start(kind: str, **extra: str) -> AppServer:
        target, interface = APPS[kind]
        return app_server(target, {**ENV, **extra}, interface=interface)

    return start


@pytest.fixture(params=sorted(APPS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(kind: str, start_node: StartNode) -> Iterator[httpx.Client]:
    with closing(httpx.Client(base_url=start_node(kind).url, timeout=30.0)) as made:
        yield made


def full_reply(message: str) -> str:
    return offline_reply([{"role": "user", "content": message}])


def stream(client: httpx.Client, message: str, **headers: str) -> Any:
    return client.stream("POST", "/chat/stream", json={"message": message}, headers=headers)


def tokens_of(events: list[SSE]) -> str:
    return "".join(e.data for e in events if e.event == "token")


def assistant(client: httpx.Client) -> list[dict[str, Any]]:
    messages = client.get("/history").json()["messages"]
    return [m for m in messages if m["role"] == "assistant"]


def test_a_reply_streams_numbered_chunks_then_done_and_is_stored_once(
    client: httpx.Client,
) -> None:
    with stream(client, MESSAGE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(read_events(response))
    assert [e.number for e in events] == list(range(1, len(events) + 1))
    assert len({e.stream for e in events}) == 1
    assert [e.event for e in events[:-1]] == ["token"] * (len(events) - 1)
    assert events[-1].event == "done"
    reply = events[-1].json()["reply"]
    assert reply == tokens_of(events) == full_reply(MESSAGE)
    assert "Ada" in reply
    messages = client.get("/history").json()["messages"]
    assert messages == [{"role": "user", "content": MESSAGE},
                        {"role": "assistant", "content": reply, "status": "complete"}]


def test_a_client_that_leaves_mid_reply_resumes_after_its_last_event_exactly_once(
    client: httpx.Client,
) -> None:
    with stream(client, MESSAGE) as response:
        first = []
        for event in read_events(response):
            first.append(event)
            if len(first) == 3:
                break  # the connection closes: a reload, a lost network
    with client.stream("GET", "/chat/stream",
                       headers={"Last-Event-ID": first[-1].id}) as response:
        assert response.status_code == 200
        rest = list(read_events(response))
    assert [e.number for e in first + rest] == list(range(1, len(first) + len(rest) + 1))
    assert rest[-1].event == "done"
    assert tokens_of(first + rest) == rest[-1].json()["reply"] == full_reply(MESSAGE)
    # Generation went on without the client (the default): the whole reply, stored once.
    assert [(m["content"], m["status"]) for m in assistant(client)] == [
        (full_reply(MESSAGE), "complete")]
    # A finished reply is replayed whole to a client without a Last-Event-ID, then its end.
    with client.stream("GET", "/chat/stream") as response:
        again = list(read_events(response))
    assert tokens_of(again) == full_reply(MESSAGE)
    assert again[-1].event == "done"
    # The end's id: nothing more to send.
    with client.stream("GET", "/chat/stream", headers={"Last-Event-ID": again[-1].id}) as r:
        assert list(read_events(r)) == []


def test_another_message_while_streaming_is_busy_and_the_same_submit_attaches(
    client: httpx.Client,
) -> None:
    with stream(client, MESSAGE, **{"Idempotency-Key": "turn-1"}) as original:
        events = read_events(original)
        first = next(events)
        busy = client.post("/chat/stream", json={"message": "something else"})
        assert busy.status_code == 409
        assert busy.json()["error"] == "session_busy"
        with stream(client, MESSAGE, **{"Idempotency-Key": "turn-1"}) as again:
            attached = list(read_events(again))
        rest = [first, *events]
    assert attached == rest  # the same stream: same ids, same chunks, same end
    assert rest[-1].event == "done"
    messages = client.get("/history").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]  # one turn, not two


def test_a_stop_ends_the_reply_and_stores_the_partial_marked_stopped(
    client: httpx.Client,
) -> None:
    with stream(client, MESSAGE) as response:
        events = read_events(response)
        seen = [next(events), next(events)]
        assert client.post("/chat/stop").json() == {"stopped": True}
        seen.extend(events)
    end = seen[-1]
    assert end.event == "stopped"
    partial = end.json()["reply"]
    assert partial == tokens_of(seen)
    assert full_reply(MESSAGE).startswith(partial)
    assert partial != full_reply(MESSAGE)
    assert [(m["content"], m["status"]) for m in assistant(client)] == [(partial, "stopped")]
    assert client.post("/chat/stop").json() == {"stopped": False}  # nothing streams now
    # The turn was released: the next one works.
    answer = client.post("/chat", json={"message": "and now?"})
    assert answer.status_code == 200
    assert answer.json()["turns"] == 2


def test_cancel_on_disconnect_stores_the_partial_marked_cancelled(
    kind: str, start_node: StartNode,
) -> None:
    node = start_node(kind, STICKYCTX_STREAM_ON_DISCONNECT="cancel")
    with closing(httpx.Client(base_url=node.url, timeout=30.0)) as client:
        with stream(client, MESSAGE) as response:
            events = read_events(response)
            seen = [next(events), next(events)]
        stored = poll(lambda: assistant(client), timeout=20.0, what="the cancelled reply")
        assert [m["status"] for m in stored] == ["cancelled"]
        assert stored[0]["content"].startswith(tokens_of(seen))
        assert stored[0]["content"] != full_reply(MESSAGE)
        with client.stream("GET", "/chat/stream") as response:
            replay = list(read_events(response))
        assert replay[-1].event == "cancelled"
        assert tokens_of(replay) == stored[0]["content"]


def test_nothing_to_resume_is_204(client: httpx.Client) -> None:
    assert client.get("/chat/stream").status_code == 204
    assert client.post("/chat/stop").json() == {"stopped": False}


def test_every_event_is_terminal_or_a_token(client: httpx.Client) -> None:
    with stream(client, "hello") as response:
        events = list(read_events(response))
    assert {e.event for e in events[:-1]} == {"token"}
    assert events[-1].event in TERMINAL


def test_a_read_while_a_reply_streams_is_served_at_once(client: httpx.Client) -> None:
    """A page reloaded mid-reply loads the stored history without waiting for the reply's
    turn (the reply in flight is not in it yet), then resumes the stream."""
    with stream(client, MESSAGE) as response:
        events = read_events(response)
        next(events)
        assert client.get("/history").json()["messages"] == [
            {"role": "user", "content": MESSAGE}]
        rest = list(events)
    assert rest[-1].event == "done"
