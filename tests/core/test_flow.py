"""The request flow's decisions: what a request carries in, and the headers that go back."""

from __future__ import annotations

import time

import pytest

from stickyctx.core.cookies import CookieSpec
from stickyctx.core.flow import (
    AFFINITY_HEADER,
    ENDPOINT_HEADER,
    NODE_HEADER,
    SESSION_HEADER,
    FlowConfig,
    Membership,
    SessionState,
    identify,
    response_headers,
)
from stickyctx.core.ids import new_session_id
from stickyctx.core.nodes import NodeSpec
from stickyctx.core.placement import place
from stickyctx.core.tokens import TokenCodec
from tests.conftest import KEY_A, KEY_B

TTL = 86400
CONFIG = FlowConfig(node_id="n1", cookie_name="stickyctx", route_cookie="stickyctx_node",
                    cookie=CookieSpec(secure=True), absolute_ttl=TTL, balance_factor=0.25)
MEMBERS = Membership((NodeSpec("n1", "10.0.0.1:8000"), NodeSpec("n2", "10.0.0.2:8000")))
CODEC = TokenCodec([KEY_A], max_age=TTL)

Headers = list[tuple[str, str]]


def set_cookies(headers: Headers) -> dict[str, tuple[str, dict[str, str]]]:
    """``Set-Cookie`` headers by cookie name: value and attributes."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for name, value in headers:
        if name != "set-cookie":
            continue
        first, *attrs = value.split("; ")
        cookie, _, cookie_value = first.partition("=")
        assert cookie not in out, f"{cookie} is set twice"
        out[cookie] = (cookie_value, dict(a.partition("=")[::2] for a in attrs))
    return out


def single(headers: Headers, name: str) -> str | None:
    values = [v for n, v in headers if n == name]
    assert len(values) <= 1, f"{name} appears {len(values)} times"
    return values[0] if values else None


def cookie_request(token: str, route: str | None = None) -> list[str]:
    header = f"stickyctx={token}"
    if route is not None:
        header += f"; stickyctx_node={route}"
    return [header]


def test_a_request_without_a_session_starts_one_and_sets_both_cookies() -> None:
    now = time.time()
    state = identify([], None, CODEC, CONFIG, MEMBERS, now)
    assert state.affinity == "new"
    assert state.is_new
    assert state.transport == "cookie"
    assert state.owner == place(state.session_id, MEMBERS.nodes)
    assert state.created == int(now)

    state.used = True  # the app used it (unused, it is not sent: see the lazy tests)
    headers = response_headers(state, CODEC, CONFIG, MEMBERS, now)
    assert single(headers, NODE_HEADER) == state.owner
    assert single(headers, AFFINITY_HEADER) == "new"
    assert single(headers, ENDPOINT_HEADER) == MEMBERS.address(state.owner)
    assert single(headers, SESSION_HEADER) is None
    cookies = set_cookies(headers)
    token, attrs = cookies["stickyctx"]
    claims = CODEC.verify(token, now)
    assert claims is not None
    assert (claims.session_id, claims.owner, claims.created) == (state.session_id, state.owner,
                                                                 int(now))
    assert attrs["Max-Age"] == str(TTL)
    assert {"HttpOnly", "Secure"} <= set(attrs)
    assert cookies["stickyctx_node"][0] == state.owner


def test_every_new_session_gets_its_own_id() -> None:
    now = time.time()
    ids = {identify([], None, CODEC, CONFIG, MEMBERS, now).session_id for _ in range(100)}
    assert len(ids) == 100


def test_a_hit_with_the_right_route_cookie_sets_no_cookie() -> None:
    now = time.time()
    session_id = new_session_id()
    token = CODEC.sign(session_id, "n1", int(now) - 60)
    state = identify(cookie_request(token, "n1"), None, CODEC, CONFIG, MEMBERS, now)
    assert (state.session_id, state.owner, state.affinity) == (session_id, "n1", "hit")
    assert state.created == int(now) - 60
    assert not state.reissue
    assert state.route_ok
    headers = response_headers(state, CODEC, CONFIG, MEMBERS, now)
    assert set_cookies(headers) == {}
    assert single(headers, NODE_HEADER) == "n1"
    assert single(headers, AFFINITY_HEADER) == "hit"


@pytest.mark.parametrize("route", [None, "n2", "", "evil;x"], ids=["absent", "other", "empty",
                                                                   "garbage"])
def test_a_wrong_route_cookie_is_set_again_and_the_session_cookie_is_not(
    route: str | None,
) -> None:
    now = time.time()
    created = int(now) - 100
    token = CODEC.sign(new_session_id(), "n1", created)
    state = identify(cookie_request(token, route), None, CODEC, CONFIG, MEMBERS, now)
    assert state.affinity == "hit"
    assert not state.route_ok
    cookies = set_cookies(response_headers(state, CODEC, CONFIG, MEMBERS, now))
    assert set(cookies) == {"stickyctx_node"}
    value, attrs = cookies["stickyctx_node"]
    assert value == "n1"
    assert attrs["Max-Age"] == str(created + TTL - int(now))  # lives as long as the session


def test_a_session_owned_by_another_live_node_is_a_miss() -> None:
    now = time.time()
    token = CODEC.sign(new_session_id(), "n2", int(now))
    state = identify(cookie_request(token, "n2"), None, CODEC, CONFIG, MEMBERS, now)
    assert (state.owner, state.affinity, state.reissue) == ("n2", "miss", False)
    headers = response_headers(state, CODEC, CONFIG, MEMBERS, now)
    assert single(headers, NODE_HEADER) == "n2"
    assert single(headers, ENDPOINT_HEADER) == "10.0.0.2:8000"
    assert single(headers, AFFINITY_HEADER) == "miss"
    assert set_cookies(headers) == {}


def test_a_node_joining_does_not_move_a_pinned_session() -> None:
    now = time.time()
    grown = Membership((*MEMBERS.nodes, *(NodeSpec(f"x{i}") for i in range(30))))
    token = CODEC.sign(new_session_id(), "n2", int(now))
    state = identify(cookie_request(token, "n2"), None, CODEC, CONFIG, grown, now)
    assert (state.owner, state.affinity, state.reissue) == ("n2", "miss", False)


def test_a_session_whose_owner_is_gone_fails_over_and_is_reissued() -> None:
    now = time.time()
    session_id = new_session_id()
    created = int(now) - 500
    token = CODEC.sign(session_id, "gone", created)
    state = identify(cookie_request(token, "gone"), None, CODEC, CONFIG, MEMBERS, now)
    assert state.affinity == "failover"
    assert state.session_id == session_id
    assert state.owner == place(session_id, MEMBERS.nodes)
    assert state.reissue
    cookies = set_cookies(response_headers(state, CODEC, CONFIG, MEMBERS, now))
    claims = CODEC.verify(cookies["stickyctx"][0], now)
    assert claims is not None
    assert (claims.session_id, claims.owner, claims.created) == (session_id, state.owner, created)
    assert cookies["stickyctx_node"][0] == state.owner


def test_a_token_signed_with_an_older_key_is_reissued_with_the_newest() -> None:
    now = time.time()
    rotated = TokenCodec([KEY_A, KEY_B], max_age=TTL)
    session_id = new_session_id()
    old_token = TokenCodec([KEY_B], max_age=TTL).sign(session_id, "n1", int(now))
    state = identify(cookie_request(old_token, "n1"), None, rotated, CONFIG, MEMBERS, now)
    assert (state.session_id, state.affinity, state.reissue) == (session_id, "hit", True)
    cookies = set_cookies(response_headers(state, rotated, CONFIG, MEMBERS, now))
    claims = CODEC.verify(cookies["stickyctx"][0], now)  # the newest key alone verifies it
    assert claims is not None
    assert claims.key_index == 0
    assert claims.session_id == session_id


def _unusable(now: float) -> list[str]:
    session_id = new_session_id()
    good = CODEC.sign(session_id, "n1", int(now))
    return [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered
        TokenCodec([KEY_B], max_age=TTL).sign(session_id, "n1", int(now)),  # unknown key
        CODEC.sign(session_id, "n1", int(now) - TTL - 10),  # expired session
        "garbage",
    ]


@pytest.mark.parametrize("index", range(4), ids=["tampered", "unknown-key", "expired", "garbage"])
def test_an_unusable_token_starts_a_fresh_session(index: int) -> None:
    now = time.time()
    token = _unusable(now)[index]
    state = identify(cookie_request(token, "n1"), None, CODEC, CONFIG, MEMBERS, now)
    assert state.affinity == "new"
    assert state.reissue
    state = identify([], token, CODEC, CONFIG, MEMBERS, now)
    assert state.affinity == "new"
    assert state.transport == "header"


def test_two_session_cookies_start_a_fresh_session() -> None:
    now = time.time()
    one = CODEC.sign(new_session_id(), "n1", int(now))
    two = CODEC.sign(new_session_id(), "n1", int(now))
    for headers in ([f"stickyctx={one}; stickyctx={two}"], [f"stickyctx={one}",
                                                             f"stickyctx={two}"]):
        state = identify(headers, None, CODEC, CONFIG, MEMBERS, now)
        assert state.affinity == "new"
        assert CODEC.verify(one, now) is not None  # each cookie alone was fine


def test_a_destroyed_session_expires_both_cookies() -> None:
    now = time.time()
    token = CODEC.sign(new_session_id(), "n1", int(now))
    state = identify(cookie_request(token, "n1"), None, CODEC, CONFIG, MEMBERS, now)
    state.destroyed = True
    state.reissue = True  # even a pending re-issue yields to the destruction
    cookies = set_cookies(response_headers(state, CODEC, CONFIG, MEMBERS, now))
    assert set(cookies) == {"stickyctx", "stickyctx_node"}
    for value, attrs in cookies.values():
        assert value == ""
        assert attrs["Max-Age"] == "0"
        assert "Expires" in attrs


def test_the_header_transport_carries_the_token_back_in_the_header() -> None:
    now = time.time()
    state = identify([], "new", CODEC, CONFIG, MEMBERS, now)
    assert (state.affinity, state.transport) == ("new", "header")
    headers = response_headers(state, CODEC, CONFIG, MEMBERS, now)
    assert set_cookies(headers) == {}
    token = single(headers, SESSION_HEADER)
    assert token is not None
    claims = CODEC.verify(token, now)
    assert claims is not None
    assert claims.session_id == state.session_id

    again = identify([], f" {token} ", CODEC, CONFIG, MEMBERS, now)
    assert again.session_id == state.session_id
    assert again.transport == "header"
    assert again.affinity in ("hit", "miss")
    assert not again.reissue  # a valid token is not sent again
    assert single(response_headers(again, CODEC, CONFIG, MEMBERS, now), SESSION_HEADER) is None


@pytest.mark.parametrize("ask", ["", "new", "NEW", "  "])
def test_a_header_client_asks_for_a_session(ask: str) -> None:
    state = identify([], ask, CODEC, CONFIG, MEMBERS, time.time())
    assert (state.affinity, state.transport) == ("new", "header")


def test_the_session_header_wins_over_a_cookie() -> None:
    now = time.time()
    in_cookie = CODEC.sign(new_session_id(), "n1", int(now))
    in_header_id = new_session_id()
    in_header = CODEC.sign(in_header_id, "n1", int(now))
    state = identify(cookie_request(in_cookie, "n1"), in_header, CODEC, CONFIG, MEMBERS, now)
    assert state.session_id == in_header_id
    assert state.transport == "header"


def test_a_destroyed_header_session_sends_an_empty_header() -> None:
    now = time.time()
    token = CODEC.sign(new_session_id(), "n1", int(now))
    state = identify([], token, CODEC, CONFIG, MEMBERS, now)
    state.destroyed = True
    headers = response_headers(state, CODEC, CONFIG, MEMBERS, now)
    assert single(headers, SESSION_HEADER) == ""
    assert set_cookies(headers) == {}


def test_no_endpoint_header_without_an_address() -> None:
    now = time.time()
    bare = Membership((NodeSpec("n1"), NodeSpec("n2")))
    state = SessionState(new_session_id(), "n2", int(now), "miss", "cookie")
    headers = response_headers(state, CODEC, CONFIG, bare, now)
    assert single(headers, ENDPOINT_HEADER) is None
    assert single(headers, NODE_HEADER) == "n2"
