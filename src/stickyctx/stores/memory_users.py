"""The embedded store's primitives for principals and conversations (see ``userdata``).

Mixed into ``MemoryStore``: the same lock, the same clock, no I/O. Entries expire ``ttl``
seconds after their last write, checked when read; every 1024 writes a sweep drops the expired
ones (and tombstones), so that data nobody reads again does not stay in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..core.principals import ConversationRecord, MemoryItem
from ..core.storekeys import SessionKey
from ..sansio import immediate
from .userdata import (
    ConversationChange,
    changed_record,
    index_slice,
    indexed,
    memory_with,
    state_with,
)

__all__ = ["MemoryUserData"]


class _Expiring:
    """A value with a deadline."""

    __slots__ = ("until", "value")

    def __init__(self, value: Any, until: float) -> None:
        self.value = value
        self.until = until


class MemoryUserData:
    _lock: threading.Lock
    _clock: Callable[[], float]

    def _init_userdata(self) -> None:
        self._records: dict[str, _Expiring] = {}  # conversation tag -> ConversationRecord
        self._states: dict[str, _Expiring] = {}  # conversation tag -> dict[str, str]
        self._indexes: dict[str, _Expiring] = {}  # principal tag -> dict[id, activity]
        self._memories: dict[str, _Expiring] = {}  # principal tag -> dict[str, MemoryItem]
        self._buried: dict[str, float] = {}  # tombstones of conversations and principals
        self._writes = 0

    def _clear_userdata(self) -> None:
        for table in (self._records, self._states, self._indexes, self._memories, self._buried):
            table.clear()

    def _get(self, table: dict[str, _Expiring], tag: str) -> Any:
        entry = table.get(tag)
        if entry is None:
            return None
        if self._clock() >= entry.until:
            del table[tag]
            return None
        return entry.value

    def _set(self, table: dict[str, _Expiring], tag: str, value: Any, ttl: float) -> None:
        table[tag] = _Expiring(value, self._clock() + ttl)
        self._writes += 1
        if self._writes % 1024 == 0:
            self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        for data in (self._records, self._states, self._indexes, self._memories):
            for tag in [t for t, e in data.items() if now >= e.until]:
                del data[tag]
        for tag in [t for t, until in self._buried.items() if now >= until]:
            del self._buried[tag]

    def _is_buried(self, tag: str) -> bool:
        until = self._buried.get(tag)
        if until is not None and self._clock() >= until:
            del self._buried[tag]
            return False
        return until is not None

    @immediate
    def conversation_put(self, key: SessionKey, record: ConversationRecord, *,
                         ttl: float) -> ConversationRecord | None:
        with self._lock:
            if self._is_buried(key.tag):
                return None
            existing: ConversationRecord | None = self._get(self._records, key.tag)
            if existing is not None:
                return existing
            self._set(self._records, key.tag, record, ttl)
            return record

    @immediate
    def conversation_get(self, key: SessionKey) -> ConversationRecord | None:
        with self._lock:
            found: ConversationRecord | None = self._get(self._records, key.tag)
            return found

    @immediate
    def conversation_change(self, key: SessionKey, change: ConversationChange, *,
                            ttl: float) -> ConversationRecord | None:
        with self._lock:
            record: ConversationRecord | None = self._get(self._records, key.tag)
            if record is None:
                return None
            changed = changed_record(record, change)
            if changed is None:
                return record
            self._set(self._records, key.tag, changed, ttl)
            return changed

    @immediate
    def conversation_delete(self, key: SessionKey, *, ttl: float) -> None:
        with self._lock:
            self._records.pop(key.tag, None)
            self._states.pop(key.tag, None)
            self._buried[key.tag] = self._clock() + ttl

    @immediate
    def index_add(self, principal: SessionKey, conversation_id: str, activity: float, *,
                  ttl: float) -> None:
        with self._lock:
            index = self._get(self._indexes, principal.tag) or {}
            self._set(self._indexes, principal.tag, indexed(index, conversation_id, activity),
                      ttl)

    @immediate
    def index_remove(self, principal: SessionKey, conversation_id: str) -> None:
        with self._lock:
            index = self._get(self._indexes, principal.tag)
            if index is not None:
                index.pop(conversation_id, None)

    @immediate
    def index_page(self, principal: SessionKey, *, offset: int, limit: int) -> list[str]:
        with self._lock:
            index: dict[str, float] = self._get(self._indexes, principal.tag) or {}
            return index_slice(index, offset, limit)

    @immediate
    def memory_get(self, principal: SessionKey) -> dict[str, MemoryItem]:
        with self._lock:
            return dict(self._get(self._memories, principal.tag) or {})

    @immediate
    def memory_put(self, principal: SessionKey, name: str, item: MemoryItem | None, *,
                   max_tokens: int, ttl: float) -> bool:
        with self._lock:
            memory = memory_with(self._get(self._memories, principal.tag) or {}, name, item,
                                 max_tokens)
            if memory is None:
                return False
            self._set(self._memories, principal.tag, memory, ttl)
            return True

    @immediate
    def state_get(self, key: SessionKey) -> dict[str, str]:
        with self._lock:
            return dict(self._get(self._states, key.tag) or {})

    @immediate
    def state_cas(self, key: SessionKey, name: str, value: str | None, *,
                  expected: str | None = None, check: bool = True, ttl: float) -> bool:
        with self._lock:
            state = state_with(self._get(self._states, key.tag) or {}, name, value, expected,
                               check)
            if state is None:
                return False
            self._set(self._states, key.tag, state, ttl)
            return True

    @immediate
    def principal_erase(self, principal: SessionKey, *, ttl: float) -> list[str]:
        with self._lock:
            index: dict[str, float] = self._get(self._indexes, principal.tag) or {}
            self._indexes.pop(principal.tag, None)
            self._memories.pop(principal.tag, None)
            self._buried[principal.tag] = self._clock() + ttl
            return sorted(index)
