"""The cold tier's table (``stickyctx_cold``): one row per conversation moved out of Redis.

A row holds the session's Redis keys as Redis serialized them (``DUMP``, so whatever Redis held
sealed stays sealed: encryption at rest covers the cold tier unchanged) with each key's
remaining lifetime, the session's version when it was copied, and its deadline by the
database's clock (the row expires with the session: a copy is never restored after the
session's own lifetime). The statements are ``Transaction`` steps of the PostgreSQL adapters.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ...core.storekeys import SessionKey
from ..postgres.io import Decision, Rows, Statement, Transaction
from ..postgres.rows import NOW

__all__ = ["Frozen", "delete", "digest", "fetch", "pack", "put", "sweep", "unpack", "verify"]

_HEAD = struct.Struct("!qI")  # per key: its remaining lifetime (ms) and its dump's length


@dataclass(frozen=True, slots=True)
class Frozen:
    """A session as the cold tier holds it: each key's dump (``b""``: the key did not exist)
    and remaining lifetime in milliseconds, as of ``now`` (the database's clock)."""

    version: int
    dumps: tuple[tuple[bytes, int], ...]

    def aged(self, elapsed_ms: int) -> tuple[tuple[bytes, int], ...]:
        return tuple((dump, ttl - elapsed_ms) for dump, ttl in self.dumps)


def pack(dumps: Sequence[tuple[bytes, int]]) -> bytes:
    return b"".join(_HEAD.pack(ttl, len(dump)) + dump for dump, ttl in dumps)


def unpack(payload: bytes) -> tuple[tuple[bytes, int], ...]:
    out = []
    at = 0
    while at < len(payload):
        ttl, size = _HEAD.unpack_from(payload, at)
        at += _HEAD.size
        out.append((payload[at:at + size], ttl))
        at += size
    return tuple(out)


def digest(payload: bytes) -> str:
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _ident(key: SessionKey) -> tuple[str, str]:
    return key.namespace, key.tag


def put(key: SessionKey, frozen: Frozen) -> Transaction:
    """Copy: the row of ``frozen`` (replacing an older copy); its value is the payload's
    digest, for ``verify``."""
    payload = pack(frozen.dumps)
    lifetime = max(ttl for _dump, ttl in frozen.dumps[:1]) / 1000

    def decide(rows: Rows) -> Decision[str]:
        now = float(rows[0][0][0])
        return Decision([Statement(
            "INSERT INTO stickyctx_cold (ns, tag, version, expires, moved, payload) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (ns, tag) DO UPDATE SET "
            "version = excluded.version, expires = excluded.expires, moved = excluded.moved, "
            "payload = excluded.payload",
            (*_ident(key), frozen.version, now + lifetime, now, payload))], digest(payload))

    return Transaction([NOW], decide)


def verify(key: SessionKey) -> Transaction:
    """Read back what the database holds: ``(version, md5 of the payload)`` or ``None``."""
    def decide(rows: Rows) -> Decision[tuple[int, str] | None]:
        found = rows[0]
        return Decision((), (int(found[0][0]), str(found[0][1])) if found else None)

    return Transaction([Statement("SELECT version, md5(payload) FROM stickyctx_cold "
                                  "WHERE ns = %s AND tag = %s", _ident(key))], decide,
                       atomic=False)


def fetch(key: SessionKey) -> Transaction:
    """The session's copy with each key's lifetime as of now, or ``None`` (also when its
    deadline has passed: an expired copy is deleted here)."""
    def decide(rows: Rows) -> Decision[Frozen | None]:
        now, found = float(rows[0][0][0]), rows[1]
        if not found:
            return Decision((), None)
        version, expires, moved, payload = found[0]
        if float(expires) <= now:
            return Decision([_delete(key, None)], None)
        frozen = Frozen(int(version), unpack(bytes(payload)))
        return Decision((), Frozen(frozen.version,
                                   frozen.aged(int((now - float(moved)) * 1000))))

    return Transaction([NOW, Statement(
        "SELECT version, expires, moved, payload FROM stickyctx_cold "
        "WHERE ns = %s AND tag = %s", _ident(key))], decide, atomic=False)  # one round trip


def _delete(key: SessionKey, version: int | None) -> Statement:
    if version is None:
        return Statement("DELETE FROM stickyctx_cold WHERE ns = %s AND tag = %s", _ident(key))
    return Statement("DELETE FROM stickyctx_cold WHERE ns = %s AND tag = %s AND version <= %s",
                     (*_ident(key), version))


def delete(key: SessionKey, version: int | None = None) -> Transaction:
    """Delete the copy (only one no newer than ``version`` when given)."""
    statement = _delete(key, version)
    return Transaction((), lambda rows: Decision([statement], None))


def sweep(namespace: str) -> Transaction:
    """Delete the namespace's copies whose sessions' lifetimes are over."""
    return Transaction([NOW], lambda rows: Decision([Statement(
        "DELETE FROM stickyctx_cold WHERE ns = %s AND expires <= %s",
        (namespace, float(rows[0][0][0])))], None))
