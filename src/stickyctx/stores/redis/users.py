"""The Redis store's primitives for principals and conversations (see ``stores.userdata``).

Mixed into ``RedisStore``. Each primitive is one script over keys of one hash tag: a
conversation's record (``cr``), state (``cs``) and tombstone (``cx``) beside its session's keys;
a principal's index (``ci``, a sorted set by last activity), memory (``cv``) and tombstone
(``cp``) under the principal's tag. Scripts are data (``lua/u_*.lua``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...core.principals import ConversationRecord, MemoryItem
from ...core.storekeys import SessionKey
from ...sansio import Op
from ..userdata import ConversationChange
from .failures import translate
from .io import Script

__all__ = ["RedisUserData"]

RECORD, STATE, CONV_TOMBSTONE = "cr", "cs", "cx"
INDEX, MEMORY, PRINCIPAL_TOMBSTONE = "ci", "cv", "cp"
USER_KEYS = (RECORD, STATE, CONV_TOMBSTONE, INDEX, MEMORY, PRINCIPAL_TOMBSTONE)


def _call(name: str, keys: list[str], args: Sequence[Any]) -> Op[Any]:
    try:
        return (yield Script(name, keys, list(args)))
    except Exception as exc:  # translated into the store's errors
        raise translate(name, exc) from exc


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: Any) -> dict[str, str]:
    items = [_text(v) for v in (reply or ())]
    return dict(zip(items[::2], items[1::2], strict=True))


def _record(reply: Any) -> ConversationRecord | None:
    f = _pairs(reply)
    if not f:
        return None
    return ConversationRecord(
        id=f["id"], owner=f["o"], created=float(f["c"]), last_activity=float(f["a"]),
        node=f.get("n", ""), title=f.get("t", ""), labels=tuple(json.loads(f.get("l", "[]"))),
        members=tuple(json.loads(f.get("m", "[]"))), turns=int(f.get("tu", "0")),
        tokens=int(f.get("tk", "0")))


def _fields(record: ConversationRecord) -> list[str]:
    return ["id", record.id, "o", record.owner, "c", repr(record.created),
            "a", repr(record.last_activity), "n", record.node, "t", record.title,
            "l", json.dumps(list(record.labels)), "m", json.dumps(list(record.members)),
            "tu", str(record.turns), "tk", str(record.tokens)]


def _opt(value: str | None) -> str:
    return "" if value is None else "=" + value


class RedisUserData:
    def conversation_put(self, key: SessionKey, record: ConversationRecord, *,
                         ttl: float) -> Op[ConversationRecord | None]:
        reply = yield from _call("u_conv_put", [key.key(RECORD), key.key(CONV_TOMBSTONE)],
                                 [_ms(ttl), *_fields(record)])
        return _record(reply) if reply else None

    def conversation_get(self, key: SessionKey) -> Op[ConversationRecord | None]:
        reply = yield from _call("u_conv_get", [key.key(RECORD)], [])
        return _record(reply)

    def conversation_change(self, key: SessionKey, change: ConversationChange, *,
                            ttl: float) -> Op[ConversationRecord | None]:
        labels = None if change.labels is None else json.dumps(list(change.labels))
        activity = None if change.activity is None else repr(change.activity)
        reply = yield from _call("u_conv_change", [key.key(RECORD)], [
            _ms(ttl), _opt(change.title), _opt(change.title_if_empty), _opt(labels),
            _opt(change.add_member), _opt(change.remove_member), _opt(change.node),
            _opt(change.expected_node), _opt(activity), change.turns, change.tokens])
        return _record(reply) if reply else None

    def conversation_delete(self, key: SessionKey, *, ttl: float) -> Op[None]:
        yield from _call("u_conv_delete", [key.key(RECORD), key.key(STATE),
                                           key.key(CONV_TOMBSTONE)], [_ms(ttl)])

    def index_add(self, principal: SessionKey, conversation_id: str, activity: float, *,
                  ttl: float) -> Op[None]:
        yield from _call("u_index_add", [principal.key(INDEX)],
                         [conversation_id, repr(activity), _ms(ttl)])

    def index_remove(self, principal: SessionKey, conversation_id: str) -> Op[None]:
        yield from _call("u_index_remove", [principal.key(INDEX)], [conversation_id])

    def index_page(self, principal: SessionKey, *, offset: int,
                   limit: int) -> Op[list[str]]:
        reply = yield from _call("u_index_page", [principal.key(INDEX)],
                                 [max(0, offset), max(0, limit)])
        return [_text(v) for v in reply or ()]

    def memory_get(self, principal: SessionKey) -> Op[dict[str, MemoryItem]]:
        reply = yield from _call("u_hash_get", [principal.key(MEMORY)], [])
        return {k: MemoryItem.decode(v) for k, v in _pairs(reply).items()}

    def memory_put(self, principal: SessionKey, name: str, item: MemoryItem | None, *,
                   max_tokens: int, ttl: float) -> Op[bool]:
        reply = yield from _call("u_memory_put", [principal.key(MEMORY)], [
            name, "" if item is None else item.encode(), 0 if item is None else item.tokens,
            max_tokens, _ms(ttl)])
        return int(reply) == 1

    def state_get(self, key: SessionKey) -> Op[dict[str, str]]:
        reply = yield from _call("u_hash_get", [key.key(STATE)], [])
        return _pairs(reply)

    def state_cas(self, key: SessionKey, name: str, value: str | None, *,
                  expected: str | None = None, check: bool = True,
                  ttl: float) -> Op[bool]:
        reply = yield from _call("u_state_cas", [key.key(STATE)], [
            name, value or "", "0" if value is None else "1", "1" if check else "0",
            "0" if expected is None else "1", expected or "", _ms(ttl)])
        return int(reply) == 1

    def principal_erase(self, principal: SessionKey, *, ttl: float) -> Op[list[str]]:
        reply = yield from _call("u_erase", [principal.key(INDEX), principal.key(MEMORY),
                                             principal.key(PRINCIPAL_TOMBSTONE)], [_ms(ttl)])
        return sorted(_text(v) for v in reply or ())
