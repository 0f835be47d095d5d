"""Spans: what stickyctx reports for one request, inside OpenTelemetry's server span.

OpenTelemetry's own ASGI / WSGI middleware wraps ours (outside), on the same in-memory SDK, so
every test sees the trace a user of both would see.
"""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from stickyctx.core.ids import new_session_id
from stickyctx.core.nodes import NodeSpec
from stickyctx.core.tokens import TokenCodec
from stickyctx.telemetry import ATTR, SPAN
from tests.conftest import KEY_A, KEY_B, make_settings
from tests.edges import EDGES
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, attrs, one

TWO_NODES = (NodeSpec("n1"), NodeSpec("n2"))


@pytest.mark.parametrize("kind", EDGES)
def test_our_spans_are_internal_children_of_the_one_server_span(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    client = Client(make_edge(kind))
    # A new session takes no lease and loads nothing: its turn's one store step is the commit.
    # An existing one begins its turn (lease and load in one step) and commits it.
    expected = {
        "first": [SPAN.AFFINITY, SPAN.WINDOW, SPAN.SAVE],
        "second": [SPAN.AFFINITY, SPAN.LOAD, SPAN.WINDOW, SPAN.SAVE],
    }
    for text, names in expected.items():
        otel.clear()
        assert client.chat(text).status == 200
        server = one(otel.server_spans())  # exactly one SERVER span: OpenTelemetry's
        ours = otel.ours()
        # Both appends (one before the window, one after) are written in one step, last.
        assert [s.name for s in ours] == names, text
        commit = ours[-1]
        if kind == "asgi":  # the commit is written before the response's start is sent
            start = one([s for s in otel.spans()
                         if attrs(s).get("asgi.event.type") == "http.response.start"])
            assert commit.end_time is not None
            assert start.start_time is not None
            assert commit.end_time <= start.start_time
        for span in ours:
            assert span.kind == SpanKind.INTERNAL, span.name
            assert span.parent is not None, span.name
            assert span.parent.span_id == server.context.span_id, span.name
            assert span.context.trace_id == server.context.trace_id, span.name


@pytest.mark.parametrize("kind", EDGES)
def test_without_a_server_span_ours_are_roots_and_still_internal(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    client = Client(make_edge(kind, instrument=False))
    client.chat("hello")
    client.chat("again")  # an existing session: its turn begins with a load
    assert otel.server_spans() == []
    assert [s.name for s in otel.spans(SPAN.AFFINITY)] == [SPAN.AFFINITY] * 2
    ours = otel.ours()
    assert len(ours) == len(otel.spans())  # nothing but ours without the instrumentation
    # The store operations of one request are siblings, not nested in each other.
    assert [s.name for s in ours if s.name in (SPAN.LOAD, SPAN.SAVE)] == [
        SPAN.SAVE, SPAN.LOAD, SPAN.SAVE]
    for span in ours:
        assert span.kind == SpanKind.INTERNAL, span.name
        assert span.parent is None, span.name


# The affinity decision --------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize(("owner", "expected"), [
    pytest.param(None, "new", id="new"),
    pytest.param("n1", "hit", id="hit"),
    pytest.param("n2", "miss", id="miss-live-other-node"),
    pytest.param("n9", "failover", id="failover-owner-gone"),
])
def test_affinity_span_classifies_the_request(
    kind: str, owner: str | None, expected: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(node_id="n1", nodes=TWO_NODES))
    session_id = new_session_id()
    token = "new"
    if owner is not None:
        token = edge.sticky.services.codec.sign(session_id, owner, int(edge.clock()))
    reply = edge.request("GET", "/ping", token=token)
    assert reply.json()["affinity"] == expected
    span = one(otel.spans(SPAN.AFFINITY))
    got = attrs(span)
    assert got[ATTR.AFFINITY] == expected
    assert got[ATTR.NODE_ID] == "n1"
    assert got[ATTR.OWNER_ID] == reply.json()["owner"]
    assert got[ATTR.KEY_FALLBACK] is False
    assert got[ATTR.SESSION_ID] == edge.sticky.services.session_hash(reply.json()["session_id"])
    if owner is not None:
        assert reply.json()["session_id"] == session_id
    if expected == "failover":
        assert got[ATTR.OWNER_ID] in {"n1", "n2"}  # re-placed among the live nodes
    elif owner is not None:
        assert got[ATTR.OWNER_ID] == owner


@pytest.mark.parametrize("kind", EDGES)
@pytest.mark.parametrize(("signing_key", "fallback"), [
    pytest.param(KEY_A, False, id="newest-key"),
    pytest.param(KEY_B, True, id="older-key"),
])
def test_affinity_span_says_when_an_older_key_verified_the_token(
    kind: str, signing_key: str, fallback: bool, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(secret_keys=(KEY_A, KEY_B)))
    codec = TokenCodec((signing_key,), max_age=3600, clock=edge.clock)
    token = codec.sign(new_session_id(), "n1", int(edge.clock()))
    assert edge.request("GET", "/ping", token=token).json()["affinity"] == "hit"
    assert attrs(one(otel.spans(SPAN.AFFINITY)))[ATTR.KEY_FALLBACK] is fallback


# Loads, saves, windows --------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_store_operation_spans_carry_operation_tier_and_session_hash(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind)
    client = Client(edge)
    session_id = client.chat("hello").json()["session_id"]
    hashed = edge.sticky.services.session_hash(session_id)
    otel.clear()
    assert client.chat("again").status == 200
    # The turn begins: one step takes the turn lease and loads the session (before the turn's
    # appends: 2 messages).
    load = one(otel.spans(SPAN.LOAD))
    assert attrs(load) == {
        ATTR.OPERATION: "begin", ATTR.NODE_ID: "n1", ATTR.SESSION_ID: hashed,
        ATTR.TIER: "local", ATTR.STALE: False, ATTR.MESSAGES_AFTER: 2,
        ATTR.LEASE_NAME: "turn", ATTR.LEASE_WAIT: 0.0, ATTR.LEASE_ACQUIRED: True,
    }
    # Its two appends are written together at the response's start, releasing the lease: no
    # lease span of its own, no release of its own.
    save = one(otel.spans(SPAN.SAVE))
    assert attrs(save) == {
        ATTR.OPERATION: "append", ATTR.NODE_ID: "n1", ATTR.SESSION_ID: hashed,
        ATTR.TIER: "local",  # the embedded store is no database system: no db.system.name
    }
    assert load.end_time is not None
    assert save.start_time is not None
    assert save.start_time >= load.end_time
    assert otel.spans(SPAN.LEASE) == []
    assert otel.spans(f"{SPAN.STORE} release_lease") == []
    assert client.request("GET", "/history").json()["messages"] == 4
    # A GET only reads: one load, without the lease, so nothing to release at its end.
    otel.clear()
    client.request("GET", "/history")
    assert attrs(one(otel.spans(SPAN.LOAD))) == {
        ATTR.OPERATION: "load", ATTR.NODE_ID: "n1", ATTR.SESSION_ID: hashed,
        ATTR.TIER: "local", ATTR.STALE: False, ATTR.MESSAGES_AFTER: 4,
    }
    assert otel.spans(SPAN.SAVE) == []
    assert otel.spans(f"{SPAN.STORE} release_lease") == []


@pytest.mark.parametrize("kind", EDGES)
def test_window_span_counts_messages_and_tokens_before_and_after_pruning(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(token_budget=120))
    client = Client(edge)
    for i in range(6):
        client.chat(f"message number {i} with a few words in it to take up tokens")
    spans = otel.spans(SPAN.WINDOW)
    assert len(spans) == 6
    last = attrs(spans[-1])
    # Before the last window: 5 turns (10 messages) and the new user message.
    assert last[ATTR.MESSAGES_BEFORE] == 11
    assert last[ATTR.MESSAGES_AFTER] < last[ATTR.MESSAGES_BEFORE]  # pruned
    assert last[ATTR.TOKENS_AFTER] <= 120 < last[ATTR.TOKENS_BEFORE]
    assert ATTR.EVICTED_GROUPS not in last  # sliding: nothing is folded
    first = attrs(spans[0])
    assert first[ATTR.MESSAGES_BEFORE] == first[ATTR.MESSAGES_AFTER] == 1
    assert first[ATTR.NODE_ID] == "n1"


@pytest.mark.parametrize("kind", EDGES)
def test_summarize_reports_evicted_groups_watermark_and_the_fold(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(token_budget=400, pruning="summarize"))
    client = Client(edge)
    for i in range(4):
        client.chat(f"turn {i}: a sentence of about twenty tokens, to fill a budget")
    assert otel.spans(SPAN.SUMMARIZE) == []  # everything fits: nothing to fold
    assert all(ATTR.EVICTED_GROUPS not in attrs(s) for s in otel.spans(SPAN.WINDOW))
    otel.clear()
    client.chat("a window of a smaller budget leaves the oldest turns out", budget=150)
    window = attrs(one(otel.spans(SPAN.WINDOW)))
    assert window[ATTR.EVICTED_GROUPS] >= 1
    assert window[ATTR.MESSAGES_AFTER] < window[ATTR.MESSAGES_BEFORE] == 9
    fold_span = one(otel.spans(SPAN.SUMMARIZE))  # after the response, in the same trace
    fold = attrs(fold_span)
    assert fold[ATTR.SUMMARY_APPLIED] is True
    assert fold[ATTR.FALLBACK] is False
    assert fold[ATTR.SUMMARIZER] == "builtin"
    assert fold[ATTR.MESSAGES_BEFORE] >= 2 * window[ATTR.EVICTED_GROUPS]  # a group: 2 messages
    assert fold[ATTR.WATERMARK] >= fold[ATTR.MESSAGES_BEFORE]
    server = one(otel.server_spans())
    assert fold_span.parent is not None
    assert fold_span.parent.span_id == server.context.span_id
    lease = attrs(one([s for s in otel.spans(SPAN.LEASE)
                       if attrs(s)[ATTR.LEASE_NAME] == "summary"]))
    assert lease[ATTR.LEASE_ACQUIRED] is True
    assert ATTR.LEASE_WAIT not in lease  # a summary lease is tried once, never waited for
    # The next window carries the watermark of the summary it starts from.
    otel.clear()
    client.chat("and one more")
    assert attrs(one(otel.spans(SPAN.WINDOW)))[ATTR.WATERMARK] == fold[ATTR.WATERMARK]


# Rotation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_rotation_names_the_new_session_and_the_previous_one(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind)
    client = Client(edge)
    old = client.chat("hello").json()["session_id"]
    otel.clear()
    reply = client.request("POST", "/rotate").json()
    new = reply["session_id"]
    assert reply["previous_id"] == old != new
    services = edge.sticky.services
    rotate = one(otel.spans(f"{SPAN.STORE} rotate"))
    assert attrs(rotate)[ATTR.SESSION_ID] == services.session_hash(new)
    assert attrs(rotate)[ATTR.SESSION_PREVIOUS_ID] == services.session_hash(old)
    # Operations after the rotation name the new session.
    load = otel.spans(SPAN.LOAD)[-1]
    assert load.start_time is not None
    assert rotate.end_time is not None
    assert load.start_time >= rotate.end_time
    assert attrs(load)[ATTR.SESSION_ID] == services.session_hash(new)
    # The next request arrives with the new token.
    otel.clear()
    client.request("GET", "/ping")
    assert attrs(one(otel.spans(SPAN.AFFINITY)))[ATTR.SESSION_ID] == services.session_hash(new)


# Turn leases and fencing --------------------------------------------------------------------

@pytest.mark.parametrize("kind", EDGES)
def test_a_lease_attempt_is_a_span_and_waits_are_reported(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind)
    client = Client(edge)
    session_id = client.chat("hello").json()["session_id"]
    store = edge.store
    assert store is not None
    key = edge.key(session_id)
    other = store.acquire_lease(key, holder="another-request", ttl=60)
    assert other is not None
    # The other request finishes its turn when ours is first refused.
    store.on_refused = lambda: store.release_lease(key, other)
    otel.clear()
    assert client.chat("again").status == 200
    assert store.refused == 1
    # The turn lease is taken by the turn's begin: one load span per attempt.
    begins = [attrs(s) for s in otel.spans(SPAN.LOAD)]
    assert [a[ATTR.OPERATION] for a in begins] == ["begin", "begin"]
    assert [a[ATTR.LEASE_NAME] for a in begins] == ["turn", "turn"]
    assert [a[ATTR.LEASE_ACQUIRED] for a in begins] == [False, True]
    assert begins[0][ATTR.LEASE_WAIT] == 0.0
    assert begins[1][ATTR.LEASE_WAIT] > 0.0
    # A refused attempt loads nothing; the one that took the lease loaded the session.
    assert ATTR.TIER not in begins[0]
    assert ATTR.MESSAGES_AFTER not in begins[0]
    assert (begins[1][ATTR.TIER], begins[1][ATTR.MESSAGES_AFTER]) == ("local", 2)
    assert otel.spans(SPAN.LEASE) == []  # no separate lease step


@pytest.mark.parametrize("kind", EDGES)
def test_a_busy_session_shows_every_refused_attempt(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings(turn_timeout=0.05))
    client = Client(edge)
    session_id = client.chat("hello").json()["session_id"]
    assert edge.store is not None
    assert edge.store.acquire_lease(edge.key(session_id), holder="elsewhere", ttl=60)
    otel.clear()
    reply = client.chat("again")
    assert reply.status == 409
    assert reply.json()["error"] == "session_busy"
    begins = [attrs(s) for s in otel.spans(SPAN.LOAD)]
    assert len(begins) >= 2
    assert len(begins) == edge.store.refused  # every refused attempt is a span
    for begin in begins:
        assert begin[ATTR.OPERATION] == "begin"
        assert begin[ATTR.LEASE_NAME] == "turn"
        assert begin[ATTR.LEASE_ACQUIRED] is False
        assert ATTR.MESSAGES_AFTER not in begin  # nothing was loaded
    assert all(s.status.status_code == StatusCode.UNSET for s in otel.spans(SPAN.LOAD))
    waits = [a[ATTR.LEASE_WAIT] for a in begins]
    assert waits == sorted(waits)
    assert waits[0] == 0.0 < waits[-1]
    assert otel.spans(SPAN.LEASE) == []
    assert otel.spans(SPAN.SAVE) == []  # the turn never began: nothing of it is written


@pytest.mark.parametrize("kind", EDGES)
def test_a_fenced_write_is_an_error_span(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    settings = make_settings(turn_lease_ttl=5.0)
    edge = make_edge(kind, settings)
    store = edge.store
    assert store is not None

    def steal(session_id: str) -> None:
        """Our lease expires mid-turn and another request takes the turn."""
        edge.clock.advance(settings.turn_lease_ttl + 1)
        assert store.acquire_lease(edge.key(session_id), holder="newcomer", ttl=60)

    edge.hooks.steal = steal
    client = Client(edge)
    session_id = client.chat("hello").json()["session_id"]  # a session the turn begins on
    otel.clear()
    reply = client.chat("late", steal=True)
    assert reply.status == 409
    assert reply.json()["error"] == "stale_turn"
    begin = attrs(one(otel.spans(SPAN.LOAD)))
    assert (begin[ATTR.OPERATION], begin[ATTR.LEASE_ACQUIRED]) == ("begin", True)
    assert ATTR.FENCE_REJECTED not in begin
    # The turn's appends wait for the commit: its one write is the one refused.
    rejected = one(otel.spans(SPAN.SAVE))
    assert rejected.status.status_code == StatusCode.ERROR
    assert rejected.status.description == "FencedError"
    assert attrs(rejected)[ATTR.OPERATION] == "append"
    assert attrs(rejected)[ATTR.FENCE_REJECTED] is True
    assert attrs(rejected)[ATTR.ERROR_TYPE] == "FencedError"
    assert [e.name for e in rejected.events] == ["exception"]
    # Nothing of the refused turn was stored.
    stored = store.load(edge.key(session_id))
    assert [m.content for m in stored.messages] == ["hello", "echo: hello"]
