"""Streamed replies across nodes: three uvicorn nodes of the FastAPI example behind a real
HAProxy, one private Redis.

1. A client that left mid-reply resumes on *another* node (header transport, straight to that
   node) after its last event: the rest, exactly once, then ``done``; a stop sent to another
   node ends a reply that the owner generates.
2. The owner is killed (SIGKILL) mid-reply: a client resuming through the balancer gets the
   chunks after its last one up to the last durable chunk, then ``interrupted``; the partial
   reply is stored once, marked ``interrupted``, equal to what the client saw; the next turn
   works on the new owner.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx
import pytest

from stickyctx.chat_example import offline_reply
from tests.support.sse import SSE, read_events
from tests.support.waiting import poll

from .cluster import Deployment
from .conftest import MakeDeployment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGE = "my name is Ada and I would like a long answer with many words please"
RESUME_TIMEOUT = 30.0  # a resume waits for the dead owner to leave the view (3 heartbeats)


@pytest.fixture
def setup(deployment: MakeDeployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    monkeypatch.setenv("DEMO_TOKEN_DELAY_MS", "80")  # ~25 chunks: about two seconds a reply
    return deployment("haproxy")


def tokens(events: list[SSE]) -> str:
    return "".join(e.data for e in events if e.event == "token")


def begin_conversation(client: httpx.Client) -> None:
    """A first turn: the session gets its owner and the balancer's routing cookie, so that
    the replies that follow are generated on the owner."""
    first = client.post("/chat", json={"message": "hello"})
    assert first.status_code == 200, first.text
    assert client.get("/healthz").json()["node"] == first.json()["owner"]  # routed to it now


def start_reply(client: httpx.Client, count: int) -> tuple[str, list[SSE]]:
    """Post a message, read ``count`` events, leave; the owner and the events read."""
    with client.stream("POST", "/chat/stream", json={"message": MESSAGE}) as response:
        assert response.status_code == 200, response.read()
        owner = response.headers["x-stickyctx-node"]
        seen: list[SSE] = []
        for event in read_events(response):
            seen.append(event)
            if len(seen) == count:
                break
    assert [e.event for e in seen] == ["token"] * count
    return owner, seen


def resume(client: httpx.Client, last: SSE, **headers: str) -> list[SSE]:
    with client.stream("GET", "/chat/stream",
                       headers={"Last-Event-ID": last.id, **headers}) as response:
        assert response.status_code == 200, response.read()
        return list(read_events(response))


def assistant(client: httpx.Client) -> list[dict[str, Any]]:
    return [m for m in client.get("/history").json()["messages"] if m["role"] == "assistant"]


def test_resume_and_stop_on_another_node(setup: Deployment) -> None:
    assert setup.lb is not None
    with closing(httpx.Client(base_url=setup.lb.url, timeout=RESUME_TIMEOUT)) as client:
        begin_conversation(client)
        owner, first = start_reply(client, 3)
        other = next(n for n in sorted(setup.apps) if n != owner)
        token = client.cookies["stickyctx"]
        with closing(httpx.Client(base_url=f"http://{setup.addresses[other]}",
                                  timeout=RESUME_TIMEOUT)) as direct:
            rest = resume(direct, first[-1], **{"X-Stickyctx-Session": token})
        assert [e.number for e in first + rest] == list(range(1, len(first) + len(rest) + 1))
        assert rest[-1].event == "done"
        assert tokens(first + rest) == rest[-1].json()["reply"]
        assert [m.get("status") for m in assistant(client)] == [None, "complete"]

        # A stop sent to a node that does not generate the reply ends it.
        owner, seen = start_reply(client, 1)
        other = next(n for n in sorted(setup.apps) if n != owner)
        with closing(httpx.Client(base_url=f"http://{setup.addresses[other]}",
                                  cookies=client.cookies, timeout=RESUME_TIMEOUT)) as direct:
            assert direct.post("/chat/stop").json() == {"stopped": True}
        rest = resume(client, seen[-1])
        assert rest[-1].event == "stopped"
        partial = rest[-1].json()["reply"]
        assert partial == tokens(seen + rest)
        assert [(m.get("status"), m["content"]) for m in assistant(client)][-1] == (
            "stopped", partial)


def test_the_owner_killed_mid_reply_leaves_the_partial_reply_interrupted(
    setup: Deployment,
) -> None:
    assert setup.lb is not None
    with closing(httpx.Client(base_url=setup.lb.url, timeout=RESUME_TIMEOUT)) as client:
        begin_conversation(client)
        owner, first = start_reply(client, 3)
        setup.kill_node(owner)

        def resumed() -> list[SSE] | None:
            try:
                return resume(client, first[-1])
            except (httpx.TransportError, AssertionError):  # the balancer's 5xx meanwhile
                return None

        rest = poll(resumed, timeout=RESUME_TIMEOUT, what="a resume served by a survivor")
        numbers = [e.number for e in first + rest]
        assert numbers == list(range(1, len(numbers) + 1))  # none lost, none repeated
        end = rest[-1]
        assert end.event == "interrupted"
        partial = end.json()["reply"]
        assert partial == tokens(first + rest)
        full = offline_reply([{"role": "user", "content": MESSAGE}])
        assert full.startswith(partial)
        assert len(partial) < len(full)  # cut by the kill, not finished
        stored = assistant(client)
        assert [(m.get("status"), m["content"]) for m in stored][1:] == [("interrupted", partial)]

        # A second resume (another tab) sees the same end; the partial stays stored once.
        again = resume(client, first[-1])
        assert again == rest
        # The next turn works, on a surviving owner.
        answer = client.post("/chat", json={"message": "are you still there?"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["owner"] != owner
        assert answer.json()["turns"] == 3
        assert len(assistant(client)) == 3
