"""One request's turn: the lease on the session, and the appends staged until it commits.

One turn at a time per session, across nodes. In ``turn_lock=auto`` mode an HTTP request's
first context call *begins* the turn: one store step takes the lease and loads the session
(``Store.begin``), waiting with backoff up to ``STICKYCTX_TURN_TIMEOUT`` while another request
holds it (then ``SessionBusyError``), and taking it over at once from a node that left the
membership. The request's appends are validated and counted when made, *staged* (the window
and the handle see them at once, with the sequence numbers they will get), and written together
when the turn *commits*: at the response's start, in one store step that also releases the lease
(``append(..., release=True)``). A turn that fails (an exception, an error status) commits
nothing: it rolls back. A brand-new session needs no lease (no other request can know its id).

As states: *idle* (nothing loaded, no lease) -> *begun* -> *staged* -> *committed* (or rolled
back) -> *finished* (after the response: anything still held released, a pending fold run).

Writes present the fencing token (a writer whose lease was taken over is refused); a lease
attempt whose answer was lost is released by holder at the end. Writes after the commit (a
streamed reply), in ``manual`` mode or in ``turn()`` blocks take the lease and go one by one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..core.messages import AppendResult, Begun, NewMessage, Snapshot, dedupe_key
from ..core.snapshots import EMPTY, committed, staged
from ..errors import SessionBusyError, SessionGoneError, StoreUnavailableError
from ..sansio import Op, Sleep
from ..telemetry import ATTR
from . import identity
from .live import ReplyStreaming
from .orphans import Orphan, release

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["Turn"]

logger = logging.getLogger("stickyctx")

_PROBED = 8  # idempotency keys of a turn looked up when it begins: its first 8 messages
_DRAINED = 16  # orphaned leases a request's end releases at most
_FIRST_WAIT = 0.002
_MAX_WAIT = 0.05


class Turn:
    __slots__ = ("_holder", "committed", "fence", "fresh", "open", "predicted", "probed", "seen",
                 "session", "staged", "uncertain", "unclaimed")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.fence: int | None = None  # the lease's fencing token, while it is held
        self.open = False  # this request owns the turn (the lease, or a brand-new session)
        self.committed = False  # the commit point passed: writes go through one by one
        self.staged: list[NewMessage] = []  # appends written at the commit
        self.predicted: list[int] = []  # ... and the sequence numbers they were shown with
        self.probed: frozenset[str] = frozenset()  # idempotency keys looked up at the begin
        self.seen: frozenset[str] = frozenset()  # ... and those stored already (a retry)
        self.uncertain = False  # an attempt failed with no answer: the lease may be ours
        self.unclaimed = False  # begun on a session with no data: no lease until a write
        self.fresh = False  # a brand-new session: nothing of it is stored, no retry to find
        self._holder: str | None = None

    @property
    def holder(self) -> str:
        """This request's name on leases (made when first needed: most requests take none)."""
        if self._holder is None:
            self._holder = f"{self.session.services.node_id}:{secrets.token_hex(6)}"
        return self._holder

    def stages(self, messages: Sequence[NewMessage]) -> bool:
        """Whether these appends can wait for the commit (the turn is ours, retries known)."""
        return self.open and not self.committed and not self.unclaimed and (self.fresh or all(
            m.dedupe is None or m.dedupe in self.probed for m in messages))

    def _waiting(self, attempt: Callable[[float], Op[int | None]],
                 reading: bool = False) -> Op[int]:
        """``attempt(waited)`` until it gets a token, with backoff, up to the turn timeout; a
        ``reading`` one does not wait for a streamed reply's lease (``ReplyStreaming``)."""
        settings = self.session.services.settings
        started = time.monotonic()
        delay, waited = _FIRST_WAIT, 0.0
        while True:
            try:
                token = yield from attempt(waited)
            except StoreUnavailableError:
                self.uncertain = True
                raise
            if token is not None:
                self.fence = token
                return token
            if reading and waited == 0.0 and (yield from self._streaming()):
                raise ReplyStreaming
            waited = time.monotonic() - started
            if waited >= settings.turn_timeout:
                raise SessionBusyError(waited)
            yield Sleep(min(delay, settings.turn_timeout - waited))
            delay = min(delay * 2, _MAX_WAIT)
            waited = time.monotonic() - started

    def take(self) -> Op[bool]:
        """Take the lease; True if taken now, False if this request already holds it."""
        if self.fence is not None:
            return False
        session = self.session
        settings = session.services.settings
        yield from self._orphans()

        def attempt(waited: float) -> Op[int | None]:
            token = yield from session.call(session.store.acquire_lease(
                session.key, holder=self.holder, ttl=settings.turn_lease_ttl,
                live=session.services.members.confirmed_live()),
                {ATTR.LEASE_NAME: "turn", ATTR.LEASE_WAIT: waited})
            return int(token) if token is not None else None

        yield from self._waiting(attempt)
        return True

    def _streaming(self) -> Op[bool]:
        """Whether a streamed reply holds the turn (one more store step, on contention only)."""
        session = self.session
        info = yield from session.call(session.store.stream_read(session.key, 1 << 30))
        return info is not None and info.running

    def begin(self, probe: frozenset[str], writing: bool = False,
              reading: bool = False) -> Op[Begun]:
        """Take the lease and load the session in one step (waiting while it is held); a session
        that does not exist takes none, unless ``writing``."""
        session = self.session
        settings = session.services.settings
        begun = Begun("missing")
        yield from self._orphans()

        def attempt(waited: float) -> Op[int | None]:
            nonlocal begun
            begun = yield from session.call(session.store.begin(
                session.key, holder=self.holder, ttl=settings.turn_lease_ttl,
                live=session.services.members.confirmed_live(), probe=probe,
                writing=writing),
                {ATTR.LEASE_NAME: "turn", ATTR.LEASE_WAIT: waited})
            token: int | None = begun.token
            if token is None and begun.status != "live":
                return -1  # no session: nothing to wait for
            return token

        if (yield from self._waiting(attempt, reading)) == -1:
            self.fence = None
        self.unclaimed = self.fence is None
        self.open = True
        self.probed, self.seen = probe, begun.seen
        return begun

    def release(self) -> Op[None]:
        """Release what this request holds (uncommitted staged appends dropped); a lease the store
        could not take back is remembered and released once it answers (``orphans``)."""
        self.staged, self.predicted = [], []
        self.open = False
        if self.uncertain and self.fence is None:
            self.uncertain = False
            yield from self._release(0, self.holder)
        if self.fence is not None:
            token, self.fence = self.fence, None
            yield from self._release(token, None)

    def _release(self, token: int, holder: str | None) -> Op[None]:
        session = self.session
        try:
            yield from session.call(session.store.release_lease(session.key, token,
                                                                holder=holder))
        except StoreUnavailableError as exc:
            session.services.orphans.add(Orphan(session.key, token, holder or self.holder))
            logger.warning("stickyctx: a turn lease is released when the store is back: %s", exc)

    def drain(self) -> Op[None]:
        """At a request's end: release leases a store fault left on other sessions."""
        session = self.session
        orphans = session.services.orphans
        if orphans:
            yield from release(session.store, orphans, orphans.drain(_DRAINED))

    def _orphans(self) -> Op[None]:
        """Before a turn: release this node's leases on the session left by a store fault."""
        session = self.session
        found = session.services.orphans.take(session.key)
        if found:
            yield from release(session.store, session.services.orphans, found)

    # The auto turn: begun, staged, committed (the session's state, kept in step) -----------

    def enter(self, write: bool = True) -> Op[None]:
        """Before a context call in ``auto`` mode: begin the turn if this request has not."""
        session = self.session
        if session.state.destroyed:
            raise SessionGoneError("the session was destroyed in this request")
        if not session.auto_lock or self.fence is not None or self.open:
            return
        try:
            if self.committed:  # a write after the response started: one by one
                yield from self.take()
            elif session.state.is_new:  # nobody else can know this id: no lease, no load
                self.open = self.fresh = True
                if session._snapshot is None and not session._known_live:
                    session._snapshot = EMPTY
            elif not write and not session.locks_reads:
                return  # a read of a GET: loaded without the lease (a later write begins)
            else:
                yield from self.start(reading=not write)
        except ReplyStreaming:
            # A read while a reply streams is served the stored history at once (without the
            # reply in flight), without the turn lock; a write would wait for the turn.
            return
        except StoreUnavailableError:
            if write:
                raise
            # A read goes on without the turn lock while the store is down: it may be
            # served from this node's hot tier, flagged stale (see ``Session.stale``).

    def claim(self) -> Op[None]:
        """Before a write: the turn (a turn begun on a session with no data took no lease)."""
        yield from self.enter()
        if self.unclaimed and not self.committed:
            yield from self.start(writing=True)

    def start(self, writing: bool = False, reading: bool = False) -> Op[None]:
        """Begin: the lease and the session's context, in one step (``begin``)."""
        session = self.session
        key = session.idempotency_key
        probe = frozenset(dedupe_key(key, n) for n in range(_PROBED)) if key else frozenset()
        begun = yield from self.begin(probe, writing, reading)
        if begun.status == "live" and begun.snapshot is not None:
            session._known_live = True
            session._snapshot = yield from session._recount(begun.snapshot)
        elif begun.status == "revoked" and (yield from identity.follow(session, begun.follow)):
            yield from self.start(writing, reading)  # a rotation within its grace: the new id
        elif begun.status == "revoked" or session._idle_since_creation():
            yield from session._restart()
        else:  # nothing stored yet (or any more): the first write creates it
            session._snapshot = EMPTY

    def stage(self, messages: Sequence[NewMessage]) -> AppendResult | None:
        """Stage ``messages`` (shown now, written at the commit); ``None`` if they cannot wait."""
        session = self.session
        snapshot = session._snapshot
        if snapshot is None or not self.stages(messages):
            return None
        settings = session.services.settings
        session._snapshot, result = staged(snapshot, messages, self.seen,
                                           settings.max_session_tokens,
                                           settings.max_session_bytes)
        # Retries go to the commit too: the store drops them, or refuses the turn if their key
        # was used for another message (IdempotencyKeyReusedError).
        self.staged.extend(messages)
        self.predicted.extend(result.seqs)
        return result

    def restage(self, snapshot: Snapshot) -> Snapshot:
        """The store's ``snapshot`` (reloaded mid-turn) with this turn's staged appends."""
        if not self.staged:
            return snapshot
        settings = self.session.services.settings
        snapshot, result = staged(snapshot, self.staged, self.seen,
                                  settings.max_session_tokens, settings.max_session_bytes)
        self.predicted = list(result.seqs)
        return snapshot

    @property
    def settles(self) -> bool:  # whether ``settle`` has anything to do
        return not self.committed and (self.open or bool(self.staged))

    @property
    def finishes(self) -> bool:  # whether ``release`` or ``drain`` has anything to do
        return self.fence is not None or self.uncertain or bool(self.session.services.orphans)

    def settle(self, status: int) -> Op[None]:
        """At the response's start: commit on a success, roll back on an error (status >= 400)."""
        if not self.settles:
            return
        if status < 400:
            yield from self.commit()
        else:
            self.committed = True
            yield from self.release()

    def commit(self) -> Op[None]:
        """Write the staged appends and release the lease, in one step."""
        messages, predicted = self.staged, self.predicted
        self.staged, self.predicted, self.committed = [], [], True
        if not messages:
            yield from self.release()
            return
        session = self.session
        snapshot, fence = session._snapshot, self.fence
        result = yield from session._append(messages, fence, release=fence is not None)
        self.fence, self.open = None, False  # released with the write
        self._stored(snapshot, predicted, result)

    def flush(self) -> Op[None]:
        """Write what the turn staged, keeping the lease (before a write that cannot wait)."""
        if self.staged:
            messages, predicted = self.staged, self.predicted
            self.staged, self.predicted = [], []
            session = self.session
            snapshot = session._snapshot
            result = yield from session._append(messages, self.fence)
            self._stored(snapshot, predicted, result)

    def _stored(self, snapshot: Snapshot | None, predicted: Sequence[int],
                result: AppendResult) -> None:
        """After staged appends were written: the snapshot as staged if the store wrote them
        where they were shown, else reload when next needed (and re-plan a pending fold)."""
        session = self.session
        current = committed(snapshot, predicted, result) if snapshot is not None else None
        if current is None and list(result.seqs) != list(predicted):
            session.folds.moved(result.seqs)
        session._snapshot = current
