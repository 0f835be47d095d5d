"""Signing-key rotation on both edges: old tokens keep their session and are re-issued."""

from __future__ import annotations

import pytest

from stickyctx.core.tokens import TokenCodec

from ..conftest import KEY_A, KEY_B, FakeClock, make_settings
from ..edges import EDGES, Browser, Edge, make_edge

OLD = KEY_B
NEW = KEY_A
ANOTHER = "c" * 40


@pytest.fixture(params=EDGES)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def started_under_old_key(kind: str, clock: FakeClock) -> tuple[Edge, Browser, str]:
    before = make_edge(kind, make_settings(secret_keys=(OLD,)), clock=clock)
    browser = Browser(before)
    session_id = browser.chat("before rotation").json()["session_id"]
    return before, browser, session_id


def test_a_token_signed_by_an_older_key_is_accepted_and_reissued(
    kind: str, clock: FakeClock,
) -> None:
    before, browser, session_id = started_under_old_key(kind, clock)
    old_token = browser.jar["stickyctx"]
    after = make_edge(kind, make_settings(secret_keys=(NEW, OLD)), clock=clock,
                      store=before.store)
    browser.edge = after

    reply = browser.chat("after rotation")
    body = reply.json()
    assert reply.status == 200
    assert (body["session_id"], body["affinity"]) == (session_id, "hit")
    assert [m["content"] for m in body["messages"]] == [
        "before rotation", "echo: before rotation", "after rotation", "echo: after rotation"]

    reissued = reply.cookies["stickyctx"].value
    assert reissued != old_token
    claims = TokenCodec((NEW,), max_age=86400).verify(reissued, clock())
    assert claims is not None
    assert (claims.session_id, claims.key_index) == (session_id, 0)
    assert TokenCodec((OLD,), max_age=86400).verify(reissued, clock()) is None
    assert reply.cookies["stickyctx"].max_age == 14 * 86400  # the original lifetime, not extended

    # Under the newest key nothing needs re-issuing any more.
    again = browser.request("GET", "/history")
    assert again.all("set-cookie") == []
    assert again.json()["session_id"] == session_id
    assert len(again.json()["messages"]) == 4


def test_rotation_reissues_in_the_session_header_too(kind: str, clock: FakeClock) -> None:
    before = make_edge(kind, make_settings(secret_keys=(OLD,)), clock=clock)
    first = before.request("POST", "/chat", headers=[("X-Stickyctx-Session", "new")],
                           json={"message": "hi"})
    token = first.header("x-stickyctx-session")
    assert token
    after = make_edge(kind, make_settings(secret_keys=(NEW, OLD)), clock=clock,
                      store=before.store)
    reply = after.request("GET", "/history", headers=[("X-Stickyctx-Session", token)])
    reissued = reply.header("x-stickyctx-session")
    assert reissued
    assert reissued != token
    assert TokenCodec((NEW,), max_age=86400).verify(reissued, clock()) is not None
    assert reply.all("set-cookie") == []
    assert len(reply.json()["messages"]) == 2


@pytest.mark.parametrize("keys", [
    pytest.param((NEW,), id="old-key-retired"),
    pytest.param((NEW, ANOTHER), id="replaced-by-another"),
])
def test_a_token_signed_by_a_retired_key_starts_a_fresh_session(
    kind: str, clock: FakeClock, keys: tuple[str, ...],
) -> None:
    before, browser, session_id = started_under_old_key(kind, clock)
    after = make_edge(kind, make_settings(secret_keys=keys), clock=clock, store=before.store)
    browser.edge = after
    reply = browser.request("GET", "/history")
    body = reply.json()
    assert reply.status == 200
    assert body["session_id"] != session_id
    assert (body["affinity"], body["messages"]) == ("new", [])
    assert TokenCodec((NEW,), max_age=86400).verify(reply.cookies["stickyctx"].value,
                                                    clock()) is not None
