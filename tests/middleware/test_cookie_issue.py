"""When cookies and ``Vary`` are sent, excluded paths, and the cookie options, on both edges.

What Starlette and Flask users expect of a session: no ``Set-Cookie`` on routes that never use
it, ``Vary: Cookie`` when the response depends on it, browser-session and ``Partitioned``
cookies on request, and a loud hint when ``Secure`` cookies go out over plain http.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, Reply, make_edge

SESSION_HEADER = "X-Stickyctx-Session"


@pytest.fixture(params=EDGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get(kind: str, clock: FakeClock, path: str, headers: Any = (), **changes: Any) -> Reply:
    return make_edge(kind, make_settings(**changes), clock=clock).request(
        "GET", path, headers=headers)


# -- lazy issue --------------------------------------------------------------------------------

def test_a_route_that_never_uses_the_session_sets_no_cookie(kind: str, clock: FakeClock) -> None:
    reply = get(kind, clock, "/page")
    assert reply.status == 200
    assert reply.all("set-cookie") == []
    assert reply.all("vary") == []
    assert reply.header("x-stickyctx-affinity") == "new"  # the hint headers stay


def test_a_route_that_uses_the_session_sets_both_cookies_and_vary(kind: str,
                                                                  clock: FakeClock) -> None:
    reply = get(kind, clock, "/page?use=1")
    assert set(reply.cookies) == {"stickyctx", "stickyctx_node"}
    assert reply.all("vary") == ["Cookie"]


def test_the_session_is_created_by_the_first_request_that_uses_it(kind: str,
                                                                  clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    for _ in range(3):
        assert browser.request("GET", "/page").all("set-cookie") == []
    first = browser.request("POST", "/chat", json={"message": "hello"})
    assert first.json()["affinity"] == "new"
    assert set(first.cookies) == {"stickyctx", "stickyctx_node"}
    # Once it exists, a route that does not use it neither re-sends nor drops it.
    assert browser.request("GET", "/page").all("set-cookie") == []
    later = browser.request("GET", "/history")
    assert later.json()["session_id"] == first.json()["session_id"]
    assert [m["content"] for m in later.json()["messages"]] == ["hello", "echo: hello"]
    assert later.all("set-cookie") == []
    assert later.all("vary") == ["Cookie"]


def test_untouched_new_sessions_leave_no_load_behind(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(), clock=clock)
    for _ in range(5):
        edge.request("GET", "/page")
    assert not edge.store.calls  # nothing reached the store


def test_eager_issue_sends_a_new_sessions_cookies_on_its_first_response(
    kind: str, clock: FakeClock
) -> None:
    reply = get(kind, clock, "/page", cookie_issue="eager")
    assert set(reply.cookies) == {"stickyctx", "stickyctx_node"}
    assert reply.all("vary") == []  # the response itself did not depend on the session


def test_an_existing_session_is_reissued_even_when_unused(kind: str, clock: FakeClock) -> None:
    """Lazy issue is for new sessions only: a missing routing cookie is set again."""
    edge = make_edge(kind, make_settings(), clock=clock)
    token = edge.request("GET", "/page?use=1").cookies["stickyctx"].value
    reply = edge.request("GET", "/page", headers=[("Cookie", f"stickyctx={token}")])
    assert set(reply.cookies) == {"stickyctx_node"}
    assert reply.header("x-stickyctx-affinity") == "hit"


def test_a_header_client_asking_for_a_session_always_gets_one(kind: str,
                                                              clock: FakeClock) -> None:
    reply = get(kind, clock, "/page", headers=[(SESSION_HEADER, "new")])
    assert reply.header(SESSION_HEADER.lower())
    assert reply.all("set-cookie") == []
    used = get(kind, clock, "/page?use=1", headers=[(SESSION_HEADER, "new")])
    assert used.all("vary") == [SESSION_HEADER]


# -- Vary --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("app_vary", "expected"), [
    pytest.param("Accept-Encoding", ["Accept-Encoding", "Cookie"], id="added-to-the-apps"),
    pytest.param("accept-encoding, cookie", ["accept-encoding, cookie"], id="already-there"),
    pytest.param("*", ["*"], id="star"),
])
def test_vary_is_merged_with_the_apps_own(kind: str, clock: FakeClock, app_vary: str,
                                          expected: list[str]) -> None:
    reply = get(kind, clock, f"/page?use=1&vary={app_vary}")
    assert reply.all("vary") == expected


# -- excluded paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/page", "/static/app.js"])
def test_an_excluded_path_is_left_alone(kind: str, clock: FakeClock, path: str) -> None:
    edge = make_edge(kind, make_settings(cookie_issue="eager", exclude_paths=("/page", "/static")),
                     clock=clock)
    reply = edge.request("GET", path)
    assert reply.status == 200
    assert reply.json() == {"has_handle": False}
    assert reply.all("set-cookie") == []
    assert [k for k, _ in reply.headers if k.startswith("x-stickyctx")] == []
    assert not edge.store.calls


def test_a_path_that_only_starts_like_an_excluded_one_is_not_excluded(
    kind: str, clock: FakeClock
) -> None:
    reply = get(kind, clock, "/page?use=1", exclude_paths=("/pag", "/page/sub"))
    assert reply.json() == {"has_handle": True}
    assert set(reply.cookies) == {"stickyctx", "stickyctx_node"}


# -- cookie options ----------------------------------------------------------------------------

def test_partitioned_cookies(kind: str, clock: FakeClock) -> None:
    reply = get(kind, clock, "/page?use=1", cookie_partitioned=True, cookie_samesite="none",
                cookie_secure=True)
    for name in ("stickyctx", "stickyctx_node"):
        header = next(h for h in reply.all("set-cookie") if h.startswith(name + "="))
        assert header.endswith("; Secure; SameSite=None; Partitioned")


def test_browser_session_cookies_have_no_max_age_and_still_expire_on_destroy(
    kind: str, clock: FakeClock
) -> None:
    edge = make_edge(kind, make_settings(cookie_persistent=False), clock=clock)
    browser = Browser(edge)
    started = browser.request("POST", "/chat", json={"message": "hi"})
    for cookie in started.cookies.values():
        assert "max-age" not in cookie.attrs
        assert "expires" not in cookie.attrs
    ended = browser.request("POST", "/destroy")
    assert set(ended.cookies) == {"stickyctx", "stickyctx_node"}
    for cookie in ended.cookies.values():
        assert (cookie.value, cookie.attrs["max-age"]) == ("", "0")


# -- plain http --------------------------------------------------------------------------------

def test_a_secure_cookie_over_plain_http_to_a_test_client_is_warned_about_once(
    kind: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    edge = make_edge(kind, make_settings(cookie_secure=True), clock=clock)
    with caplog.at_level(logging.WARNING, logger="stickyctx"):
        edge.request("GET", "/page")  # nothing sent: nothing to warn about
        assert "plain http" not in caplog.text
        for _ in range(3):
            edge.request("GET", "/page?use=1")
    warnings = [r for r in caplog.records if "plain http" in r.getMessage()]
    assert len(warnings) == 1
    assert "STICKYCTX_DEV=1" in warnings[0].getMessage()
    assert "'testserver'" in warnings[0].getMessage() or "'localhost'" in warnings[0].getMessage()


@pytest.mark.parametrize(("changes", "headers"), [
    pytest.param({"cookie_secure": False}, [], id="not-secure"),
    pytest.param({"cookie_secure": True}, [("X-Forwarded-Proto", "https")], id="behind-tls"),
    pytest.param({"cookie_secure": True}, [("Host", "chat.example.com")], id="public-host"),
])
def test_no_warning_when_the_cookie_will_come_back(
    kind: str, clock: FakeClock, caplog: pytest.LogCaptureFixture, changes: dict[str, Any],
    headers: list[tuple[str, str]],
) -> None:
    with caplog.at_level(logging.WARNING, logger="stickyctx"):
        reply = get(kind, clock, "/page?use=1", headers=headers, **changes)
    assert reply.cookies
    assert "plain http" not in caplog.text


# -- expiry ------------------------------------------------------------------------------------

def test_an_active_chat_outlives_the_24_hour_mark_and_an_idle_one_expires(
    kind: str, clock: FakeClock
) -> None:
    """Defaults: the idle expiry (30 min) slides with every use, under a 14-day cap."""
    edge = make_edge(kind, make_settings(), clock=clock)
    browser = Browser(edge)
    started = clock()
    session_id = browser.request("POST", "/chat", json={"message": "turn 0"}).json()["session_id"]
    for turn in range(1, 91):  # a turn every 20 minutes for 30 hours
        clock.advance(20 * 60)
        reply = browser.request("POST", "/chat", json={"message": f"turn {turn}"})
        assert reply.json()["session_id"] == session_id
    assert clock() - started == 30 * 3600
    kept = browser.request("GET", "/history").json()
    assert kept["session_id"] == session_id
    assert len(kept["messages"]) == 2 * 91

    clock.advance(31 * 60)  # idle past STICKYCTX_IDLE_TTL
    expired = browser.request("GET", "/history").json()
    assert expired["session_id"] != session_id
    assert expired["messages"] == []
