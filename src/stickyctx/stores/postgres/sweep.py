"""Deleting what has expired from the PostgreSQL tables (``stickyctx db sweep``).

PostgreSQL has no key expiry: a session, tombstone, lease, cold-tier copy, conversation record,
principal's index or memory, or streamed reply past its lifetime is already invisible (every
read compares its deadline with the server's clock, and a read that finds one deletes it or
overwrites it), but one nobody reads again stays on disk until a sweep deletes it. Run
the sweep periodically (hourly is plenty); it deletes in batches, so it never holds many locks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sweep"]

_BATCH = 5000
_NOW = "extract(epoch FROM clock_timestamp())"
_TABLES = (("stickyctx_sessions", "expires"), ("stickyctx_tombstones", "until"),
           ("stickyctx_leases", "expires"), ("stickyctx_members", "expires"),
           ("stickyctx_cold", "expires"), ("stickyctx_userdata", "expires"),
           ("stickyctx_streams", "expires"))  # a stream's chunks go with it (a cascade)


def sweep(conn: Any) -> dict[str, int]:
    """Delete every expired row through a blocking psycopg connection (autocommit); the rows
    deleted per table."""
    deleted: dict[str, int] = {}
    for table, column in _TABLES:
        total = 0
        while True:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "  # noqa: S608
                f"WHERE {column} <= {_NOW} LIMIT {_BATCH})")
            total += cursor.rowcount
            if cursor.rowcount < _BATCH:
                break
        deleted[table] = total
    return deleted
