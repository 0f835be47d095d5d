"""The store primitives of principals and their conversations (part of ``Store``).

Keys: a principal's index, memory and tombstone share the principal's hash tag
(``core.principals.UserKeys.principal``); a conversation's record and state share the hash tag
of the session that holds its history. Every primitive touches keys of one tag only, so each is
one atomic step, in Redis Cluster too; the logic (``session.users``) composes them.

Contract (checked by the contract suite on every backend):

* ``conversation_put`` creates a record only if none exists and the id was not deleted before
  (a tombstone): it returns the record now stored (the existing one when there was one), or
  ``None`` when the id is tombstoned. The caller decides what an existing record means.
* ``conversation_change`` applies a ``ConversationChange`` atomically (counters add up under
  concurrency; ``expected_node`` makes the node a compare-and-set) and returns the new record, or
  ``None`` when there is no record (or ``expected_node`` did not match: then the record as is).
* ``conversation_delete`` removes the record and state and leaves a tombstone for ``ttl``.
* ``index_*``: a principal's conversation ids ordered by last activity, newest first.
* ``memory_put`` refuses (``False``) a write that would take the principal's memory over
  ``max_tokens`` tokens; ``None`` as the item deletes the key.
* ``state_cas`` sets (or, with ``None``, deletes) one field if its current value is
  ``expected`` (``None``: absent), unless ``check`` is false; ``True`` when it wrote.
* ``principal_erase`` deletes the principal's index and memory, leaves only a tombstone, and
  returns the conversation ids its index held.
* Everything written here expires ``ttl`` seconds after its last write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from ..core.principals import ConversationRecord, MemoryItem
from ..core.storekeys import SessionKey
from ..sansio import Op

__all__ = [
    "ConversationChange",
    "UserDataStore",
    "changed_record",
    "index_slice",
    "indexed",
    "memory_with",
    "state_with",
]


@dataclass(frozen=True, slots=True)
class ConversationChange:
    """One atomic change of a conversation record; ``None`` fields are left as they are."""

    title: str | None = None
    title_if_empty: str | None = None  # the derived title: set only when none is set
    labels: tuple[str, ...] | None = None
    add_member: str | None = None
    remove_member: str | None = None
    node: str | None = None
    expected_node: str | None = None
    activity: float | None = None
    turns: int = 0
    tokens: int = 0


# The meaning of the primitives, as pure functions every backend that keeps these values as
# whole objects applies (the embedded and PostgreSQL stores; Redis's scripts mean the same).

def changed_record(record: ConversationRecord,
                   change: ConversationChange) -> ConversationRecord | None:
    """``record`` after ``change``; ``None`` when ``expected_node`` does not match (the record
    is left as it is)."""
    if change.expected_node is not None and record.node != change.expected_node:
        return None
    members = [m for m in record.members if m != change.remove_member]
    if change.add_member is not None and change.add_member not in record.members:
        members.append(change.add_member)
    title = record.title
    if change.title is not None:
        title = change.title
    elif change.title_if_empty is not None and not title:
        title = change.title_if_empty
    record = replace(
        record, title=title, members=tuple(members),
        labels=record.labels if change.labels is None else change.labels,
        node=record.node if change.node is None else change.node)
    if change.activity is not None or change.turns or change.tokens:
        record = record.touched(change.activity or record.last_activity, change.turns,
                                change.tokens)
    return record


def indexed(index: Mapping[str, float], conversation_id: str,
            activity: float) -> dict[str, float]:
    """The index with the conversation added or moved (its activity never goes back)."""
    return {**index, conversation_id: max(activity, index.get(conversation_id, activity))}


def index_slice(index: Mapping[str, float], offset: int, limit: int) -> list[str]:
    """Up to ``limit`` ids from ``offset``, newest first; ties by id, descending, as Redis's
    ZREVRANGE orders them."""
    ordered = sorted(index.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    start = max(0, offset)
    return [cid for cid, _ in ordered[start:start + max(0, limit)]]


def memory_with(memory: Mapping[str, MemoryItem], name: str, item: MemoryItem | None,
                max_tokens: int) -> dict[str, MemoryItem] | None:
    """The memory with ``item`` set (``None``: deleted); ``None`` when it would hold more
    than ``max_tokens`` tokens."""
    changed = dict(memory)
    if item is None:
        changed.pop(name, None)
        return changed
    if sum(i.tokens for k, i in memory.items() if k != name) + item.tokens > max_tokens:
        return None
    changed[name] = item
    return changed


def state_with(state: Mapping[str, str], name: str, value: str | None, expected: str | None,
               check: bool) -> dict[str, str] | None:
    """The state with field ``name`` set (``None``: deleted) if its value is ``expected``
    (or ``check`` is false); ``None`` when it is not."""
    if check and state.get(name) != expected:
        return None
    changed = dict(state)
    if value is None:
        changed.pop(name, None)
    else:
        changed[name] = value
    return changed


class UserDataStore(Protocol):
    def conversation_put(self, key: SessionKey, record: ConversationRecord, *,
                         ttl: float) -> Op[ConversationRecord | None]:
        """Create the record unless one exists or the id is tombstoned (see above)."""
        ...

    def conversation_get(self, key: SessionKey) -> Op[ConversationRecord | None]:
        """The record, or ``None``."""
        ...

    def conversation_change(self, key: SessionKey, change: ConversationChange, *,
                            ttl: float) -> Op[ConversationRecord | None]:
        """Apply ``change`` atomically; the record after it (see above)."""
        ...

    def conversation_delete(self, key: SessionKey, *, ttl: float) -> Op[None]:
        """Delete the record and state; tombstone the id for ``ttl`` seconds."""
        ...

    def index_add(self, principal: SessionKey, conversation_id: str, activity: float, *,
                  ttl: float) -> Op[None]:
        """Add (or move) a conversation in the principal's index."""
        ...

    def index_remove(self, principal: SessionKey, conversation_id: str) -> Op[None]:
        """Remove a conversation from the principal's index."""
        ...

    def index_page(self, principal: SessionKey, *, offset: int,
                   limit: int) -> Op[list[str]]:
        """Up to ``limit`` conversation ids from ``offset``, newest activity first."""
        ...

    def memory_get(self, principal: SessionKey) -> Op[dict[str, MemoryItem]]:
        """Every memory item of the principal."""
        ...

    def memory_put(self, principal: SessionKey, name: str, item: MemoryItem | None, *,
                   max_tokens: int, ttl: float) -> Op[bool]:
        """Set (``None``: delete) one item; ``False`` when it would exceed ``max_tokens``."""
        ...

    def state_get(self, key: SessionKey) -> Op[dict[str, str]]:
        """A conversation's state fields."""
        ...

    def state_cas(self, key: SessionKey, name: str, value: str | None, *,
                  expected: str | None = None, check: bool = True,
                  ttl: float) -> Op[bool]:
        """Compare-and-set one state field (see above)."""
        ...

    def principal_erase(self, principal: SessionKey, *, ttl: float) -> Op[list[str]]:
        """Delete the principal's index and memory; the ids the index held."""
        ...
