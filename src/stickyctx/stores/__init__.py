"""Session stores: one protocol (``base``), the embedded store, and the Redis adapters."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import ConfigError
from ..settings import Settings
from .base import AsyncStore, SyncStore
from .memory import AsyncMemoryStore, MemoryStore

__all__ = ["AsyncMemoryStore", "AsyncStore", "MemoryStore", "SyncStore", "open_async", "open_sync"]


def _scheme(settings: Settings) -> str:
    return settings.store_url.partition("://")[0].lower()


def open_sync(settings: Settings, clock: Callable[[], float] = time.time) -> SyncStore:
    """The store named by ``STICKYCTX_STORE_URL``, in its sync form (for WSGI)."""
    if _scheme(settings) == "memory":
        return MemoryStore(
            max_sessions=settings.memory_max_sessions,
            idle_ttl=settings.idle_ttl,
            absolute_ttl=settings.absolute_ttl,
            max_session_tokens=settings.max_session_tokens,
            max_session_bytes=settings.max_session_bytes,
            clock=clock,
        )
    raise ConfigError("STICKYCTX_STORE_URL", "this version of stickyctx supports memory:// only")


def open_async(settings: Settings, clock: Callable[[], float] = time.time) -> AsyncStore:
    """The store named by ``STICKYCTX_STORE_URL``, in its async form (for ASGI)."""
    if _scheme(settings) == "memory":
        store = open_sync(settings, clock)
        assert isinstance(store, MemoryStore)
        return AsyncMemoryStore(store)
    raise ConfigError("STICKYCTX_STORE_URL", "this version of stickyctx supports memory:// only")
