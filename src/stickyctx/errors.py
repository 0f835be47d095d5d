"""The typed errors of stickyctx: one rooted hierarchy, evidence carried as attributes.

Nothing here shadows a builtin name. Messages never contain a secret, a token or message content.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ContextOverflowError",
    "ConversationIdError",
    "ConversationNotFoundError",
    "FencedError",
    "IdempotencyKeyReusedError",
    "InvalidMessageError",
    "InvalidPrincipalError",
    "MemoryFullError",
    "MessageTooLargeError",
    "NoContextError",
    "NotSignedInError",
    "SessionBusyError",
    "SessionGoneError",
    "StickyctxError",
    "StoreError",
    "StoreUnavailableError",
    "SummarizerError",
    "TamperedDataError",
    "http_error",
]


class StickyctxError(Exception):
    """Root of every error raised by stickyctx."""


class ConfigError(StickyctxError, ValueError):
    """A configuration value is missing or invalid.

    ``variable`` names it; the value itself is never echoed (it may be a secret).
    """

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


class NoContextError(StickyctxError, LookupError):
    """``get_context`` was called on a request that did not pass through a stickyctx middleware."""


class SessionBusyError(StickyctxError):
    """Another request of the same session holds its turn lock. Apps usually answer 409.

    ``waited`` is how long this request waited (seconds) before giving up.
    """

    def __init__(self, waited: float) -> None:
        super().__init__(f"session is busy with another turn (waited {waited:.3f}s)")
        self.waited = waited


class SessionGoneError(StickyctxError):
    """The session was destroyed (earlier in this request, or before a background job that
    names it by id ran) or rotated away; its context can no longer be used under that id."""


class StoreError(StickyctxError):
    """Base of the errors that come from the session store."""


class StoreUnavailableError(StoreError):
    """The store could not be reached, so the operation could not be made durable.

    ``operation`` names the store primitive that failed.
    """

    def __init__(self, operation: str, reason: str = "") -> None:
        text = f"store unavailable during {operation}"
        super().__init__(f"{text}: {reason}" if reason else text)
        self.operation = operation
        self.reason = reason


class TamperedDataError(StoreError):
    """Stored data failed its integrity check (encryption at rest): an item was changed, moved
    to another position or session, or slipped in as plaintext. It is never served."""


class FencedError(StoreError):
    """A write carried a fencing token that is no longer current (a stale turn holder)."""

    def __init__(self, presented: int, current: int | None) -> None:
        super().__init__(f"stale fencing token {presented} (current: {current})")
        self.presented = presented
        self.current = current


class IdempotencyKeyReusedError(StickyctxError):
    """A retry carried an idempotency key (``Idempotency-Key`` or ``turn_id``) already used for
    a different message: nothing of it is stored (reuse a key only to retry the same turn)."""

    def __init__(self) -> None:
        super().__init__("this idempotency key was used before for a different message")


class InvalidMessageError(StickyctxError, ValueError):
    """A message has an unknown role or content that is neither a string nor a list of parts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageTooLargeError(InvalidMessageError):
    """A message exceeds the per-message size limit (``STICKYCTX_MAX_MESSAGE_BYTES``)."""

    def __init__(self, size: int, limit: int, unit: str = "bytes") -> None:
        super().__init__(f"message of {size} {unit} exceeds the limit of {limit} {unit}")
        self.size = size
        self.limit = limit
        self.unit = unit


class ContextOverflowError(StickyctxError):
    """The smallest possible window (the newest turn group, with the system prompt, the summary
    budget and the response reserve) does not fit the token budget of a window."""

    def __init__(self, needed: int, budget: int) -> None:
        super().__init__(f"the smallest window (the newest turn with the system prompt and "
                         f"reserves) needs {needed} tokens; the budget allows {budget}")
        self.needed = needed
        self.budget = budget


class SummarizerError(StickyctxError):
    """The configured summarizer raised or returned something that is not a string."""


class ConversationNotFoundError(StickyctxError, LookupError):
    """No conversation of this id is visible to this principal: it does not exist, was
    deleted, belongs to someone else, or the id is malformed. The message is the same in every
    case, so that the answer never hints that another principal's conversation exists."""

    def __init__(self) -> None:
        super().__init__("conversation not found")


class ConversationIdError(StickyctxError):
    """``rotate()`` was called on a conversation of a principal: its id is the app's (or was
    minted for the app to keep) and never changes. Rotate the request's own session instead."""


class InvalidPrincipalError(StickyctxError, ValueError):
    """The principal (or tenant) the app named is empty, too long or not printable."""


class NotSignedInError(StickyctxError, LookupError):
    """``get_users(request)`` found no signed-in principal on the request (no authenticated
    ``scope["user"]``, no ``REMOTE_USER``): the app's own authentication did not run or let
    nobody in."""

    def __init__(self) -> None:
        super().__init__("nobody is signed in on this request")


class MemoryFullError(StickyctxError):
    """Writing this memory item would take the principal's memory over its token ceiling
    (``STICKYCTX_MEMORY_TOKENS``); nothing was written."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"the memory item of {tokens} tokens does not fit the memory's "
                         f"ceiling of {limit} tokens")
        self.tokens = tokens
        self.limit = limit


# How an error that reaches the middleware unhandled is answered (before the response started).
# Apps may handle these themselves; the middleware and the framework helpers use this table.
_HTTP: tuple[tuple[type[StickyctxError], int, str], ...] = (
    (SessionBusyError, 409, "session_busy"),
    (FencedError, 409, "stale_turn"),
    (StoreUnavailableError, 503, "store_unavailable"),
    (MessageTooLargeError, 413, "message_too_large"),
    (ContextOverflowError, 413, "context_overflow"),
    (InvalidMessageError, 422, "invalid_message"),
    (IdempotencyKeyReusedError, 422, "idempotency_key_reused"),
    (SessionGoneError, 410, "session_gone"),
    (TamperedDataError, 500, "stored_data_rejected"),
    (ConversationNotFoundError, 404, "not_found"),
    (InvalidPrincipalError, 400, "invalid_principal"),
    (NotSignedInError, 401, "not_signed_in"),
    (MemoryFullError, 413, "memory_full"),
)


def http_error(exc: BaseException) -> tuple[int, bytes] | None:
    """``(status, JSON body)`` for an error that has a natural HTTP answer, else ``None``."""
    import json

    for kind, status, code in _HTTP:
        if isinstance(exc, kind):
            return status, json.dumps({"error": code, "detail": str(exc)}).encode()
    return None
