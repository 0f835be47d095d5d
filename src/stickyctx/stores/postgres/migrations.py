"""The PostgreSQL schema, as numbered migrations that ``stickyctx db upgrade`` applies.

The missing migrations run in one transaction, each recorded in ``stickyctx_schema``; an
upgrade holds a transaction-level advisory lock, so two nodes upgrading at once apply each
migration once. Upgrading a current schema does nothing. Migrations are append-only: a change
of the schema is a new entry at the end, never an edit of an old one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATEST", "MIGRATIONS", "current_version", "upgrade"]

_LOCK = 0x5717C7  # the advisory lock id that serializes upgrades

MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("the store: sessions, tombstones, leases, fencing tokens, members", """
        CREATE TABLE stickyctx_sessions (
            ns text NOT NULL,
            tag text NOT NULL,
            created double precision NOT NULL,
            touched double precision NOT NULL,
            expires double precision NOT NULL,
            version bigint NOT NULL,
            dek text,
            state bytea NOT NULL,
            PRIMARY KEY (ns, tag)
        );
        CREATE INDEX stickyctx_sessions_expires ON stickyctx_sessions (expires);
        CREATE TABLE stickyctx_tombstones (
            ns text NOT NULL,
            tag text NOT NULL,
            until double precision NOT NULL,
            PRIMARY KEY (ns, tag)
        );
        CREATE INDEX stickyctx_tombstones_until ON stickyctx_tombstones (until);
        CREATE TABLE stickyctx_leases (
            ns text NOT NULL,
            tag text NOT NULL,
            name text NOT NULL,
            holder text NOT NULL,
            token bigint NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (ns, tag, name)
        );
        CREATE SEQUENCE stickyctx_fences;
        CREATE TABLE stickyctx_members (
            ns text NOT NULL,
            node_id text NOT NULL,
            address text,
            load bigint NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (ns, node_id)
        );
    """),
    ("the cold tier: conversations moved out of Redis", """
        CREATE TABLE stickyctx_cold (
            ns text NOT NULL,
            tag text NOT NULL,
            version bigint NOT NULL,
            expires double precision NOT NULL,
            moved double precision NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (ns, tag)
        );
        CREATE INDEX stickyctx_cold_expires ON stickyctx_cold (expires);
    """),
    ("principals, conversations and streamed replies", """
        CREATE TABLE stickyctx_userdata (
            ns text NOT NULL,
            tag text NOT NULL,
            kind text NOT NULL,
            value text NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (ns, tag, kind)
        );
        CREATE INDEX stickyctx_userdata_expires ON stickyctx_userdata (expires);
        CREATE TABLE stickyctx_streams (
            ns text NOT NULL,
            tag text NOT NULL,
            stream_id text NOT NULL,
            status text NOT NULL,
            node text NOT NULL,
            turn text NOT NULL,
            stop boolean NOT NULL,
            count integer NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (ns, tag)
        );
        CREATE INDEX stickyctx_streams_expires ON stickyctx_streams (expires);
        CREATE TABLE stickyctx_stream_chunks (
            ns text NOT NULL,
            tag text NOT NULL,
            n integer NOT NULL,
            chunk text NOT NULL,
            PRIMARY KEY (ns, tag, n),
            FOREIGN KEY (ns, tag) REFERENCES stickyctx_streams (ns, tag) ON DELETE CASCADE
        );
    """),
    ("a rotation's follow pointer on its tombstone", """
        ALTER TABLE stickyctx_tombstones
            ADD COLUMN follow text NOT NULL DEFAULT '',
            ADD COLUMN follow_until double precision NOT NULL DEFAULT 0;
    """),
)
LATEST = len(MIGRATIONS)

_TABLE = """CREATE TABLE IF NOT EXISTS stickyctx_schema (
    version integer PRIMARY KEY, description text NOT NULL,
    applied timestamptz NOT NULL DEFAULT now())"""


def current_version(conn: Any) -> int:
    """The newest migration applied (0: none) through a psycopg connection."""
    exists = conn.execute("SELECT to_regclass('stickyctx_schema')").fetchone()[0]
    if exists is None:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM stickyctx_schema").fetchone()
    return int(row[0])


def upgrade(conn: Any) -> list[int]:
    """Apply the missing migrations through a blocking psycopg connection (not in a
    transaction); the numbers applied now, oldest first."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(_TABLE)
        done = current_version(conn)
        for number, (description, sql) in enumerate(MIGRATIONS, 1):
            if number <= done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO stickyctx_schema (version, description) VALUES (%s, %s)",
                         (number, description))
            applied.append(number)
    return applied
