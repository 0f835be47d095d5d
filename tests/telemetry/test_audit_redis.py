"""The audit trail on a real Redis: a session whose node leaves fails over to another node with
exactly one ``failover`` event (from the node that took it over), and a store that dies makes
``failure`` events naming the error; no raw id or message text in any of them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from stickyctx import Settings
from stickyctx.telemetry import ATTR
from stickyctx.telemetry.audit import AUDIT
from tests.conftest import make_settings
from tests.edges import EDGES
from tests.redis_fixtures import MakeRedisServer
from tests.telemetry.conftest import MakeEdge
from tests.telemetry.harness import Client, OtelKit, TelemetryEdge
from tests.telemetry.test_audit import events, strings

HASH_KEY = "audit-suite-hash-key-0123456789abcdef"


def on_redis(url: str, node_id: str) -> Settings:
    return make_settings(store_url=url, namespace=f"audit-{uuid.uuid4().hex[:8]}",
                         hash_key=HASH_KEY, store_timeout=2.0, node_id=node_id,
                         audit=("otel",))


def beat(edge: TelemetryEdge) -> None:
    heartbeat = edge.sticky.heartbeat
    assert heartbeat is not None
    if edge.loop is not None:
        edge.loop.run_until_complete(heartbeat.beat())
    else:
        heartbeat.beat_once()


def leave(edge: TelemetryEdge) -> None:
    heartbeat = edge.sticky.heartbeat
    assert heartbeat is not None
    if edge.loop is not None:
        edge.loop.run_until_complete(heartbeat.stop(leave=True))
    else:
        heartbeat.stop(leave=True)


def pairs(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e[AUDIT.ACTION], e[AUDIT.OUTCOME], e[ATTR.NODE_ID]) for e in found]


@pytest.mark.parametrize("kind", EDGES)
def test_a_failover_between_two_nodes_is_one_event_from_the_node_that_took_it(
    kind: str, otel: OtelKit, make_edge: MakeEdge, redis_server_factory: MakeRedisServer,
) -> None:
    server = redis_server_factory()  # this test's own Redis
    settings = on_redis(server.url, "n1")
    n1 = make_edge(kind, settings, memory=False)
    beat(n1)  # n1 alone: the new session is placed on it
    client = Client(n1)
    marker = f"marker-{uuid.uuid4().hex}"
    first = client.chat(f"first {marker}").json()
    assert first["owner"] == "n1"
    session_id = first["session_id"]
    name = n1.sticky.services.session_hash
    n2 = make_edge(kind, replace(settings, node_id="n2"), memory=False)
    beat(n2)
    beat(n1)
    assert client.chat(f"second {marker}").json()["affinity"] == "hit"

    leave(n1)  # n1 leaves the cluster cleanly
    beat(n2)  # and n2 sees it gone
    otel.clear()
    client.edge = n2
    reply = client.chat(f"third {marker}").json()
    assert (reply["affinity"], reply["owner"], reply["session_id"]) == ("failover", "n2",
                                                                      session_id)
    found = events(otel)
    # The turn's read and write on n2, then the failover itself, once.
    assert pairs(found) == [("read", "success", "n2"), ("write", "success", "n2"),
                            ("failover", "success", "n2")]
    failover = found[-1]
    assert failover[ATTR.OWNER_ID] == "n2"
    assert all(e[ATTR.SESSION_ID] == name(session_id) for e in found)
    # Re-placed: the next request is a hit on n2, and no further failover is recorded.
    otel.clear()
    assert client.chat(f"fourth {marker}").json()["affinity"] == "hit"
    assert [e[AUDIT.ACTION] for e in events(otel)] == ["read", "write"]

    text = strings(otel.logs())
    for secret in (session_id, *client.tokens, marker, "echo:"):
        assert secret not in text, secret


@pytest.mark.parametrize("kind", EDGES)
def test_a_dead_store_is_a_failure_event_with_its_error_type(
    kind: str, otel: OtelKit, make_edge: MakeEdge, redis_server_factory: MakeRedisServer,
) -> None:
    server = redis_server_factory()
    client = Client(make_edge(kind, on_redis(server.url, "n1"), memory=False))
    assert client.chat("before").status == 200
    server.kill()
    otel.clear()
    reply = client.chat("after")
    assert reply.status == 503
    found = events(otel)
    assert found, "no audit event for the failed read"
    assert pairs(found)[0] == ("read", "failure", "n1")
    assert found[0][ATTR.ERROR_TYPE] == "StoreUnavailableError"
    assert all(e[AUDIT.OUTCOME] == "failure" for e in found)
    severities = {r.log_record.severity_text for r in otel.logs()}
    assert severities == {"WARN"}
