"""``ConversationSession``: the session that holds one conversation of a principal.

An ordinary ``Session`` (the turn lock, idempotency, windows, failover and durability are the
session's, unchanged) whose id is derived from the conversation id (``core.principals``), plus
the conversation's bookkeeping: what its turns wrote is added to the conversation's record
(turns, tokens, last activity, the title derived from the first user message) when the turn
commits, and the principal's pinned memory enters every window (``Session.facts``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.flow import SessionState
from ..core.messages import AppendResult, NewMessage
from ..core.snapshots import EMPTY
from ..core.storekeys import SessionKey
from ..errors import ConversationIdError, ConversationNotFoundError
from ..sansio import Op
from .logic import Session

if TYPE_CHECKING:
    from .users import UserSpace

__all__ = ["ConversationSession"]

logger = logging.getLogger("stickyctx")


class ConversationSession(Session):
    __slots__ = ("_first", "_staged", "_written", "conversation_id", "record_key", "space")

    def __init__(self, space: UserSpace, conversation_id: str, record_key: SessionKey,
                 state: SessionState, *, auto_lock: bool,
                 idempotency_key: str | None, locks_reads: bool = True) -> None:
        super().__init__(space.services, space.store, state, auto_lock=auto_lock,
                         idempotency_key=idempotency_key, locks_reads=locks_reads)
        self.space = space
        self.conversation_id = conversation_id
        self.record_key = record_key
        self._known_live = True  # the record vouches for it: never restarted as expired
        self._first: str | None = None  # the first user message this request wrote
        self._staged = (0, 0)  # (user turns, tokens) staged until the turn commits
        self._written = (0, 0)  # ... and written, not yet added to the record

    def write(self, messages: Sequence[NewMessage]) -> Op[AppendResult]:
        result: AppendResult = yield from super().write(messages)
        written = result.written or (True,) * len(messages)
        turns = sum(1 for m, w in zip(messages, written, strict=False) if w and m.role == "user")
        tokens = sum(m.tokens for m, w in zip(messages, written, strict=False) if w)
        if self._first is None:
            self._first = next((m.content for m in messages
                                if m.role == "user" and isinstance(m.content, str)), None)
        staged = bool(messages) and any(m is messages[-1] for m in self.turn.staged)
        if staged:
            self._staged = (self._staged[0] + turns, self._staged[1] + tokens)
        else:
            self._written = (self._written[0] + turns, self._written[1] + tokens)
        return result

    def settle(self, status: int) -> Op[None]:
        yield from super().settle(status)
        if status < 400:
            self._written = (self._written[0] + self._staged[0],
                             self._written[1] + self._staged[1])
        self._staged = (0, 0)
        turns, tokens = self._written
        if not (turns or tokens):
            return
        self._written = (0, 0)
        try:
            yield from self.space.touched(self, turns, tokens, self._first)
        except Exception:
            logger.warning("stickyctx: updating a conversation's record failed", exc_info=True)

    # Identity: a conversation's session id is derived from its id, so it never changes --------

    def _restart(self) -> Op[None]:
        """The history was revoked under us: the conversation was deleted meanwhile."""
        raise ConversationNotFoundError
        yield  # unreachable: it makes this method an operation

    def rotate(self, /) -> Op[str]:
        """Not for conversations: their ids never change (``ConversationIdError``)."""
        raise ConversationIdError("a conversation keeps its id: rotate the request's session")
        yield  # unreachable: it makes this method an operation

    def destroy(self, /) -> Op[None]:
        """Delete the conversation (its owner), or leave it (a member): ``Users.delete``."""
        if self.state.destroyed:
            return
        yield from self.turn.release()
        yield from self.space.delete(self.conversation_id)
        self.state.destroyed = True
        turn = self.turn
        turn.fence, turn.staged, turn.open = None, [], False
        self._snapshot = EMPTY
        self._staged = self._written = (0, 0)
