"""Membership: which nodes are live, their addresses and active-session counts.

Static (``STICKYCTX_NODES``, or this node alone) with the embedded store. With a Redis store it
is dynamic: every node announces itself with a heartbeat that expires after three intervals
(``STICKYCTX_HEARTBEAT_INTERVAL``), shares its active-session count for bounded-load placement,
and reads everyone else's in the same round trip. Requests only read the last view: membership
never adds I/O to a request. A node that shuts down cleanly leaves at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..core.flow import Membership
from ..core.nodes import Announcement, NodeSpec
from ..sansio import Op
from ..settings import Settings
from ..stores.base import Store

__all__ = ["ActiveSessions", "MembershipManager"]


class ActiveSessions:
    """Sessions this node owns that were active within the idle TTL (its load), bounded."""

    def __init__(self, idle_ttl: float, limit: int, clock: Callable[[], float]) -> None:
        self.idle_ttl = idle_ttl
        self.limit = limit
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, session_id: str) -> None:
        now = self._clock()
        with self._lock:
            self._seen.pop(session_id, None)
            self._seen[session_id] = now  # insertion order is recency order
            if len(self._seen) > self.limit:
                del self._seen[next(iter(self._seen))]

    def count(self) -> int:
        horizon = self._clock() - self.idle_ttl
        with self._lock:
            while self._seen:
                oldest = next(iter(self._seen))
                if self._seen[oldest] >= horizon:
                    break
                del self._seen[oldest]
            return len(self._seen)


class MembershipManager:
    """Holds the current view; the edges drive ``heartbeat()`` / ``leave()`` with their store."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.dynamic = settings.uses_redis or settings.uses_postgres
        self.interval = settings.heartbeat_interval
        self.active = ActiveSessions(settings.idle_ttl, settings.memory_max_sessions, clock)
        self._listed = {n.id: n for n in settings.nodes}
        me = self._listed.get(self.node_id) or NodeSpec(self.node_id, settings.advertise)
        if settings.advertise and not me.address:
            me = NodeSpec(me.id, settings.advertise)
        self._me = me
        static = settings.nodes or (self._me,)
        self._view = Membership(tuple(static), None)
        self._placed: dict[str, int] = {}  # placements since the last heartbeat, per node
        self._lock = threading.Lock()
        self.last_beat: float | None = None
        self.on_change: Callable[[int, list[str], list[str]], None] | None = None

    def view(self) -> Membership:
        view = self._view
        if view.loads is None:
            return view
        with self._lock:
            if not self._placed:
                return view
            loads = dict(view.loads)
            for node, count in self._placed.items():
                loads[node] = loads.get(node, 0) + count
        return Membership(view.nodes, loads)

    def confirmed_live(self) -> frozenset[str]:
        """The live node ids, from a heartbeat younger than the heartbeat TTL; else empty.

        Empty means "presume nobody dead" (static membership, no beat yet, or beats failing):
        the turn lock takes over a lease of a node outside a non-empty set, never of an empty one.
        """
        beat = self.last_beat
        if beat is None or time.monotonic() - beat > 3 * self.interval:
            return frozenset()
        return self._view.ids()

    def placed(self, node_id: str) -> None:
        """A session was placed on ``node_id`` since the last heartbeat (counts toward its load)."""
        if self._view.loads is not None:
            with self._lock:
                self._placed[node_id] = self._placed.get(node_id, 0) + 1

    def ended(self, session_id: str, owner: str, *, stored: bool, placed: bool) -> None:
        """A brand-new session's first request ended. If it stored something, it is load (of
        ``owner``) from now on; if not (a health check, an anonymous read), its placement is
        taken back: such requests count only while they run, so they cannot steer placement."""
        if stored:
            if owner == self.node_id:
                self.active.touch(session_id)
        elif placed and self._view.loads is not None:
            with self._lock:
                self._unplace(owner, 1)  # (nothing left once a heartbeat has counted it)

    def _unplace(self, node: str, count: int) -> None:
        """Take ``count`` placements on ``node`` back (under ``_lock``)."""
        left = self._placed.get(node, 0) - count
        if left > 0:
            self._placed[node] = left
        else:
            self._placed.pop(node, None)

    # Heartbeats (dynamic membership) ------------------------------------------------------

    def heartbeat(self, store: Store, leaving: bool = False) -> Op[Membership]:
        me = Announcement(self.node_id, self._me.address, self.active.count())
        with self._lock:
            counted = dict(self._placed)  # what the loads the reply brings will include
        members = yield from store.heartbeat(self.settings.namespace, me,
                                             ttl=self.interval * 3, leaving=leaving)
        if not leaving:
            self._apply(members, counted)
        return self._view

    def _apply(self, members: tuple[Announcement, ...], counted: dict[str, int]) -> None:
        nodes: list[NodeSpec] = []
        loads: dict[str, int] = {}
        for member in members:
            if self._listed and member.node_id not in self._listed:
                continue  # a static list names the only nodes that may own sessions
            listed = self._listed.get(member.node_id)
            nodes.append(NodeSpec(member.node_id,
                                  member.address or (listed.address if listed else None)))
            loads[member.node_id] = member.load
        if self.node_id not in loads:
            nodes.append(self._me)
            loads[self.node_id] = self.active.count()
        nodes.sort(key=lambda n: n.id)
        before, after = self._view.ids(), {n.id for n in nodes}
        if after != before and self.on_change is not None:
            self.on_change(len(after), sorted(after - before), sorted(before - after))
        with self._lock:
            self._view = Membership(tuple(nodes), loads)
            # Placements made while the beat was on its way are not in the reply: keep them.
            for node, count in counted.items():
                self._unplace(node, count)
        self.last_beat = time.monotonic()
