"""The audit trail: every read, write, rotation and erasure of a session makes exactly one
OpenTelemetry event (``stickyctx.audit``) with the documented fields, through both middlewares,
recorded with the SDK's in-memory log exporter; nothing in them is a raw id, a token or message
text. Off (the default), nothing is emitted."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord

from stickyctx import Settings
from stickyctx.telemetry import ATTR, SCOPE, SPAN
from stickyctx.telemetry.audit import AUDIT, EVENT, Auditor, AuditRecord, AuditSink
from tests.conftest import make_settings
from tests.edges import EDGES
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, TelemetryEdge, attrs

# The attributes every audit event has, and those it may have (docs/observability.md).
ALWAYS = {AUDIT.ACTION, AUDIT.OUTCOME, ATTR.SESSION_ID, ATTR.NODE_ID, AUDIT.SOURCE}
OPTIONAL = {AUDIT.PRINCIPAL, ATTR.SESSION_PREVIOUS_ID, ATTR.OWNER_ID, AUDIT.MESSAGES,
            ATTR.ERROR_TYPE}


def audited(settings: Settings | None = None, **changes: Any) -> Settings:
    return make_settings(audit=("otel",), **changes) if settings is None else settings


def events(otel: OtelKit) -> list[dict[str, Any]]:
    """The audit events recorded since the last ``clear``, as attribute dicts, in order; each
    is checked against the documented shape first."""
    found = []
    for readable in otel.logs():
        record = readable.log_record
        assert readable.instrumentation_scope is not None
        assert readable.instrumentation_scope.name == SCOPE
        assert record.event_name == EVENT
        assert record.body is None  # no message text, ever
        attributes = dict(record.attributes or {})
        assert ALWAYS <= set(attributes) <= ALWAYS | OPTIONAL, attributes
        assert record.timestamp is not None
        assert abs(record.timestamp - time.time_ns()) < 60 * 10**9
        found.append(attributes)
    return found


def strings(records: list[ReadableLogRecord]) -> str:
    """Everything the records carry, as one text to search."""
    return "\n".join(r.to_json() for r in records)


def step(otel: OtelKit, client: Client, method: str, path: str,
         **body: Any) -> tuple[list[dict[str, Any]], str]:
    """One request: its audit events, and the session id it was made under."""
    otel.clear()
    reply = client.request(method, path, json=body or None)
    assert reply.status == 200, reply.json()
    return events(otel), reply.json()["session_id"]


@pytest.mark.parametrize("kind", EDGES)
def test_every_access_is_exactly_one_event_with_the_documented_fields(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, audited())
    name = edge.sticky.services.session_hash
    client = Client(edge)
    marker = f"marker-{uuid.uuid4().hex}"
    raw_ids: list[str] = []
    everything: list[ReadableLogRecord] = []

    def run(method: str, path: str, expected: list[tuple[str, str]], *, same: bool = True,
            **body: Any) -> list[dict[str, Any]]:
        found, session_id = step(otel, client, method, path, **body)
        everything.extend(otel.logs())
        raw_ids.append(session_id)
        assert [(e[AUDIT.ACTION], e[AUDIT.OUTCOME]) for e in found] == expected, path
        for event in found:
            assert event[ATTR.NODE_ID] == "n1"
            assert event[AUDIT.SOURCE] == "request"
            if same:  # one session id throughout the request
                assert event[ATTR.SESSION_ID] == name(session_id)
        return found

    # A brand-new session reads nothing from the store: its turn is one write (two messages).
    first = run("POST", "/chat", [("write", "success")], message=f"one {marker}")
    assert first[0][AUDIT.MESSAGES] == 2
    assert AUDIT.PRINCIPAL not in first[0]  # no principal given: the hashed session is who
    # An existing session: the turn begins with a read (lease and history) and commits a write.
    run("POST", "/chat", [("read", "success"), ("write", "success")], message=f"two {marker}")
    run("GET", "/history", [("read", "success")])
    # The app names the principal: every event of the request carries it.
    for event in run("POST", "/chat", [("read", "success"), ("write", "success")],
                     message=f"three {marker}", principal="alice@example.test"):
        assert event[AUDIT.PRINCIPAL] == "alice@example.test"
    run("POST", "/pop", [("read", "success"), ("pop", "success")])
    run("POST", "/clear", [("read", "success"), ("clear", "success")])
    before = raw_ids[-1]
    # The route reads, rotates, then reads the history again (under the new id).
    read, rotated, reread = run("POST", "/rotate", [
        ("read", "success"), ("rotate", "success"), ("read", "success")], same=False)
    after = raw_ids[-1]
    assert before != after
    assert read[ATTR.SESSION_ID] == name(before)
    assert (rotated[ATTR.SESSION_ID], rotated[ATTR.SESSION_PREVIOUS_ID]) == (name(after),
                                                                           name(before))
    assert reread[ATTR.SESSION_ID] == name(after)
    revoked_token = client.token
    run("POST", "/destroy", [("destroy", "success")])
    # A replay of the destroyed session's token: the read is refused; the request goes on under
    # a new id, whose turn begins (a read of nothing yet) and is written.
    client.token = revoked_token
    replay, replay_id = step(otel, client, "POST", "/chat", message=f"four {marker}")
    everything.extend(otel.logs())
    assert [(e[AUDIT.ACTION], e[AUDIT.OUTCOME]) for e in replay] == [
        ("read", "refused"), ("read", "success"), ("write", "success")]
    assert [e[ATTR.SESSION_ID] for e in replay] == [name(after), *[name(replay_id)] * 2]
    raw_ids.append(replay_id)

    # Nothing recorded is a raw id, a token or message text.
    text = strings(everything)
    assert len(everything) == 17
    for secret in {*raw_ids, *client.tokens, marker, "echo:"}:
        assert secret not in text, secret


@pytest.mark.parametrize("kind", EDGES)
def test_off_by_default_nothing_is_emitted(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, make_settings())
    assert edge.sticky.services.audit is None
    client = Client(edge)
    for _ in range(2):
        assert client.chat("hello").status == 200
    client.request("POST", "/destroy")
    assert otel.logs() == []
    assert otel.spans()  # telemetry itself is on: only the audit trail is off


@pytest.mark.parametrize("kind", EDGES)
def test_a_request_that_does_not_touch_the_context_is_not_an_access(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    client = Client(make_edge(kind, audited()))
    client.chat("hello")
    otel.clear()
    assert client.request("GET", "/ping").status == 200
    assert otel.logs() == []


class Failing:
    """A sink that fails: the request it records still succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    def enabled(self) -> bool:
        return True

    def emit(self, record: AuditRecord) -> None:
        self.calls += 1
        raise RuntimeError("the audit database is down")


class Keeping:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def enabled(self) -> bool:
        return True

    def emit(self, record: AuditRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("kind", EDGES)
def test_another_sink_gets_the_same_records_and_a_failing_one_fails_no_request(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, audited())
    services = edge.sticky.services
    failing, keeping = Failing(), Keeping()
    assert isinstance(keeping, AuditSink)
    assert services.audit is not None
    services.audit = Auditor("n1", [*services.audit.sinks, failing, keeping])
    client = Client(edge)
    assert client.chat("hello").status == 200
    assert client.chat("again").status == 200
    assert failing.calls == 3
    assert [(r.action, r.outcome, r.node, r.session) for r in keeping.records] == [
        (e[AUDIT.ACTION], e[AUDIT.OUTCOME], e[ATTR.NODE_ID], e[ATTR.SESSION_ID])
        for e in events(otel)]


def test_the_setting_reads_on_off_and_sink_names() -> None:
    assert Settings.from_env({"STICKYCTX_SECRET_KEYS": "k" * 32}).audit == ()
    for raw, expected in (("1", ("otel",)), ("on", ("otel",)), ("otel", ("otel",)),
                          ("0", ()), ("off", ())):
        env = {"STICKYCTX_SECRET_KEYS": "k" * 32, "STICKYCTX_AUDIT": raw}
        assert Settings.from_env(env).audit == expected, raw
    from stickyctx.errors import ConfigError

    with pytest.raises(ConfigError, match="STICKYCTX_AUDIT"):
        Settings.from_env({"STICKYCTX_SECRET_KEYS": "k" * 32, "STICKYCTX_AUDIT": "syslog"})


def test_without_a_logs_sdk_no_record_is_built(make_edge: MakeEdge, otel: OtelKit) -> None:
    """On, but with no logger provider injected or set globally: the sink is not enabled, and
    no record is made."""
    edge: TelemetryEdge = make_edge("wsgi", audited())
    services = edge.sticky.services
    from stickyctx.telemetry.audit import OtelAuditSink

    keeping = Keeping()
    unconfigured = OtelAuditSink(None)
    assert not unconfigured.enabled()
    services.audit = Auditor("n1", [unconfigured])
    Client(edge).chat("hello")
    assert not services.audit.enabled()
    services.audit = Auditor("n1", [unconfigured, keeping])
    Client(edge).chat("hello")
    assert [r.action for r in keeping.records] == ["write"]


@pytest.mark.parametrize("kind", EDGES)
def test_a_summary_fold_is_one_event(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    edge = make_edge(kind, audited(make_settings(audit=("otel",), token_budget=400,
                                                 pruning="summarize")))
    client = Client(edge)
    for i in range(4):
        client.chat(f"turn {i}: a sentence of about twenty tokens, to fill a budget")
    otel.clear()
    reply = client.chat("a window of a smaller budget leaves the oldest turns out", budget=150)
    found = events(otel)
    # The turn begins (read); the window leaves turns out and folds them at once (fold), reads
    # the folded history back (read), and the turn is written (write): one event per access.
    assert [(e[AUDIT.ACTION], e[AUDIT.OUTCOME]) for e in found] == [
        ("read", "success"), ("fold", "success"), ("read", "success"), ("write", "success")]
    applied = [s for s in otel.spans(SPAN.SUMMARIZE) if attrs(s)[ATTR.SUMMARY_APPLIED]]
    assert len(applied) == 1
    name = edge.sticky.services.session_hash(reply.json()["session_id"])
    assert {e[ATTR.SESSION_ID] for e in found} == {name}
    assert "a sentence of about" not in strings(otel.logs())  # the summary's text is not in it


@pytest.mark.parametrize("kind", EDGES)
def test_a_turn_refused_because_another_request_holds_it_read_nothing(
    kind: str, otel: OtelKit, make_edge: MakeEdge,
) -> None:
    """A begin attempt that finds the turn busy loads nothing: no event; the attempt that gets
    the turn is the one read."""
    edge = make_edge(kind, audited(make_settings(audit=("otel",), turn_timeout=0)))
    client = Client(edge)
    session_id = client.chat("hello").json()["session_id"]
    store = edge.store
    assert store is not None
    held = store.acquire_lease(edge.key(session_id), holder="other:1", ttl=60)
    assert held is not None
    otel.clear()
    reply = client.chat("while another request holds the turn")
    assert (reply.status, reply.json()["error"]) == (409, "session_busy")
    assert otel.logs() == []
    store.release_lease(edge.key(session_id), held, holder=None)
    assert client.chat("afterwards").status == 200
    assert [e[AUDIT.ACTION] for e in events(otel)] == ["read", "write"]


def test_a_cancelled_operation_is_a_failure_and_an_abandoned_one_is_nothing() -> None:
    """Cancellation reaches an operation as an exception thrown at its step: recorded as a
    failure (the store may or may not have applied it); a generator closed unfinished is not."""
    import asyncio

    from stickyctx.telemetry.audit import audited as audit_op

    keeping = Keeping()
    auditor = Auditor("n1", [keeping])

    def append_op() -> Any:  # a store primitive's operation: one step, then its result
        yield "step"
        return None

    append_op.__name__ = "append"
    cancelled = audit_op(auditor, append_op(), "append", lambda: "hashed", None)
    assert next(cancelled) == "step"
    with pytest.raises(asyncio.CancelledError):
        cancelled.throw(asyncio.CancelledError())
    assert [(r.action, r.outcome, r.error_type) for r in keeping.records] == [
        ("write", "failure", "CancelledError")]
    abandoned = audit_op(auditor, append_op(), "append", lambda: "hashed", None)
    next(abandoned)
    abandoned.close()
    assert len(keeping.records) == 1
    not_audited = audit_op(auditor, append_op(), "acquire_lease", lambda: "hashed", None)
    next(not_audited)
    with pytest.raises(StopIteration):
        not_audited.send(None)
    assert len(keeping.records) == 1  # a lease is not an access
