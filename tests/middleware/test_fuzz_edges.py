"""Property-based fuzzing of what a client controls, through both middlewares.

Hypothesis draws cookie headers (garbage, near-tokens, duplicates, the routing cookie), session
headers, idempotency keys, turn ids and message bodies of every JSON type and any text, against
every route of the test chat app, on one edge that also serves a victim's conversation. Whatever
arrives: no 5xx, a JSON answer, never the victim's data, and the victim's history unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stickyctx.session.services import Services

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, Edge, make_edge

SECRET = "victim-secret-7f3a"

_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
_token_like = st.builds(lambda a, b, c: f"{a}.{b}.{c}", _header_text, _header_text, _header_text)
_cookie_pair = st.tuples(
    st.sampled_from(["stickyctx", "stickyctx_route", "__Host-stickyctx", "other", ""]),
    st.one_of(_header_text, _token_like),
).map(lambda kv: f"{kv[0]}={kv[1]}")
_cookies = st.lists(_cookie_pair, max_size=4).map("; ".join)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)
_message = st.one_of(st.text(max_size=200), st.text(max_size=3).map(lambda t: t * 700),
                     _json_value)
_routes = st.sampled_from([("POST", "/chat"), ("GET", "/history"), ("GET", "/whoami"),
                           ("POST", "/rotate"), ("POST", "/clear"), ("POST", "/destroy")])


@st.composite
def requests(draw: st.DrawFn, victim_token: str) -> tuple[str, str, list[tuple[str, str]], Any]:
    method, path = draw(_routes)
    headers: list[tuple[str, str]] = []
    cookies = draw(_cookies)
    if draw(st.booleans()):  # a real token with one character changed
        i = draw(st.integers(0, len(victim_token) - 1))
        other = draw(st.sampled_from([c for c in "AQgw-_.x9=" if c != victim_token[i]]))
        cookies += f"; stickyctx={victim_token[:i]}{other}{victim_token[i + 1:]}"
    if cookies:
        headers.append(("Cookie", cookies))
    if draw(st.booleans()):
        headers.append(("X-Stickyctx-Session", draw(st.one_of(_header_text, _token_like))))
    if draw(st.booleans()):
        headers.append(("Idempotency-Key", draw(_header_text)))
    if draw(st.booleans()):  # never let a client forge the middleware's annotations
        headers.append(("X-Stickyctx-Owner", draw(_header_text)))
    body: Any = None
    if method == "POST":
        body = {"message": draw(_message)}
        if draw(st.booleans()):
            body["turn_id"] = draw(_json_value)
    return method, path, headers, body


@pytest.fixture(params=EDGES)
def victim(request: pytest.FixtureRequest) -> tuple[Edge, Browser]:
    edge = make_edge(request.param, make_settings(), clock=FakeClock())
    browser = Browser(edge)
    assert browser.chat(SECRET).status == 200
    return edge, browser


def _presents_the_victims_token(edge: Edge, victim_id: str,
                                headers: list[tuple[str, str]]) -> bool:
    """Whether a drawn value still verifies as the victim's token (a changed character that
    only carried base64 padding bits): that request is the victim's own, not an attack."""
    codec = Services(edge.settings).codec
    values = [v for k, v in headers if k == "X-Stickyctx-Session"]
    for name, value in headers:
        if name == "Cookie":
            values += [part.partition("=")[2] for part in value.split(";")]
    return any((claims := codec.verify(v.strip(), edge.clock())) is not None
               and claims.session_id == victim_id for v in values)


def _fuzz(victim: tuple[Edge, Browser], data: st.DataObject) -> None:
    edge, browser = victim
    method, path, headers, body = data.draw(requests(browser.jar["stickyctx"]))
    victim_id = Services(edge.settings).codec.verify(browser.jar["stickyctx"], edge.clock())
    assert victim_id is not None
    assume(not _presents_the_victims_token(edge, victim_id.session_id, headers))
    reply = edge.request(method, path, headers=headers, json=body)
    assert reply.status < 500, (reply.status, reply.body[:300])
    json.loads(reply.body)  # always a JSON answer (the app's, or the middleware's error)
    assert SECRET.encode() not in reply.body
    for name, value in reply.headers:
        assert SECRET not in value, name


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_whatever_a_client_sends_gets_no_5xx_and_no_one_elses_data(
    victim: tuple[Edge, Browser], data: st.DataObject,
) -> None:
    _fuzz(victim, data)
    browser = victim[1]
    history = browser.request("GET", "/history").json()["messages"]
    assert [m["content"] for m in history] == [SECRET, "echo: " + SECRET]
