"""Principals and their conversations: ids, store names and records (pure).

A *principal* is whoever the app's own authentication says is signed in (stickyctx does no
authentication). A *conversation* belongs to one principal (its owner) and to the members the owner
adds. Both are named in the store only by keyed hashes, like sessions (``storekeys``):

* a principal's keys (its conversation index, its memory, its tombstone) share the hash tag
  ``HMAC(hash key, "principal" | tenant | principal id)``;
* a conversation's history is an ordinary session whose id is derived from the tenant and the
  conversation id (``conversation_session_id``), so the turn lock, idempotency, windows, failover
  and durability of sessions hold unchanged; its record and state live beside that session, under
  the session's own hash tag.

Ids are validated before anything is derived from them; a principal of one tenant never names the
same keys as the same principal id of another tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .storekeys import SessionKey

__all__ = [
    "ConversationRecord",
    "MemoryItem",
    "PrincipalRef",
    "UserKeys",
    "is_valid_conversation_id",
    "is_valid_principal",
    "pinned_facts",
]

_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # ours (24 chars) and UUIDs, ULIDs, ints
_MEMORY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_PRINCIPAL = 256
_MAX_TENANT = 128
_MAX_LABELS = 32
_MAX_LABEL = 64
_MAX_TITLE = 200


def is_valid_conversation_id(value: object) -> bool:
    return isinstance(value, str) and _CONVERSATION_ID.fullmatch(value) is not None


def is_valid_memory_key(value: object) -> bool:
    return isinstance(value, str) and _MEMORY_KEY.fullmatch(value) is not None


def is_valid_principal(value: object) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= _MAX_PRINCIPAL
            and value.isprintable())


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    """A principal as the store knows it: the tag of its keys, and its name in records."""

    key: SessionKey  # index, memory and tombstone of the principal share this hash tag

    @property
    def tag(self) -> str:
        return self.key.tag


class UserKeys:
    """Derives the store names of principals and conversations (one keyed hash each)."""

    def __init__(self, digest: Callable[[str], str], namespace: str) -> None:
        # ``digest``: the keyed hash that names sessions (``KeyDeriver.digest``: 22 URL-safe
        # characters). Its inputs here contain NUL characters, which session ids never do, so
        # no principal or conversation is ever named like a session.
        self._digest = digest
        self.namespace = namespace

    def _mac(self, *parts: str) -> str:
        return self._digest("\x00".join(parts))

    def principal(self, principal: str, tenant: str = "") -> PrincipalRef:
        """``ValueError`` for an empty, oversized or unprintable principal or tenant."""
        if not is_valid_principal(principal):
            raise ValueError("not a usable principal id")
        if len(tenant) > _MAX_TENANT or not tenant.isprintable():
            raise ValueError("not a usable tenant")
        tag = "u" + self._mac("stickyctx.principal.v1", tenant, principal)
        return PrincipalRef(SessionKey(self.namespace, tag))

    def conversation_session_id(self, conversation_id: str, tenant: str = "") -> str:
        """The session id that holds a conversation's history: 24 URL-safe characters (the
        shape of session ids: a 128-bit keyed hash and ``cv``), so it cannot be guessed from
        the conversation id."""
        if not is_valid_conversation_id(conversation_id):
            raise ValueError("not a usable conversation id")
        return self._mac("stickyctx.conversation.v1", tenant, conversation_id) + "cv"


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One item of a principal's memory: a text value, its size in tokens, and whether it is
    pinned (enters every window of the principal's conversations)."""

    value: str
    tokens: int
    pinned: bool = True
    updated: float = 0.0

    def encode(self) -> str:
        return json.dumps({"v": self.value, "t": self.tokens, "p": self.pinned,
                           "u": self.updated}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, raw: str | bytes) -> MemoryItem:
        data = json.loads(raw)
        return cls(str(data["v"]), int(data["t"]), bool(data.get("p", True)),
                   float(data.get("u", 0.0)))


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """What the store keeps about a conversation besides its history."""

    id: str
    owner: str  # the owner principal's tag
    created: float
    last_activity: float
    node: str = ""  # the node pinned to hold it (its owner node)
    title: str = ""
    labels: tuple[str, ...] = ()
    members: tuple[str, ...] = ()  # tags of the principals the owner added
    turns: int = 0
    tokens: int = 0

    def allows(self, principal: PrincipalRef) -> bool:
        return principal.tag == self.owner or principal.tag in self.members

    def public(self) -> dict[str, Any]:
        """The record as an app shows it (no principal tags: they name nobody to the app)."""
        return {"id": self.id, "title": self.title, "created": self.created,
                "last_activity": self.last_activity, "turns": self.turns,
                "tokens": self.tokens, "labels": list(self.labels)}

    def touched(self, now: float, turns: int, tokens: int) -> ConversationRecord:
        return replace(self, last_activity=max(self.last_activity, now),
                       turns=self.turns + turns, tokens=self.tokens + tokens)


def clean_title(title: str) -> str:
    """A title as stored: one line, at most 200 characters."""
    text = " ".join(str(title).split())
    return text if len(text) <= _MAX_TITLE else text[: _MAX_TITLE - 1].rstrip() + "…"


def derived_title(first_message: str) -> str:
    """The title of a conversation the app did not name: its first message, shortened."""
    return clean_title(first_message[:80] if len(first_message) > 80 else first_message)


def clean_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """``ValueError`` for too many or oversized labels; duplicates dropped, order kept."""
    out: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not 0 < len(label) <= _MAX_LABEL:
            raise ValueError("a label is a string of 1 to 64 characters")
        if label not in out:
            out.append(label)
    if len(out) > _MAX_LABELS:
        raise ValueError("at most 32 labels")
    return tuple(out)


def pinned_facts(memory: Mapping[str, MemoryItem]) -> str | None:
    """The pinned memory items as the text of one system message (sorted by key, so the
    window's prefix is stable and model-side prompt caches hit), or ``None``."""
    lines = [f"- {key}: {item.value}" for key, item in sorted(memory.items()) if item.pinned]
    if not lines:
        return None
    return "What you know about the user (keep using it):\n" + "\n".join(lines)
