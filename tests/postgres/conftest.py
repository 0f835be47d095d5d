"""Helpers of the PostgreSQL store tests: stores over a test's own server, test messages."""

from __future__ import annotations

import uuid
from typing import Any

from stickyctx import Settings
from stickyctx.core.ids import new_session_id
from stickyctx.core.messages import NewMessage, build_message
from stickyctx.core.storekeys import KeyDeriver, SessionKey
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.stores import open_store
from stickyctx.stores.postgres.store import PostgresStore
from tests.conftest import make_settings

HASH_KEY = "postgres-suite-hash-key-0123456789abc"


def pg_settings(url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {"store_url": url, "hash_key": HASH_KEY, "store_timeout": 3.0,
                            "namespace": f"t{uuid.uuid4().hex[:12]}"}
    return make_settings(**{**base, **changes})


def pg_store(settings: Settings) -> PostgresStore:
    store = open_store(settings)
    assert isinstance(store, PostgresStore)
    return store


def new_key(settings: Settings) -> SessionKey:
    return KeyDeriver(HASH_KEY.encode(), settings.namespace).derive(new_session_id())


def msg(role: str, content: Any = "hello", *, dedupe: str | None = None) -> NewMessage:
    return build_message(role, content, {}, load_tokenizer("cl100k_base"), 1 << 20, dedupe)
