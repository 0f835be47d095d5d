"""The Redis store's logic, once, as sans-I/O operations (see ``stickyctx.sansio``).

Each primitive yields ``Script`` (and ``Wait``) steps that an adapter of ``io`` performs; what a
failure means (repeat a read once on a broken connection, translate redis-py's errors into the
store's) is decided here, once. The hot tier (``hot``) and the data keys (``sealing``) live
beside the logic, in this node's memory.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from ...core.messages import AppendResult, Begun, NewMessage, Snapshot, StoredMessage, Summary
from ...core.nodes import Announcement
from ...core.storekeys import SessionKey
from ...errors import SessionBusyError, StoreUnavailableError
from ...sansio import Op
from . import schema
from .failures import DataKeyMismatch, Reseal, repeatable, translate
from .hot import HotTier, stale
from .io import AsyncRedisIO, Script, SyncRedisIO, Wait
from .loops import LoopClients
from .schema import (
    DEDUPE,
    FENCE,
    LEASES,
    MESSAGES,
    META,
    SUMMARY_LEASE,
    TOMBSTONE,
    TURN_LEASE,
    Limits,
    _same,
)
from .sealing import DataKeys
from .streams import STREAM_CHUNKS, STREAM_RECORD, RedisStreams
from .users import RedisUserData

__all__ = ["RedisStore", "run_script"]

_ALL = (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, FENCE)  # every key but the tombstone
_ROTATE_ATTEMPTS = 5
_RESEAL_ATTEMPTS = 8


def run_script(name: str, keys: list[str], args: Sequence[Any]) -> Op[Any]:
    """One script call: a read is repeated once on a broken connection (never a write), and
    redis-py's errors become the store's."""
    for attempt in (1, 2):
        try:
            return (yield Script(name, keys, list(args)))
        except Exception as exc:  # translated into the store's errors
            if not repeatable(name, exc, attempt):
                raise translate(name, exc) from exc
    raise AssertionError("unreachable")


class RedisStore(RedisUserData, RedisStreams):
    """The Redis store over a sync client and asyncio clients (one per event loop)."""

    def __init__(self, limits: Limits, *, sync_client: Any,
                 async_clients: LoopClients, hot_capacity: int = 10_000,
                 data_keys: DataKeys | None = None, stale_reads: bool = False) -> None:
        self.limits = limits
        # Off by default: a node cannot learn of a revocation (destroy, purge, rotate) made
        # through another node while Redis is down, so its copy could outlive the revocation.
        self.stale_reads = stale_reads
        self.hot = HotTier(hot_capacity)
        self.keys = data_keys if data_keys is not None else DataKeys(None, hot_capacity)
        self.sync_io = SyncRedisIO(sync_client)
        self.async_io = AsyncRedisIO(async_clients)

    def close(self) -> None:
        self.sync_io.close()

    _script = staticmethod(run_script)  # the mixins' scripts (users, streams)

    async def aclose(self) -> None:
        await self.async_io.aclose()

    # Encryption at rest -----------------------------------------------------------------------

    def _data_key_of(self, key: SessionKey) -> Op[Any]:
        """The session's DEK (loading the session once if this node has not seen it)."""
        if self.keys.ring is None:
            return None
        if self.keys.get(key.tag) is None:
            yield from self.load(key)
        return self.keys.get(key.tag)

    def _rewrap(self, key: SessionKey) -> Op[None]:
        cached = self.keys.stale_wrap(key.tag)
        if cached is None:
            return
        fresh = self.keys.rewrapped(cached)
        done = yield from run_script("rewrap", schema.keys(key, META),
                                     [cached.wrapped, fresh.wrapped])
        if int(done) == 1:
            self.keys.remember(key.tag, fresh)

    # The protocol -----------------------------------------------------------------------------

    def load(self, key: SessionKey) -> Op[Snapshot]:
        seen = self.hot.known(key.tag)
        names = schema.keys(key, META, MESSAGES, DEDUPE, TOMBSTONE)
        try:
            reply = yield from run_script("load", names, schema.load_args(
                self.limits, seen[1] if seen else None))
        except StoreUnavailableError:
            cached = self.hot.cached(key.tag) if self.stale_reads else None
            if cached is None:
                raise
            return stale(cached)  # served from this node's memory, flagged
        if schema.text(reply[0]) == "revoked":
            self.hot.invalidate(key.tag)
            return Snapshot("revoked", follow=schema.follow(reply))
        return (yield from self._loaded(key, seen, reply))

    def begin(self, key: SessionKey, *, holder: str, ttl: float, live: Collection[str] = (),
              probe: Collection[str] = (), writing: bool = False) -> Op[Begun]:
        seen = self.hot.known(key.tag)
        names = schema.keys(key, META, MESSAGES, DEDUPE, TOMBSTONE, TURN_LEASE, FENCE)
        probe = list(probe)
        reply = yield from run_script("begin", names, [
            *schema.load_args(self.limits, seen[1] if seen else None),
            holder, max(1, int(ttl * 1000)), ",".join(sorted(live)), 1 if writing else 0,
            *probe])
        head = schema.text(reply[0])
        if head in ("revoked", "missing"):
            self.hot.invalidate(key.tag)
            return Begun(head, follow=schema.follow(reply))  # type: ignore[arg-type]
        if head == "busy":
            return Begun("live")
        flags = schema.text(reply[1])
        stored = frozenset(k for k, flag in zip(probe, flags, strict=True) if flag == "1")
        snapshot = yield from self._loaded(key, seen, reply[2:])
        return Begun(snapshot.status, int(reply[0]), snapshot, stored)

    def _loaded(self, key: SessionKey, seen: Any, reply: Sequence[Any]) -> Op[Snapshot]:
        """A load's reply merged into the hot tier (loading in full when a tail no longer
        lines up with what this node cached)."""
        loaded = schema.parse_load(reply, self.keys.opener(key.tag))
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
            names = schema.keys(key, META, MESSAGES, DEDUPE, TOMBSTONE)
            reply = yield from run_script("load", names, schema.load_args(self.limits, None))
            loaded = schema.parse_load(reply, self.keys.opener(key.tag))
            if loaded.kind in ("revoked", "missing"):
                return Snapshot(loaded.kind)  # type: ignore[arg-type]
            snapshot = self.hot.apply(key.tag, None, loaded)
            assert snapshot is not None
        return snapshot

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None,
               release: bool = False) -> Op[AppendResult]:
        names = schema.keys(key, META, MESSAGES, DEDUPE, TURN_LEASE, TOMBSTONE)
        first = self.hot.next_seq(key.tag)
        data_key = self.keys.for_append(key.tag, first)
        sending = list(range(len(messages)))  # the messages not known to be stored already
        for _ in range(_RESEAL_ATTEMPTS):
            args = schema.append_args(
                [messages[i] for i in sending], self.limits, created=created, create=create,
                fence=fence, data_key=data_key.wrapped if data_key else "",
                seal=data_key.seal if data_key else _same, release=release,
                first_seq=first if data_key else None)
            reply = yield from run_script("append", names, args)
            try:
                result = schema.parse_append(reply, fence)
            except DataKeyMismatch as mismatch:  # seal again with the session's own key
                data_key = self.keys.adopt(key.tag, mismatch.wrapped)
                continue
            except Reseal as reseal:  # sealed for other positions: seal again
                first = reseal.next_seq
                sending = [i for i, stored in zip(sending, reseal.stored, strict=True)
                           if not stored]
                if data_key is not None and not self.keys.known(data_key, key.tag):
                    data_key = self.keys.new(first)  # a new key, from there
                continue
            break
        else:  # the session kept changing under an append made without its turn lease
            raise SessionBusyError(0.0)
        if len(sending) < len(messages):
            result = schema.spread(result, sending, len(messages))
        if data_key is not None and result.status == "live":
            self.keys.remember(key.tag, data_key)
        if self.limits.replicas and result.status == "live" and result.seqs:
            # Redis replicates asynchronously: an append the master took but no replica has
            # would be lost by a failover. Acknowledge it only once enough replicas have it.
            try:
                acked = yield Wait(self.limits.replicas, self.limits.replica_timeout_ms)
            except Exception as exc:  # translated into the store's errors
                raise translate("wait", exc) from exc
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

    def clear(self, key: SessionKey, *, fence: int | None = None) -> Op[int]:
        self.hot.invalidate(key.tag)
        reply = yield from run_script("clear", schema.keys(key, META, MESSAGES, TURN_LEASE),
                                      ["" if fence is None else fence])
        return schema.parse_clear(reply, fence)

    def pop(self, key: SessionKey, *, fence: int | None = None) -> Op[StoredMessage | None]:
        data_key = yield from self._data_key_of(key)
        self.hot.invalidate(key.tag)
        reply = yield from run_script("pop", schema.keys(key, META, MESSAGES, TURN_LEASE),
                                      ["" if fence is None else fence])
        return schema.parse_pop(reply, fence, data_key.open if data_key else _same)

    def rotate(self, old: SessionKey, new: SessionKey, *, follow: str = "",
               grace: float = 0.0) -> Op[None]:
        """Copy the data to the new keys, then tombstone the old ones if nothing changed
        meanwhile (else copy again): safe in Cluster, where the two ids live in other slots."""
        self.hot.invalidate(old.tag)
        old_keys = schema.keys(old, *_ALL, TOMBSTONE)
        for _ in range(_ROTATE_ATTEMPTS):
            exported = yield from run_script("export", schema.keys(old, *_ALL), [])
            if not exported:
                yield from run_script("bury", old_keys, ["", self.limits.absolute_ms, follow,
                                                         int(grace * 1000)])
                return
            version, dumps = exported[0], list(exported[2:])
            yield from run_script("import", schema.keys(new, *_ALL), dumps)
            buried = yield from run_script("bury", old_keys, [
                version, self.limits.absolute_ms, follow, int(grace * 1000)])
            if int(buried) == 1:
                return
        raise SessionBusyError(0.0)  # the session kept changing under us: the app may retry

    def destroy(self, key: SessionKey) -> Op[None]:
        self.hot.invalidate(key.tag)
        names = schema.keys(key, *_ALL, TOMBSTONE, STREAM_RECORD, STREAM_CHUNKS)
        yield from run_script("destroy", names, [self.limits.absolute_ms])

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float, name: str = "turn",
                      live: Collection[str] = ()) -> Op[int | None]:
        reply = yield from run_script("lease", schema.keys(key, LEASES[name], FENCE),
                                      [holder, max(1, int(ttl * 1000)), self.limits.absolute_ms,
                                       ",".join(sorted(live))])
        return int(reply) if reply else None

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> Op[None]:
        yield from run_script("release", schema.keys(key, LEASES[name]), [token, holder or ""])

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False,
                      ) -> Op[Summary | None]:
        data_key = yield from self._data_key_of(key)
        sealed = data_key.seal(text, "s", watermark) if data_key else text
        reply = yield from run_script("summary", schema.keys(key, META, MESSAGES), [
            sealed, tokens, watermark, expected_watermark, 1 if delete_folded else 0])
        self.hot.invalidate(key.tag)
        if not reply:
            return None
        return Summary(text, watermark, int(reply[0]), tokens)

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> Op[int | None]:
        cached = self.hot.cached(key.tag)
        if cached is None or cached.version != expected_version:
            return None
        data_key = self.keys.get(key.tag)
        args = schema.recount_args(cached.messages, encoding, tokens, expected_version,
                                   data_key.seal if data_key else _same)
        self.hot.invalidate(key.tag)
        reply = yield from run_script("recount", schema.keys(key, META, MESSAGES), args)
        return int(reply) if reply else None

    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> Op[tuple[Announcement, ...]]:
        tag = SessionKey(namespace, "members")
        reply = yield from run_script("heartbeat", [tag.key("z"), tag.key("h")], [
            node.node_id, max(1, int(ttl * 1000)), node.address or "", node.load,
            1 if leaving else 0])
        return schema.parse_members(reply)
