"""Every rule a ``Settings`` must meet, checked when it is built: a ``ConfigError`` naming the
variable of the first one broken (never echoing its value, which may be a secret)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from ..core.inference import header_problem, router_problem
from ..core.nodes import is_valid_node_id
from ..errors import ConfigError
from .cookies import cookie_problem
from .env import AUDIT_SINKS, PREFIX, parse_audit
from .tiers import cold_tier_problem

if TYPE_CHECKING:
    from . import Settings

__all__ = ["MIN_KEY_BYTES", "validate"]

MIN_KEY_BYTES = 32


def validate(s: Settings) -> None:
    def bad(var: str, reason: str) -> ConfigError:
        return ConfigError(PREFIX + var, reason)

    if not is_valid_node_id(s.node_id):
        raise bad("NODE_ID", "letters, digits, '.', '_', '-', at most 63 characters")
    if s.idle_ttl <= 0:
        raise bad("IDLE_TTL", "must be a positive number of seconds")
    if s.absolute_ttl < s.idle_ttl:
        raise bad("ABSOLUTE_TTL", "must be at least STICKYCTX_IDLE_TTL")
    if s.token_budget <= 0:
        raise bad("TOKEN_BUDGET", "must be positive")
    if not 0 <= s.response_reserve < s.token_budget:
        raise bad("RESPONSE_RESERVE", "must be between 0 and STICKYCTX_TOKEN_BUDGET")
    if s.pruning not in ("sliding", "summarize"):
        raise bad("PRUNING", "must be 'sliding' or 'summarize'")
    if s.eviction not in ("block", "turn"):
        raise bad("EVICTION", "must be 'block' or 'turn'")
    if not 0.0 < s.low_water < 1.0:
        raise bad("LOW_WATER", "must be a fraction between 0 and 1")
    if s.summary_budget is not None and not (
        0 < s.summary_budget < s.token_budget - s.response_reserve
    ):
        raise bad("SUMMARY_BUDGET", "must be positive and below the token budget")
    if s.summary_storage not in ("archive", "delete"):
        raise bad("SUMMARY_STORAGE", "must be 'archive' or 'delete'")
    if s.max_session_tokens <= 0 or s.max_session_bytes <= 0:
        raise bad("MAX_SESSION_TOKENS" if s.max_session_tokens <= 0
                  else "MAX_SESSION_BYTES", "must be positive")
    if s.max_message_bytes > s.max_session_bytes:
        raise bad("MAX_MESSAGE_BYTES", "must not exceed STICKYCTX_MAX_SESSION_BYTES")
    if s.balance_factor <= 0:
        raise bad("BALANCE_FACTOR", "must be greater than 0")
    if not s.namespace or any(c in s.namespace for c in "{}: \t\r\n"):
        raise bad("NAMESPACE", "must be non-empty, without '{', '}', ':' or spaces")
    problem = cookie_problem(s)
    if problem is not None:
        raise bad(*problem)
    for name in ("balance_factor", "low_water", "turn_timeout", "turn_lease_ttl",
                 "rotation_grace",
                 "store_timeout", "heartbeat_interval"):
        if not math.isfinite(getattr(s, name)):
            raise bad(name.upper(), "must be a finite number")
    if s.hash_key is not None and len(s.hash_key.reveal().encode()) < MIN_KEY_BYTES:
        raise bad("HASH_KEY", f"must be at least {MIN_KEY_BYTES} bytes")
    if s.idempotency_header and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+",
                                                    s.idempotency_header):
        raise bad("IDEMPOTENCY_HEADER", "must be a valid header name (or empty: off)")
    if s.memory_max_sessions <= 0:
        raise bad("MEMORY_MAX_SESSIONS", "must be positive")
    if s.heartbeat_interval <= 0:
        raise bad("HEARTBEAT_INTERVAL", "must be a positive number of seconds")
    if s.advertise is not None and ":" not in s.advertise:
        raise bad("ADVERTISE", "must be host:port")
    if s.store_replicas < 0:
        raise bad("STORE_REPLICAS", "must be 0 or a positive number of replicas")
    if s.store_replicas and s.store_url.lower().startswith("redis+cluster"):
        raise bad("STORE_REPLICAS", "is not supported with redis+cluster:// (use Redis "
                  "Cluster's own replication settings)")
    if s.store_timeout <= 0:
        raise bad("STORE_TIMEOUT", "must be a positive number of seconds")
    if s.hot_sessions < 0:
        raise bad("HOT_SESSIONS", "must be 0 (no hot tier) or positive")
    cold_problem = cold_tier_problem(s.cold_url, s.cold_after, s.idle_ttl,
                                     s.uses_redis)
    if cold_problem is not None:
        raise bad(*cold_problem)
    if (s.uses_redis or s.uses_postgres) and s.hash_key is None and not s.dev:
        raise bad("HASH_KEY", "is required with a shared store: it names every stored session, "
                  "and keeping it separate from the signing keys lets you rotate those freely")
    if s.turn_lock not in ("auto", "manual"):
        raise bad("TURN_LOCK", "must be 'auto' or 'manual'")
    if s.turn_timeout < 0:
        raise bad("TURN_TIMEOUT", "must be 0 (reject at once) or a positive number of seconds")
    if not 0 <= s.rotation_grace <= 300:
        raise bad("ROTATION_GRACE", "must be between 0 (off) and 300 seconds")
    if s.stream_ttl <= 0:
        raise bad("STREAM_TTL", "must be positive")
    if s.stream_disconnect_grace < 0:
        raise bad("STREAM_DISCONNECT_GRACE", "must be 0 or a positive number of seconds")
    if s.stream_on_disconnect not in ("continue", "cancel"):
        raise bad("STREAM_ON_DISCONNECT", "must be continue or cancel")
    if s.turn_lease_ttl <= 0:
        raise bad("TURN_LEASE_TTL", "must be positive")
    if s.max_message_bytes <= 0:
        raise bad("MAX_MESSAGE_BYTES", "must be positive")
    if s.user_ttl <= 0:
        raise bad("USER_TTL", "must be a positive number of seconds")
    if s.memory_tokens < 0:
        raise bad("MEMORY_TOKENS", "must be 0 (no memory) or a positive number of tokens")
    # Affinity to the model server ----------------------------------------------------
    router_reason = router_problem(s.inference_router)
    if router_reason is not None:
        raise bad("INFERENCE_ROUTER", router_reason)
    header_reason = header_problem(s.inference_router, s.inference_header)
    if header_reason is not None:
        raise bad("INFERENCE_HEADER", header_reason)
    if isinstance(s.audit, str):  # given as a plain string in code
        object.__setattr__(s, "audit", parse_audit(s.audit))
    unknown = [name for name in s.audit if name not in AUDIT_SINKS]
    if unknown:
        raise bad("AUDIT", "names an unknown sink; expected 0/1, on/off or sink names "
                  f"({', '.join(AUDIT_SINKS)})")
    # ---------------------------------------------------------------------------------
    ids = [n.id for n in s.nodes]
    if ids and s.node_id not in ids:
        raise bad("NODES", f"does not list this node ({s.node_id!r}, STICKYCTX_NODE_ID)")
