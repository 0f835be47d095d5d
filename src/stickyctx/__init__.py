"""stickyctx: sticky, durable, token-budgeted context for multi-turn LLM chat apps.

ASGI and WSGI middleware that gives every conversation a signed session, keeps it on the node
that holds its context, stores every acknowledged turn, and keeps the context within a budget.
"""

from ._secret import Secret
from ._version import __version__
from .asgi import StickyMiddleware
from .context import get_context
from .conversation import Conversation, SyncConversation
from .errors import (
    ConfigError,
    ContextOverflowError,
    FencedError,
    InvalidMessageError,
    MessageTooLargeError,
    NoContextError,
    SessionBusyError,
    SessionGoneError,
    StickyctxError,
    StoreError,
    StoreUnavailableError,
    SummarizerError,
)
from .settings import Settings
from .wsgi import StickyWSGIMiddleware

__all__ = [
    "ConfigError",
    "ContextOverflowError",
    "Conversation",
    "FencedError",
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
    "__version__",
    "get_context",
]
