"""``Settings``: one frozen configuration object, built in code or from ``STICKYCTX_*`` variables.

``Settings.from_env`` is a table from variable name to field and parser; a bad value raises
``ConfigError`` naming the variable, never echoing it (it may be a secret).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..core.inference import RouterKind
from ..core.nodes import NodeSpec, is_valid_node_id
from ..errors import ConfigError
from .checks import MIN_KEY_BYTES, validate
from .env import EMPTY_OK, ENV, ENV_VARIABLES, PREFIX
from .secret import Secret
from .tiers import is_postgres_url

__all__ = ["ENV_VARIABLES", "MIN_KEY_BYTES", "Secret", "Settings"]

_PREFIX = PREFIX

Pruning = Literal["sliding", "summarize"]
Eviction = Literal["block", "turn"]
SummaryStorage = Literal["archive", "delete"]
SameSite = Literal["lax", "strict", "none"]
TurnLock = Literal["auto", "manual"]
CookieIssue = Literal["lazy", "eager"]
StreamOnDisconnect = Literal["continue", "cancel"]


def _outside_package() -> int:
    """The ``stacklevel`` of the first caller outside stickyctx (so a warning names user code)."""
    frame = sys._getframe(1)
    level = 1
    package = os.path.dirname(os.path.dirname(__file__))  # the whole stickyctx package
    # dataclasses' generated __init__ has no file of its own: it counts as ours.
    while frame is not None and (frame.f_code.co_filename.startswith(package)
                                 or frame.f_code.co_filename == "<string>"):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _default_node_id() -> str:
    host = socket.gethostname().split(".")[0] or "node"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in host)[:63]
    return cleaned if is_valid_node_id(cleaned) else "node"


@dataclass(frozen=True)
class Settings:
    """Every knob of stickyctx. Construct directly, or with ``Settings.from_env()``.

    ``secret_keys`` are newest first: the first signs, all verify.
    """

    secret_keys: Sequence[str | Secret] = field(default=(), repr=False)
    dev: bool = False
    node_id: str = field(default_factory=_default_node_id)
    nodes: tuple[NodeSpec, ...] = ()
    store_url: str = "memory://"
    namespace: str = "stickyctx"
    idle_ttl: int = 1800
    absolute_ttl: int = 14 * 86400  # a cap; an active chat lives on (idle expiry slides)
    token_budget: int = 8000
    response_reserve: int = 0
    encoding: str | None = None
    model: str | None = None
    pruning: Pruning = "sliding"
    eviction: Eviction = "block"
    low_water: float = 0.75
    summarizer: str | None = None
    summary_budget: int | None = None  # None: an eighth of token_budget
    summary_storage: SummaryStorage = "archive"
    max_session_tokens: int = 4_000_000
    max_session_bytes: int = 64 * 1024 * 1024
    balance_factor: float = 0.25
    cookie_name: str = "stickyctx"
    route_cookie: str = "stickyctx_node"
    cookie_secure: bool | None = None
    cookie_samesite: SameSite = "lax"
    cookie_domain: str | None = None
    cookie_path: str = "/"
    cookie_partitioned: bool = False
    cookie_persistent: bool = True  # False: browser-session cookies (no Max-Age)
    cookie_issue: CookieIssue = "lazy"
    exclude_paths: tuple[str, ...] = ()  # paths the middleware leaves alone (and under them)
    encryption_key: Secret | None = field(default=None, repr=False)
    hash_key: Secret | None = field(default=None, repr=False)
    memory_max_sessions: int = 100_000
    store_timeout: float = 1.0
    store_replicas: int = 0
    heartbeat_interval: float = 2.0
    advertise: str | None = None  # this node's host:port, announced in heartbeats
    hot_sessions: int = 10_000
    stale_reads: bool = False  # serve the hot tier's copy while the store is down (see docs)
    cold_url: str | None = None  # postgresql:// of the cold tier (with a Redis store)
    cold_after: int = 600  # seconds of inactivity before a conversation moves to the cold tier
    turn_lock: TurnLock = "auto"
    turn_timeout: float = 30.0
    # Seconds after rotate() in which requests still carrying the old token follow to the new
    # id (0: they start a new session at once).
    rotation_grace: float = 10.0
    turn_lease_ttl: float = 120.0
    idempotency_header: str = "Idempotency-Key"
    max_message_bytes: int = 1_048_576
    # Principals and their conversations (session.users) ----------------------------------
    user_ttl: int = 30 * 86400  # conversation records, indexes, memory, state: after last write
    memory_tokens: int = 2000  # a principal's memory, all items together
    # Streamed replies (session.streaming) ------------------------------------------------
    stream_ttl: float = 300.0  # seconds a reply's chunks stay resumable after its last one
    stream_on_disconnect: StreamOnDisconnect = "continue"
    stream_disconnect_grace: float = 0.0  # with "cancel": seconds a reply waits for a reconnect
    # Affinity to the model server (integrations.inference) ------------------------------
    inference_router: RouterKind = "none"
    inference_header: str | None = None  # None: the router's documented default header
    # The audit trail (telemetry.audit): the sinks of its records, none when off -----------
    audit: tuple[str, ...] = ()
    # ---------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        if isinstance(self.secret_keys, (str, Secret)):
            # A single key given as a plain string must never be split into characters.
            keys: tuple[Secret, ...] = (self.secret_keys if isinstance(self.secret_keys, Secret)
                                        else Secret(self.secret_keys),)
        else:
            keys = tuple(k if isinstance(k, Secret) else Secret(k) for k in self.secret_keys)
        if not keys:
            if not self.dev:
                raise ConfigError(
                    "STICKYCTX_SECRET_KEYS",
                    "at least one signing key is required (or STICKYCTX_DEV=1 for development)",
                )
            warnings.warn(
                "stickyctx: STICKYCTX_DEV=1 and no STICKYCTX_SECRET_KEYS: using a random signing "
                "key; sessions will not survive a restart and Secure cookies are off",
                RuntimeWarning,
                stacklevel=_outside_package(),
            )
            keys = (Secret(secrets.token_urlsafe(48)),)
        for key in keys:
            if len(key.reveal().encode()) < MIN_KEY_BYTES:
                raise ConfigError(
                    "STICKYCTX_SECRET_KEYS", f"every key must be at least {MIN_KEY_BYTES} bytes"
                )
        object.__setattr__(self, "secret_keys", keys)
        paths = self.exclude_paths
        object.__setattr__(self, "exclude_paths",
                           (paths,) if isinstance(paths, str) else tuple(paths))
        for name in ("hash_key", "encryption_key"):
            value = getattr(self, name)
            if isinstance(value, str):  # given as a plain string in code
                object.__setattr__(self, name, Secret(value) if value else None)
        self._validate()

    def _validate(self) -> None:
        validate(self)

    # Derived values -----------------------------------------------------------------------

    @property
    def keys(self) -> tuple[Secret, ...]:
        """The signing keys, newest first."""
        return self.secret_keys  # type: ignore[return-value]  # normalized in __post_init__

    @property
    def effective_summary_budget(self) -> int:
        """Tokens reserved for the running summary when pruning is ``summarize``."""
        if self.summary_budget is not None:
            return self.summary_budget
        return max(1, self.token_budget // 8)

    @property
    def uses_redis(self) -> bool:
        scheme = self.store_url.partition("://")[0].lower()
        return scheme.startswith("redis") or scheme == "unix"  # unix://: Redis on a unix socket

    @property
    def uses_postgres(self) -> bool:
        return is_postgres_url(self.store_url)

    @property
    def secure_cookies(self) -> bool:
        return (not self.dev) if self.cookie_secure is None else self.cookie_secure

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret masked (``stickyctx config``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "secret_keys":
                value = [f"<{len(value)} key(s) masked>"]
            elif isinstance(value, Secret):
                value = "<masked>"
            elif f.name == "nodes":
                value = [n.id + (f"={n.address}" if n.address else "") for n in value]
            elif f.name in ("store_url", "cold_url") and value:
                value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1<masked>@", value)  # a password
            out[f.name] = value
        out["secure_cookies"] = self.secure_cookies
        return out

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    # Environment --------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``STICKYCTX_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for var, (name, parse) in ENV.items():
            raw = env.get(_PREFIX + var)
            if raw is None or (raw.strip() == "" and var not in EMPTY_OK):
                continue
            try:
                kwargs[name] = parse(raw)
            except (ValueError, TypeError) as exc:
                # The message never includes the raw value, which may be a secret.
                raise ConfigError(_PREFIX + var, str(exc) or "invalid value") from None
        if "encoding" in kwargs and "model" in kwargs:
            raise ConfigError("STICKYCTX_ENCODING",
                              "set STICKYCTX_ENCODING or STICKYCTX_MODEL, not both")
        return cls(**kwargs)
