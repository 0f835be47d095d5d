"""The kinds keep the session where they say: a memory kind in the embedded store, a Redis kind on
its server (any master of the Cluster) under its test's namespace, in both handle paths."""

from __future__ import annotations

import pytest

from stickyctx import Conversation, SyncConversation
from stickyctx.edges.request import identify
from stickyctx.stores import MemoryStore
from stickyctx.stores.redis.schema import MESSAGES, META
from stickyctx.stores.redis.store import RedisStore

from .backends import KINDS, MEMORY, REDIS, Counting, on
from .harness import Chat, Driver, settings_for


@on(*MEMORY, *REDIS)
def test_a_kind_keeps_the_session_on_its_own_store(
    kind: Driver, request: pytest.FixtureRequest,
) -> None:
    chat = Chat(kind, settings_for())
    with chat.turn() as turn:
        turn.append("user", "Where does this message live?")
        path = SyncConversation if kind.path == "sync" else Conversation
        assert isinstance(turn.handle, path)
    assert isinstance(chat.store.store, Counting)
    inner = chat.store.inner
    if not kind.on_redis:
        assert isinstance(inner, MemoryStore)
        assert chat.settings.store_url == "memory://"
        return
    assert isinstance(inner, RedisStore)
    server = KINDS[kind.name].server
    assert server is not None
    deployment = request.getfixturevalue(server)
    masters = getattr(deployment, "nodes", [deployment])  # a Cluster's masters, or the server
    assert chat.settings.store_url == deployment.url
    assert chat.token is not None
    key = chat.services.keys.derive(identify(chat.services, [], chat.token).session_id)
    found = sorted(k for master in masters for k in master.scan_keys(f"{kind.namespace}:*"))
    assert key.key(META) in found
    assert key.key(MESSAGES) in found
    assert all(k.startswith(f"{kind.namespace}:{{{key.tag}}}:") for k in found)  # this test's
    seen = chat.other_node().stored()  # another node, its own connections, the same data
    assert [m.content for m in seen.messages] == ["Where does this message live?"]
