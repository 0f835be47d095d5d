"""Messages as stored: validation of what the app appends, and the records the stores return."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import InvalidMessageError, MessageTooLargeError
from .tokenizer import Tokenizer

__all__ = [
    "ROLES",
    "AppendResult",
    "Begun",
    "NewMessage",
    "Snapshot",
    "StoredMessage",
    "Summary",
    "as_dicts",
    "build_message",
    "dedupe_key",
    "fingerprint",
]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Roles that open a new turn group (the pruning unit); the others join the current group.
GROUP_OPENERS = frozenset({"user", "system", "developer"})
_RESERVED = frozenset({"role", "content"})
# What an assistant message may carry in place of content (as the chat API's types allow).
_CONTENT_STANDINS = ("tool_calls", "function_call", "refusal", "audio")

SessionStatus = Literal["live", "missing", "revoked"]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message about to be appended, with its token count computed once."""

    role: str
    content: Any
    fields: Mapping[str, Any]
    tokens: int
    encoding: str
    size: int  # bytes of its JSON form
    dedupe: str | None = None  # idempotency key of this append, if any
    json: str = ""  # its compact JSON form, computed once by build_message
    fingerprint: str = ""  # with a dedupe key: a digest of ``json``, so that a reused key with
    #                        another message is told from a retry (see ``fingerprint``)

    def payload(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, **self.fields}

    def with_tokens(self, tokens: int) -> NewMessage:
        return replace(self, tokens=tokens)


# Roles whose messages are plain chat messages when they hold text and nothing else.
PLAIN_ROLES = frozenset({"user", "assistant", "system", "developer"})


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message in a session's history. ``seq`` grows by one per message, from 1."""

    seq: int
    group: int
    role: str
    content: Any
    tokens: int
    encoding: str
    cum: int  # cumulative tokens of the session through this message (never decreases)
    size: int  # bytes of the message's JSON form
    fields: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The OpenAI-style message dict: a fresh copy, so changing it never changes the store.
        (``as_dicts`` builds the same for a whole history.)"""
        content = self.content
        if not self.fields and type(content) is str:
            return {"role": self.role, "content": content}  # the common case: nothing to copy
        if not (content is None or isinstance(content, str)):
            content = copy.deepcopy(content)
        fields = self.fields
        if fields and not all(isinstance(v, (str, int, float, bool)) for v in fields.values()):
            fields = copy.deepcopy(fields)
        return {"role": self.role, "content": content, **fields}


def as_dicts(messages: Sequence[StoredMessage]) -> list[dict[str, Any]]:
    """``[m.as_dict() for m in messages]``, with the common case (text content, no other
    fields) built in place rather than through a method call per message: a 1,000-message
    history is handed out in about 0.8 of the time."""
    return [{"role": m.role, "content": m.content}
            if not m.fields and type(m.content) is str else m.as_dict()
            for m in messages]


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    watermark: int  # the last message seq the summary covers
    version: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's stored context at one version."""

    status: SessionStatus
    version: int = 0
    messages: Sequence[StoredMessage] = ()
    total_tokens: int = 0  # the sum of the messages' counts
    summary: Summary | None = None
    encodings: tuple[str, ...] = ()  # the encodings the stored messages were counted with
    stale: bool = False  # served from a node's hot tier while the store was unreachable
    tier: str = "store"  # "local": served from this process's memory; "store": over the network
    # Where the next append continues (to stage a turn's appends before they are written):
    next_seq: int = 1  # the seq the store gives the next message (seqs are never reused)
    group: int = 0  # the group of the newest message (0: none yet)
    cum: int = 0  # cumulative tokens ever appended
    size: int = 0  # bytes of the stored messages (the byte ceiling's measure)
    follow: str = ""  # "revoked" by a rotation within its grace: the pointer to the new id

    @property
    def exists(self) -> bool:
        return self.status == "live"


@dataclass(frozen=True, slots=True)
class Begun:
    """A turn's beginning (``Store.begin``): the turn lease and the session's context.

    ``status`` ``live`` with a ``token``: the lease is taken and ``snapshot`` is current under
    it. ``live`` without a token: another request holds the lease (nothing was loaded).
    ``missing`` / ``revoked``: no session to take a turn on; nothing was written.
    ``seen``: which of the probed idempotency keys are stored already (a retried turn).
    """

    status: SessionStatus
    token: int | None = None
    snapshot: Snapshot | None = None
    seen: frozenset[str] = frozenset()
    follow: str = ""  # "revoked" by a rotation within its grace: the pointer to the new id


@dataclass(frozen=True, slots=True)
class AppendResult:
    status: SessionStatus  # "missing" when create=False found no session: nothing was written
    version: int = 0
    seqs: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    total_tokens: int = 0
    duplicates: int = 0  # messages dropped because their dedupe key was seen before
    written: tuple[bool, ...] = ()  # per message: stored now (False: a duplicate)
    cums: tuple[int, ...] = ()  # cumulative token positions of the stored messages
    dropped: int = 0  # oldest messages dropped to keep the session under its ceiling
    write_id: str = ""  # the store's id of this write (Redis), for caches to validate against
    previous_write_id: str = ""  # the id of the write this one followed
    total_bytes: int = 0  # bytes of the session's stored messages after the write
    follow: str = ""  # "revoked" by a rotation within its grace: the pointer to the new id


def dedupe_key(turn: str, n: int) -> str:
    """The store's idempotency key of the ``n``-th message (from 0) of turn ``turn``."""
    digest = hashlib.sha256(f"{n}\x00{turn}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def fingerprint(encoded: str) -> str:
    """A short digest of a message's JSON: what a retry under the same key must match."""
    digest = hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode()


# One encoder for every message: ``json.dumps`` with options builds a new one per call (a third
# of the cost of encoding a short message).
_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def build_message(
    role: str,
    content: Any,
    fields: Mapping[str, Any],
    tokenizer: Tokenizer,
    max_bytes: int,
    dedupe: str | None = None,
    *,
    count_up_to: int | None = None,
) -> NewMessage:
    """Validate a message and count its tokens; raise a typed error on bad input.

    With ``count_up_to``, a message whose JSON is larger is left with ``tokens`` 0 for the
    caller to fill in (``with_tokens``): it is counted elsewhere, off the event loop."""
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidMessageError(f"unknown role {str(role)[:40]!r}; expected one of "
                                  + ", ".join(sorted(ROLES)))
    if content is None:
        if role != "assistant" or not any(fields.get(name) for name in _CONTENT_STANDINS):
            raise InvalidMessageError("content may be None only for an assistant message with "
                                      + ", ".join(_CONTENT_STANDINS))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidMessageError("each content part must be a dict with a 'type'")
    elif not isinstance(content, str):
        raise InvalidMessageError(
            f"content must be a string or a list of parts, not {type(content).__name__}"
        )
    for name in fields:
        if name in _RESERVED or not isinstance(name, str):
            raise InvalidMessageError(f"field {name!r} is reserved")
    try:
        encoded = _to_json({"role": role, "content": content, **fields})
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(f"message is not JSON-serializable: {exc}") from None
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidMessageError("message contains text that is not valid Unicode") from None
    if size > max_bytes:
        raise MessageTooLargeError(size, max_bytes)
    tokens = (tokenizer.count_message({"role": role, "content": content, **fields})
              if count_up_to is None or size <= count_up_to else 0)
    if not isinstance(content, (str, type(None))) or any(
        not isinstance(v, (str, int, float, bool)) for v in fields.values()
    ):
        # The store keeps its own copy: the caller may change its objects afterwards.
        private = json.loads(encoded)
        content = private["content"]
        fields = {k: v for k, v in private.items() if k not in _RESERVED}
    return NewMessage(role, content, dict(fields), tokens, tokenizer.name, size, dedupe, encoded,
                      fingerprint(encoded) if dedupe is not None else "")
