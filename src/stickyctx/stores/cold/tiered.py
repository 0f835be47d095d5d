"""``TieredStore``: the Redis store with a cold tier in PostgreSQL behind it.

Every primitive is the Redis store's, except where a session may be cold: a ``load``,
``begin`` or ``append`` that finds it missing in Redis looks in the cold tier (one PostgreSQL
round trip) and, when a copy is there, restores it into Redis (one script) and runs again. So
a conversation is restored transparently by its next request; a missing one costs that one
extra round trip. The copy stays in PostgreSQL until the mover sees the restored marker the
restore left and deletes it (off the request path); it can never come back by itself: the
session is in Redis now, and the copy's deadline is never later than the session's.
``destroy`` and ``rotate`` erase both tiers. The I/O adapters send Redis steps to the Redis
store's adapter and ``Transaction`` steps to PostgreSQL. The primitives of principals and
conversations (records, memory, state) and of streamed replies are the Redis store's own: that
data stays in Redis, with lifetimes of its own (``STICKYCTX_USER_TTL``, ``STICKYCTX_STREAM_TTL``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

from ...core.messages import AppendResult, Begun, NewMessage, Snapshot, StoredMessage, Summary
from ...core.nodes import Announcement
from ...core.storekeys import SessionKey
from ...sansio import IOStep, Op
from ..postgres.io import AsyncPostgresIO, SyncPostgresIO, Transaction
from ..postgres.store import transact
from ..redis.schema import (
    DEDUPE,
    FENCE,
    MESSAGES,
    META,
    SUMMARY_LEASE,
    TOMBSTONE,
    TURN_LEASE,
    keys,
)
from ..redis.store import RedisStore, run_script
from ..redis.streams import RedisStreams
from ..redis.users import RedisUserData
from . import table
from .table import Frozen

__all__ = ["RESTORED", "SESSION_KEYS", "TieredStore"]

SESSION_KEYS = (META, MESSAGES, DEDUPE, TURN_LEASE, SUMMARY_LEASE, FENCE)  # what a move carries
RESTORED = "cz"  # the marker a restore leaves for the mover (the cold copy to delete)


class _SyncIO:
    def __init__(self, redis_io: Any, postgres_io: SyncPostgresIO) -> None:
        self.redis, self.postgres = redis_io, postgres_io

    def perform(self, step: IOStep) -> Any:
        if isinstance(step, Transaction):
            return self.postgres.perform(step)
        return self.redis.perform(step)


class _AsyncIO:
    def __init__(self, redis_io: Any, postgres_io: AsyncPostgresIO) -> None:
        self.redis, self.postgres = redis_io, postgres_io

    async def perform(self, step: IOStep) -> Any:
        if isinstance(step, Transaction):
            return await self.postgres.perform(step)
        return await self.redis.perform(step)


class TieredStore(RedisUserData, RedisStreams):
    _script = staticmethod(run_script)  # the streams' scripts, sent to Redis like any other

    def __init__(self, hot: RedisStore, *, sync_pool: Any, make_async_pool: Any,
                 cold_after: float) -> None:
        self.redis = hot
        self.cold_after = cold_after
        self.sync_io = _SyncIO(hot.sync_io, SyncPostgresIO(sync_pool))
        self.async_io = _AsyncIO(hot.async_io, AsyncPostgresIO(make_async_pool))

    def close(self) -> None:
        self.redis.close()
        self.sync_io.postgres.close()

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self.async_io.postgres.aclose()

    # The cold tier ----------------------------------------------------------------------------

    def fetch(self, key: SessionKey) -> Op[Frozen | None]:
        """The session's cold copy, or ``None`` (one PostgreSQL round trip)."""
        frozen: Frozen | None = yield from transact("restore", table.fetch(key))
        return frozen

    def restore(self, key: SessionKey, frozen: Frozen) -> Op[int]:
        """Put the copy back into Redis unless the session is there (or revoked) already."""
        args = [part for dump, ttl in frozen.dumps for part in (dump, ttl)]
        done = yield from run_script("thaw", keys(key, *SESSION_KEYS, TOMBSTONE, RESTORED), args)
        self.redis.hot.invalidate(key.tag)
        return int(done)

    def _thawed(self, key: SessionKey) -> Op[bool]:
        """Whether the session had a cold copy (now restored): the caller runs again."""
        frozen = yield from self.fetch(key)
        if frozen is None:
            return False
        yield from self.restore(key, frozen)
        return True

    # The protocol -----------------------------------------------------------------------------

    def load(self, key: SessionKey) -> Op[Snapshot]:
        snapshot = yield from self.redis.load(key)
        if snapshot.status == "missing" and (yield from self._thawed(key)):
            snapshot = yield from self.redis.load(key)
        return snapshot

    def begin(self, key: SessionKey, *, holder: str, ttl: float, live: Collection[str] = (),
              probe: Collection[str] = (), writing: bool = False) -> Op[Begun]:
        begun = yield from self.redis.begin(key, holder=holder, ttl=ttl, live=live,
                                            probe=probe, writing=writing)
        if begun.status != "missing":
            return begun
        try:
            frozen = yield from self.fetch(key)
        except Exception:
            if begun.token is not None:  # nobody will know of this lease: give it back
                yield from self.redis.release_lease(key, begun.token)
            raise
        if frozen is None:
            return begun
        if begun.token is not None:  # a lease on the missing session: give it back first
            yield from self.redis.release_lease(key, begun.token)
        yield from self.restore(key, frozen)
        return (yield from self.redis.begin(key, holder=holder, ttl=ttl, live=live,
                                            probe=probe, writing=writing))

    def append(self, key: SessionKey, messages: Sequence[NewMessage], *, created: float,
               create: bool = True, fence: int | None = None,
               release: bool = False) -> Op[AppendResult]:
        # A session old enough to have gone cold is appended to only if it exists: were it
        # missing, creating it afresh would hide its cold copy. Costs nothing when it is in
        # Redis; a lookup in the cold tier (and a second try) only when it is missing.
        old = create and time.time() - created >= self.cold_after / 2
        result = yield from self.redis.append(key, messages, created=created,
                                              create=create and not old, fence=fence,
                                              release=release)
        if result.status == "missing" and ((yield from self._thawed(key)) or old):
            result = yield from self.redis.append(key, messages, created=created,
                                                  create=create, fence=fence, release=release)
        return result

    def rotate(self, old: SessionKey, new: SessionKey, *, follow: str = "",
               grace: float = 0.0) -> Op[None]:
        yield from self.load(old)  # a cold session is restored, then rotated as any other
        yield from self.redis.rotate(old, new, follow=follow, grace=grace)
        yield from transact("rotate", table.delete(old))

    def destroy(self, key: SessionKey) -> Op[None]:
        yield from self.redis.destroy(key)  # the tombstone first: no restore after it
        yield from transact("destroy", table.delete(key))

    def clear(self, key: SessionKey, *, fence: int | None = None) -> Op[int]:
        return (yield from self.redis.clear(key, fence=fence))

    def pop(self, key: SessionKey, *, fence: int | None = None) -> Op[StoredMessage | None]:
        return (yield from self.redis.pop(key, fence=fence))

    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float, name: str = "turn",
                      live: Collection[str] = ()) -> Op[int | None]:
        return (yield from self.redis.acquire_lease(key, holder=holder, ttl=ttl, name=name,
                                                    live=live))

    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> Op[None]:
        yield from self.redis.release_lease(key, token, name, holder)

    def apply_summary(self, key: SessionKey, text: str, tokens: int, *, watermark: int,
                      expected_watermark: int, delete_folded: bool = False,
                      ) -> Op[Summary | None]:
        return (yield from self.redis.apply_summary(
            key, text, tokens, watermark=watermark, expected_watermark=expected_watermark,
            delete_folded=delete_folded))

    def recount(self, key: SessionKey, encoding: str, tokens: dict[int, int], *,
                expected_version: int) -> Op[int | None]:
        return (yield from self.redis.recount(key, encoding, tokens,
                                              expected_version=expected_version))

    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> Op[tuple[Announcement, ...]]:
        return (yield from self.redis.heartbeat(namespace, node, ttl=ttl, leaving=leaving))
