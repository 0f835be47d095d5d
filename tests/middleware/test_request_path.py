"""The request path on both edges: a conversation, its headers, annotations and transports."""

from __future__ import annotations

import pytest

from stickyctx.core.nodes import NodeSpec

from ..conftest import FakeClock, make_settings
from ..edges import EDGES, Browser, Edge, make_edge, make_store


@pytest.fixture(params=EDGES)
def edge(request: pytest.FixtureRequest, clock: FakeClock) -> Edge:
    return make_edge(request.param, clock=clock)


def expected_history(*turns: str) -> list[dict[str, str]]:
    out = []
    for text in turns:
        out += [{"role": "user", "content": text},
                {"role": "assistant", "content": "echo: " + text}]
    return out


def test_five_turns_keep_their_history(edge: Edge) -> None:
    browser = Browser(edge)
    turns = [f"turn {i}" for i in range(1, 6)]
    ids = set()
    for i, text in enumerate(turns):
        reply = browser.chat(text)
        assert reply.status == 200
        body = reply.json()
        ids.add(body["session_id"])
        assert body["messages"] == expected_history(*turns[: i + 1])
        assert body["affinity"] == ("new" if i == 0 else "hit")
        assert reply.header("x-stickyctx-affinity") == body["affinity"]
        assert reply.header("x-stickyctx-node") == "n1"
        if i == 0:
            assert set(reply.cookies) == {"stickyctx", "stickyctx_node"}
        else:
            assert reply.all("set-cookie") == [], f"turn {i + 1} set a cookie again"
    assert len(ids) == 1


def test_a_new_session_is_created_with_the_first_response_without_touching_the_store(
    edge: Edge,
) -> None:
    browser = Browser(edge)
    first = browser.request("GET", "/whoami").json()
    second = browser.request("GET", "/whoami").json()
    assert (first["affinity"], first["is_new"]) == ("new", True)
    assert (second["affinity"], second["is_new"]) == ("hit", False)
    assert first["session_id"] == second["session_id"]
    assert edge.store.calls == []  # the context is loaded lazily, only when touched


def test_request_annotations_are_visible_to_the_app(edge: Edge) -> None:
    browser = Browser(edge)
    first = browser.request("GET", "/whoami").json()
    assert (first["seen_owner"], first["seen_affinity"]) == (["n1"], ["new"])
    later = browser.request("GET", "/whoami").json()
    assert (later["seen_owner"], later["seen_affinity"]) == (["n1"], ["hit"])


def test_forged_annotations_are_replaced(edge: Edge) -> None:
    forged = [("X-Stickyctx-Owner", "evil"), ("X-Stickyctx-Affinity", "hit")]
    body = edge.request("GET", "/whoami", headers=forged).json()
    assert body["seen_owner"] == ["n1"]
    assert body["seen_affinity"] == ["new"]
    assert body["affinity"] == "new"


def test_header_transport_starts_and_continues_a_session_without_cookies(edge: Edge) -> None:
    first = edge.request("POST", "/chat", headers=[("X-Stickyctx-Session", "new")],
                         json={"message": "hello"})
    assert first.status == 200
    assert first.all("set-cookie") == []
    token = first.header("x-stickyctx-session")
    assert token
    assert token != "new"
    assert first.json()["affinity"] == "new"

    second = edge.request("POST", "/chat", headers=[("X-Stickyctx-Session", token)],
                          json={"message": "again"})
    body = second.json()
    assert second.all("set-cookie") == []
    assert body["session_id"] == first.json()["session_id"]
    assert body["affinity"] == "hit"
    assert body["messages"] == expected_history("hello", "again")


def test_header_transport_ignores_the_cookie_jar(edge: Edge) -> None:
    browser = Browser(edge)
    cookie_session = browser.chat("in the cookie session").json()["session_id"]
    reply = browser.request("GET", "/history", headers=[("X-Stickyctx-Session", "new")])
    body = reply.json()
    assert body["session_id"] != cookie_session
    assert body["messages"] == []
    assert reply.all("set-cookie") == []


@pytest.mark.parametrize("how", [
    pytest.param({"headers": [("Idempotency-Key", "retry-1")]}, id="idempotency-key-header"),
    pytest.param({"turn_id": "turn-1"}, id="turn-id-argument"),
])
def test_a_retried_turn_is_stored_once(edge: Edge, how: dict[str, object]) -> None:
    browser = Browser(edge)
    headers = how.get("headers", [])
    extra = {"turn_id": how["turn_id"]} if "turn_id" in how else {}
    for _ in range(2):
        reply = browser.request("POST", "/chat", headers=headers,  # type: ignore[arg-type]
                                json={"message": "once", **extra})
        assert reply.status == 200
        assert reply.json()["messages"] == expected_history("once")
    # A different turn is a new turn.
    other = browser.request("POST", "/chat", headers=[("Idempotency-Key", "retry-2")],
                            json={"message": "twice"})
    assert other.json()["messages"] == expected_history("once", "twice")


def test_without_a_turn_key_a_repeated_request_is_a_new_turn(edge: Edge) -> None:
    browser = Browser(edge)
    browser.chat("same")
    assert browser.chat("same").json()["messages"] == expected_history("same", "same")


@pytest.mark.parametrize("kind", EDGES)
def test_a_request_on_another_live_node_is_a_miss_served_from_the_store(
    kind: str, clock: FakeClock,
) -> None:
    nodes = (NodeSpec("n1"), NodeSpec("n2"))
    settings = {n: make_settings(node_id=n, nodes=nodes) for n in ("n1", "n2")}
    store = make_store(settings["n1"], clock)
    edges = {n: make_edge(kind, s, clock=clock, store=store) for n, s in settings.items()}

    first = Browser(edges["n1"])
    started = first.chat("hello")
    owner = started.json()["owner"]
    other = "n2" if owner == "n1" else "n1"

    on_owner = Browser(edges[owner])
    on_owner.jar = dict(first.jar)
    assert on_owner.request("GET", "/history").json()["affinity"] == "hit"

    on_other = Browser(edges[other])
    on_other.jar = dict(first.jar)
    reply = on_other.request("GET", "/history")
    body = reply.json()
    assert body["affinity"] == "miss"
    assert reply.header("x-stickyctx-affinity") == "miss"
    assert reply.header("x-stickyctx-node") == owner
    assert body["session_id"] == started.json()["session_id"]
    assert body["messages"] == expected_history("hello")
