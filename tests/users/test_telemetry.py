"""Operations on principals and conversations are seen by telemetry: one span per store
primitive (``stickyctx.store <primitive>``), and no span or metric names the principal, the
tenant or a conversation id."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from stickyctx.sansio import run_sync
from stickyctx.session.services import Services
from stickyctx.session.users import UserSpace
from stickyctx.stores import open_store
from tests.conftest import make_settings
from tests.telemetry.harness import OtelKit


@pytest.fixture
def otel() -> Iterator[OtelKit]:
    kit = OtelKit()
    yield kit
    kit.shutdown()


def test_user_operations_make_store_spans_that_name_nobody(otel: OtelKit) -> None:
    settings = make_settings()
    services = Services(settings, clock=time.time, **otel.providers())
    store = open_store(settings)

    io = store.sync_io
    space = UserSpace(services, store, "alice@example.com", tenant="acme-corp")
    run_sync(space.create("order-4711"), io)
    run_sync(space.remember("favourite", "tea"), io)
    assert run_sync(space.memory(), io) == {"favourite": "tea"}
    session = run_sync(space.open("order-4711"), io)
    run_sync(session.append("user", "hello"), io)
    run_sync(session.end(200), io)
    run_sync(space.list(), io)
    names = {s.name for s in otel.ours()}
    for primitive in ("conversation_put", "index_add", "memory_put", "conversation_get",
                      "conversation_change", "index_page", "memory_get"):
        assert f"stickyctx.store {primitive}" in names, names
    assert "stickyctx.session.lookup.save" in names  # the conversation's own turn, as usual
    for span in otel.ours():
        text = repr(dict(span.attributes or {})) + span.name
        for secret in ("alice", "example.com", "acme", "order-4711", "tea"):
            assert secret not in text, (span.name, text)
    store.close()
