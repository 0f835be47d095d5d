"""The examples' conversation routes in real app processes on a private Redis server.

Two nodes of one example (FastAPI under uvicorn, or Flask under uvicorn's WSGI interface) share
the Redis; a signed-in user's requests alternate between them. What a user told the bot in one
conversation ("my name is ...") is answered in another; another user gets 404 for it, never data;
the anonymous ``POST /chat`` flow is unchanged; ``DELETE /me`` erases the user, proven by SCAN:
of everything the user had, only tombstones are left, no stored value holds their words, and
replays of their old conversation ids find nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import pytest

from stickyctx.core.principals import UserKeys
from stickyctx.core.storekeys import KeyDeriver
from tests.conftest import KEY_A, AppServer
from tests.redis_servers import RedisServer, free_port
from tests.support.apps import User

from .conftest import stored_values

HASH_KEY = "routes-test-hash-key-0123456789abcdef01"
NAMESPACE = "stickyctx"
TARGETS = {"fastapi": ("examples.fastapi.app:app", "asgi3"),
           "flask": ("examples.flask.app:app", "wsgi")}
SECRET_WORD = "Zanzibar"  # only alice ever says it
TOMBSTONES = {"x", "cx", "cp"}  # a session's, a conversation's and a principal's


@pytest.fixture(params=sorted(TARGETS))
def nodes(request: pytest.FixtureRequest, redis_server: RedisServer,
          app_server: Callable[..., AppServer]) -> list[AppServer]:
    target, interface = TARGETS[request.param]
    ports = [free_port(), free_port()]
    listed = ",".join(f"n{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
    started = []
    for i, port in enumerate(ports):
        started.append(app_server(target, {
            "STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_HASH_KEY": HASH_KEY,
            "STICKYCTX_NODE_ID": f"n{i + 1}", "STICKYCTX_NODES": listed,
            "STICKYCTX_STORE_URL": redis_server.url, "STICKYCTX_COOKIE_SECURE": "0",
        }, port=port, interface=interface))
    return started


@pytest.mark.e2e
@pytest.mark.slow
def test_conversations_memory_isolation_and_erasure(nodes: list[AppServer],
                                                   redis_server: RedisServer) -> None:
    with ExitStack() as stack:
        anonymous = User(stack, nodes, "")
        assert anonymous.call("POST", "/conversations").status_code == 401
        alice, bob = User(stack, nodes, "alice"), User(stack, nodes, "bob")
        first = alice.call("POST", "/conversations").json()["id"]
        second = alice.call("POST", "/conversations").json()["id"]
        told = alice.call("POST", f"/conversations/{first}/chat",
                          {"message": f"my name is {SECRET_WORD}"})
        assert told.status_code == 200
        assert set(told.json()) == {"reply", "node", "owner", "affinity", "turns", "tokens"}
        asked = alice.call("POST", f"/conversations/{second}/chat",
                           {"message": "what is my name?"}).json()
        assert SECRET_WORD in asked["reply"]
        assert asked["turns"] == 1  # a conversation of its own: the name came from memory
        assert alice.call("GET", "/me/memory").json() == {"memory": {"name": SECRET_WORD}}
        assert alice.call("PUT", "/me/memory/city", {"value": "Lisbon"}).status_code == 200
        listed = alice.call("GET", "/conversations").json()["conversations"]
        assert [c["id"] for c in listed] == [second, first]  # newest activity first
        assert {"id", "title", "created", "last_activity", "turns"} <= set(listed[0])
        assert listed[1]["title"] == f"my name is {SECRET_WORD}"

        # Another user: 404 for every route of alice's conversation, and none of her data.
        for method, path, body in (("GET", f"/conversations/{first}/history", None),
                                   ("POST", f"/conversations/{first}/chat", {"message": "hi"}),
                                   ("DELETE", f"/conversations/{first}", None)):
            denied = bob.call(method, path, body)
            assert denied.status_code == 404
            assert SECRET_WORD not in denied.text
        bobs = bob.call("POST", "/conversations").json()["id"]
        bob.call("POST", f"/conversations/{bobs}/chat", {"message": "my name is Bob"})
        assert bob.call("GET", "/me/memory").json() == {"memory": {"name": "Bob"}}

        # The anonymous flow is unchanged.
        chat = anonymous.call("POST", "/chat", {"message": "hello"}).json()
        assert chat["turns"] == 1
        assert len(anonymous.call("GET", "/history").json()["messages"]) == 2

        # Erasure: one call, then SCAN.
        erased = alice.call("DELETE", "/me")
        assert erased.status_code == 200
        assert erased.json()["conversations"] == 2
        alice = User(stack, nodes, "alice")  # signs in again: a blank slate
        assert alice.call("GET", "/conversations").json()["conversations"] == []
        assert alice.call("GET", "/me/memory").json() == {"memory": {}}
        for cid in (first, second):  # replays of her old ids find nothing
            assert alice.call("GET", f"/conversations/{cid}/history").status_code == 404
            assert alice.call("POST", f"/conversations/{cid}/chat",
                              {"message": "x"}).status_code == 404

    raw = redis_server.client()
    users = UserKeys(KeyDeriver(HASH_KEY.encode(), NAMESPACE).digest, NAMESPACE)
    deriver = KeyDeriver(HASH_KEY.encode(), NAMESPACE)
    hers = {users.principal("alice").tag} | {
        deriver.derive(users.conversation_session_id(cid)).tag for cid in (first, second)}
    keys = redis_server.scan_keys("*")
    assert keys, "the test's data should be in this Redis"
    left = 0
    for key in keys:
        text = key.decode() if isinstance(key, bytes) else key
        tag = text.split("{", 1)[1].split("}", 1)[0] if "{" in text else ""
        if tag in hers:
            assert text.rsplit(":", 1)[1] in TOMBSTONES, text
            left += 1
        assert not any(SECRET_WORD.encode() in v for v in stored_values(raw, key)), text
    assert left == 2 * 2 + 1  # each conversation's two tombstones, and the principal's
    assert any(users.principal("bob").tag in (k.decode() if isinstance(k, bytes) else k)
               for k in keys)  # bob's data is untouched
