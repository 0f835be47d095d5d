"""The PostgreSQL store's primitives for principals and conversations (see ``stores.userdata``).

Mixed into ``PostgresStore``. Everything lives in one table, ``stickyctx_userdata``: a row per
(key, kind) holding one whole value as JSON with its deadline. Under a conversation's key: its
``record``, its ``state`` and its tombstone (``buried``); under a principal's key: its ``index``
(conversation id -> last activity), its ``memory`` and its tombstone. A write is one
transaction under the key's advisory lock (the session's: the same tag) that reads the key's
rows, applies the shared pure functions of ``stores.userdata`` (so this store means exactly
what the embedded store means) and writes the row back; a read needs no lock. Deadlines
compare with the server's clock; ``stickyctx db sweep`` deletes rows past them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from ...core.principals import ConversationRecord, MemoryItem
from ...core.storekeys import SessionKey
from ...sansio import Op
from ..userdata import (
    ConversationChange,
    changed_record,
    index_slice,
    indexed,
    memory_with,
    state_with,
)
from .io import Decision, Rows, Statement, Transaction
from .rows import NOW, lock_reads
from .steps import run, transact

__all__ = ["PostgresUserData"]

T = TypeVar("T")
RECORD, STATE, INDEX, MEMORY, BURIED = "record", "state", "index", "memory", "buried"


def _select(key: SessionKey) -> Statement:
    return Statement("SELECT kind, value, expires FROM stickyctx_userdata "
                     "WHERE ns = %s AND tag = %s", (key.namespace, key.tag))


class _Found:
    """A key's live rows (kind -> JSON value) and the server's clock."""

    def __init__(self, now: float, rows: Sequence[tuple[Any, ...]]) -> None:
        self.now = now
        self.values = {kind: value for kind, value, expires in rows if float(expires) > now}

    def get(self, kind: str) -> Any:
        value = self.values.get(kind)
        return None if value is None else json.loads(value)


def _put(key: SessionKey, kind: str, value: Any, expires: float) -> Statement:
    return Statement(
        "INSERT INTO stickyctx_userdata (ns, tag, kind, value, expires) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ns, tag, kind) DO UPDATE SET "
        "value = excluded.value, expires = excluded.expires",
        (key.namespace, key.tag, kind, json.dumps(value, separators=(",", ":")), expires))


def _drop(key: SessionKey, *kinds: str) -> Statement:
    return Statement("DELETE FROM stickyctx_userdata WHERE ns = %s AND tag = %s "
                     "AND kind = ANY(%s)", (key.namespace, key.tag, list(kinds)))


def _record(data: Any) -> ConversationRecord | None:
    if data is None:
        return None
    return ConversationRecord(**{**data, "labels": tuple(data["labels"]),
                                 "members": tuple(data["members"])})


def _memory(data: Any) -> dict[str, MemoryItem]:
    return {name: MemoryItem.decode(raw) for name, raw in (data or {}).items()}


def _write(name: str, key: SessionKey,
           decide: Callable[[_Found], tuple[list[Statement], T]]) -> Op[T]:
    """One locked read-decide-write step on ``key``'s rows."""
    def step(rows: Rows) -> Decision[T]:
        writes, value = decide(_Found(float(rows[1][0][0]), rows[2]))
        return Decision(writes, value)

    return run(name, [*lock_reads(key), _select(key)], step)


def _read(name: str, key: SessionKey, decide: Callable[[_Found], T]) -> Op[T]:
    """A read without the lock: one statement reads every row of the key, at once."""
    step = Transaction([NOW, _select(key)],
                       lambda rows: Decision((), decide(_Found(float(rows[0][0][0]), rows[1]))),
                       atomic=False)
    value: T = yield from transact(name, step)
    return value


class PostgresUserData:
    def conversation_put(self, key: SessionKey, record: ConversationRecord, *,
                         ttl: float) -> Op[ConversationRecord | None]:
        def decide(found: _Found) -> tuple[list[Statement], ConversationRecord | None]:
            if BURIED in found.values:
                return [], None
            existing = _record(found.get(RECORD))
            if existing is not None:
                return [], existing
            return [_put(key, RECORD, asdict(record), found.now + ttl)], record

        return (yield from _write("conversation_put", key, decide))

    def conversation_get(self, key: SessionKey) -> Op[ConversationRecord | None]:
        return (yield from _read("conversation_get", key, lambda f: _record(f.get(RECORD))))

    def conversation_change(self, key: SessionKey, change: ConversationChange, *,
                            ttl: float) -> Op[ConversationRecord | None]:
        def decide(found: _Found) -> tuple[list[Statement], ConversationRecord | None]:
            record = _record(found.get(RECORD))
            if record is None:
                return [], None
            changed = changed_record(record, change)
            if changed is None:
                return [], record
            return [_put(key, RECORD, asdict(changed), found.now + ttl)], changed

        return (yield from _write("conversation_change", key, decide))

    def conversation_delete(self, key: SessionKey, *, ttl: float) -> Op[None]:
        def decide(found: _Found) -> tuple[list[Statement], None]:
            return [_drop(key, RECORD, STATE), _put(key, BURIED, 1, found.now + ttl)], None

        yield from _write("conversation_delete", key, decide)

    def index_add(self, principal: SessionKey, conversation_id: str, activity: float, *,
                  ttl: float) -> Op[None]:
        def decide(found: _Found) -> tuple[list[Statement], None]:
            index = indexed(found.get(INDEX) or {}, conversation_id, activity)
            return [_put(principal, INDEX, index, found.now + ttl)], None

        yield from _write("index_add", principal, decide)

    def index_remove(self, principal: SessionKey, conversation_id: str) -> Op[None]:
        def decide(found: _Found) -> tuple[list[Statement], None]:
            index: dict[str, float] | None = found.get(INDEX)
            if index is None or conversation_id not in index:
                return [], None
            del index[conversation_id]
            return [Statement(  # its deadline stays as it is
                "UPDATE stickyctx_userdata SET value = %s WHERE ns = %s AND tag = %s "
                "AND kind = %s", (json.dumps(index, separators=(",", ":")),
                                  principal.namespace, principal.tag, INDEX))], None

        yield from _write("index_remove", principal, decide)

    def index_page(self, principal: SessionKey, *, offset: int,
                   limit: int) -> Op[list[str]]:
        return (yield from _read("index_page", principal,
                                 lambda f: index_slice(f.get(INDEX) or {}, offset, limit)))

    def memory_get(self, principal: SessionKey) -> Op[dict[str, MemoryItem]]:
        return (yield from _read("memory_get", principal, lambda f: _memory(f.get(MEMORY))))

    def memory_put(self, principal: SessionKey, name: str, item: MemoryItem | None, *,
                   max_tokens: int, ttl: float) -> Op[bool]:
        def decide(found: _Found) -> tuple[list[Statement], bool]:
            memory = memory_with(_memory(found.get(MEMORY)), name, item, max_tokens)
            if memory is None:
                return [], False
            stored = {k: v.encode() for k, v in memory.items()}
            return [_put(principal, MEMORY, stored, found.now + ttl)], True

        return (yield from _write("memory_put", principal, decide))

    def state_get(self, key: SessionKey) -> Op[dict[str, str]]:
        return (yield from _read("state_get", key, lambda f: dict(f.get(STATE) or {})))

    def state_cas(self, key: SessionKey, name: str, value: str | None, *,
                  expected: str | None = None, check: bool = True,
                  ttl: float) -> Op[bool]:
        def decide(found: _Found) -> tuple[list[Statement], bool]:
            state = state_with(found.get(STATE) or {}, name, value, expected, check)
            if state is None:
                return [], False
            return [_put(key, STATE, state, found.now + ttl)], True

        return (yield from _write("state_cas", key, decide))

    def principal_erase(self, principal: SessionKey, *, ttl: float) -> Op[list[str]]:
        def decide(found: _Found) -> tuple[list[Statement], list[str]]:
            ids = sorted(found.get(INDEX) or {})
            return [_drop(principal, INDEX, MEMORY),
                    _put(principal, BURIED, 1, found.now + ttl)], ids

        return (yield from _write("principal_erase", principal, decide))
