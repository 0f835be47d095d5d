"""``Settings``: one frozen configuration object, built in code or from ``STICKYCTX_*`` variables.

``Settings.from_env`` is a table from variable name to field and parser; a bad value raises
``ConfigError`` naming the variable, never echoing it (it may be a secret).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import socket
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..core.inference import RouterKind, header_problem, router_problem
from ..core.nodes import NodeSpec, is_valid_node_id
from ..errors import ConfigError
from .cookies import cookie_problem
from .env import AUDIT_SINKS, EMPTY_OK, ENV, ENV_VARIABLES, PREFIX, parse_audit
from .secret import Secret
from .tiers import cold_tier_problem, is_postgres_url

__all__ = ["ENV_VARIABLES", "MIN_KEY_BYTES", "Secret", "Settings"]

MIN_KEY_BYTES = 32
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
        def bad(var: str, reason: str) -> ConfigError:
            return ConfigError(_PREFIX + var, reason)

        if not is_valid_node_id(self.node_id):
            raise bad("NODE_ID", "letters, digits, '.', '_', '-', at most 63 characters")
        if self.idle_ttl <= 0:
            raise bad("IDLE_TTL", "must be a positive number of seconds")
        if self.absolute_ttl < self.idle_ttl:
            raise bad("ABSOLUTE_TTL", "must be at least STICKYCTX_IDLE_TTL")
        if self.token_budget <= 0:
            raise bad("TOKEN_BUDGET", "must be positive")
        if not 0 <= self.response_reserve < self.token_budget:
            raise bad("RESPONSE_RESERVE", "must be between 0 and STICKYCTX_TOKEN_BUDGET")
        if self.pruning not in ("sliding", "summarize"):
            raise bad("PRUNING", "must be 'sliding' or 'summarize'")
        if self.eviction not in ("block", "turn"):
            raise bad("EVICTION", "must be 'block' or 'turn'")
        if not 0.0 < self.low_water < 1.0:
            raise bad("LOW_WATER", "must be a fraction between 0 and 1")
        if self.summary_budget is not None and not (
            0 < self.summary_budget < self.token_budget - self.response_reserve
        ):
            raise bad("SUMMARY_BUDGET", "must be positive and below the token budget")
        if self.summary_storage not in ("archive", "delete"):
            raise bad("SUMMARY_STORAGE", "must be 'archive' or 'delete'")
        if self.max_session_tokens <= 0 or self.max_session_bytes <= 0:
            raise bad("MAX_SESSION_TOKENS" if self.max_session_tokens <= 0
                      else "MAX_SESSION_BYTES", "must be positive")
        if self.max_message_bytes > self.max_session_bytes:
            raise bad("MAX_MESSAGE_BYTES", "must not exceed STICKYCTX_MAX_SESSION_BYTES")
        if self.balance_factor <= 0:
            raise bad("BALANCE_FACTOR", "must be greater than 0")
        if not self.namespace or any(c in self.namespace for c in "{}: \t\r\n"):
            raise bad("NAMESPACE", "must be non-empty, without '{', '}', ':' or spaces")
        problem = cookie_problem(self)
        if problem is not None:
            raise bad(*problem)
        for name in ("balance_factor", "low_water", "turn_timeout", "turn_lease_ttl",
                     "rotation_grace",
                     "store_timeout", "heartbeat_interval"):
            if not math.isfinite(getattr(self, name)):
                raise bad(name.upper(), "must be a finite number")
        if self.hash_key is not None and len(self.hash_key.reveal().encode()) < MIN_KEY_BYTES:
            raise bad("HASH_KEY", f"must be at least {MIN_KEY_BYTES} bytes")
        if self.idempotency_header and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+",
                                                        self.idempotency_header):
            raise bad("IDEMPOTENCY_HEADER", "must be a valid header name (or empty: off)")
        if self.memory_max_sessions <= 0:
            raise bad("MEMORY_MAX_SESSIONS", "must be positive")
        if self.heartbeat_interval <= 0:
            raise bad("HEARTBEAT_INTERVAL", "must be a positive number of seconds")
        if self.advertise is not None and ":" not in self.advertise:
            raise bad("ADVERTISE", "must be host:port")
        if self.store_replicas < 0:
            raise bad("STORE_REPLICAS", "must be 0 or a positive number of replicas")
        if self.store_replicas and self.store_url.lower().startswith("redis+cluster"):
            raise bad("STORE_REPLICAS", "is not supported with redis+cluster:// (use Redis "
                      "Cluster's own replication settings)")
        if self.store_timeout <= 0:
            raise bad("STORE_TIMEOUT", "must be a positive number of seconds")
        if self.hot_sessions < 0:
            raise bad("HOT_SESSIONS", "must be 0 (no hot tier) or positive")
        cold_problem = cold_tier_problem(self.cold_url, self.cold_after, self.idle_ttl,
                                         self.uses_redis)
        if cold_problem is not None:
            raise bad(*cold_problem)
        if (self.uses_redis or self.uses_postgres) and self.hash_key is None and not self.dev:
            raise bad("HASH_KEY", "is required with a shared store: it names every stored session, "
                      "and keeping it separate from the signing keys lets you rotate those freely")
        if self.turn_lock not in ("auto", "manual"):
            raise bad("TURN_LOCK", "must be 'auto' or 'manual'")
        if self.turn_timeout < 0:
            raise bad("TURN_TIMEOUT", "must be 0 (reject at once) or a positive number of seconds")
        if not 0 <= self.rotation_grace <= 300:
            raise bad("ROTATION_GRACE", "must be between 0 (off) and 300 seconds")
        if self.stream_ttl <= 0:
            raise bad("STREAM_TTL", "must be positive")
        if self.stream_disconnect_grace < 0:
            raise bad("STREAM_DISCONNECT_GRACE", "must be 0 or a positive number of seconds")
        if self.stream_on_disconnect not in ("continue", "cancel"):
            raise bad("STREAM_ON_DISCONNECT", "must be continue or cancel")
        if self.turn_lease_ttl <= 0:
            raise bad("TURN_LEASE_TTL", "must be positive")
        if self.max_message_bytes <= 0:
            raise bad("MAX_MESSAGE_BYTES", "must be positive")
        if self.user_ttl <= 0:
            raise bad("USER_TTL", "must be a positive number of seconds")
        if self.memory_tokens < 0:
            raise bad("MEMORY_TOKENS", "must be 0 (no memory) or a positive number of tokens")
        # Affinity to the model server ----------------------------------------------------
        router_reason = router_problem(self.inference_router)
        if router_reason is not None:
            raise bad("INFERENCE_ROUTER", router_reason)
        header_reason = header_problem(self.inference_router, self.inference_header)
        if header_reason is not None:
            raise bad("INFERENCE_HEADER", header_reason)
        if isinstance(self.audit, str):  # given as a plain string in code
            object.__setattr__(self, "audit", parse_audit(self.audit))
        unknown = [name for name in self.audit if name not in AUDIT_SINKS]
        if unknown:
            raise bad("AUDIT", "names an unknown sink; expected 0/1, on/off or sink names "
                      f"({', '.join(AUDIT_SINKS)})")
        # ---------------------------------------------------------------------------------
        ids = [n.id for n in self.nodes]
        if ids and self.node_id not in ids:
            raise bad("NODES", f"does not list this node ({self.node_id!r}, STICKYCTX_NODE_ID)")

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
