"""One request's session logic, written once as sans-I/O operations (see ``stickyctx.sansio``).

The handles in ``conversation`` drive these operations with a sync or an async store; the logic
here decides everything: the turn lock, lazy loading, expiry and revocation, idempotent appends,
rotation and destruction.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..core.flow import SessionState, new_session
from ..core.inference import lineage
from ..core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, build_message
from ..core.storekeys import SessionKey
from ..core.tokenizer import REPLY_PRIMER_TOKENS
from ..core.views import Concat
from ..errors import (
    SessionBusyError,
    SessionGoneError,
    StoreUnavailableError,
)
from ..sansio.drive import Call, Op, Sleep
from ..telemetry import ATTR
from .services import Engine
from .windows import Windowing, _Fold

logger = logging.getLogger("stickyctx")

__all__ = ["SessionLogic"]

_EMPTY = Snapshot("missing")
_FIRST_WAIT = 0.002
_MAX_WAIT = 0.05


class SessionLogic(Windowing):
    """Per-request state and operations. Never shared between requests."""

    __slots__ = (
        "_fence",
        "_hash",
        "_holder",
        "_key",
        "_known_live",
        "_turn_counts",
        "_uncertain_lease",
        "auto_lock",
        "engine",
        "idempotency_key",
        "state",
    )

    def __init__(
        self,
        engine: Engine,
        state: SessionState,
        *,
        auto_lock: bool,
        idempotency_key: str | None = None,
    ) -> None:
        self.engine = engine
        self.state = state
        self.auto_lock = auto_lock
        self.idempotency_key = idempotency_key
        self._holder: str | None = None
        self._key: SessionKey | None = None
        self._hash: tuple[str, str] | None = None  # (session id, its telemetry name)
        self._snapshot: Snapshot | None = None
        self._fence: int | None = None
        self._known_live = False
        self._turn_counts: dict[str, int] = {}
        self._fold: _Fold | None = None
        self._uncertain_lease = False  # a lease attempt failed with no answer (it may be ours)
        self._window_space: int | None = None
        self._own_from: int | None = None  # seq of the first message this request appended

    # Helpers --------------------------------------------------------------------------------

    @property
    def holder(self) -> str:
        """This request's name on leases (made when first needed: most requests take none)."""
        if self._holder is None:
            self._holder = f"{self.engine.node_id}:{secrets.token_hex(6)}"
        return self._holder

    @property
    def key(self) -> SessionKey:
        if self._key is None:
            self._key = self.engine.keys.derive(self.state.session_id)
        return self._key

    def session_hash(self) -> str:
        """The session's name in telemetry (a keyed hash of the current id), computed once
        per id: every recorded span of the request carries it."""
        session_id = self.state.session_id
        cached = self._hash
        if cached is None or cached[0] != session_id:
            cached = self._hash = (session_id, self.engine.session_hash(session_id))
        return cached[1]

    @property
    def stale(self) -> bool:
        """Whether the context was served from this node's memory while the store was down."""
        return self._snapshot is not None and self._snapshot.stale

    @property
    def holds_turn(self) -> bool:
        return self._fence is not None

    def _check_usable(self) -> None:
        if self.state.destroyed:
            raise SessionGoneError("the session was destroyed in this request")

    def _idle_since_creation(self) -> bool:
        """A session unknown to the store is expired when its token is older than the idle TTL."""
        if self.state.is_new or self._known_live:
            return False
        return self.engine.clock() - self.state.created > self.engine.settings.idle_ttl

    def _restart(self) -> Op[None]:
        """Start afresh with a new id (the old one expired or was revoked)."""
        had_turn = self._fence is not None
        if had_turn:
            yield from self.unlock()
        fresh = new_session(self.engine.flow, self.engine.membership(), self.engine.clock(),
                            self.state.transport)
        state = self.state
        state.previous_id = None
        state.lineage = None  # a new conversation
        state.session_id = fresh.session_id
        state.owner = fresh.owner
        state.created = fresh.created
        state.affinity = "new"
        state.reissue = True
        state.route_ok = False
        self._key = None
        self._snapshot = _EMPTY
        self._known_live = False
        if had_turn:
            yield from self.lock()

    # Turn lock ------------------------------------------------------------------------------

    def lock(self) -> Op[bool]:
        """Take the session's turn lease; True if taken now, False if already held."""
        if self._fence is not None:
            return False
        settings = self.engine.settings
        started = time.monotonic()
        delay = _FIRST_WAIT
        waited = 0.0
        while True:
            # A lease held by a node that left the membership (it died mid-turn) is taken over.
            try:
                token = yield Call("acquire_lease", (self.key,),
                                   {"holder": self.holder, "ttl": settings.turn_lease_ttl,
                                    "live": self.engine.members.confirmed_live()},
                                   {ATTR.LEASE_NAME: "turn", ATTR.LEASE_WAIT: waited})
            except StoreUnavailableError:
                self._uncertain_lease = True
                raise
            if token is not None:
                self._fence = int(token)
                return True
            waited = time.monotonic() - started
            if waited >= settings.turn_timeout:
                raise SessionBusyError(waited)
            yield Sleep(min(delay, settings.turn_timeout - waited))
            delay = min(delay * 2, _MAX_WAIT)
            waited = time.monotonic() - started

    def unlock(self) -> Op[None]:
        if self._fence is not None:
            token, self._fence = self._fence, None
            yield Call("release_lease", (self.key, token))

    def _auto(self, write: bool = True) -> Op[None]:
        self._check_usable()
        if self.auto_lock and self._fence is None:
            try:
                yield from self.lock()
            except StoreUnavailableError:
                if write:
                    raise
                # A read goes on without the turn lock while the store is down: it may be
                # served from this node's hot tier, flagged stale (see ``stale``).

    # Context --------------------------------------------------------------------------------

    def load(self) -> Op[Snapshot]:
        yield from self._auto(write=False)
        if self._snapshot is None:
            snapshot: Snapshot = yield Call("load", (self.key,))
            if snapshot.status == "revoked" or (
                snapshot.status == "missing" and self._idle_since_creation()
            ):
                yield from self._restart()
                snapshot = _EMPTY
            self._known_live = self._known_live or snapshot.exists
            snapshot = yield from self._recount(snapshot)
            self._snapshot = snapshot
        return self._snapshot

    def _recount(self, snapshot: Snapshot) -> Op[Snapshot]:
        """Recount, once, the messages counted with another encoding than the current one."""
        tokenizer = self.engine.tokenizer
        if not snapshot.messages or set(snapshot.encodings) <= {tokenizer.name}:
            return snapshot
        counts = {m.seq: tokenizer.count_message(m.as_dict()) for m in snapshot.messages
                  if m.encoding != tokenizer.name}
        version = yield Call("recount", (self.key, tokenizer.name, counts),
                             {"expected_version": snapshot.version})
        cum = snapshot.messages[0].cum - snapshot.messages[0].tokens
        rebuilt = []
        for m in snapshot.messages:
            tokens = counts.get(m.seq, m.tokens)
            cum += tokens
            rebuilt.append(replace(m, tokens=tokens, encoding=tokenizer.name, cum=cum))
        return replace(snapshot, version=version if version is not None else snapshot.version,
                       messages=tuple(rebuilt), total_tokens=sum(m.tokens for m in rebuilt),
                       encodings=(tokenizer.name,))

    def messages(self) -> Op[list[dict[str, Any]]]:
        snapshot = yield from self.load()
        return [m.as_dict() for m in snapshot.messages]

    def token_count(self) -> Op[int]:
        snapshot = yield from self.load()
        return snapshot.total_tokens + REPLY_PRIMER_TOKENS if snapshot.messages else 0

    def build(self, role: str, content: Any, turn_id: str | None,
              fields: Mapping[str, Any]) -> NewMessage:
        turn = turn_id if turn_id is not None else self.idempotency_key
        dedupe = None
        if turn is not None:
            n = self._turn_counts.get(turn, 0)
            self._turn_counts[turn] = n + 1
            digest = hashlib.sha256(f"{n}\x00{turn}".encode()).digest()[:16]
            dedupe = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return build_message(role, content, fields, self.engine.tokenizer,
                             self.engine.settings.max_message_bytes, dedupe)

    def append(self, messages: Sequence[NewMessage]) -> Op[AppendResult]:
        yield from self._auto()
        create = self._known_live or not self._idle_since_creation()
        result: AppendResult = yield Call("append", (self.key, messages), {
            "created": float(self.state.created), "create": create, "fence": self._fence})
        if result.status != "live":
            yield from self._restart()
            result = yield Call("append", (self.key, messages), {
                "created": float(self.state.created), "create": True, "fence": self._fence})
        self._known_live = True
        if self._own_from is None and result.seqs:
            self._own_from = result.seqs[0]
        self._absorb(messages, result)
        return result

    def _absorb(self, messages: Sequence[NewMessage], result: AppendResult) -> None:
        """Keep the request's snapshot current after our own append, when provably so."""
        snapshot = self._snapshot
        if snapshot is None or not any(result.written):
            return
        if snapshot.version + 1 != result.version or result.dropped:
            self._snapshot = None  # someone else wrote in between: reload when next needed
            return
        stored = []
        fresh = iter(zip(result.seqs, result.groups, result.cums, strict=True))
        for message, written in zip(messages, result.written, strict=True):
            if written:
                seq, group, cum = next(fresh)
                stored.append(StoredMessage(seq, group, message.role, message.content,
                                            message.tokens, message.encoding, cum, message.size,
                                            message.fields))
        self._snapshot = replace(
            snapshot, status="live", version=result.version,
            messages=Concat(snapshot.messages, stored), total_tokens=result.total_tokens,
            encodings=tuple(sorted({*snapshot.encodings, *(m.encoding for m in stored)})),
        )

    def pop(self) -> Op[dict[str, Any] | None]:
        """Remove and return the newest message (atomically: two pops never get the same one)."""
        yield from self._auto()
        message = yield Call("pop", (self.key,), {"fence": self._fence})
        self._snapshot = None
        return message.as_dict() if message is not None else None

    def clear(self) -> Op[None]:
        yield from self._auto()
        version = yield Call("clear", (self.key,), {"fence": self._fence})
        self._snapshot = Snapshot("live", int(version)) if version else _EMPTY

    def rotate(self) -> Op[str]:
        # Under the turn lock (auto mode): a turn in progress elsewhere must finish first, or its
        # next write would land on the tombstone and the lease would move away from its holder.
        yield from self._auto()
        old_key = self.key
        fresh_id = new_session(self.engine.flow, self.engine.membership(), self.engine.clock(),
                               self.state.transport).session_id
        new_key = self.engine.keys.derive(fresh_id)
        # The rotate span names the session by its new id, and the id it replaces.
        yield Call("rotate", (old_key, new_key), attributes={
            ATTR.SESSION_ID: self.engine.session_hash(fresh_id),
            ATTR.SESSION_PREVIOUS_ID: self.session_hash()})
        # The conversation keeps its keyed lineage (core.inference): routing keys survive.
        self.state.lineage = self.state.lineage or lineage(self.engine.keys.digest,
                                                           self.state.session_id)
        self.state.previous_id = self.state.session_id
        self.state.session_id = fresh_id
        self.state.reissue = True
        self._key = new_key
        self._snapshot = None  # the version moved with the data; reload when next needed
        return fresh_id

    def destroy(self) -> Op[None]:
        if self.state.destroyed:
            return
        yield Call("destroy", (self.key,))
        self.state.destroyed = True
        self._fence = None
        self._snapshot = _EMPTY

    def finish(self) -> Op[None]:
        """End of the request: release the turn, then fold what left the window (after the
        response, off its critical path)."""
        if self._uncertain_lease and self._fence is None:
            # A lease attempt whose answer was lost (a timeout) may have been granted after all:
            # release it by holder, so that the session is not locked until the lease expires.
            self._uncertain_lease = False
            with contextlib.suppress(StoreUnavailableError):  # still down: its TTL ends it
                yield Call("release_lease", (self.key, 0), {"holder": self.holder})
        yield from self.unlock()
        fold, self._fold = self._fold, None
        if not self.state.destroyed:
            # Replies appended after window() may push more out: fold up to what the next window
            # would leave out, now, rather than inline in the next request.
            fold = self._final_fold() or fold
        if fold is not None and not self.state.destroyed:
            yield from self._run_fold(fold)
