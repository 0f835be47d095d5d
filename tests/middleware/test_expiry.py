"""Expiry (idle and absolute) and ids the server did not issue, on both edges."""

from __future__ import annotations

import pytest

from stickyctx.core.tokens import TokenCodec

from ..conftest import KEY_A, FakeClock, make_settings
from ..edges import EDGES, Browser, Edge, make_edge

IDLE = 60
ABSOLUTE = 200


@pytest.fixture(params=EDGES)
def edge(request: pytest.FixtureRequest, clock: FakeClock) -> Edge:
    return make_edge(request.param, make_settings(idle_ttl=IDLE, absolute_ttl=ABSOLUTE),
                     clock=clock)


def contents(body: dict[str, object]) -> list[object]:
    return [m["content"] for m in body["messages"]]  # type: ignore[attr-defined, index]


def test_idle_expiry_counts_from_the_last_use(edge: Edge) -> None:
    browser = Browser(edge)
    session_id = browser.chat("one").json()["session_id"]
    edge.clock.advance(IDLE - 10)
    assert browser.chat("two").json()["session_id"] == session_id  # used again: idle restarts
    edge.clock.advance(IDLE - 10)  # 100s after creation, 50s after the last use
    body = browser.request("GET", "/history").json()
    assert body["session_id"] == session_id
    assert contents(body) == ["one", "echo: one", "two", "echo: two"]


def test_an_idle_session_restarts_with_a_new_id_and_the_old_token_loads_nothing(
    edge: Edge,
) -> None:
    browser = Browser(edge)
    first = browser.chat("before")
    old_token = browser.jar["stickyctx"]
    old_id = first.json()["session_id"]
    edge.clock.advance(IDLE + 1)

    reply = browser.request("GET", "/history")
    body = reply.json()
    assert reply.status == 200
    assert body["messages"] == []
    assert body["session_id"] != old_id
    assert body["affinity"] == "new"
    assert reply.header("x-stickyctx-affinity") == "new"
    assert reply.cookies["stickyctx"].value != old_token  # the new id is issued

    # The new session works; the old token still loads nothing.
    assert contents(browser.chat("after").json()) == ["after", "echo: after"]
    replay = edge.request("GET", "/history", headers=[("Cookie", f"stickyctx={old_token}")])
    assert replay.json()["messages"] == []
    assert replay.json()["session_id"] not in (old_id, body["session_id"])


def test_absolute_expiry_ends_even_an_active_session(edge: Edge) -> None:
    browser = Browser(edge)
    session_id = browser.chat("t0").json()["session_id"]
    for i in range(1, 4):  # keep it busy: never idle
        edge.clock.advance(IDLE - 5)
        assert browser.chat(f"t{i}").json()["session_id"] == session_id
    edge.clock.advance(ABSOLUTE - 3 * (IDLE - 5) + 1)  # now past the absolute lifetime

    whoami = browser.request("GET", "/whoami")
    assert whoami.json()["affinity"] == "new"  # the token itself has expired
    assert whoami.json()["session_id"] != session_id
    assert "stickyctx" in whoami.cookies
    assert browser.request("GET", "/history").json()["messages"] == []


def test_a_valid_token_for_a_session_the_store_never_saw_is_not_adopted_once_idle(
    edge: Edge,
) -> None:
    """A token the server signed whose session holds nothing (never written, or lost) cannot
    revive its id after the idle lifetime: touching the context starts a new id.
    """
    codec = TokenCodec((KEY_A,), max_age=ABSOLUTE)
    unknown = "A" * 24
    token = codec.sign(unknown, "n1", int(edge.clock()) - IDLE - 1)
    body = edge.request("GET", "/history", headers=[("Cookie", f"stickyctx={token}")]).json()
    assert body["session_id"] != unknown
    assert body["messages"] == []
    assert body["affinity"] == "new"


@pytest.mark.parametrize("header", [
    pytest.param("Cookie", id="cookie"),
    pytest.param("X-Stickyctx-Session", id="session-header"),
])
@pytest.mark.parametrize("claimed", [
    pytest.param("live", id="the-id-of-a-live-session"),
    pytest.param("A" * 24, id="an-id-of-the-right-shape"),
    pytest.param("../../etc/passwd", id="a-path"),
])
def test_an_id_the_server_did_not_issue_as_a_token_is_never_adopted(
    edge: Edge, header: str, claimed: str,
) -> None:
    victim = Browser(edge).chat("private").json()["session_id"]
    value = victim if claimed == "live" else claimed
    sent = f"stickyctx={value}" if header == "Cookie" else value
    reply = edge.request("POST", "/chat", headers=[(header, sent)], json={"message": "mine"})
    body = reply.json()
    assert reply.status == 200
    assert body["session_id"] not in (victim, value)
    assert body["affinity"] == "new"
    assert contents(body) == ["mine", "echo: mine"]
