"""No raw identifiers and no message content in telemetry: a whole conversation (new session,
turns with a summary fold, a fenced write, rotation, destruction, a replay of the revoked token,
the cookie transport) is recorded with the SDK's in-memory exporter and reader and every log
record, and everything recorded is searched for the raw session ids, the tokens, the cookie
values and a marker that every message carries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from stickyctx.telemetry import ATTR, SPAN
from tests.conftest import make_settings
from tests.edges import EDGES, Reply, parse_set_cookie
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, TelemetryEdge


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def recorded(otel: OtelKit, records: Iterable[logging.LogRecord]) -> list[str]:
    """Every string telemetry recorded: spans (names, attributes, events, status, resource),
    metric data points of every scope, OpenTelemetry log records (the audit trail's) and
    Python log records (message, arguments, exception text)."""
    found: list[str] = []
    for span in otel.spans():
        found.append(span.name)
        found.extend(_strings(dict(span.attributes or {})))
        found.append(span.status.description or "")
        for event in span.events:
            found.append(event.name)
            found.extend(_strings(dict(event.attributes or {})))
        for link in span.links:
            found.extend(_strings(dict(link.attributes or {})))
    for point in otel.points(scope=None):
        found.append(point.name)
        found.extend(_strings(point.attributes))
    for log in otel.logs():  # OpenTelemetry log records: the audit trail's events
        found.append(log.to_json())
    for record in records:
        found.append(record.getMessage())
        found.extend(_strings(record.args))
        found.append(record.exc_text or "")
    return found


def leaks(secrets: Iterable[str], strings: Iterable[str]) -> list[tuple[str, str]]:
    haystack = list(strings)
    return [(secret, text) for secret in secrets for text in haystack if secret in text]


def conversation(edge: TelemetryEdge, marker: str) -> tuple[set[str], set[str]]:
    """Drive one conversation; return the raw session ids and the token/cookie values."""
    ids: set[str] = set()
    tokens: set[str] = set()

    def seen(reply: Reply) -> Reply:
        assert reply.status == 200 or reply.json()["error"] == "stale_turn", reply.body
        body = reply.json()
        ids.update(v for k in ("session_id", "previous_id") if (v := body.get(k)))
        for cookie in map(parse_set_cookie, reply.all("set-cookie")):
            if cookie.name == edge.settings.cookie_name and cookie.value:
                tokens.add(cookie.value)
        return reply

    store = edge.store
    assert store is not None

    def steal(session_id: str) -> None:
        edge.clock.advance(edge.settings.turn_lease_ttl + 1)
        store.acquire_lease(edge.key(session_id), holder="newcomer", ttl=60)

    edge.hooks.steal = steal
    client = Client(edge)
    for i in range(6):
        seen(client.chat(f"{marker} turn {i}, long enough to overflow the small budget"))
    assert seen(client.chat(f"{marker} fenced", steal=True)).status == 409
    edge.clock.advance(61)  # the newcomer's turn is over
    revoked = client.token
    seen(client.request("POST", "/rotate"))
    seen(client.chat(f"{marker} after rotation"))
    seen(client.request("POST", "/destroy"))
    replay = Client(edge, revoked)  # the old token: its session is gone, a new one starts
    seen(replay.chat(f"{marker} replayed"))
    tokens.update(client.tokens + replay.tokens + [revoked])

    browser = seen(edge.request("GET", "/ping", token=None))  # the cookie transport
    jar = "; ".join(f"{c.name}={c.value}" for c in map(parse_set_cookie,
                                                        browser.all("set-cookie")))
    seen(edge.request("POST", "/chat", token=None, headers=[("Cookie", jar)],
                      json={"message": f"{marker} from a browser"}))
    return ids, tokens


@pytest.mark.parametrize("kind", EDGES)
def test_telemetry_never_carries_ids_tokens_cookies_or_content(
    kind: str, otel: OtelKit, make_edge: MakeEdge, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    edge = make_edge(kind, make_settings(token_budget=200, pruning="summarize",
                                         turn_lease_ttl=5.0, audit=("otel",)))
    marker = f"MARKER{uuid.uuid4().hex}"
    ids, tokens = conversation(edge, marker)
    strings = recorded(otel, caplog.records)

    # The conversation did what it should, and telemetry saw it.
    assert len(ids) == 4  # the first, the rotated one, the replay's fresh one, the browser's
    assert len(tokens) >= 4
    names = {s.name for s in otel.spans()}
    assert {SPAN.SUMMARIZE, f"{SPAN.STORE} rotate", f"{SPAN.STORE} destroy"} <= names
    hashed = {edge.sticky.services.session_hash(i) for i in ids}
    assert hashed <= set(strings)  # sessions are named, by their keyed hashes
    assert any(ATTR.SESSION_PREVIOUS_ID in (s.attributes or {}) for s in otel.spans())
    assert any(s.events for s in otel.spans())  # the fenced write's exception event
    audited = {(dict(r.log_record.attributes or {})["stickyctx.audit.action"],
                dict(r.log_record.attributes or {})["stickyctx.audit.outcome"])
               for r in otel.logs()}
    assert {("read", "success"), ("write", "success"), ("write", "failure"),
            ("fold", "success"), ("rotate", "success"), ("destroy", "success"),
            ("read", "refused")} <= audited  # the audit trail (on here) saw it too
    # ...and the search would find an identifier if one were there.
    some_id = next(iter(ids))
    assert leaks([some_id], [*strings, f"x{some_id}x"]) == [(some_id, f"x{some_id}x")]

    assert leaks(ids, strings) == []
    assert leaks(tokens, strings) == []
    assert leaks([marker], strings) == []
