"""Session stores: one protocol (``base.Store``), the embedded store, the Redis store and the
PostgreSQL store.

``open_store(settings)`` opens the store that ``STICKYCTX_STORE_URL`` names, once: the same
object serves the ASGI and the WSGI edge, the command line and any number of event loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..settings import Settings
from .base import Store
from .memory import MemoryStore

if TYPE_CHECKING:
    from .cold.tiered import TieredStore
    from .postgres.store import PostgresStore
    from .redis.store import RedisStore

__all__ = ["MemoryStore", "Store", "open_store", "postgres_store", "redis_store",
           "tiered_store"]


def _memory(settings: Settings, clock: Callable[[], float]) -> MemoryStore:
    return MemoryStore(
        max_sessions=settings.memory_max_sessions,
        idle_ttl=settings.idle_ttl,
        absolute_ttl=settings.absolute_ttl,
        max_session_tokens=settings.max_session_tokens,
        max_session_bytes=settings.max_session_bytes,
        clock=clock,
    )


def redis_store(settings: Settings) -> RedisStore:
    """The Redis store that ``settings`` name (its URL, limits, hot tier and encryption)."""
    from .crypto import parse_key_ring
    from .redis.clients import async_client, sync_client
    from .redis.loops import LoopClients
    from .redis.schema import Limits
    from .redis.sealing import DataKeys
    from .redis.store import RedisStore
    from .redis.url import parse_redis_url

    target = parse_redis_url(settings.store_url)
    timeout = settings.store_timeout
    refresh = min(60.0, settings.idle_ttl / 10)
    limits = Limits(
        idle_ms=settings.idle_ttl * 1000,
        absolute_ms=settings.absolute_ttl * 1000,
        max_tokens=settings.max_session_tokens,
        max_bytes=settings.max_session_bytes,
        refresh_ms=int(refresh * 1000),
        replicas=settings.store_replicas,
        replica_timeout_ms=max(1, int(timeout * 500)),  # within the socket timeout
    )
    ring = (parse_key_ring(settings.encryption_key.reveal())
            if settings.encryption_key is not None else None)
    return RedisStore(limits, sync_client=sync_client(target, timeout),
                      # One asyncio client per event loop; the first made now, checking the URL.
                      async_clients=LoopClients(lambda: async_client(target, timeout)),
                      hot_capacity=settings.hot_sessions, stale_reads=settings.stale_reads,
                      data_keys=DataKeys(ring, settings.hot_sessions))


def postgres_store(settings: Settings) -> PostgresStore:
    """The PostgreSQL store that ``settings`` name (its URL, limits and encryption)."""
    from .crypto import parse_key_ring
    from .postgres.codec import Sealer
    from .postgres.pools import async_pool, sync_pool
    from .postgres.rows import Limits
    from .postgres.store import PostgresStore

    limits = Limits(idle_ttl=float(settings.idle_ttl), absolute_ttl=float(settings.absolute_ttl),
                    max_tokens=settings.max_session_tokens,
                    max_bytes=settings.max_session_bytes,
                    refresh=min(60.0, settings.idle_ttl / 10))
    ring = (parse_key_ring(settings.encryption_key.reveal())
            if settings.encryption_key is not None else None)
    url, timeout = settings.store_url, settings.store_timeout
    return PostgresStore(limits, sync_pool=sync_pool(url, timeout),
                         make_async_pool=lambda: async_pool(url, timeout), sealer=Sealer(ring))


def tiered_store(settings: Settings) -> TieredStore:
    """The Redis store with its cold tier (``STICKYCTX_COLD_URL``) behind it."""
    from .cold.tiered import TieredStore
    from .postgres.pools import async_pool, sync_pool

    assert settings.cold_url is not None
    url, timeout = settings.cold_url, settings.store_timeout
    return TieredStore(redis_store(settings), sync_pool=sync_pool(url, timeout),
                       make_async_pool=lambda: async_pool(url, timeout),
                       cold_after=float(settings.cold_after))


def open_store(settings: Settings, clock: Callable[[], float] = time.time) -> Store:
    """The store named by ``STICKYCTX_STORE_URL``."""
    if settings.uses_redis and settings.cold_url is not None:
        return tiered_store(settings)
    if settings.uses_redis:
        return redis_store(settings)
    if settings.uses_postgres:
        return postgres_store(settings)
    return _memory(settings, clock)
