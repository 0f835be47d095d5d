"""The embedded store (``memory://``): a real backend for one process.

Safe under threads and asyncio: every primitive takes one short ``threading.Lock`` and never
blocks while holding it. Its operations perform no I/O (``immediate``), so both drivers run them
straight through, with no thread hop. Bounded by an LRU on session count; sessions expire idle
or at their absolute lifetime.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from ..core.messages import AppendResult, Begun, NewMessage, Snapshot, StoredMessage, Summary
from ..core.nodes import Announcement
from ..core.storekeys import SessionKey
from ..core.views import Prefix
from ..errors import FencedError
from ..sansio import immediate
from .memory_history import History
from .memory_streams import MemoryStreams, _Stream
from .memory_users import MemoryUserData

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Lease:
    holder: str
    token: int
    expires: float


class MemoryStore(MemoryUserData, MemoryStreams):
    """An in-process store. ``clock`` is injectable so that tests can move time."""

    sync_io = None  # its operations perform no I/O
    async_io = None

    def __init__(
        self,
        *,
        max_sessions: int = 100_000,
        idle_ttl: float = 1800,
        absolute_ttl: float = 86400,
        max_session_tokens: int = 4_000_000,
        max_session_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_session_tokens = max_session_tokens
        self.max_session_bytes = max_session_bytes
        self.idle_ttl = idle_ttl
        self.absolute_ttl = absolute_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, History] = OrderedDict()
        # tag -> (until, a rotation's follow pointer, until when it may be followed)
        self._tombstones: OrderedDict[str, tuple[float, str, float]] = OrderedDict()
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._fences = itertools.count(1)  # one counter for all sessions: monotonic for each
        self._members: dict[str, dict[str, tuple[float, Announcement]]] = {}
        self._init_userdata()
        self._streams: dict[str, _Stream] = {}  # streamed replies (``memory_streams``)

    # Internal helpers (call with the lock held) ---------------------------------------------

    def _live(self, tag: str, now: float) -> History | None:
        session = self._sessions.get(tag)
        if session is None:
            return None
        deadline = min(session.touched + self.idle_ttl, session.created + self.absolute_ttl)
        if now >= deadline:
            del self._sessions[tag]
            return None
        session.touched = now
        self._sessions.move_to_end(tag)
        return session

    def _revoked(self, tag: str, now: float) -> str | None:
        """``None`` when not revoked; else the follow pointer ('' when none, or past its grace)."""
        tombstone = self._tombstones.get(tag)
        if tombstone is None:
            return None
        until, follow, follow_until = tombstone
        if now >= until:
            del self._tombstones[tag]
            return None
        return follow if now < follow_until else ""

    def _bury(self, tag: str, created: float, follow: str = "", follow_until: float = 0.0,
              ) -> None:
        self._tombstones[tag] = (created + self.absolute_ttl, follow, follow_until)
        self._tombstones.move_to_end(tag)
        while len(self._tombstones) > self.max_sessions:
            self._tombstones.popitem(last=False)

    def _check_fence(self, tag: str, fence: int | None, now: float) -> None:
        if fence is None:
            return
        lease = self._leases.get((tag, "turn"))
        if lease is None or lease.token != fence or lease.expires <= now:
            current = lease.token if lease is not None and lease.expires > now else None
            raise FencedError(fence, current)

    # The protocol ---------------------------------------------------------------------------

    @immediate
    def load(self, key: SessionKey) -> Snapshot:
        now = self._clock()
        with self._lock:
            follow = self._revoked(key.tag, now)
            if follow is not None:
                return Snapshot("revoked", tier="local", follow=follow)
            session = self._live(key.tag, now)
            if session is None:
                return Snapshot("missing", tier="local")
            return self._snapshot(session)

    def _snapshot(self, session: History) -> Snapshot:
        return Snapshot("live", session.version, Prefix(session.messages), session.total,
                        session.summary, tuple(sorted(session.encodings)), tier="local",
                        next_seq=session.next_seq, group=session.group, cum=session.cum,
                        size=session.size)

    @immediate
    def begin(self, key: SessionKey, *, holder: str, ttl: float, live: Collection[str] = (),
              probe: Collection[str] = (), writing: bool = False) -> Begun:
        now = self._clock()
        with self._lock:
            follow = self._revoked(key.tag, now)
            if follow is not None:
                return Begun("revoked", follow=follow)
            session = self._live(key.tag, now)
            if session is None and not writing:
                return Begun("missing")
            token = self._take(key.tag, "turn", holder, ttl, live, now)
            if token is None:
                return Begun("live")
            if session is None:
                return Begun("missing", token, Snapshot("missing", tier="local"))
            return Begun("live", token, self._snapshot(session),
                         frozenset(p for p in probe if p in session.dedupe))

    @immediate
    def append(
        self,
        key: SessionKey,
        messages: Sequence[NewMessage],
        *,
        created: float,
        create: bool = True,
        fence: int | None = None,
        release: bool = False,
    ) -> AppendResult:
        now = self._clock()
        with self._lock:
            follow = self._revoked(key.tag, now)
            if follow is not None:
                return AppendResult("revoked", follow=follow)
            self._check_fence(key.tag, fence, now)
            session = self._live(key.tag, now)
            if session is None:
                if not create:
                    return AppendResult("missing")
                if now >= created + self.absolute_ttl:
                    return AppendResult("missing")
                session = self._sessions[key.tag] = History(created=created, touched=now)
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            result = session.append(messages, self.max_session_tokens, self.max_session_bytes)
            if release and fence is not None:
                del self._leases[(key.tag, "turn")]  # the fence was checked: it holds the lease
            return result

    @immediate
    def clear(self, key: SessionKey, *, fence: int | None = None) -> int:
        now = self._clock()
        with self._lock:
            self._check_fence(key.tag, fence, now)
            session = self._live(key.tag, now)
            if session is None:
                return 0
            return session.clear()

    @immediate
    def pop(self, key: SessionKey, *, fence: int | None = None) -> StoredMessage | None:
        now = self._clock()
        with self._lock:
            self._check_fence(key.tag, fence, now)
            session = self._live(key.tag, now)
            return session.pop() if session is not None else None

    @immediate
    def rotate(self, old: SessionKey, new: SessionKey, *, follow: str = "",
               grace: float = 0.0) -> None:
        now = self._clock()
        with self._lock:
            session = self._live(old.tag, now)
            if session is not None:
                del self._sessions[old.tag]
                self._sessions[new.tag] = replace(session, version=session.version + 1)
                self._bury(old.tag, session.created, follow, now + grace)
            else:
                self._bury(old.tag, now, follow, now + grace)
            for name in ("turn", "summary"):
                lease = self._leases.pop((old.tag, name), None)
                if lease is not None:
                    self._leases[(new.tag, name)] = lease

    @immediate
    def destroy(self, key: SessionKey) -> None:
        now = self._clock()
        with self._lock:
            session = self._sessions.pop(key.tag, None)
            self._bury(key.tag, session.created if session is not None else now)
            self._leases.pop((key.tag, "turn"), None)
            self._leases.pop((key.tag, "summary"), None)
            self._streams.pop(key.tag, None)

    @immediate
    def acquire_lease(self, key: SessionKey, *, holder: str, ttl: float,
                      name: str = "turn", live: Collection[str] = ()) -> int | None:
        now = self._clock()
        with self._lock:
            return self._take(key.tag, name, holder, ttl, live, now)

    def _take(self, tag: str, name: str, holder: str, ttl: float, live: Collection[str],
              now: float) -> int | None:
        lease = self._leases.get((tag, name))
        if lease is not None and lease.expires > now:
            node, sep, _ = lease.holder.partition(":")
            if not live or not sep or node in live:
                return None  # held by a live node (or liveness unknown): wait
        token = next(self._fences)
        self._leases[(tag, name)] = _Lease(holder, token, now + ttl)
        if len(self._leases) > 4 * self.max_sessions:
            for slot in [s for s, le in self._leases.items() if le.expires <= now]:
                del self._leases[slot]
        return token

    @immediate
    def release_lease(self, key: SessionKey, token: int, name: str = "turn",
                      holder: str | None = None) -> None:
        with self._lock:
            lease = self._leases.get((key.tag, name))
            if lease is not None and (lease.token == token or (
                    token == 0 and holder is not None and lease.holder == holder)):
                del self._leases[(key.tag, name)]

    @immediate
    def apply_summary(
        self,
        key: SessionKey,
        text: str,
        tokens: int,
        *,
        watermark: int,
        expected_watermark: int,
        delete_folded: bool = False,
    ) -> Summary | None:
        """Compare-and-set the summary: applied only if the stored watermark is still
        ``expected_watermark``; with ``delete_folded`` the folded messages leave in the same step.
        """
        now = self._clock()
        with self._lock:
            session = self._live(key.tag, now)
            if session is None:
                return None
            return session.apply_summary(text, tokens, watermark, expected_watermark,
                                         delete_folded)

    @immediate
    def recount(
        self, key: SessionKey, encoding: str, tokens: dict[int, int], *, expected_version: int
    ) -> int | None:
        """Replace the token counts of messages (by seq) after a change of encoding; the new
        version, or ``None`` when the session changed since ``expected_version``."""
        now = self._clock()
        with self._lock:
            session = self._live(key.tag, now)
            if session is None or session.version != expected_version:
                return None
            return session.recount(encoding, tokens)

    @immediate
    def heartbeat(self, namespace: str, node: Announcement, *, ttl: float,
                  leaving: bool = False) -> tuple[Announcement, ...]:
        now = self._clock()
        with self._lock:
            members = self._members.setdefault(namespace, {})
            for node_id in [n for n, (until, _) in members.items() if until <= now]:
                del members[node_id]
            if leaving:
                members.pop(node.node_id, None)
            else:
                members[node.node_id] = (now + ttl, node)
            return tuple(members[n][1] for n in sorted(members))

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._tombstones.clear()
            self._leases.clear()
            self._members.clear()
            self._clear_userdata()
            self._streams.clear()

    async def aclose(self) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._sessions)
