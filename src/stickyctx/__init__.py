"""stickyctx: sticky, durable, token-budgeted context for multi-turn LLM chat apps.

ASGI and WSGI middleware that gives every conversation a signed session, keeps it on the node
that holds its context, stores every acknowledged turn, and keeps the context within a budget.
"""

from ._version import __version__
from .edges.asgi import StickyMiddleware
from .edges.wsgi import StickyWSGIMiddleware
from .errors import (
    ConfigError,
    ContextOverflowError,
    FencedError,
    IdempotencyKeyReusedError,
    InvalidMessageError,
    MessageTooLargeError,
    NoContextError,
    SessionBusyError,
    SessionGoneError,
    StickyctxError,
    StoreError,
    StoreUnavailableError,
    SummarizerError,
    TamperedDataError,
)
from .session.handle import Conversation, SyncConversation
from .session.lookup import get_context
from .settings import Settings
from .settings.secret import Secret

__all__ = [
    "ConfigError",
    "ContextOverflowError",
    "Conversation",
    "FencedError",
    "IdempotencyKeyReusedError",
    "InvalidMessageError",
    "MessageTooLargeError",
    "NoContextError",
    "Secret",
    "SessionBusyError",
    "SessionGoneError",
    "Settings",
    "StickyMiddleware",
    "StickyWSGIMiddleware",
    "StickyctxError",
    "StoreError",
    "StoreUnavailableError",
    "SummarizerError",
    "SyncConversation",
    "TamperedDataError",
    "__version__",
    "get_context",
]
