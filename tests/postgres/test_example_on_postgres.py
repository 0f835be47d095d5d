"""The FastAPI example on a PostgreSQL store, in two real uvicorn processes whose requests
alternate: signed-in users' conversations, memory, isolation and erasure (what is left in the
tables afterwards), and a streamed reply left mid-way and resumed on the other node."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest

from stickyctx.core.principals import UserKeys
from stickyctx.core.storekeys import KeyDeriver
from tests.conftest import KEY_A, AppServer
from tests.postgres_servers import PostgresServer
from tests.redis_servers import free_port
from tests.support.apps import User
from tests.support.sse import SSE, read_events

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HASH_KEY = "pg-example-hash-key-0123456789abcdef01"
SECRET_WORD = "Zanzibar"  # only alice ever says it


@pytest.fixture
def namespace() -> str:
    return f"ex{uuid.uuid4().hex[:10]}"


@pytest.fixture
def nodes(postgres_server_session: PostgresServer, app_server: Callable[..., AppServer],
          namespace: str) -> list[AppServer]:
    ports = [free_port(), free_port()]
    listed = ",".join(f"n{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
    return [app_server("examples.fastapi.app:app", {
        "STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_HASH_KEY": HASH_KEY,
        "STICKYCTX_NAMESPACE": namespace, "STICKYCTX_NODE_ID": f"n{i + 1}",
        "STICKYCTX_NODES": listed, "STICKYCTX_STORE_URL": postgres_server_session.url,
        "STICKYCTX_COOKIE_SECURE": "0", "DEMO_TOKEN_DELAY_MS": "40",
    }, port=port) for i, port in enumerate(ports)]


def test_conversations_memory_isolation_and_erasure_on_postgres(
        nodes: list[AppServer], postgres_server_session: PostgresServer,
        namespace: str) -> None:
    with ExitStack() as stack:
        alice, bob = User(stack, nodes, "alice"), User(stack, nodes, "bob")
        first = alice.call("POST", "/conversations").json()["id"]
        second = alice.call("POST", "/conversations").json()["id"]
        told = alice.call("POST", f"/conversations/{first}/chat",
                          {"message": f"my name is {SECRET_WORD}"})
        assert told.status_code == 200, told.text
        asked = alice.call("POST", f"/conversations/{second}/chat",
                           {"message": "what is my name?"}).json()
        assert SECRET_WORD in asked["reply"]  # from the principal's memory
        assert alice.call("GET", "/me/memory").json() == {"memory": {"name": SECRET_WORD}}
        listed = alice.call("GET", "/conversations").json()["conversations"]
        assert [c["id"] for c in listed] == [second, first]  # newest activity first
        assert listed[1]["title"] == f"my name is {SECRET_WORD}"
        denied = bob.call("GET", f"/conversations/{first}/history")
        assert denied.status_code == 404
        assert SECRET_WORD not in denied.text
        bobs = bob.call("POST", "/conversations").json()["id"]
        bob.call("POST", f"/conversations/{bobs}/chat", {"message": "my name is Bob"})

        erased = alice.call("DELETE", "/me")
        assert erased.status_code == 200
        assert erased.json()["conversations"] == 2
        alice = User(stack, nodes, "alice")  # signs in again: a blank slate
        assert alice.call("GET", "/conversations").json()["conversations"] == []
        for cid in (first, second):
            assert alice.call("GET", f"/conversations/{cid}/history").status_code == 404

    users = UserKeys(KeyDeriver(HASH_KEY.encode(), namespace).digest, namespace)
    deriver = KeyDeriver(HASH_KEY.encode(), namespace)
    hers = {users.principal("alice").tag} | {
        deriver.derive(users.conversation_session_id(cid)).tag for cid in (first, second)}
    with postgres_server_session.connect() as conn:
        data = conn.execute(
            "SELECT 'session', tag, convert_from(state, 'UTF8') FROM stickyctx_sessions "
            "WHERE ns = %(ns)s UNION ALL SELECT kind, tag, value FROM stickyctx_userdata "
            "WHERE ns = %(ns)s UNION ALL SELECT 'chunk', tag, chunk FROM stickyctx_stream_chunks "
            "WHERE ns = %(ns)s", {"ns": namespace}).fetchall()
        tombstones = {r[0] for r in conn.execute(
            "SELECT tag FROM stickyctx_tombstones WHERE ns = %s", (namespace,))}
    assert data, "the test's data should be in these tables"
    assert not any(SECRET_WORD in str(text) for _, _, text in data)
    assert {(kind, tag) for kind, tag, _ in data if tag in hers} == {
        ("buried", tag) for tag in hers}  # of her data, only the tombstones
    assert tombstones >= hers - {users.principal("alice").tag}  # her conversations' histories
    assert users.principal("bob").tag in {tag for _, tag, _ in data}  # bob's is untouched


def test_a_streamed_reply_left_midway_resumes_on_the_other_node(
        nodes: list[AppServer]) -> None:
    with httpx.Client(timeout=30.0) as client:
        first = client.post(nodes[0].url + "/chat", json={"message": "hello"})
        assert first.status_code == 200, first.text
        seen: list[SSE] = []
        with client.stream("POST", nodes[0].url + "/chat/stream",
                           json={"message": "tell me a long story with many words"}) as reply:
            assert reply.status_code == 200, reply.read()
            for event in read_events(reply):
                seen.append(event)
                if len(seen) == 3:
                    break
        with client.stream("GET", nodes[1].url + "/chat/stream",
                           headers={"Last-Event-ID": seen[-1].id}) as resumed:
            assert resumed.status_code == 200, resumed.read()
            rest = list(read_events(resumed))
        assert [e.event for e in seen] == ["token"] * 3
        assert rest[-1].event == "done"
        numbers = [e.number for e in seen + rest]
        assert numbers == list(range(1, len(numbers) + 1))  # each chunk once, in order
        text = "".join(e.data for e in seen + rest if e.event == "token")
        history = client.get(nodes[1].url + "/history").json()["messages"]
        assert history[-1]["role"] == "assistant"
        assert history[-1]["content"] == text  # stored once, as the client saw it
