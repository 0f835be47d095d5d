"""Metrics: names, instruments, units, attributes and values, read with the SDK's in-memory
reader (cumulative). Store errors of a dead Redis are in ``test_redis``."""

from __future__ import annotations

import re

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from stickyctx.core.ids import new_session_id
from stickyctx.core.nodes import NodeSpec
from stickyctx.telemetry import _DURATION_BUCKETS, _TOKEN_BUCKETS, ATTR, METRIC, SPAN
from tests.conftest import make_settings
from tests.edges import EDGES
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, attrs, one

INSTRUMENTS = {
    METRIC.REQUESTS: (Sum, "{request}"),
    METRIC.SESSIONS_ACTIVE: (Gauge, "{session}"),
    METRIC.FAILOVERS: (Sum, "{session}"),
    METRIC.LOAD_DURATION: (Histogram, "s"),
    METRIC.SAVE_DURATION: (Histogram, "s"),
    METRIC.STORE_ERRORS: (Sum, "{error}"),
    METRIC.DUPLICATES: (Sum, "{message}"),
    METRIC.WINDOW_TOKENS: (Histogram, "{token}"),
    METRIC.SUMMARIES: (Sum, "{summary}"),
    METRIC.STREAMS: (Sum, "{stream}"),
    METRIC.STREAM_REPLAYED: (Sum, "{chunk}"),
}
STREAM_METRICS = frozenset({METRIC.STREAMS, METRIC.STREAM_REPLAYED})  # test_streams.py


def test_the_metric_constants_follow_the_naming_rules() -> None:
    names = [v for k, v in vars(METRIC).items() if k.isupper()]
    assert sorted(names) == sorted(INSTRUMENTS)
    for name in names:
        assert re.fullmatch(r"stickyctx(\.[a-z]+)+", name), name  # lowercase, dotted, no _total


@pytest.mark.parametrize("kind", EDGES)
def test_every_instrument_reports_with_its_unit_and_type(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    settings = make_settings(token_budget=200, pruning="summarize", turn_lease_ttl=5.0)
    edge = make_edge(kind, settings)
    assert edge.store is not None
    store = edge.store

    def steal(session_id: str) -> None:
        edge.clock.advance(settings.turn_lease_ttl + 1)
        store.acquire_lease(edge.key(session_id), holder="newcomer", ttl=60)

    edge.hooks.steal = steal
    client = Client(edge)
    for i in range(8):
        client.chat(f"turn {i}: a sentence long enough to fill the small budget quickly",
                    headers=[("Idempotency-Key", "same-key")] if i == 7 else [])
    client.request("POST", "/chat", json={  # a retry of turn 7: the same message, same key
        "message": "turn 7: a sentence long enough to fill the small budget quickly"},
        headers=[("Idempotency-Key", "same-key")])
    edge.request("GET", "/ping", token=edge.sticky.services.codec.sign(
        new_session_id(), "gone", int(edge.clock())))
    fenced = Client(edge)
    fenced.chat("hello")  # a turn takes the lease only on a session that exists
    assert fenced.chat("fenced", steal=True).status == 409
    data = otel.metric_data()
    seen = {}
    for scope_metrics in data.resource_metrics[0].scope_metrics:
        if scope_metrics.scope.name == "stickyctx":
            assert scope_metrics.scope.version is not None
            seen = {m.name: (type(m.data), m.unit, m.description) for m in scope_metrics.metrics}
    assert {name: (kind_, unit) for name, (kind_, unit, _) in seen.items()} == {
        name: spec for name, spec in INSTRUMENTS.items() if name not in STREAM_METRICS}
    assert all(description for _, _, description in seen.values())


# Requests and failovers ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_requests_are_counted_by_affinity_and_failovers_apart(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(node_id="n1", nodes=(NodeSpec("n1"), NodeSpec("n2"))))
    sign = edge.sticky.services.codec.sign
    now = int(edge.clock())
    plan = {"new": 2, "hit": 3, "miss": 1, "failover": 2}
    for _ in range(plan["new"]):
        edge.request("GET", "/ping")
    for affinity, owner in (("hit", "n1"), ("miss", "n2"), ("failover", "n7")):
        for _ in range(plan[affinity]):
            reply = edge.request("GET", "/ping", token=sign(new_session_id(), owner, now))
            assert reply.json()["affinity"] == affinity
    requests = {p.attributes[ATTR.AFFINITY]: p.data.value
                for p in otel.points(METRIC.REQUESTS)}
    assert requests == plan
    for point in otel.points(METRIC.REQUESTS):
        assert point.attributes == {ATTR.AFFINITY: point.attributes[ATTR.AFFINITY],
                                    ATTR.NODE_ID: "n1"}
        assert point.unit == "{request}"
    failovers = one(otel.points(METRIC.FAILOVERS))
    assert (failovers.data.value, failovers.attributes) == (2, {ATTR.NODE_ID: "n1"})
    # The hit rate the docs compute: hits / (hits + misses + failovers), new excluded.
    assert plan["hit"] / (plan["hit"] + plan["miss"] + plan["failover"]) == 0.5


@pytest.mark.parametrize("kind", EDGES)
def test_active_sessions_are_this_nodes_recently_active_sessions(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(node_id="n1", nodes=(NodeSpec("n1"), NodeSpec("n2")),
                                         idle_ttl=600))
    assert one(otel.points(METRIC.SESSIONS_ACTIVE)).data.value == 0

    def client_of(owner: str) -> Client:
        return Client(edge, edge.sticky.services.codec.sign(new_session_id(), owner,
                                                          int(edge.clock())))

    ours = [client_of("n1") for _ in range(3)]
    for client in ours:
        assert client.request("GET", "/ping").json()["affinity"] == "hit"
    point = one(otel.points(METRIC.SESSIONS_ACTIVE))
    assert (point.data.value, point.attributes, point.unit) == (3, {ATTR.NODE_ID: "n1"},
                                                                "{session}")
    # Sessions another node owns are not this node's load.
    assert client_of("n2").request("GET", "/ping").json()["affinity"] == "miss"
    assert one(otel.points(METRIC.SESSIONS_ACTIVE)).data.value == 3
    edge.clock.advance(400)
    ours[0].request("GET", "/ping")  # one of them is still active
    edge.clock.advance(400)  # the other two have been idle longer than the idle TTL
    assert one(otel.points(METRIC.SESSIONS_ACTIVE)).data.value == 1


# Durations -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_load_and_save_durations_are_histograms_in_seconds_with_advised_buckets(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    client = Client(make_edge(kind))
    for text in ("one", "two", "three"):
        client.chat(text)
    client.request("POST", "/rotate")
    # The turns of the existing session begin with a load (the lease taken in the same step);
    # the rotation reloads the session under its new id. A new session loads nothing.
    operations = [attrs(s)[ATTR.OPERATION] for s in otel.spans(SPAN.LOAD)]
    assert operations == ["begin", "begin", "begin", "load"]
    loads = one(otel.points(METRIC.LOAD_DURATION))
    assert loads.unit == "s"
    assert loads.attributes == {ATTR.TIER: "local", ATTR.NODE_ID: "n1"}
    assert loads.data.count == len(operations) == 4
    assert tuple(loads.data.explicit_bounds) == _DURATION_BUCKETS
    assert 0 < loads.data.sum < 1  # seconds, not milliseconds
    saves = otel.points(METRIC.SAVE_DURATION)
    assert {p.attributes[ATTR.OPERATION] for p in saves} == {"append"}
    save = one(saves)
    assert save.unit == "s"
    assert save.attributes == {ATTR.OPERATION: "append", ATTR.TIER: "local", ATTR.NODE_ID: "n1"}
    # One write per turn: its two appends, committed together at the response's start.
    assert save.data.count == len(otel.spans(SPAN.SAVE)) == 3
    assert tuple(save.data.explicit_bounds) == _DURATION_BUCKETS
    assert 0 < save.data.sum < 1


# Duplicates, windows, summaries ---------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_turns_dropped_by_idempotency_are_counted(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    client = Client(make_edge(kind))
    retry = [("Idempotency-Key", "turn-1")]
    client.chat("hello", headers=retry)
    assert otel.points(METRIC.DUPLICATES) == []
    otel.clear()
    client.chat("hello", headers=retry)  # a retry of the same turn: both messages dropped
    # The turn's begin found both messages stored already; the commit still sends them, so
    # that the store can tell a retry from a key reused for other messages: it stores none.
    assert attrs(one(otel.spans(SPAN.LOAD)))[ATTR.OPERATION] == "begin"
    assert attrs(one(otel.spans(SPAN.SAVE)))[ATTR.DUPLICATES] == 2
    assert client.request("GET", "/history").json()["messages"] == 2
    point = one(otel.points(METRIC.DUPLICATES))
    assert (point.data.value, point.attributes, point.unit) == (2, {ATTR.NODE_ID: "n1"},
                                                                "{message}")


@pytest.mark.parametrize("kind", EDGES)
def test_window_tokens_and_summaries(kind: str, otel: OtelKit, make_edge: MakeEdge) -> None:
    client = Client(make_edge(kind, make_settings(token_budget=200, pruning="summarize")))
    for i in range(8):
        client.chat(f"turn {i}: a sentence long enough to fill the small budget quickly")
    windows = [attrs(s)[ATTR.TOKENS_AFTER] for s in otel.spans(SPAN.WINDOW)]
    tokens = one(otel.points(METRIC.WINDOW_TOKENS))
    assert tokens.unit == "{token}"
    assert tokens.attributes == {ATTR.NODE_ID: "n1"}
    assert (tokens.data.count, tokens.data.sum) == (len(windows), sum(windows))
    assert tuple(tokens.data.explicit_bounds) == _TOKEN_BUCKETS
    applied = [s for s in otel.spans(SPAN.SUMMARIZE) if attrs(s)[ATTR.SUMMARY_APPLIED]]
    assert applied
    summaries = one(otel.points(METRIC.SUMMARIES))
    assert (summaries.data.value, summaries.attributes, summaries.unit) == (
        len(applied), {ATTR.NODE_ID: "n1"}, "{summary}")


@pytest.mark.parametrize("kind", EDGES)
def test_a_fence_rejection_is_a_store_error_of_its_kind(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    settings = make_settings(turn_lease_ttl=5.0)
    edge = make_edge(kind, settings)
    store = edge.store
    assert store is not None

    def steal(session_id: str) -> None:
        edge.clock.advance(settings.turn_lease_ttl + 1)
        store.acquire_lease(edge.key(session_id), holder="newcomer", ttl=60)

    edge.hooks.steal = steal
    client = Client(edge)
    assert client.chat("hello").status == 200  # a turn takes the lease on a session that exists
    assert otel.points(METRIC.STORE_ERRORS) == []
    assert client.chat("late", steal=True).status == 409
    # One error: the turn's commit (its appends and the release, in one step) was refused.
    point = one(otel.points(METRIC.STORE_ERRORS))
    assert point.attributes == {ATTR.ERROR_TYPE: "FencedError", ATTR.OPERATION: "append",
                                ATTR.NODE_ID: "n1"}
    assert point.data.value == 1
