"""Cookie attributes and the routing cookie, on both edges."""

from __future__ import annotations

from typing import Any

import pytest

from stickyctx import ConfigError, Settings

from ..conftest import KEY_A, FakeClock, make_settings
from ..edges import EDGES, Browser, make_edge


@pytest.fixture(params=EDGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def first_cookies(kind: str, clock: FakeClock, **changes: Any) -> dict[str, Any]:
    edge = make_edge(kind, make_settings(**changes), clock=clock)
    reply = edge.request("GET", "/whoami")
    assert reply.status == 200
    return reply.cookies


def test_default_attributes(kind: str, clock: FakeClock) -> None:
    cookies = first_cookies(kind, clock, cookie_secure=None)  # the default: Secure
    for name in ("stickyctx", "stickyctx_node"):
        attrs = cookies[name].attrs
        assert "httponly" in attrs
        assert attrs["samesite"] == "Lax"
        assert "secure" in attrs
        assert attrs["path"] == "/"
        assert "domain" not in attrs
        assert cookies[name].max_age == 14 * 86400  # the whole absolute lifetime of a new session


@pytest.mark.parametrize("changes", [
    pytest.param({"dev": True, "cookie_secure": None}, id="dev-mode"),
    pytest.param({"cookie_secure": False}, id="cookie_secure-false"),
])
def test_secure_is_off_only_by_configuration(
    kind: str, clock: FakeClock, changes: dict[str, Any],
) -> None:
    cookies = first_cookies(kind, clock, **changes)
    for cookie in cookies.values():
        assert "secure" not in cookie.attrs
        assert "httponly" in cookie.attrs


def test_configured_path_domain_and_samesite(kind: str, clock: FakeClock) -> None:
    cookies = first_cookies(kind, clock, cookie_path="/chat", cookie_domain="example.test",
                            cookie_samesite="strict")
    for cookie in cookies.values():
        assert cookie.attrs["path"] == "/chat"
        assert cookie.attrs["domain"] == "example.test"
        assert cookie.attrs["samesite"] == "Strict"


def test_max_age_is_the_remaining_absolute_lifetime(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(idle_ttl=600, absolute_ttl=3600), clock=clock)
    browser = Browser(edge)
    assert browser.chat("hi").cookies["stickyctx"].max_age == 3600
    clock.advance(100)
    rotated = browser.request("POST", "/rotate")  # re-issues the token mid-life
    assert rotated.cookies["stickyctx"].max_age == 3500
    assert rotated.cookies["stickyctx_node"].max_age == 3500


def test_host_prefix(kind: str, clock: FakeClock) -> None:
    settings = make_settings(cookie_name="__Host-stickyctx", cookie_secure=True)
    edge = make_edge(kind, settings, clock=clock)
    browser = Browser(edge)
    first = browser.chat("hello")
    cookie = first.cookies["__Host-stickyctx"]
    assert "secure" in cookie.attrs
    assert cookie.attrs["path"] == "/"
    assert "domain" not in cookie.attrs
    second = browser.request("GET", "/history").json()
    assert second["session_id"] == first.json()["session_id"]
    assert second["affinity"] == "hit"
    assert len(second["messages"]) == 2


@pytest.mark.parametrize("changes", [
    pytest.param({"cookie_domain": "example.test"}, id="with-domain"),
    pytest.param({"cookie_secure": False}, id="without-secure"),
    pytest.param({"cookie_path": "/chat"}, id="with-path"),
])
def test_host_prefix_with_conflicting_attributes_is_a_config_error(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(secret_keys=(KEY_A,), cookie_name="__Host-stickyctx",
                 **{"cookie_secure": True, **changes})
    assert info.value.variable == "STICKYCTX_COOKIE_NAME"


def test_routing_cookie_carries_the_owner(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(node_id="node-7"), clock=clock)
    reply = edge.request("GET", "/whoami")
    assert reply.cookies["stickyctx_node"].value == "node-7"
    assert reply.header("x-stickyctx-node") == "node-7"


@pytest.mark.parametrize("route", [
    pytest.param("evil", id="another-node"),
    pytest.param("", id="empty"),
    pytest.param("n1; stickyctx_node=n2", id="duplicated"),
    pytest.param("\u00e9\u00ff", id="non-ascii"),
])
def test_a_tampered_routing_cookie_causes_no_harm_and_is_reset(
    kind: str, clock: FakeClock, route: str,
) -> None:
    edge = make_edge(kind, clock=clock)
    browser = Browser(edge)
    first = browser.chat("hello").json()
    browser.jar["stickyctx_node"] = route
    reply = browser.request("POST", "/chat", json={"message": "again"})
    body = reply.json()
    assert reply.status == 200
    assert body["session_id"] == first["session_id"]
    assert body["affinity"] == "hit"
    assert [m["content"] for m in body["messages"]] == ["hello", "echo: hello",
                                                        "again", "echo: again"]
    assert set(reply.cookies) == {"stickyctx_node"}  # the session token is not re-issued
    assert reply.cookies["stickyctx_node"].value == "n1"
    # Once repaired, nothing is set again.
    assert browser.request("GET", "/whoami").all("set-cookie") == []


def test_a_missing_routing_cookie_is_set_again(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, clock=clock)
    browser = Browser(edge)
    browser.request("GET", "/whoami")
    del browser.jar["stickyctx_node"]
    reply = browser.request("GET", "/whoami")
    assert reply.json()["affinity"] == "hit"
    assert set(reply.cookies) == {"stickyctx_node"}


def test_custom_cookie_names(kind: str, clock: FakeClock) -> None:
    edge = make_edge(kind, make_settings(cookie_name="sid", route_cookie="route"), clock=clock)
    browser = Browser(edge)
    first = browser.chat("hello")
    assert set(first.cookies) == {"sid", "route"}
    again = browser.request("GET", "/history").json()
    assert again["session_id"] == first.json()["session_id"]
    assert len(again["messages"]) == 2
