"""The PostgreSQL store beyond the contract suite: the schema command, erasure and expiry by
the server's clock, encryption at rest, namespaces, and a whole app on it."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest

from stickyctx.cli.main import main
from stickyctx.sansio import run_sync
from stickyctx.stores.postgres.migrations import LATEST
from tests.postgres.conftest import msg, new_key, pg_settings, pg_store
from tests.postgres_servers import PostgresServer
from tests.redis.chat import Client, sticky
from tests.support.waiting import poll

MARK = "PLAINTEXT-MARKER-41f0"


def test_db_upgrade_creates_the_schema_once(postgres_server_factory: object,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    server = postgres_server_factory()  # type: ignore[operator]
    assert main(["db", "status", "--url", server.url]) == 0
    assert f"schema version 0 of {LATEST}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", server.url]) == 0
    assert f"schema version {LATEST}; applied now: 1" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", server.url]) == 0  # again: nothing to do
    assert "already current" in capsys.readouterr().out
    with server.connect() as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM stickyctx_schema")]
    assert versions == list(range(1, LATEST + 1))
    assert main(["db", "status", "--url", server.url]) == 0
    assert "current" in capsys.readouterr().out


def test_db_commands_without_a_database_are_a_config_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STICKYCTX_COLD_URL", raising=False)
    monkeypatch.setenv("STICKYCTX_STORE_URL", "memory://")
    assert main(["db", "upgrade"]) == 2
    assert "STICKYCTX_COLD_URL" in capsys.readouterr().err


def test_destroy_leaves_only_a_tombstone(postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    key, bystander = new_key(settings), new_key(settings)
    try:
        for k in (key, bystander):
            run_sync(store.append(k, [msg("user", "q1")], created=time.time()), store.sync_io)
        assert run_sync(store.acquire_lease(key, holder="n1:a", ttl=60), store.sync_io)
        run_sync(store.destroy(key), store.sync_io)
        with postgres_server_session.connect() as conn:
            rows = {table: conn.execute(f"SELECT count(*) FROM stickyctx_{table} "  # noqa: S608
                                        "WHERE ns = %s AND tag = %s",
                                        (key.namespace, key.tag)).fetchone()[0]
                    for table in ("sessions", "leases", "tombstones")}
        assert rows == {"sessions": 0, "leases": 0, "tombstones": 1}
        assert run_sync(store.load(key), store.sync_io).status == "revoked"
        assert run_sync(store.load(bystander), store.sync_io).status == "live"
    finally:
        store.close()


@pytest.mark.slow
def test_sessions_expire_by_the_servers_clock(postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url, idle_ttl=1, absolute_ttl=60)
    store = pg_store(settings)
    key = new_key(settings)
    try:
        run_sync(store.append(key, [msg("user", "soon gone")], created=time.time()),
                 store.sync_io)
        assert run_sync(store.load(key), store.sync_io).status == "live"
        with postgres_server_session.connect() as conn:
            # (Watched in the table: a load would count as a use and keep the session alive.)
            def past() -> bool:
                row = conn.execute("SELECT expires <= extract(epoch FROM clock_timestamp()) "
                                   "FROM stickyctx_sessions WHERE ns = %s AND tag = %s",
                                   (key.namespace, key.tag)).fetchone()
                return bool(row[0])

            poll(past, timeout=10, what="the idle session's lifetime passing")
            assert run_sync(store.load(key), store.sync_io).status == "missing"
            left = conn.execute("SELECT count(*) FROM stickyctx_sessions WHERE ns = %s",
                                (key.namespace,)).fetchone()[0]
        assert left == 0  # the expired row was deleted by the load that found it
    finally:
        store.close()


def test_nothing_readable_is_stored_with_encryption(
        postgres_server_session: PostgresServer) -> None:
    ring = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    settings = pg_settings(postgres_server_session.url, encryption_key=f"k1:{ring}")
    store = pg_store(settings)
    key = new_key(settings)
    try:
        run_sync(store.append(key, [msg("user", f"{MARK} hello")], created=time.time()),
                 store.sync_io)
        assert run_sync(store.apply_summary(key, f"{MARK} sum", 3, watermark=1,
                                            expected_watermark=0), store.sync_io)
        with postgres_server_session.connect() as conn:
            state, dek = conn.execute("SELECT state, dek FROM stickyctx_sessions WHERE ns = %s "
                                      "AND tag = %s", (key.namespace, key.tag)).fetchone()
        assert dek.startswith("k1:")
        assert MARK.encode() not in bytes(state)
        loaded = run_sync(store.load(key), store.sync_io)
        assert [m.content for m in loaded.messages] == [f"{MARK} hello"]
        assert loaded.summary is not None
        assert loaded.summary.text == f"{MARK} sum"
    finally:
        store.close()


def test_namespaces_never_mix(postgres_server_session: PostgresServer) -> None:
    """The same session id under two namespaces (two tenants) is two sessions."""
    url = postgres_server_session.url
    one, two = pg_settings(url, namespace="tenant-one"), pg_settings(url, namespace="tenant-two")
    key_one = new_key(one)
    key_two = type(key_one)(two.namespace, key_one.tag)
    store = pg_store(one)
    try:
        run_sync(store.append(key_one, [msg("user", "tenant one's")], created=time.time()),
                 store.sync_io)
        assert run_sync(store.load(key_two), store.sync_io).status == "missing"
        run_sync(store.destroy(key_two), store.sync_io)
        assert run_sync(store.load(key_one), store.sync_io).status == "live"
    finally:
        store.close()


def test_an_app_on_postgres_chats_rotates_and_destroys(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)

    async def scenario() -> None:
        async with sticky(settings) as app:
            client = Client(app)
            await client.chat("one")
            reply = await client.chat("two")
            assert [m["content"] for m in reply.json()["messages"]] == [
                "one", "echo: one", "two", "echo: two"]
            old_token = client.token
            rotated = await client.request("POST", "/rotate")
            assert rotated.json()["session_id"] != rotated.json()["old"]
            assert len((await client.request("GET", "/history")).json()["messages"]) == 4
            # The token from before the rotation follows to the new id within the grace.
            replay = Client(app, old_token)
            followed = (await replay.request("GET", "/history")).json()
            assert followed["session_id"] == rotated.json()["session_id"]
            assert len(followed["messages"]) == 4
            await client.request("POST", "/destroy")
            assert (await client.request("GET", "/history")).json()["messages"] == []

    asyncio.run(scenario())


def test_without_a_grace_an_old_token_after_a_rotation_finds_nothing(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url, rotation_grace=0)

    async def scenario() -> None:
        async with sticky(settings) as app:
            client = Client(app)
            await client.chat("one")
            old_token = client.token
            rotated = (await client.request("POST", "/rotate")).json()
            replay = (await Client(app, old_token).request("GET", "/history")).json()
            assert replay["session_id"] != rotated["session_id"]
            assert replay["messages"] == []

    asyncio.run(scenario())


def test_db_sweep_deletes_only_what_expired(postgres_server_session: PostgresServer,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    old, live = new_key(settings), new_key(settings)
    try:
        for key in (old, live):
            run_sync(store.append(key, [msg("user", "x")], created=time.time()), store.sync_io)
        with postgres_server_session.connect() as conn:  # one lifetime is over, as by waiting
            conn.execute("UPDATE stickyctx_sessions SET expires = 0 WHERE ns = %s AND tag = %s",
                         (old.namespace, old.tag))
        assert main(["db", "sweep", "--url", postgres_server_session.url]) == 0
        assert "stickyctx_sessions: 1" in capsys.readouterr().out
        with postgres_server_session.connect() as conn:
            tags = {r[0] for r in conn.execute(
                "SELECT tag FROM stickyctx_sessions WHERE ns = %s", (settings.namespace,))}
        assert tags == {live.tag}
    finally:
        store.close()


def test_a_database_without_the_schema_says_what_to_run(
        postgres_server_factory: object) -> None:
    from stickyctx.errors import StoreError

    server = postgres_server_factory()  # type: ignore[operator]
    settings = pg_settings(server.url)
    store = pg_store(settings)
    try:
        with pytest.raises(StoreError, match="stickyctx db upgrade"):
            run_sync(store.load(new_key(settings)), store.sync_io)
    finally:
        store.close()
