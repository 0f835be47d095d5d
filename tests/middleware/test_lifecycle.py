"""``rotate()``, ``destroy()`` and ``clear()`` through both edges."""

from __future__ import annotations

import pytest

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, Edge, make_edge


@pytest.fixture(params=EDGES)
def edge(request: pytest.FixtureRequest, clock: FakeClock) -> Edge:
    return make_edge(request.param, clock=clock)


def contents(body: dict[str, object]) -> list[object]:
    return [m["content"] for m in body["messages"]]  # type: ignore[attr-defined, index]


def replay(edge: Edge, token: str) -> dict[str, object]:
    reply = edge.request("GET", "/history", headers=[("Cookie", f"stickyctx={token}")])
    assert reply.status == 200
    return reply.json()  # type: ignore[no-any-return]


def test_rotate_gives_a_new_id_with_the_same_data(edge: Edge) -> None:
    browser = Browser(edge)
    old_id = browser.chat("hello").json()["session_id"]
    old_token = browser.jar["stickyctx"]

    reply = browser.request("POST", "/rotate")
    body = reply.json()
    assert reply.status == 200
    assert body["old"] == old_id
    assert body["new"] == body["session_id"] != old_id
    assert contents(body) == ["hello", "echo: hello"]
    new_token = reply.cookies["stickyctx"].value
    assert new_token != old_token

    after = browser.chat("again").json()  # the new token carries the conversation on
    assert after["session_id"] == body["new"]
    assert after["affinity"] == "hit"
    assert contents(after) == ["hello", "echo: hello", "again", "echo: again"]

    edge.clock.advance(edge.settings.rotation_grace + 1)
    stale = replay(edge, old_token)  # past the grace, the old token starts afresh, empty
    assert stale["session_id"] not in (old_id, body["new"])
    assert (stale["affinity"], stale["messages"]) == ("new", [])


@pytest.mark.parametrize("route", ["/history", "/chat"])
def test_requests_racing_a_rotation_follow_to_the_new_id(edge: Edge, route: str) -> None:
    """Requests sent with the old token before the rotated cookie arrived (a page's parallel
    fetches at login) follow to the new id, with its data, and get its token: they do not start
    an empty session whose cookie would overwrite the rotated one."""
    browser = Browser(edge)
    browser.chat("hello")
    old_token = browser.jar["stickyctx"]
    new_id = browser.request("POST", "/rotate").json()["new"]
    edge.clock.advance(edge.settings.rotation_grace / 2)
    kwargs = {"json": {"message": "racing"}} if route == "/chat" else {}
    late = edge.request("POST" if route == "/chat" else "GET", route,
                        headers=[("Cookie", f"stickyctx={old_token}")], **kwargs)
    assert late.status == 200
    assert late.json()["session_id"] == new_id
    assert contents(late.json())[:2] == ["hello", "echo: hello"]
    followed = late.cookies["stickyctx"].value  # the client is handed the new id's token
    again = replay(edge, followed)
    assert again["session_id"] == new_id
    assert contents(again)[:2] == ["hello", "echo: hello"]


def test_no_grace_means_the_old_token_starts_afresh_at_once(clock: FakeClock) -> None:
    edge = make_edge("asgi", make_settings(rotation_grace=0), clock=clock)
    browser = Browser(edge)
    browser.chat("hello")
    old_token = browser.jar["stickyctx"]
    new_id = browser.request("POST", "/rotate").json()["new"]
    stale = replay(edge, old_token)
    assert stale["session_id"] != new_id
    assert stale["messages"] == []


def test_rotate_in_header_transport_returns_the_new_token(edge: Edge) -> None:
    first = edge.request("POST", "/chat", headers=[("X-Stickyctx-Session", "new")],
                         json={"message": "hi"})
    token = first.header("x-stickyctx-session")
    assert token
    rotated = edge.request("POST", "/rotate", headers=[("X-Stickyctx-Session", token)])
    new_token = rotated.header("x-stickyctx-session")
    assert new_token
    assert new_token != token
    body = edge.request("GET", "/history", headers=[("X-Stickyctx-Session", new_token)]).json()
    assert body["session_id"] == rotated.json()["new"]
    assert contents(body) == ["hi", "echo: hi"]


def test_destroy_deletes_the_data_and_expires_the_cookies(edge: Edge) -> None:
    browser = Browser(edge)
    session_id = browser.chat("forget me").json()["session_id"]
    token = browser.jar["stickyctx"]

    reply = browser.request("POST", "/destroy")
    assert reply.status == 200
    cookies = reply.cookies
    assert set(cookies) == {"stickyctx", "stickyctx_node"}
    for cookie in cookies.values():
        assert cookie.value == ""
        assert cookie.max_age == 0
        assert "httponly" in cookie.attrs
    assert browser.jar == {}

    stale = replay(edge, token)
    assert stale["session_id"] != session_id
    assert (stale["affinity"], stale["messages"]) == ("new", [])


def test_destroy_in_header_transport_clears_the_header(edge: Edge) -> None:
    first = edge.request("POST", "/chat", headers=[("X-Stickyctx-Session", "new")],
                         json={"message": "hi"})
    token = first.header("x-stickyctx-session")
    assert token
    gone = edge.request("POST", "/destroy", headers=[("X-Stickyctx-Session", token)])
    assert gone.header("x-stickyctx-session") == ""
    assert gone.all("set-cookie") == []
    stale = edge.request("GET", "/history", headers=[("X-Stickyctx-Session", token)]).json()
    assert (stale["affinity"], stale["messages"]) == ("new", [])


def test_clear_empties_the_history_and_keeps_the_id(edge: Edge) -> None:
    browser = Browser(edge)
    session_id = browser.chat("one").json()["session_id"]
    browser.chat("two")

    reply = browser.request("POST", "/clear")
    assert reply.json()["session_id"] == session_id
    assert reply.json()["messages"] == []
    assert reply.all("set-cookie") == []

    later = browser.chat("three").json()
    assert later["session_id"] == session_id
    assert contents(later) == ["three", "echo: three"]
