"""The PostgreSQL store's principals, conversations and streamed replies beyond the contract
suite: lifetimes by the server's clock (real short ones), what erasure leaves in the tables,
the turn lease a push renews, a rotation's follow pointer lapsing, the sweep, and the upgrade
of a database an older version left."""

from __future__ import annotations

import time

import pytest

from stickyctx.cli.main import main
from stickyctx.core.principals import ConversationRecord, MemoryItem
from stickyctx.stores.userdata import ConversationChange
from tests.postgres.conftest import msg, new_key, pg_settings, pg_store
from tests.postgres_servers import PostgresServer
from tests.support.stores import SyncCalls
from tests.support.waiting import poll

TTL = 600.0


def _rows(server: PostgresServer, sql: str, *params: object) -> list[tuple[object, ...]]:
    with server.connect() as conn:
        return list(conn.execute(sql, params).fetchall())


def test_every_row_has_a_deadline_and_writes_renew_it(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    key, principal = new_key(settings), new_key(settings)
    try:
        s.conversation_put(key, ConversationRecord("c1", "u", 1.0, 1.0), ttl=5)
        s.state_cas(key, "k", "1", check=False, ttl=5)
        s.index_add(principal, "c1", 1.0, ttl=5)
        s.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=5)
        left = dict(_rows(postgres_server_session,
                          "SELECT tag || '/' || kind, expires - extract(epoch FROM "
                          "clock_timestamp()) FROM stickyctx_userdata WHERE ns = %s",
                          settings.namespace))
        assert set(left) == {f"{key.tag}/record", f"{key.tag}/state",
                             f"{principal.tag}/index", f"{principal.tag}/memory"}
        assert all(0 < float(str(v)) <= 5 for v in left.values())
        s.conversation_change(key, ConversationChange(turns=1), ttl=TTL)
        [(renewed,)] = _rows(postgres_server_session,
                             "SELECT expires - extract(epoch FROM clock_timestamp()) FROM "
                             "stickyctx_userdata WHERE ns = %s AND tag = %s AND kind = 'record'",
                             settings.namespace, key.tag)
        assert float(str(renewed)) > 5

        s.conversation_delete(key, ttl=TTL)
        s.principal_erase(principal, ttl=TTL)
        kinds = _rows(postgres_server_session, "SELECT tag, kind, value FROM stickyctx_userdata "
                      "WHERE ns = %s ORDER BY tag", settings.namespace)
        assert sorted(kinds) == sorted([(key.tag, "buried", "1"),
                                        (principal.tag, "buried", "1")])  # nothing else left
    finally:
        store.close()


@pytest.mark.slow
def test_user_data_and_tombstones_expire_by_the_servers_clock(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    key, principal, buried = new_key(settings), new_key(settings), new_key(settings)
    try:
        s.conversation_put(key, ConversationRecord("c1", "u", 1.0, 1.0), ttl=1)
        s.state_cas(key, "k", "1", check=False, ttl=1)
        s.index_add(principal, "c1", 1.0, ttl=1)
        s.memory_put(principal, "name", MemoryItem("Ada", 2), max_tokens=10, ttl=1)
        s.conversation_delete(buried, ttl=1)
        assert s.conversation_put(buried, ConversationRecord("c2", "u", 1.0, 1.0),
                                  ttl=TTL) is None
        poll(lambda: s.conversation_get(key) is None, timeout=10,
             what="the record's lifetime passing")
        assert s.state_get(key) == {}
        assert s.index_page(principal, offset=0, limit=10) == []
        assert s.memory_get(principal) == {}
        # Past its tombstone's lifetime, the id can be created again.
        again = ConversationRecord("c2", "u", 1.0, 1.0)
        assert s.conversation_put(buried, again, ttl=TTL) == again
    finally:
        store.close()


def test_a_push_renews_the_lease_of_its_fence_only(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    key = new_key(settings)

    def lease_left() -> float:
        [(left,)] = _rows(postgres_server_session,
                          "SELECT expires - extract(epoch FROM clock_timestamp()) FROM "
                          "stickyctx_leases WHERE ns = %s AND tag = %s AND name = 'turn'",
                          settings.namespace, key.tag)
        return float(str(left))

    try:
        token = s.acquire_lease(key, holder="n1:a", ttl=5.0)
        assert token is not None
        s.stream_open(key, "abc", node="n1", turn="", ttl=60)
        s.stream_push(key, "abc", ["x"], ttl=60, fence=token + 1, lease_ttl=30.0)
        assert lease_left() <= 5  # another fence renews nothing
        s.stream_push(key, "abc", ["y"], ttl=60, fence=token, lease_ttl=30.0)
        assert 5 < lease_left() <= 30
        chunks = _rows(postgres_server_session, "SELECT n, chunk FROM stickyctx_stream_chunks "
                       "WHERE ns = %s AND tag = %s ORDER BY n", settings.namespace, key.tag)
        assert chunks == [(1, "x"), (2, "y")]
    finally:
        store.close()


@pytest.mark.slow
def test_a_stream_expires_by_the_servers_clock_and_destroy_deletes_it(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    short, destroyed = new_key(settings), new_key(settings)
    try:
        s.stream_open(short, "abc", node="n1", turn="", ttl=1)
        s.stream_push(short, "abc", ["a"], ttl=1)
        assert s.stream_read(short) is not None
        poll(lambda: s.stream_read(short) is None, timeout=10,
             what="the stream's lifetime passing")
        assert s.stream_push(short, "abc", ["b"], ttl=60) is True  # expired: not appended
        assert s.stream_stop(short) is None

        s.append(destroyed, [msg("user", "hi")], created=time.time())
        s.stream_open(destroyed, "def", node="n1", turn="", ttl=60)
        s.stream_push(destroyed, "def", ["a", "b"], ttl=60)
        s.destroy(destroyed)
        assert s.stream_read(destroyed) is None
        for table in ("streams", "stream_chunks"):
            assert _rows(postgres_server_session,
                         f"SELECT count(*) FROM stickyctx_{table} "  # noqa: S608
                         "WHERE ns = %s AND tag = %s",
                         settings.namespace, destroyed.tag) == [(0,)]
    finally:
        store.close()


def test_the_follow_pointer_lapses_after_the_grace(
        postgres_server_session: PostgresServer) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    old, new = new_key(settings), new_key(settings)
    try:
        s.append(old, [msg("user", "hello")], created=time.time())
        s.rotate(old, new, follow="pointer", grace=0.3)
        assert s.load(old).follow == "pointer"
        assert s.begin(old, holder="n1:a", ttl=5).follow == "pointer"
        poll(lambda: s.load(old).follow == "", timeout=10, what="the grace to lapse")
        assert s.load(old).status == "revoked"  # revoked still, with nothing to follow
        assert s.append(old, [msg("user", "late")], created=time.time()).follow == ""
        assert [m.content for m in s.load(new).messages] == ["hello"]
        s.destroy(old)  # a later tombstone of the id keeps it revoked
        assert s.load(old).status == "revoked"
    finally:
        store.close()


def test_db_sweep_deletes_expired_user_data_and_streams_with_their_chunks(
        postgres_server_session: PostgresServer, capsys: pytest.CaptureFixture[str]) -> None:
    settings = pg_settings(postgres_server_session.url)
    store = pg_store(settings)
    s = SyncCalls(store)
    old, live = new_key(settings), new_key(settings)
    try:
        for key in (old, live):
            s.conversation_put(key, ConversationRecord("c", "u", 1.0, 1.0), ttl=TTL)
            s.stream_open(key, "abc", node="n1", turn="", ttl=TTL)
            s.stream_push(key, "abc", ["a", "b"], ttl=TTL)
        with postgres_server_session.connect() as conn:  # lifetimes over, as by waiting
            for table in ("userdata", "streams"):
                conn.execute(f"UPDATE stickyctx_{table} SET expires = 0 "  # noqa: S608
                             "WHERE ns = %s AND tag = %s", (old.namespace, old.tag))
        assert main(["db", "sweep", "--url", postgres_server_session.url]) == 0
        out = capsys.readouterr().out  # (other tests' expired rows may be swept as well)
        assert "stickyctx_userdata: 0" not in out
        assert "stickyctx_streams: 0" not in out
        for table in ("userdata", "streams", "stream_chunks"):
            tags = {r[0] for r in _rows(postgres_server_session,
                                        f"SELECT tag FROM stickyctx_{table} "  # noqa: S608
                                        "WHERE ns = %s", settings.namespace)}
            assert tags == {live.tag}, table
    finally:
        store.close()


def test_an_upgrade_from_schema_2_keeps_tombstones_and_adds_the_new_tables(
        postgres_server_factory: object, capsys: pytest.CaptureFixture[str]) -> None:
    from stickyctx.stores.postgres.migrations import LATEST, MIGRATIONS

    server: PostgresServer = postgres_server_factory()  # type: ignore[operator]
    settings = pg_settings(server.url)
    old = new_key(settings)
    with server.connect() as conn:  # a database left at version 2 by an older stickyctx
        conn.execute("CREATE TABLE stickyctx_schema (version integer PRIMARY KEY, "
                     "description text NOT NULL, applied timestamptz NOT NULL DEFAULT now())")
        for number, (description, sql) in enumerate(MIGRATIONS[:2], 1):
            conn.execute(sql)
            conn.execute("INSERT INTO stickyctx_schema (version, description) VALUES (%s, %s)",
                         (number, description))
        conn.execute("INSERT INTO stickyctx_tombstones (ns, tag, until) VALUES "
                     "(%s, %s, extract(epoch FROM clock_timestamp()) + 600)",
                     (old.namespace, old.tag))
    assert main(["db", "upgrade", "--url", server.url]) == 0
    assert f"schema version {LATEST}; applied now: 3, 4" in capsys.readouterr().out
    store = pg_store(settings)
    s = SyncCalls(store)
    try:
        snapshot = s.load(old)
        assert (snapshot.status, snapshot.follow) == ("revoked", "")
        s.stream_open(old, "abc", node="n1", turn="", ttl=60)
        assert s.stream_read(old).stream_id == "abc"
        assert s.index_page(new_key(settings), offset=0, limit=5) == []
    finally:
        store.close()
