"""Turn leases this node could not release because the store was down: released once it is back.

A request whose store failed mid-turn (a crash or a pause of Redis after the lease was taken)
cannot release its lease; left alone, it would keep the session busy until the lease's TTL
(``STICKYCTX_TURN_LEASE_TTL``) although the request is long gone. The node remembers such leases
(``add``), releases one before its next turn on the same session (``take``: sticky routing sends
that session back here), and releases the others after its next requests (``drain``): a
session accepts a new turn as soon as the store answers again. A release by fencing token only
releases a lease that still has that token, so a takeover in between is never undone, and a
late writer holding the old token is still refused (the next lease gets a new token).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from ..core.storekeys import SessionKey
from ..errors import StoreUnavailableError
from ..sansio import Op
from ..stores.base import Store

__all__ = ["Orphan", "Orphans", "release"]

_LIMIT = 10_000  # at most this many remembered (their TTL ends the rest)


class Orphan(NamedTuple):
    key: SessionKey
    token: int  # 0: the lease attempt's answer was lost; released by holder
    holder: str


class Orphans:
    """This node's unreleased turn leases (thread-safe: WSGI threads share it)."""

    __slots__ = ("_items", "_lock")

    def __init__(self) -> None:
        self._items: dict[tuple[SessionKey, str], Orphan] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, orphan: Orphan) -> None:
        with self._lock:
            if len(self._items) < _LIMIT:
                self._items[(orphan.key, orphan.holder)] = orphan

    def take(self, key: SessionKey) -> list[Orphan]:
        """The remembered leases of ``key``, forgotten here (re-``add`` those still held)."""
        if not self._items:
            return []
        with self._lock:
            found = [o for k, o in self._items.items() if k[0] == key]
            for orphan in found:
                del self._items[(orphan.key, orphan.holder)]
        return found

    def drain(self, count: int) -> list[Orphan]:
        """Up to ``count`` remembered leases, forgotten here."""
        if not self._items:
            return []
        with self._lock:
            found = list(self._items.values())[:count]
            for orphan in found:
                del self._items[(orphan.key, orphan.holder)]
        return found


def release(store: Store, orphans: Orphans, found: list[Orphan]) -> Op[None]:
    """Release ``found``; those the store cannot be reached for are remembered again."""
    for index, orphan in enumerate(found):
        try:
            yield from store.release_lease(orphan.key, orphan.token,
                                           holder=orphan.holder if orphan.token == 0 else None)
        except StoreUnavailableError:
            for left in found[index:]:
                orphans.add(left)
            return

