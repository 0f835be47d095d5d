"""The turn lock: two requests of one session never interleave their turns.

The first request pauses mid-turn (after its user message) at a gate that opens only when the
store refuses the second request the session's turn lease; a broken lock leaves the gate shut.
ASGI requests run as asyncio tasks in one event loop, WSGI requests in threads.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, TIMEOUT, Browser, Edge, Req, make_edge


def chat(message: str, cookies: list[tuple[str, str]], **extra: Any) -> Req:
    return Req("POST", "/chat", tuple(cookies), {"message": message, **extra})


def contents(reply_body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in reply_body["messages"]]


def started(kind: str, clock: FakeClock, **changes: Any) -> tuple[Edge, Browser]:
    edge = make_edge(kind, make_settings(**{"turn_timeout": TIMEOUT, **changes}), clock=clock)
    browser = Browser(edge)
    assert browser.request("GET", "/whoami").status == 200  # the session exists, still empty
    return edge, browser


def refusals(edge: Edge) -> int:
    """Turn leases refused (the store counts them)."""
    return edge.store.refused


@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize(("mode", "explicit"), [
    pytest.param("auto", False, id="auto"),
    pytest.param("auto", True, id="auto-with-explicit-turn"),
    pytest.param("manual", True, id="manual-with-explicit-turn"),
])
def test_concurrent_turns_of_one_session_are_serialized(
    kind: str, clock: FakeClock, mode: str, explicit: bool,
) -> None:
    edge, browser = started(kind, clock, turn_lock=mode)
    cookies = browser.cookie_header()
    extra = {"explicit_turn": True} if explicit else {}
    first, second = edge.overlap(chat("u1", cookies, pause=True, **extra),
                                 chat("u2", cookies, **extra))
    assert (first.status, second.status) == (200, 200)
    assert contents(first.json()) == ["u1", "echo: u1"]
    assert contents(second.json()) == ["u1", "echo: u1", "u2", "echo: u2"]
    assert refusals(edge) >= 1  # the second request really waited for the turn
    history = browser.request("GET", "/history").json()
    assert contents(history) == ["u1", "echo: u1", "u2", "echo: u2"]


@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize(("mode", "explicit"), [
    pytest.param("auto", False, id="auto"),
    pytest.param("manual", True, id="manual-with-explicit-turn"),
])
def test_a_busy_session_answers_409_when_the_timeout_is_zero(
    kind: str, clock: FakeClock, mode: str, explicit: bool,
) -> None:
    edge, browser = started(kind, clock, turn_lock=mode, turn_timeout=0)
    cookies = browser.cookie_header()
    extra = {"explicit_turn": True} if explicit else {}
    first, second = edge.overlap(chat("u1", cookies, pause=True, **extra),
                                 chat("u2", cookies, **extra))
    assert first.status == 200
    assert second.status == 409
    assert (second.header("content-type") or "").startswith("application/json")
    assert second.json()["error"] == "session_busy"
    assert second.header("x-stickyctx-affinity") == "hit"
    assert second.all("set-cookie") == []
    # The refused request stored nothing, and the lock is free again afterwards.
    assert contents(browser.request("GET", "/history").json()) == ["u1", "echo: u1"]
    assert browser.chat("u3").status == 200


@pytest.mark.parametrize("kind", EDGES)
def test_different_sessions_do_not_wait_for_each_other(kind: str, clock: FakeClock) -> None:
    edge, browser = started(kind, clock, turn_timeout=0)
    other = Browser(edge)
    other.request("GET", "/whoami")
    first, second = edge.overlap(chat("mine", browser.cookie_header(), pause=True),
                                 chat("theirs", other.cookie_header()), open_after_second=True)
    assert (first.status, second.status) == (200, 200)
    assert contents(second.json()) == ["theirs", "echo: theirs"]  # answered while u1 was held
    assert contents(first.json()) == ["mine", "echo: mine"]


@pytest.mark.parametrize("kind", EDGES)
def test_the_turn_is_released_when_the_app_fails(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(turn_timeout=0), clock=clock)
    browser = Browser(edge)
    assert browser.request("POST", "/fail").status == 500
    assert browser.chat("next").status == 200  # not 409: the failed request let go


@pytest.mark.parametrize("kind", EDGES)
def test_manual_mode_takes_no_lock_by_itself(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(turn_lock="manual"), clock=clock)
    browser = Browser(edge)
    assert browser.chat("hi").status == 200
    assert [name for name, _ in edge.store.calls if "lease" in name] == []


@pytest.mark.parametrize("kind", EDGES)
def test_rotate_waits_for_a_turn_in_progress(kind: str, clock: FakeClock) -> None:
    """A rotation (after a login, say) while another request is mid-turn must not split that
    turn: the rotation waits, and the whole turn moves to the new id.
    """
    edge, browser = started(kind, clock)
    cookies = browser.cookie_header()
    first, rotated = edge.overlap(chat("u1", cookies, pause=True),
                                  Req("POST", "/rotate", tuple(cookies)))
    assert (first.status, rotated.status) == (200, 200)
    assert first.json()["session_id"] == rotated.json()["old"]
    assert contents(rotated.json()) == ["u1", "echo: u1"]
    browser.jar["stickyctx"] = rotated.cookies["stickyctx"].value
    history = browser.request("GET", "/history").json()
    assert history["session_id"] == rotated.json()["new"]
    assert contents(history) == ["u1", "echo: u1"]
