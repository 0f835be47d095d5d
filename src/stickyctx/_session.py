"""One request's session logic, written once as sans-I/O operations (see ``_ops``).

The handles in ``conversation`` drive these operations with a sync or an async store; the logic
here decides everything: the turn lock, lazy loading, expiry and revocation, idempotent appends,
rotation and destruction.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ._ops import Call, Op, Sleep
from .core.flow import SessionState, new_session
from .core.keys import SessionKey
from .core.messages import AppendResult, NewMessage, Snapshot, StoredMessage, build_message
from .core.pruning import sliding_window
from .core.tokenizer import REPLY_PRIMER_TOKENS
from .engine import Engine
from .errors import SessionBusyError, SessionGoneError

__all__ = ["SessionLogic"]

_EMPTY = Snapshot("missing")
_FIRST_WAIT = 0.002
_MAX_WAIT = 0.05


class SessionLogic:
    """Per-request state and operations. Never shared between requests."""

    __slots__ = (
        "_fence",
        "_key",
        "_known_live",
        "_snapshot",
        "_turn_counts",
        "auto_lock",
        "engine",
        "holder",
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
        self.holder = f"{engine.node_id}:{secrets.token_hex(6)}"
        self._key: SessionKey | None = None
        self._snapshot: Snapshot | None = None
        self._fence: int | None = None
        self._known_live = False
        self._turn_counts: dict[str, int] = {}

    # Helpers --------------------------------------------------------------------------------

    @property
    def key(self) -> SessionKey:
        if self._key is None:
            self._key = self.engine.keys.derive(self.state.session_id)
        return self._key

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
        while True:
            token = yield Call("acquire_lease", (self.key,),
                               {"holder": self.holder, "ttl": settings.turn_lease_ttl})
            if token is not None:
                self._fence = int(token)
                return True
            waited = time.monotonic() - started
            if waited >= settings.turn_timeout:
                raise SessionBusyError(waited)
            yield Sleep(min(delay, settings.turn_timeout - waited))
            delay = min(delay * 2, _MAX_WAIT)

    def unlock(self) -> Op[None]:
        if self._fence is not None:
            token, self._fence = self._fence, None
            yield Call("release_lease", (self.key, token))

    def _auto(self) -> Op[None]:
        self._check_usable()
        if self.auto_lock and self._fence is None:
            yield from self.lock()

    # Context --------------------------------------------------------------------------------

    def load(self) -> Op[Snapshot]:
        yield from self._auto()
        if self._snapshot is None:
            snapshot: Snapshot = yield Call("load", (self.key,))
            if snapshot.status == "revoked" or (
                snapshot.status == "missing" and self._idle_since_creation()
            ):
                yield from self._restart()
                snapshot = _EMPTY
            self._known_live = self._known_live or snapshot.exists
            self._snapshot = snapshot
        return self._snapshot

    def messages(self) -> Op[list[dict[str, Any]]]:
        snapshot = yield from self.load()
        return [m.as_dict() for m in snapshot.messages]

    def token_count(self) -> Op[int]:
        snapshot = yield from self.load()
        return snapshot.total_tokens + REPLY_PRIMER_TOKENS if snapshot.messages else 0

    def window(self, budget: int | None, system: str | None) -> Op[list[dict[str, Any]]]:
        snapshot = yield from self.load()
        settings = self.engine.settings
        limit = settings.token_budget if budget is None else budget
        head: list[dict[str, Any]] = []
        available = limit - settings.response_reserve - REPLY_PRIMER_TOKENS
        if system is not None:
            head.append({"role": "system", "content": system})
            available -= self.engine.tokenizer.count_message(head[0])
        if not snapshot.messages:
            return head
        return head + [m.as_dict() for m in sliding_window(snapshot.messages, available)]

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
        self._absorb(messages, result)
        return result

    def _absorb(self, messages: Sequence[NewMessage], result: AppendResult) -> None:
        """Keep the request's snapshot current after our own append, when provably so."""
        snapshot = self._snapshot
        if snapshot is None or not any(result.written):
            return
        if snapshot.version + 1 != result.version:
            self._snapshot = None  # someone else wrote in between: reload when next needed
            return
        stored = []
        fresh = iter(zip(result.seqs, result.groups, strict=True))
        for message, written in zip(messages, result.written, strict=True):
            if written:
                seq, group = next(fresh)
                stored.append(StoredMessage(seq, group, message.role, message.content,
                                            message.tokens, message.encoding, message.fields))
        self._snapshot = replace(
            snapshot, status="live", version=result.version,
            messages=snapshot.messages + tuple(stored), total_tokens=result.total_tokens,
        )

    def clear(self) -> Op[None]:
        yield from self._auto()
        version = yield Call("clear", (self.key,), {"fence": self._fence})
        self._snapshot = Snapshot("live", int(version)) if version else _EMPTY

    def rotate(self) -> Op[str]:
        self._check_usable()
        old_key = self.key
        fresh_id = new_session(self.engine.flow, self.engine.membership(), self.engine.clock(),
                               self.state.transport).session_id
        new_key = self.engine.keys.derive(fresh_id)
        yield Call("rotate", (old_key, new_key))
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
        """End of the request: release what it holds."""
        yield from self.unlock()
