"""The Redis store's logic, once, as sans-I/O operations (see ``stickyctx._ops``).

Each operation yields ``Call("script", (name, keys, args))`` and receives the reply; the sync and
async adapters differ only in how they run a script. The hot tier lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .._ops import Call, Op
from ..core.keys import SessionKey
from ..core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, Summary
from ..errors import SessionBusyError
from . import _redis_schema as schema
from ._hot import HotTier, stale
from ._redis_schema import (
    DEDUPE,
    FENCE,
    LEASES,
    MESSAGES,
    META,
    SUMMARY_LEASE,
    TOMBSTONE,
    TURN_LEASE,
    Limits,
)

__all__ = ["RedisOps"]

_ALL = (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE)
_ROTATE_ATTEMPTS = 5


def _script(name: str, keys: list[str], args: Sequence[Any]) -> Call:
    return Call("script", (name, keys, list(args)))


class RedisOps:
    def __init__(self, limits: Limits, hot_capacity: int) -> None:
        self.limits = limits
        self.hot = HotTier(hot_capacity)

    def load(self, key: SessionKey) -> Op[Snapshot]:
        from ..errors import StoreUnavailableError

        seen = self.hot.known(key.tag)
        names = schema.keys(key, META, MESSAGES, DEDUPE, TOMBSTONE)
        try:
            reply = yield _script("load", names, schema.load_args(
                self.limits, seen[1] if seen else None))
        except StoreUnavailableError:
            cached = self.hot.cached(key.tag)
            if cached is None:
                raise
            return stale(cached)  # served from this node's memory, flagged
        loaded = schema.parse_load(reply)
        if loaded.kind in ("revoked", "missing"):
            self.hot.invalidate(key.tag)
            return Snapshot(loaded.kind)  # type: ignore[arg-type]
        snapshot = self.hot.apply(key.tag, seen[0] if seen else None, loaded)
        if snapshot is not None and loaded.kind == "same":
            return replace(snapshot, tier="local")  # a hit: validated, nothing decoded
        if snapshot is None:  # a tail that no longer lines up: load in full
            self.hot.invalidate(key.tag)
            reply = yield _script("load", names, schema.load_args(self.limits, None))
            loaded = schema.parse_load(reply)
            if loaded.kind in ("revoked", "missing"):
                return Snapshot(loaded.kind)  # type: ignore[arg-type]
            snapshot = self.hot.apply(key.tag, None, loaded)
            assert snapshot is not None
        return snapshot

    def append(self, key: SessionKey, messages: Sequence[NewMessage], created: float,
               create: bool, fence: int | None) -> Op[AppendResult]:
        args = schema.append_args(messages, self.limits, created=created, create=create,
                                  fence=fence)
        reply = yield _script("append", schema.keys(key, META, MESSAGES, DEDUPE, TURN_LEASE,
                                                     TOMBSTONE), args)
        result = schema.parse_append(reply, fence)
        if result.status == "live":
            stored = schema.stored_from(messages, result)
            self.hot.after_append(key.tag, stored, result, [m.encoding for m in stored])
        else:
            self.hot.invalidate(key.tag)
        return result

    def clear(self, key: SessionKey, fence: int | None) -> Op[int]:
        self.hot.invalidate(key.tag)
        reply = yield _script("clear", schema.keys(key, META, MESSAGES, TURN_LEASE),
                              ["" if fence is None else fence])
        return schema.parse_clear(reply, fence)

    def pop(self, key: SessionKey, fence: int | None) -> Op[StoredMessage | None]:
        self.hot.invalidate(key.tag)
        reply = yield _script("pop", schema.keys(key, META, MESSAGES, TURN_LEASE),
                              ["" if fence is None else fence])
        return schema.parse_pop(reply, fence)

    def rotate(self, old: SessionKey, new: SessionKey) -> Op[None]:
        """Copy the data to the new keys, then tombstone the old ones if nothing changed
        meanwhile (else copy again): safe in Cluster, where the two ids live in other slots."""
        self.hot.invalidate(old.tag)
        old_keys = schema.keys(old, *_ALL, TOMBSTONE)
        for _ in range(_ROTATE_ATTEMPTS):
            exported = yield _script("export", schema.keys(old, *_ALL), [])
            if not exported:
                yield _script("bury", old_keys, ["", self.limits.absolute_ms])
                return
            version, dumps = exported[0], list(exported[2:])
            yield _script("import", schema.keys(new, *_ALL), dumps)
            buried = yield _script("bury", old_keys, [version, self.limits.absolute_ms])
            if int(buried) == 1:
                return
        raise SessionBusyError(0.0)  # the session kept changing under us: the app may retry

    def destroy(self, key: SessionKey) -> Op[None]:
        self.hot.invalidate(key.tag)
        yield _script("destroy", schema.keys(key, *_ALL, TOMBSTONE), [self.limits.absolute_ms])

    def acquire_lease(self, key: SessionKey, holder: str, ttl: float, name: str) -> Op[int | None]:
        reply = yield _script("lease", schema.keys(key, LEASES[name], FENCE),
                              [holder, max(1, int(ttl * 1000)), self.limits.absolute_ms])
        return int(reply) if reply else None

    def release_lease(self, key: SessionKey, token: int, name: str) -> Op[None]:
        yield _script("release", schema.keys(key, LEASES[name]), [token])

    def apply_summary(self, key: SessionKey, text: str, tokens: int, watermark: int,
                      expected_watermark: int, delete_folded: bool) -> Op[Summary | None]:
        reply = yield _script("summary", schema.keys(key, META, MESSAGES), [
            text, tokens, watermark, expected_watermark, 1 if delete_folded else 0])
        self.hot.invalidate(key.tag)
        if not reply:
            return None
        return Summary(text, watermark, int(reply[0]), tokens)

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int],
                expected_version: int) -> Op[int | None]:
        cached = self.hot.cached(key.tag)
        if cached is None or cached.version != expected_version:
            return None
        args = schema.recount_args(cached.messages, encoding, tokens, expected_version)
        self.hot.invalidate(key.tag)
        reply = yield _script("recount", schema.keys(key, META, MESSAGES), args)
        return int(reply) if reply else None
