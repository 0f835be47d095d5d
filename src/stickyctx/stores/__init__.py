"""Session stores: one protocol (``base``), the embedded store, and the Redis adapters."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..settings import Settings
from .base import AsyncStore, SyncStore
from .crypto import KeyRing, parse_key_ring
from .memory import AsyncMemoryStore, MemoryStore
from .redis.schema import Limits

__all__ = ["AsyncMemoryStore", "AsyncStore", "MemoryStore", "SyncStore", "open_async", "open_sync"]


def _limits(settings: Settings) -> Limits:
    refresh = min(60.0, settings.idle_ttl / 10)
    return Limits(
        idle_ms=settings.idle_ttl * 1000,
        absolute_ms=settings.absolute_ttl * 1000,
        max_tokens=settings.max_session_tokens,
        max_bytes=settings.max_session_bytes,
        refresh_ms=int(refresh * 1000),
        replicas=settings.store_replicas,
        replica_timeout_ms=max(1, int(settings.store_timeout * 500)),  # within the socket timeout
    )


def _ring(settings: Settings) -> KeyRing | None:
    if settings.encryption_key is None:
        return None
    return parse_key_ring(settings.encryption_key.reveal())


def _memory(settings: Settings, clock: Callable[[], float]) -> MemoryStore:
    return MemoryStore(
        max_sessions=settings.memory_max_sessions,
        idle_ttl=settings.idle_ttl,
        absolute_ttl=settings.absolute_ttl,
        max_session_tokens=settings.max_session_tokens,
        max_session_bytes=settings.max_session_bytes,
        clock=clock,
    )


def open_sync(settings: Settings, clock: Callable[[], float] = time.time) -> SyncStore:
    """The store named by ``STICKYCTX_STORE_URL``, in its sync form (for WSGI)."""
    if not settings.uses_redis:
        return _memory(settings, clock)
    from .redis.clients import sync_client
    from .redis.sync_store import RedisStore
    from .redis.url import parse_redis_url

    client = sync_client(parse_redis_url(settings.store_url), settings.store_timeout)
    return RedisStore(client, _limits(settings), settings.hot_sessions, _ring(settings))


def open_async(settings: Settings, clock: Callable[[], float] = time.time) -> AsyncStore:
    """The store named by ``STICKYCTX_STORE_URL``, in its async form (for ASGI)."""
    if not settings.uses_redis:
        return AsyncMemoryStore(_memory(settings, clock))
    from .redis.async_store import AsyncRedisStore
    from .redis.clients import LoopClients, async_client
    from .redis.url import parse_redis_url

    target = parse_redis_url(settings.store_url)
    # One client per event loop (made on first use in each; the first one now, checking the URL).
    clients = LoopClients(lambda: async_client(target, settings.store_timeout))
    return AsyncRedisStore(clients, _limits(settings), settings.hot_sessions, _ring(settings))
