"""The store's state, for an app's health endpoint: ``check_store`` / ``acheck_store``.

    store = open_store(settings)
    app.add_middleware(StickyMiddleware, settings=settings, store=store)

    @app.get("/healthz")
    async def healthz():
        return {"node": settings.node_id, "store": (await acheck_store(store, settings)).as_dict()}

The probe reads a session that cannot exist (a random id under a key nothing else derives): it
proves the store answers, changes nothing, and never raises. Each call is one store read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..core.ids import new_session_id
from ..core.storekeys import KeyDeriver
from ..errors import StickyctxError
from ..sansio import Op, run_async, run_sync
from ..settings import Settings
from ..stores import Store

__all__ = ["StoreHealth", "acheck_store", "check_store"]

_PROBE_KEY = b"stickyctx.health"  # never a session's: only probes are derived with it


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """``kind``: ``memory`` or ``redis``; ``ok``: the store answered; ``detail``: why not (the
    error's type and message, never a URL or a password), or the read's time."""

    kind: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "detail": self.detail}


def _probe(store: Store, settings: Settings) -> Op[None]:
    key = KeyDeriver(_PROBE_KEY, settings.namespace).derive(new_session_id())
    yield from store.load(key)


def _kind(settings: Settings) -> str:
    return "redis" if settings.uses_redis else "memory"


def _failed(settings: Settings, exc: Exception) -> StoreHealth:
    return StoreHealth(_kind(settings), False, f"{type(exc).__name__}: {exc}")


def _answered(settings: Settings, started: float) -> StoreHealth:
    return StoreHealth(_kind(settings), True,
                       f"read in {(time.perf_counter() - started) * 1000:.1f} ms")


def check_store(store: Store, settings: Settings) -> StoreHealth:
    """Probe ``store`` blocking (WSGI apps)."""
    started = time.perf_counter()
    try:
        run_sync(_probe(store, settings), store.sync_io)
    except StickyctxError as exc:
        return _failed(settings, exc)
    return _answered(settings, started)


async def acheck_store(store: Store, settings: Settings) -> StoreHealth:
    """Probe ``store`` on the running event loop (ASGI apps)."""
    started = time.perf_counter()
    try:
        await run_async(_probe(store, settings), store.async_io)
    except StickyctxError as exc:
        return _failed(settings, exc)
    return _answered(settings, started)
