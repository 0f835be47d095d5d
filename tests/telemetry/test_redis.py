"""Telemetry on a real Redis: which tier served a load, the database system, store errors when
the server dies, and membership changes seen through heartbeats."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from stickyctx import Settings
from stickyctx.telemetry import ATTR, METRIC, SPAN
from tests.conftest import make_settings
from tests.edges import EDGES
from tests.redis_fixtures import MakeRedisServer
from tests.redis_servers import RedisServer
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, attrs, one

HASH_KEY = "telemetry-suite-hash-key-0123456789abcdef"


def on_redis(url: str, namespace: str, **changes: Any) -> Settings:
    return make_settings(store_url=url, namespace=namespace.strip(":").replace(":", "-"),
                         hash_key=HASH_KEY, store_timeout=2.0, **changes)


@pytest.mark.parametrize("kind", EDGES)
def test_a_load_is_served_by_the_hot_tier_or_the_store(
    kind: str, otel: OtelKit, make_edge: MakeEdge, redis_server_session: RedisServer,
    redis_namespace: str,
) -> None:
    settings = on_redis(redis_server_session.url, redis_namespace)
    client = Client(make_edge(kind, settings, memory=False))
    client.chat("first")  # the session is created on one node (a new session loads nothing)
    restarted = make_edge(kind, settings, memory=False)  # the same node, its memory empty
    client.edge = restarted
    client.chat("second")  # nothing of it cached here: the turn's begin crosses the network
    client.chat("third")  # cached by the last begin and kept current by our own commit
    loads = [attrs(s) for s in otel.spans(SPAN.LOAD)]
    assert [a[ATTR.OPERATION] for a in loads] == ["begin", "begin"]
    assert [a[ATTR.LEASE_ACQUIRED] for a in loads] == [True, True]
    assert [a[ATTR.TIER] for a in loads] == ["store", "local"]
    assert [a[ATTR.STALE] for a in loads] == [False, False]
    assert [a[ATTR.MESSAGES_AFTER] for a in loads] == [2, 4]
    saves = otel.spans(SPAN.SAVE)
    assert [attrs(s)[ATTR.OPERATION] for s in saves] == ["append"] * 3  # one commit per turn
    operations = [s for s in otel.ours() if ATTR.OPERATION in attrs(s)]
    assert len(operations) == len(loads) + len(saves)  # a turn: begin and commit, no more
    for span in operations:  # every store operation: begins and commits
        assert attrs(span)[ATTR.DB_SYSTEM] == "redis", span.name
        assert span.status.status_code == StatusCode.UNSET, span.name
    assert ATTR.DB_SYSTEM not in attrs(otel.spans(SPAN.WINDOW)[0])  # no store work in it
    for save in saves:
        assert attrs(save)[ATTR.TIER] == "store"
    by_tier = {p.attributes[ATTR.TIER]: p.data.count for p in otel.points(METRIC.LOAD_DURATION)}
    assert by_tier == {tier: [a[ATTR.TIER] for a in loads].count(tier)
                       for tier in {a[ATTR.TIER] for a in loads}}


@pytest.mark.parametrize("kind", EDGES)
def test_a_dead_store_is_an_error_span_and_counted_by_kind(
    kind: str, otel: OtelKit, make_edge: MakeEdge, redis_server_factory: MakeRedisServer,
    redis_namespace: str,
) -> None:
    server = redis_server_factory()
    edge = make_edge(kind, on_redis(server.url, redis_namespace), memory=False)
    client = Client(edge)
    assert client.chat("before").status == 200
    assert otel.points(METRIC.STORE_ERRORS) == []
    server.kill()
    otel.clear()
    # An existing session: the first thing its turn does is begin (take the lease and load).
    reply = client.chat("after")
    assert reply.status == 503
    assert reply.json()["error"] == "store_unavailable"
    failed = [s for s in otel.ours() if s.status.status_code == StatusCode.ERROR]
    assert failed, "no span recorded the failure"
    first = failed[0]
    assert first.name == SPAN.LOAD
    assert attrs(first)[ATTR.OPERATION] == "begin"
    assert attrs(first)[ATTR.LEASE_NAME] == "turn"
    assert ATTR.LEASE_ACQUIRED not in attrs(first)  # no answer: whether it was taken is unknown
    assert first.status.description == "StoreUnavailableError"
    assert attrs(first)[ATTR.ERROR_TYPE] == "StoreUnavailableError"
    assert attrs(first)[ATTR.DB_SYSTEM] == "redis"
    assert otel.spans(SPAN.SAVE) == []  # the turn never began: nothing to commit
    # A new session needs no store before its first write: its commit is what fails.
    reply = Client(edge).chat("new")
    assert reply.status == 503
    assert reply.json()["error"] == "store_unavailable"
    failed = [s for s in otel.ours() if s.status.status_code == StatusCode.ERROR]
    commit = one(otel.spans(SPAN.SAVE))
    assert commit in failed
    assert attrs(commit)[ATTR.OPERATION] == "append"
    assert attrs(commit)[ATTR.ERROR_TYPE] == "StoreUnavailableError"
    assert len(otel.spans(SPAN.LOAD)) == 1  # the new session's turn loaded nothing
    counted = {p.attributes[ATTR.OPERATION]: p for p in otel.points(METRIC.STORE_ERRORS)}
    assert {"begin", "append"} <= set(counted)
    for operation, point in counted.items():
        assert point.attributes == {ATTR.ERROR_TYPE: "StoreUnavailableError",
                                    ATTR.OPERATION: operation, ATTR.NODE_ID: "n1"}
        assert point.unit == "{error}"
        assert point.data.value == len([s for s in failed
                                        if attrs(s)[ATTR.OPERATION] == operation])


def test_membership_changes_are_spans(
    otel: OtelKit, make_edge: MakeEdge, redis_server_session: RedisServer,
    redis_namespace: str,
) -> None:
    n1 = make_edge("wsgi", on_redis(redis_server_session.url, redis_namespace, node_id="n1"),
                   memory=False)
    n2 = make_edge("wsgi", on_redis(redis_server_session.url, redis_namespace, node_id="n2"),
                   memory=False)
    beat1, beat2 = n1.sticky.heartbeat, n2.sticky.heartbeat
    assert beat1 is not None
    assert beat2 is not None
    beat1.beat_once()  # n1 alone, as it already believed: no change
    assert otel.spans(SPAN.MEMBERSHIP) == []
    beat2.beat_once()  # n2 joins and sees n1
    beat1.beat_once()  # n1 sees n2 join
    beat2.stop(leave=True)  # n2 leaves cleanly
    beat1.beat_once()  # n1 sees n2 leave
    changes = [attrs(s) for s in otel.spans(SPAN.MEMBERSHIP)]
    expected = [
        {ATTR.NODE_ID: "n2", ATTR.MEMBERS: 2, ATTR.JOINED: ("n1",), ATTR.LEFT: ()},
        {ATTR.NODE_ID: "n1", ATTR.MEMBERS: 2, ATTR.JOINED: ("n2",), ATTR.LEFT: ()},
        {ATTR.NODE_ID: "n1", ATTR.MEMBERS: 1, ATTR.JOINED: (), ATTR.LEFT: ("n2",)},
    ]
    assert changes == expected
    assert all(s.parent is None for s in otel.spans(SPAN.MEMBERSHIP))  # background work
