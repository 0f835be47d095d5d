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
    ConversationIdError,
    ConversationNotFoundError,
    FencedError,
    IdempotencyKeyReusedError,
    InvalidMessageError,
    InvalidPrincipalError,
    MemoryFullError,
    MessageTooLargeError,
    NoContextError,
    NotSignedInError,
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
from .session.user_memory import ANY
from .session.users_handle import SyncUsers, Users, get_users
from .settings import Settings
from .settings.secret import Secret

__all__ = [
    "ANY",
    "ConfigError",
    "ContextOverflowError",
    "Conversation",
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
    "SyncUsers",
    "TamperedDataError",
    "Users",
    "__version__",
    "get_context",
    "get_users",
]
