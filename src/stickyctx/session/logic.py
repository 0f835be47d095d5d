"""``Session``: one request's session logic, written once as sans-I/O operations.

The handles (``handle``) drive these operations with the store's sync or async I/O: lazy
loading, expiry and revocation, idempotent appends, rotation and destruction are decided here,
the turn (its states: begun, staged, committed, finished) in ``turn``, the window and its
folds in ``folds``. One ``Session`` per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from ..core.convert import MISSING, message_parts
from ..core.flow import SessionState
from ..core.formats import Format, formatter
from ..core.inference import lineage
from ..core.messages import AppendResult, NewMessage, Snapshot, as_dicts
from ..core.snapshots import EMPTY, absorb, recount_args, recounted
from ..core.storekeys import SessionKey
from ..core.tokenizer import REPLY_PRIMER_TOKENS
from ..sansio import Op
from ..stores.base import Store
from ..telemetry.audit import ACTION, OUTCOME, audited
from ..telemetry.operations import observed
from . import identity
from .folds import Folds
from .incoming import Incoming
from .services import Services
from .turn import Turn

__all__ = ["Session"]

logger = logging.getLogger("stickyctx")

class Session:
    __slots__ = ("_hash", "_key", "_known_live", "_snapshot", "auto_lock", "companions",
                 "facts", "folds", "follows", "idempotency_key", "incoming", "locks_reads",
                 "services", "state", "store", "turn")

    def __init__(self, services: Services, store: Store, state: SessionState, *,
                 auto_lock: bool, idempotency_key: str | None = None,
                 follows: bool = True, locks_reads: bool = True) -> None:
        self.services = services
        # A request's session follows a rotation made within its grace (its token was sent
        # before the rotated one arrived); a job naming a session by id does not.
        self.follows = follows
        self.store = store
        self.state = state
        self.auto_lock = auto_lock
        self.locks_reads = locks_reads  # False: reads begin no turn (a GET or HEAD request)
        self.idempotency_key = idempotency_key
        self.turn = Turn(self)
        self._key: SessionKey | None = None
        self._hash: tuple[str, str] | None = None  # (session id, its telemetry name)
        self._snapshot: Snapshot | None = None
        self._known_live = False
        self.incoming = Incoming(services)
        self.folds = Folds(self)
        # Conversations the app opened in this request (``session.users``): settled with it.
        self.companions: list[Session] = []
        # What enters every window before the history (a principal's pinned memory).
        self.facts: Callable[[], Op[str | None]] | None = None

    # Names and helpers ------------------------------------------------------------------------

    @property
    def holder(self) -> str:
        return self.turn.holder

    @property
    def key(self) -> SessionKey:
        if self._key is None:
            self._key = self.services.keys.derive(self.state.session_id)
        return self._key

    def session_hash(self) -> str:
        """The session's name in telemetry (a keyed hash of the current id), once per id."""
        session_id = self.state.session_id
        cached = self._hash
        if cached is None or cached[0] != session_id:
            cached = self._hash = (session_id, self.services.session_hash(session_id))
        return cached[1]

    def anchor(self) -> str:
        """The conversation's keyed lineage (stable across ``rotate()``): what its keys rest on."""
        state = self.state
        return state.lineage or lineage(self.services.keys.digest, state.session_id)

    @property
    def stale(self) -> bool:
        """Whether the context was served from this node's memory while the store was down."""
        return self._snapshot is not None and self._snapshot.stale

    @property
    def holds_turn(self) -> bool:
        """Whether this request owns the turn: it holds the lease, or the session is new."""
        turn = self.turn
        return turn.fence is not None or (turn.open and not turn.committed
                                          and not turn.unclaimed)

    def call(self, op: Op[Any], attributes: Mapping[str, Any] | None = None) -> Op[Any]:
        """A store operation, seen by telemetry when an SDK is configured, and audited when the
        audit trail is on and it is a read, a write, a rotation or an erasure."""
        seen = observed(self.services.telemetry.observer(), op, self.session_hash, attributes)
        audit = self.services.audit
        if audit is None:
            return seen
        return audited(audit, seen, getattr(op, "__name__", ""), self.session_hash,
                       self.state.principal, attributes)

    def record(self, name: str, attributes: Mapping[str, Any], started_ns: int) -> None:
        """A span for work done without I/O (a window, a fold), when an SDK is configured."""
        telemetry = self.services.telemetry.observer()
        if telemetry is not None:
            telemetry.record(name, attributes, started_ns, time.time_ns())

    def _idle_since_creation(self) -> bool:
        """A session unknown to the store is expired when its token is older than the idle TTL."""
        if self.state.is_new or self._known_live:
            return False
        return self.services.clock() - self.state.created > self.services.settings.idle_ttl

    def _restart(self) -> Op[None]:
        """Start afresh with a new id (the old one expired or was revoked)."""
        return (yield from identity.restart(self))

    # The turn (see ``turn``) -----------------------------------------------------------------

    def lock(self) -> Op[bool]:
        """Take the turn lock; True if taken now, False if this request already held it."""
        return (yield from self.turn.take())

    @property
    def settles(self) -> bool:  # whether ``settle`` has anything to do (else edges skip it)
        return bool(self.companions) or self.turn.settles

    @property
    def finishes(self) -> bool:  # whether ``finish`` has anything to do (else edges skip it)
        state = self.state
        return (self.turn.finishes or state.is_new or state.placed
                or state.affinity == "failover"
                or self._snapshot is not None or self.folds.pending is not None)

    def settle(self, status: int) -> Op[None]:
        """At the response's start: commit the turn (status below 400) or roll it back."""
        for companion in self.companions:
            yield from companion.settle(status)
        return (yield from self.turn.settle(status))

    def commit(self, /) -> Op[None]:
        """Store the staged appends and release the lock now (the middleware: at the response)."""
        return (yield from self.turn.commit())

    def unlock(self) -> Op[None]:
        """Release the turn lock, writing first what the turn staged (a ``turn()`` block's)."""
        yield from self.turn.flush()
        yield from self.turn.release()

    def _append(self, messages: Sequence[NewMessage], fence: int | None,
                release: bool = False) -> Op[AppendResult]:
        """One atomic write (restarting under a new id if the session was revoked or expired)."""
        def write(create: bool, fence: int | None, release: bool = False) -> Op[AppendResult]:
            return self.call(self.store.append(self.key, messages,
                                               created=float(self.state.created),
                                               create=create, fence=fence, release=release))

        create = self._known_live or not self._idle_since_creation()
        result: AppendResult = yield from write(create, fence, release)
        if result.status == "revoked" and (yield from identity.follow(self, result.follow)):
            result = yield from write(True, self.turn.fence)  # the rotated session's new id
        if result.status != "live":
            yield from self._restart()
            result = yield from write(True, self.turn.fence)
        self._known_live = True
        return result

    # Reading ----------------------------------------------------------------------------------

    def load(self) -> Op[Snapshot]:
        yield from self.turn.enter(write=False)
        if self._snapshot is None:
            snapshot: Snapshot = yield from self.call(self.store.load(self.key))
            while snapshot.status == "revoked" and (
                    yield from identity.follow(self, snapshot.follow)):
                snapshot = yield from self.call(self.store.load(self.key))
            if snapshot.status == "revoked" or (
                snapshot.status == "missing" and self._idle_since_creation()
            ):
                yield from self._restart()
                snapshot = EMPTY
            self._known_live = self._known_live or snapshot.exists
            self._snapshot = yield from self._recount(snapshot)
        return self._snapshot

    def _reload(self) -> Op[Snapshot]:
        """The store's snapshot again (another step changed it), with the staged appends."""
        self._snapshot = None
        snapshot = self._snapshot = self.turn.restage((yield from self.load()))
        return snapshot

    def _recount(self, snapshot: Snapshot) -> Op[Snapshot]:
        """Recount, once, the messages counted with another encoding than the current one."""
        tokenizer = self.services.tokenizer
        counts = recount_args(snapshot, tokenizer)
        if counts is None:
            return snapshot
        version = yield from self.call(self.store.recount(
            self.key, tokenizer.name, counts, expected_version=snapshot.version))
        return recounted(snapshot, tokenizer.name, counts, version)

    def messages(self, /, *, format: Format = "stored") -> Op[list[dict[str, Any]]]:
        """The full stored history: as stored, or in ``format`` (see ``core.formats``)."""
        convert = formatter(format)
        snapshot = yield from self.load()
        return convert(as_dicts(snapshot.messages))

    def token_count(self, /) -> Op[int]:
        """Tokens of the stored history, counted as the chat API counts them."""
        snapshot = yield from self.load()
        return snapshot.total_tokens + REPLY_PRIMER_TOKENS if snapshot.messages else 0

    def turn_count(self, /) -> Op[int]:
        """How many user messages the stored history holds (a list of roles, counted in C)."""
        snapshot = yield from self.load()
        return list(map(attrgetter("role"), snapshot.messages)).count("user")

    def window(self, /, budget: int | None = None, *, system: str | None = None,
               format: Format = "chat") -> Op[list[dict[str, Any]]]:
        """The newest whole turns that fit ``budget`` tokens, ``system`` first, in ``format``."""
        if self.facts is not None:
            facts = yield from self.facts()
            if facts:
                system = facts if system is None else system + "\n\n" + facts
        return (yield from self.folds.window(budget, system, format))

    # Writing ----------------------------------------------------------------------------------

    def append(self, /, role: Any, content: Any = MISSING, *, turn_id: str | None = None,
               **fields: Any) -> Op[int]:
        """Append one message durably; its sequence number, or 0 for a retry of a stored append
        (same turn id). ``role`` may be a whole message (dict, pydantic or LangChain)."""
        if content is MISSING:
            role, content, own = message_parts(role)
            fields = {**own, **fields}
        messages = yield from self.incoming.built([(role, content, fields)], self._turn(turn_id))
        result = yield from self.write(messages)
        return result.seqs[0] if result.seqs else 0

    def extend(self, /, messages: Iterable[Mapping[str, Any] | Any], *,
               turn_id: str | None = None) -> Op[int]:
        """Append several messages (dicts, pydantic, LangChain) in one atomic write; how many."""
        built = yield from self.incoming.built(map(message_parts, messages), self._turn(turn_id))
        result = yield from self.write(built)
        return len(result.seqs)

    def _turn(self, turn_id: str | None) -> str | None:
        return turn_id if turn_id is not None else self.idempotency_key

    def write(self, messages: Sequence[NewMessage]) -> Op[AppendResult]:
        """Append built messages atomically: staged till the turn commits if it may, else now."""
        turn = self.turn
        yield from turn.claim()
        result = turn.stage(messages)
        if result is None:
            yield from turn.flush()
            result = yield from self._append(messages, turn.fence)
            if self._snapshot is not None and any(result.written):
                self._snapshot = absorb(self._snapshot, messages, result)  # None: reload
        if self.folds.own_from is None and result.seqs:
            self.folds.own_from = result.seqs[0]
        return result

    def pop(self, /) -> Op[dict[str, Any] | None]:
        """Remove and return the newest message (atomic: concurrent pops never share one)."""
        yield from self.turn.claim()
        yield from self.turn.flush()
        message = yield from self.call(self.store.pop(self.key, fence=self.turn.fence))
        self._snapshot = None
        return message.as_dict() if message is not None else None

    def clear(self, /) -> Op[None]:
        """Forget the history and summary; the session itself stays."""
        yield from self.turn.claim()
        yield from self.turn.flush()
        version = yield from self.call(self.store.clear(self.key, fence=self.turn.fence))
        self._snapshot = Snapshot("live", int(version)) if version else EMPTY

    def rotate(self, /) -> Op[str]:
        """Give the session a new id (same data); the old id loads nothing afterwards."""
        return (yield from identity.rotate(self))

    def destroy(self, /) -> Op[None]:
        """Delete the data, expire the cookie; a replay of the old token starts afresh."""
        return (yield from identity.destroy(self))

    def end(self, status: int = 200) -> Op[None]:
        """A whole request's end, for code that drives a session without an edge: settle the
        turn as a response with ``status`` would, then finish."""
        try:
            yield from self.settle(status)
        finally:
            yield from self.finish()

    def finish(self) -> Op[None]:
        """End of the request: release the turn, then fold what left the window (unhurried)."""
        yield from self.turn.release()
        yield from self.turn.drain()
        state = self.state
        if state.is_new or state.placed:
            self.services.members.ended(state.session_id, state.owner, placed=state.placed,
                                        stored=self._known_live and not state.destroyed)
        if state.affinity == "failover" and self.services.audit is not None:
            self.services.audit.event(ACTION.FAILOVER, OUTCOME.SUCCESS, self.session_hash(),
                                      principal=state.principal, owner=state.owner)
        if not self.state.destroyed:
            yield from self.folds.finish(self._snapshot)
