"""The statements the PostgreSQL store's operations run, and what their rows mean.

Every operation on a session starts with the same reads (``session_reads``): the session's
transaction-level advisory lock (so its operations are serialized, also while it does not exist
yet, and the lock goes with the transaction, also when a client or the server dies), then the
server's clock (so every node agrees on expiry and lease lifetimes), the tombstone, the row and
the leases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...core.storekeys import SessionKey
from ..memory_history import History
from .codec import Sealer, decode, encode
from .io import Rows, Statement

__all__ = ["Lease", "Limits", "Seen", "Writes", "data_reads", "lock_reads", "now_of", "seen",
           "session_reads"]


@dataclass(frozen=True, slots=True)
class Limits:
    idle_ttl: float
    absolute_ttl: float
    max_tokens: int
    max_bytes: int
    refresh: float  # a load writes the session's last use only when it is older than this


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    token: int
    expires: float


def _lock(key: SessionKey) -> Statement:
    return Statement("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"{key.namespace}/{key.tag}",))


NOW = Statement("SELECT extract(epoch FROM clock_timestamp())::float8")
NEXT_FENCE = Statement("SELECT nextval('stickyctx_fences')")


def lock_reads(*keys: SessionKey) -> list[Statement]:
    """Take the sessions' locks (in one order, so two operations never deadlock), then read
    the server's clock: the first ``len(keys) + 1`` reads of an operation."""
    ordered = sorted(set(keys), key=lambda k: (k.namespace, k.tag))
    return [*(_lock(k) for k in ordered), NOW]


def data_reads(key: SessionKey, *, fence: bool = False) -> list[Statement]:
    """The tombstone, row and leases of ``key`` (and a new fencing token when the operation
    may grant one): ``seen`` reads their rows."""
    ident = (key.namespace, key.tag)
    reads = [
        Statement("SELECT until, follow, follow_until FROM stickyctx_tombstones "
                  "WHERE ns = %s AND tag = %s", ident),
        Statement("SELECT created, touched, expires, dek, state FROM stickyctx_sessions "
                  "WHERE ns = %s AND tag = %s", ident),
        Statement("SELECT name, holder, token, expires FROM stickyctx_leases "
                  "WHERE ns = %s AND tag = %s", ident),
    ]
    if fence:
        reads.append(NEXT_FENCE)
    return reads


def session_reads(key: SessionKey, *, fence: bool = False) -> list[Statement]:
    """The reads of an operation on one session: its lock, the clock, its data."""
    return [*lock_reads(key), *data_reads(key, fence=fence)]


def now_of(rows: Rows, locks: int = 1) -> float:
    return float(rows[locks][0][0])


@dataclass
class Seen:
    """One session as its reads found it (``history`` is ``None`` when missing or expired)."""

    key: SessionKey
    now: float
    revoked: bool
    history: History | None
    dek: str | None
    expired: bool  # a row past its lifetime: deleted by this transaction's writes
    leases: dict[str, Lease]
    fence: int | None
    follow: str = ""  # revoked by a rotation within its grace: the pointer to the new id

    def lease(self, name: str) -> Lease | None:
        """The lease ``name`` if it is held now."""
        lease = self.leases.get(name)
        return lease if lease is not None and lease.expires > self.now else None


def seen(rows: Rows, key: SessionKey, sealer: Sealer, *, locks: int = 1,
         start: int | None = None) -> Seen:
    """Read the rows of ``data_reads(key)``, found at ``start`` (just after the locks and the
    clock by default)."""
    now = now_of(rows, locks)
    at = locks + 1 if start is None else start
    tomb, session, leases = rows[at], rows[at + 1], rows[at + 2]
    fence_rows = rows[at + 3] if len(rows) > at + 3 else None
    revoked = bool(tomb) and float(tomb[0][0]) > now
    follow = str(tomb[0][1]) if revoked and float(tomb[0][2]) > now else ""
    history = None
    dek = None
    expired = False
    if session:
        created, touched, expires, dek, state = session[0]
        if float(expires) <= now:
            expired = True
        else:
            history = decode(sealer.open(state, dek), float(created), float(touched))
    return Seen(key, now, revoked, history, dek, expired,
                {name: Lease(holder, int(token), float(until))
                 for name, holder, token, until in leases},
                int(fence_rows[0][0]) if fence_rows else None, follow)


@dataclass
class Writes:
    """The statements a decision runs, built by what the operation changes."""

    limits: Limits
    sealer: Sealer
    statements: list[Statement] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.statements.append(Statement(sql, params))

    def save(self, key: SessionKey, history: History, dek: str | None) -> None:
        """Write the session's row (its state sealed, its lifetime from its last use)."""
        state, dek = self.sealer.seal(encode(history), dek)
        expires = min(history.touched + self.limits.idle_ttl,
                      history.created + self.limits.absolute_ttl)
        self.add("INSERT INTO stickyctx_sessions AS s (ns, tag, created, touched, expires, "
                 "version, dek, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                 "ON CONFLICT (ns, tag) DO UPDATE SET created = excluded.created, "
                 "touched = excluded.touched, expires = excluded.expires, "
                 "version = excluded.version, dek = excluded.dek, state = excluded.state",
                 key.namespace, key.tag, history.created, history.touched, expires,
                 history.version, dek, state)

    def touch(self, key: SessionKey, history: History) -> None:
        expires = min(history.touched + self.limits.idle_ttl,
                      history.created + self.limits.absolute_ttl)
        self.add("UPDATE stickyctx_sessions SET touched = %s, expires = %s "
                 "WHERE ns = %s AND tag = %s AND touched < %s",
                 history.touched, expires, key.namespace, key.tag, history.touched)

    def delete(self, key: SessionKey, *, expired_at: float | None = None) -> None:
        """Delete the row (only if it is past its lifetime at ``expired_at``, when given: a
        step without the session's lock must not delete a session renewed meanwhile)."""
        if expired_at is None:
            self.add("DELETE FROM stickyctx_sessions WHERE ns = %s AND tag = %s",
                     key.namespace, key.tag)
        else:
            self.add("DELETE FROM stickyctx_sessions WHERE ns = %s AND tag = %s "
                     "AND expires <= %s", key.namespace, key.tag, expired_at)

    def bury(self, key: SessionKey, until: float, follow: str = "",
             follow_until: float = 0.0) -> None:
        """Tombstone ``key`` until ``until``; with a rotation's ``follow`` pointer, answered
        until ``follow_until`` (a later tombstone without one keeps an earlier pointer)."""
        self.add("INSERT INTO stickyctx_tombstones AS t (ns, tag, until, follow, follow_until) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ns, tag) DO UPDATE SET "
                 "until = greatest(t.until, excluded.until), "
                 "follow = CASE WHEN excluded.follow <> '' THEN excluded.follow "
                 "ELSE t.follow END, "
                 "follow_until = CASE WHEN excluded.follow <> '' THEN excluded.follow_until "
                 "ELSE t.follow_until END",
                 key.namespace, key.tag, until, follow, follow_until)

    def grant(self, key: SessionKey, name: str, lease: Lease) -> None:
        self.add("INSERT INTO stickyctx_leases (ns, tag, name, holder, token, expires) "
                 "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (ns, tag, name) DO UPDATE SET "
                 "holder = excluded.holder, token = excluded.token, expires = excluded.expires",
                 key.namespace, key.tag, name, lease.holder, lease.token, lease.expires)

    def drop_lease(self, key: SessionKey, name: str | None = None) -> None:
        if name is None:
            self.add("DELETE FROM stickyctx_leases WHERE ns = %s AND tag = %s",
                     key.namespace, key.tag)
        else:
            self.add("DELETE FROM stickyctx_leases WHERE ns = %s AND tag = %s AND name = %s",
                     key.namespace, key.tag, name)
