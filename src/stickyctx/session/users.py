"""``UserSpace``: a principal's conversations, memory and state, as sans-I/O operations.

The app names the principal (from its own authentication: stickyctx does none) and, per call,
the conversation; every operation first checks that the conversation is the principal's (its
owner or a member the owner added). Anything else, a malformed id included, raises
``ConversationNotFoundError``, the same error with the same message whatever the reason, so an
answer never reveals that someone else's conversation exists.

The handles (``users_handle``) drive these operations with the store's sync or async I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.affinity import classify
from ..core.flow import SessionState
from ..core.ids import new_session_id
from ..core.placement import place
from ..core.principals import (
    ConversationRecord,
    PrincipalRef,
    UserKeys,
    clean_labels,
    clean_title,
    derived_title,
    is_valid_conversation_id,
)
from ..core.storekeys import SessionKey
from ..errors import (
    ConversationNotFoundError,
    InvalidMessageError,
    InvalidPrincipalError,
)
from ..sansio import Op
from ..stores.base import Store
from ..stores.userdata import ConversationChange
from .conversation import ConversationSession
from .services import Services
from .user_memory import ANY, MemoryAndState

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["ANY", "UserSpace"]

MAX_PAGE = 100


class UserSpace(MemoryAndState):
    """One principal (of one tenant) in one request."""

    __slots__ = ("keys", "principal", "ref", "request", "services", "store", "tenant")

    def __init__(self, services: Services, store: Store, principal: str, *, tenant: str = "",
                 request: Session | None = None) -> None:
        self.services = services
        self.store = store
        self.keys = UserKeys(services.keys.digest, services.keys.namespace)
        try:
            self.ref: PrincipalRef = self.keys.principal(principal, tenant)
        except ValueError as exc:
            raise InvalidPrincipalError(str(exc)) from None
        self.principal = principal
        self.tenant = tenant
        self.request = request

    # Finding a conversation -----------------------------------------------------------------

    def _key(self, conversation_id: str) -> tuple[str, SessionKey]:
        if not is_valid_conversation_id(conversation_id):
            raise ConversationNotFoundError
        session_id = self.keys.conversation_session_id(conversation_id, self.tenant)
        return session_id, self.services.keys.derive(session_id)

    def _find(self, conversation_id: str) -> Op[tuple[str, SessionKey, ConversationRecord]]:
        session_id, key = self._key(conversation_id)
        record = yield from self._call(self.store.conversation_get(key))
        if record is None or record.id != conversation_id or not record.allows(self.ref):
            raise ConversationNotFoundError
        return session_id, key, record

    def _owned(self, conversation_id: str) -> Op[tuple[str, SessionKey, ConversationRecord]]:
        found = yield from self._find(conversation_id)
        if found[2].owner != self.ref.tag:
            raise ConversationNotFoundError  # members cannot manage it (nor learn who owns it)
        return found

    # Conversations ----------------------------------------------------------------------------

    def create(self, /, conversation_id: str | None = None, *, title: str | None = None,
               labels: Sequence[str] = ()) -> Op[dict[str, Any]]:
        """A new conversation of the principal (``conversation_id``: the app's own id; else
        one is minted). Creating an id the principal already has returns it as it is; an id
        that another principal holds, or that was deleted, is ``ConversationNotFoundError``."""
        cid = new_session_id() if conversation_id is None else conversation_id
        session_id, key = self._key(cid)
        try:
            tags = clean_labels(labels)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from None
        services = self.services
        now = services.clock()
        view = services.members.view()
        node = place(session_id, view.nodes, view.loads, services.settings.balance_factor)
        record = ConversationRecord(cid, self.ref.tag, now, now, node=node,
                                    title=clean_title(title or ""), labels=tags)
        stored = yield from self._call(self.store.conversation_put(key, record, ttl=self._ttl))
        if stored is None or stored.owner != self.ref.tag or stored.id != cid:
            raise ConversationNotFoundError
        if stored is record or stored == record:
            services.members.placed(node)  # counts toward that node's load
        yield from self._call(self.store.index_add(self.ref.key, cid, stored.last_activity,
                                                   ttl=self._ttl))
        if self.request is not None:  # the response names the node that will hold it
            self.request.state.route = (stored.node, "new")
        return stored.public()

    def get(self, /, conversation_id: str) -> Op[dict[str, Any]]:
        """The conversation's metadata (``id``, ``title``, ``created``, ``last_activity``,
        ``turns``, ``tokens``, ``labels``)."""
        _, _, record = yield from self._find(conversation_id)
        return record.public()

    def list(self, /, *, limit: int = 20, cursor: str | None = None) -> Op[dict[str, Any]]:
        """A page of the principal's conversations, newest activity first:
        ``{"conversations": [...], "next": cursor or None}``."""
        limit = max(1, min(MAX_PAGE, int(limit)))
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        ids = yield from self._call(self.store.index_page(self.ref.key, offset=offset,
                                                          limit=limit + 1))
        out: list[dict[str, Any]] = []
        for cid in ids[:limit]:
            if not is_valid_conversation_id(cid):
                continue
            _, key = self._key(cid)
            record = yield from self._call(self.store.conversation_get(key))
            if record is None or record.id != cid or not record.allows(self.ref):
                # deleted meanwhile
                yield from self._call(self.store.index_remove(self.ref.key, cid))
                continue
            out.append(record.public())
        # Newest first even when the index lags a record (updated in two steps).
        out.sort(key=lambda r: (r["last_activity"], r["id"]), reverse=True)
        more = len(ids) > limit
        return {"conversations": out, "next": str(offset + limit) if more else None}

    def rename(self, /, conversation_id: str, title: str) -> Op[dict[str, Any]]:
        """Set the conversation's title."""
        return (yield from self._change(conversation_id, ConversationChange(
            title=clean_title(title))))

    def relabel(self, /, conversation_id: str, labels: Sequence[str]) -> Op[dict[str, Any]]:
        """Replace the conversation's app-defined labels."""
        try:
            tags = clean_labels(labels)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from None
        return (yield from self._change(conversation_id, ConversationChange(labels=tags)))

    def _change(self, conversation_id: str, change: ConversationChange) -> Op[dict[str, Any]]:
        _, key, _ = yield from self._find(conversation_id)
        record = yield from self._call(self.store.conversation_change(key, change, ttl=self._ttl))
        if record is None:
            raise ConversationNotFoundError
        return record.public()

    def add_member(self, /, conversation_id: str, principal: str) -> Op[None]:
        """Let another principal (of the same tenant) into the conversation (owner only)."""
        member = self._other(principal)
        _, key, record = yield from self._owned(conversation_id)
        if member.tag == self.ref.tag:
            return
        yield from self._call(self.store.conversation_change(
            key, ConversationChange(add_member=member.tag), ttl=self._ttl))
        yield from self._call(self.store.index_add(member.key, conversation_id,
                                                   record.last_activity, ttl=self._ttl))

    def remove_member(self, /, conversation_id: str, principal: str) -> Op[None]:
        """Take a member out of the conversation (owner only)."""
        member = self._other(principal)
        _, key, _ = yield from self._owned(conversation_id)
        yield from self._call(self.store.conversation_change(
            key, ConversationChange(remove_member=member.tag), ttl=self._ttl))
        yield from self._call(self.store.index_remove(member.key, conversation_id))

    def _other(self, principal: str) -> PrincipalRef:
        try:
            return self.keys.principal(principal, self.tenant)
        except ValueError as exc:
            raise InvalidPrincipalError(str(exc)) from None

    def delete(self, /, conversation_id: str) -> Op[None]:
        """Delete the conversation: its history, record and state (a member leaves it)."""
        _, key, record = yield from self._find(conversation_id)
        if record.owner != self.ref.tag:
            yield from self._call(self.store.conversation_change(
                key, ConversationChange(remove_member=self.ref.tag), ttl=self._ttl))
            yield from self._call(self.store.index_remove(self.ref.key, conversation_id))
            return
        yield from self._erase_conversation(conversation_id, key, record)
        yield from self._call(self.store.index_remove(self.ref.key, conversation_id))

    def _erase_conversation(self, conversation_id: str, key: SessionKey,
                            record: ConversationRecord) -> Op[None]:
        # The history, tombstoned: replays load nothing.
        yield from self._call(self.store.destroy(key))
        yield from self._call(self.store.conversation_delete(key, ttl=self._ttl))
        for member in record.members:
            yield from self._call(self.store.index_remove(
                SessionKey(key.namespace, member), conversation_id))

    # Erasure ----------------------------------------------------------------------------------

    def erase(self, /) -> Op[int]:
        """Erase everything of the principal: every conversation they own (history, record,
        state), their memory and their index; they leave the conversations they were a member
        of. Returns how many conversations were deleted."""
        ids = yield from self._call(self.store.principal_erase(self.ref.key, ttl=self._ttl))
        deleted = 0
        for cid in ids:
            if not is_valid_conversation_id(cid):
                continue
            _, key = self._key(cid)
            record = yield from self._call(self.store.conversation_get(key))
            if record is None or record.id != cid:
                continue
            if record.owner == self.ref.tag:
                yield from self._erase_conversation(cid, key, record)
                deleted += 1
            elif self.ref.tag in record.members:
                yield from self._call(self.store.conversation_change(
                    key, ConversationChange(remove_member=self.ref.tag), ttl=self._ttl))
        return deleted

    # The conversation's session -----------------------------------------------------------------

    def open(self, /, conversation_id: str) -> Op[ConversationSession]:
        """The session holding the conversation, placed on its owner node (re-placed when
        that node is gone), bound to the request: its turn settles with the response."""
        session_id, key, record = yield from self._find(conversation_id)
        request = self.request
        if request is not None:  # opened before in this request: the same turn, not a second
            for companion in request.companions:
                if isinstance(companion, ConversationSession) and companion.key == key:
                    return companion
        services = self.services
        view = services.members.view()
        affinity = classify(record.node or None, services.node_id, view.ids())
        owner = record.node
        if affinity != "hit" and affinity != "miss":  # gone (or never placed): re-place
            placed = place(session_id, view.nodes, view.loads, services.settings.balance_factor)
            changed = yield from self._call(self.store.conversation_change(
                key, ConversationChange(node=placed, expected_node=record.node), ttl=self._ttl))
            owner = changed.node if changed is not None and changed.node else placed
            affinity = "failover"
        if owner == services.node_id:
            services.members.active.touch(session_id)
        state = SessionState(session_id, owner, int(record.created), affinity, "header")
        session = ConversationSession(
            self, conversation_id, key, state,
            auto_lock=request.auto_lock if request is not None else True,
            idempotency_key=request.idempotency_key if request is not None else None,
            locks_reads=request.locks_reads if request is not None else True)
        session.facts = self.facts
        if request is not None:
            request.companions.append(session)
            request.state.route = (owner, affinity)
        return session

    def touched(self, session: ConversationSession, turns: int, tokens: int,
                first: str | None) -> Op[None]:
        """A turn of ``session`` committed: add it to the record and the principals' indexes."""
        change = ConversationChange(activity=self.services.clock(), turns=turns, tokens=tokens,
                                    title_if_empty=derived_title(first) if first else None)
        record = yield from self._call(self.store.conversation_change(
            session.record_key, change, ttl=self._ttl))
        if record is None:
            return
        for tag in (record.owner, *record.members):
            yield from self._call(self.store.index_add(
                SessionKey(self.ref.key.namespace, tag), record.id, record.last_activity,
                ttl=self._ttl))
