"""``STICKYCTX_*`` variables: the table from each variable to its field and parser.

A parser turns the raw text into the field's value or raises ``ValueError`` with a reason that
never repeats the value (it may be a secret); ``Settings.from_env`` adds the variable's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..core.nodes import parse_nodes
from .secret import Secret

__all__ = ["AUDIT_SINKS", "EMPTY_OK", "ENV", "ENV_VARIABLES", "PREFIX", "parse_audit"]

PREFIX = "STICKYCTX_"


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


# The audit trail's sinks, by name (built in ``session/services.py``).
AUDIT_SINKS = ("otel",)


def parse_audit(raw: str) -> tuple[str, ...]:
    """``STICKYCTX_AUDIT``: off (``0``, empty), on (``1``: the OpenTelemetry sink), or names."""
    value = raw.strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return ()
    if value in ("1", "true", "yes", "on"):
        return ("otel",)
    return tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _keys(raw: str) -> tuple[Secret, ...]:
    keys = tuple(Secret(k.strip()) for k in raw.split(",") if k.strip())
    if not keys:
        raise ValueError("no key given")
    return keys


def _str(raw: str) -> str:
    return raw.strip()


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _secret(raw: str) -> Secret | None:
    return Secret(raw.strip()) if raw.strip() else None


def _paths(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _store_url(raw: str) -> str:
    url = raw.strip()
    scheme = url.partition("://")[0].lower()
    if scheme not in ("memory", "redis", "rediss", "unix", "redis+sentinel", "redis+cluster",
                      "postgresql", "postgres"):
        raise ValueError("scheme must be memory://, redis://, rediss://, unix://, "
                         "redis+sentinel://, redis+cluster:// or postgresql://")
    return url


ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SECRET_KEYS": ("secret_keys", _keys),
    "DEV": ("dev", _bool),
    "NODE_ID": ("node_id", _str),
    "NODES": ("nodes", parse_nodes),
    "STORE_URL": ("store_url", _store_url),
    "NAMESPACE": ("namespace", _str),
    "IDLE_TTL": ("idle_ttl", _int),
    "ABSOLUTE_TTL": ("absolute_ttl", _int),
    "TOKEN_BUDGET": ("token_budget", _int),
    "RESPONSE_RESERVE": ("response_reserve", _int),
    "ENCODING": ("encoding", _optional_str),
    "MODEL": ("model", _optional_str),
    "PRUNING": ("pruning", _lower),
    "EVICTION": ("eviction", _lower),
    "LOW_WATER": ("low_water", _float),
    "SUMMARIZER": ("summarizer", _optional_str),
    "SUMMARY_BUDGET": ("summary_budget", _int),
    "SUMMARY_STORAGE": ("summary_storage", _lower),
    "MAX_SESSION_TOKENS": ("max_session_tokens", _int),
    "MAX_SESSION_BYTES": ("max_session_bytes", _int),
    "BALANCE_FACTOR": ("balance_factor", _float),
    "COOKIE_NAME": ("cookie_name", _str),
    "ROUTE_COOKIE": ("route_cookie", _str),
    "COOKIE_SECURE": ("cookie_secure", _bool),
    "COOKIE_SAMESITE": ("cookie_samesite", _lower),
    "COOKIE_DOMAIN": ("cookie_domain", _optional_str),
    "COOKIE_PATH": ("cookie_path", _str),
    "COOKIE_PARTITIONED": ("cookie_partitioned", _bool),
    "COOKIE_PERSISTENT": ("cookie_persistent", _bool),
    "COOKIE_ISSUE": ("cookie_issue", _lower),
    "EXCLUDE_PATHS": ("exclude_paths", _paths),
    "ENCRYPTION_KEY": ("encryption_key", _secret),
    "HASH_KEY": ("hash_key", _secret),
    "MEMORY_MAX_SESSIONS": ("memory_max_sessions", _int),
    "STORE_TIMEOUT": ("store_timeout", _float),
    "STORE_REPLICAS": ("store_replicas", _int),
    "HEARTBEAT_INTERVAL": ("heartbeat_interval", _float),
    "ADVERTISE": ("advertise", _optional_str),
    "HOT_SESSIONS": ("hot_sessions", _int),
    "STALE_READS": ("stale_reads", _bool),
    "COLD_URL": ("cold_url", _optional_str),
    "COLD_AFTER": ("cold_after", _int),
    "TURN_LOCK": ("turn_lock", _lower),
    "TURN_TIMEOUT": ("turn_timeout", _float),
    "TURN_LEASE_TTL": ("turn_lease_ttl", _float),
    "ROTATION_GRACE": ("rotation_grace", _float),
    "USER_TTL": ("user_ttl", _int),
    "MEMORY_TOKENS": ("memory_tokens", _int),
    "IDEMPOTENCY_HEADER": ("idempotency_header", _str),
    "STREAM_TTL": ("stream_ttl", _float),
    "STREAM_ON_DISCONNECT": ("stream_on_disconnect", _lower),
    "STREAM_DISCONNECT_GRACE": ("stream_disconnect_grace", _float),
    "MAX_MESSAGE_BYTES": ("max_message_bytes", _int),
    "INFERENCE_ROUTER": ("inference_router", _lower),
    "INFERENCE_HEADER": ("inference_header", _optional_str),
    "AUDIT": ("audit", parse_audit),
}

# Variables whose empty value means something (an empty header name turns the feature off).
EMPTY_OK = frozenset({"IDEMPOTENCY_HEADER"})

ENV_VARIABLES: tuple[str, ...] = tuple(PREFIX + v for v in ENV)
