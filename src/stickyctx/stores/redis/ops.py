"""The Redis store's logic, once, as sans-I/O operations (see ``stickyctx.sansio.drive``).

Each operation yields ``Call("script", (name, keys, args))`` and receives the reply; the sync and
async adapters differ only in how they run a script. The hot tier lives here too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from ...core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, Summary
from ...core.storekeys import SessionKey
from ...errors import SessionBusyError, StoreError, StoreUnavailableError
from ...sansio.drive import Call, Op
from ..crypto import DataKey, KeyRing
from . import schema
from .hot import HotTier, stale
from .schema import (
    DEDUPE,
    FENCE,
    LEASES,
    MESSAGES,
    META,
    SUMMARY_LEASE,
    TOMBSTONE,
    TURN_LEASE,
    Codec,
    DataKeyMismatch,
    Limits,
    _same,
)

__all__ = ["RedisOps"]

_ALL = (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, FENCE)  # every key but the tombstone
_ROTATE_ATTEMPTS = 5


def _script(name: str, keys: list[str], args: Sequence[Any]) -> Call:
    return Call("script", (name, keys, list(args)))


class RedisOps:
    def __init__(self, limits: Limits, hot_capacity: int, ring: KeyRing | None = None) -> None:
        self.limits = limits
        self.hot = HotTier(hot_capacity)
        self.ring = ring
        self._data_keys: OrderedDict[str, DataKey] = OrderedDict()  # tag -> the session's DEK

    # Encryption at rest (see _crypto) ---------------------------------------------------------

    def _remember(self, tag: str, data_key: DataKey) -> DataKey:
        self._data_keys[tag] = data_key
        self._data_keys.move_to_end(tag)
        while len(self._data_keys) > max(1024, self.hot.capacity):
            self._data_keys.popitem(last=False)
        return data_key

    def _opener(self, tag: str) -> Callable[[dict[str, str]], Codec]:
        def opener(meta: dict[str, str]) -> Codec:
            wrapped = meta.get("dek")
            if not wrapped:
                return _same
            if self.ring is None:
                raise StoreError("the session is encrypted and STICKYCTX_ENCRYPTION_KEY is not "
                                 "set")
            cached = self._data_keys.get(tag)
            if cached is None or cached.wrapped != wrapped:
                cached = self._remember(tag, self.ring.unwrap(wrapped))
            return cached.open
        return opener

    def _data_key(self, key: SessionKey) -> Op[DataKey | None]:
        """The session's DEK (loading the session once if this node has not seen it)."""
        if self.ring is None:
            return None
        cached = self._data_keys.get(key.tag)
        if cached is None:
            yield from self.load(key)
            cached = self._data_keys.get(key.tag)
        return cached

    def _rewrap(self, key: SessionKey) -> Op[None]:
        cached = self._data_keys.get(key.tag)
        if self.ring is None or cached is None or not self.ring.needs_rewrap(cached.wrapped):
            return
        fresh = self.ring.rewrap(cached)
        done = yield _script("rewrap", schema.keys(key, META), [cached.wrapped, fresh.wrapped])
        if int(done) == 1:
            self._remember(key.tag, fresh)

    def load(self, key: SessionKey) -> Op[Snapshot]:
        from ...errors import StoreUnavailableError

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
        loaded = schema.parse_load(reply, self._opener(key.tag))
        if loaded.kind in ("revoked", "missing"):
            self.hot.invalidate(key.tag)
            return Snapshot(loaded.kind)  # type: ignore[arg-type]
        if loaded.kind != "same":
            yield from self._rewrap(key)
        snapshot = self.hot.apply(key.tag, seen[0] if seen else None, loaded)
        if snapshot is not None and loaded.kind == "same":
            return replace(snapshot, tier="local")  # a hit: validated, nothing decoded
        if snapshot is None:  # a tail that no longer lines up: load in full
            self.hot.invalidate(key.tag)
            reply = yield _script("load", names, schema.load_args(self.limits, None))
            loaded = schema.parse_load(reply, self._opener(key.tag))
            if loaded.kind in ("revoked", "missing"):
                return Snapshot(loaded.kind)  # type: ignore[arg-type]
            snapshot = self.hot.apply(key.tag, None, loaded)
            assert snapshot is not None
        return snapshot

    def append(self, key: SessionKey, messages: Sequence[NewMessage], created: float,
               create: bool, fence: int | None) -> Op[AppendResult]:
        names = schema.keys(key, META, MESSAGES, DEDUPE, TURN_LEASE, TOMBSTONE)
        data_key = self._data_keys.get(key.tag)
        if self.ring is not None and data_key is None:
            data_key = self.ring.new_data_key()  # kept only if the session has none yet
        while True:
            args = schema.append_args(
                messages, self.limits, created=created, create=create, fence=fence,
                data_key=data_key.wrapped if data_key else "",
                seal=data_key.seal if data_key else _same)
            reply = yield _script("append", names, args)
            try:
                result = schema.parse_append(reply, fence)
            except DataKeyMismatch as mismatch:  # seal again with the session's own key
                assert self.ring is not None
                data_key = self._remember(key.tag, self.ring.unwrap(mismatch.wrapped))
                continue
            break
        if data_key is not None and result.status == "live":
            self._remember(key.tag, data_key)
        if self.limits.replicas and result.status == "live" and result.seqs:
            # Redis replicates asynchronously: an append the master took but no replica has
            # would be lost by a failover. Acknowledge it only once enough replicas have it.
            acked = yield Call("wait", (self.limits.replicas, self.limits.replica_timeout_ms))
            if int(acked) < self.limits.replicas:
                self.hot.invalidate(key.tag)
                raise StoreUnavailableError(
                    "append", f"written, but {acked} of {self.limits.replicas} replicas have it")
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
        data_key = yield from self._data_key(key)
        self.hot.invalidate(key.tag)
        reply = yield _script("pop", schema.keys(key, META, MESSAGES, TURN_LEASE),
                              ["" if fence is None else fence])
        return schema.parse_pop(reply, fence, data_key.open if data_key else _same)

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

    def acquire_lease(self, key: SessionKey, holder: str, ttl: float, name: str,
                      live: Collection[str] = ()) -> Op[int | None]:
        reply = yield _script("lease", schema.keys(key, LEASES[name], FENCE),
                              [holder, max(1, int(ttl * 1000)), self.limits.absolute_ms,
                               ",".join(sorted(live))])
        return int(reply) if reply else None

    def release_lease(self, key: SessionKey, token: int, name: str,
                      holder: str | None = None) -> Op[None]:
        yield _script("release", schema.keys(key, LEASES[name]), [token, holder or ""])

    def apply_summary(self, key: SessionKey, text: str, tokens: int, watermark: int,
                      expected_watermark: int, delete_folded: bool) -> Op[Summary | None]:
        data_key = yield from self._data_key(key)
        sealed = data_key.seal(text) if data_key else text
        reply = yield _script("summary", schema.keys(key, META, MESSAGES), [
            sealed, tokens, watermark, expected_watermark, 1 if delete_folded else 0])
        self.hot.invalidate(key.tag)
        if not reply:
            return None
        return Summary(text, watermark, int(reply[0]), tokens)

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int],
                expected_version: int) -> Op[int | None]:
        cached = self.hot.cached(key.tag)
        if cached is None or cached.version != expected_version:
            return None
        data_key = self._data_keys.get(key.tag)
        args = schema.recount_args(cached.messages, encoding, tokens, expected_version,
                                   data_key.seal if data_key else _same)
        self.hot.invalidate(key.tag)
        reply = yield _script("recount", schema.keys(key, META, MESSAGES), args)
        return int(reply) if reply else None
