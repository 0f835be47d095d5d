"""Affinity to the model server: what each inference router keys on, as keyed hashes.

A conversation's requests should reach the model server that holds its prefix (KV) cache. The
routers in front of model servers route on a key the caller sends; this module decides which
headers and body fields carry it for each kind of router. It is pure: it gets a keyed digest
function (``KeyDeriver.digest``) and the conversation's *anchor*, and every value it returns is
``sc-`` plus a keyed hash under a purpose of its own, so no raw id leaves the app and the values
for different purposes cannot be linked to each other or to the store's keys.

What the routers key on (from their documentation and source):

* ``openai``: the body fields ``prompt_cache_key`` (requests with the same key and prefix are
  routed to the same prompt-cache machines) and ``safety_identifier`` (a stable, hashed name of
  the end user, for abuse detection).
* ``vllm``: the vLLM production-stack router's session routing hashes the header that the
  operator names with ``--session-key`` (or a body field of that name); the Rust ``vllm-router``'s
  ``consistent_hash`` policy reads ``x-session-id`` first. Default header: ``x-session-id``.
* ``sglang``: the SGLang model gateway (``sglang-router``): the ``manual`` and
  ``consistent_hashing`` policies route on ``X-SMG-Routing-Key`` (the routing-key override reads
  the headers named by ``--routing-key-headers``, by default the same one).
* ``none``: nothing.

llm-d defines no key a caller can compute: its scheduler scores endpoints by the prompt's prefix
(which needs no hint) and its session-affinity scorer replays a cookie the gateway itself issues.

The anchor is the keyed name of the conversation's first session id (``lineage``), so that every
value is stable for the whole conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_HEADERS",
    "ROUTERS",
    "Digest",
    "RouterKind",
    "RoutingHints",
    "header_problem",
    "lineage",
    "prompt_cache_key",
    "router_problem",
    "routing_hints",
    "routing_key",
    "safety_identifier",
]

RouterKind = Literal["none", "openai", "vllm", "sglang"]
ROUTERS: tuple[RouterKind, ...] = ("none", "openai", "vllm", "sglang")

# The header each header-routed kind sends unless the operator names another one.
DEFAULT_HEADERS: Mapping[RouterKind, str] = {"vllm": "x-session-id", "sglang": "x-smg-routing-key"}

Digest = Callable[[str], str]
"""A keyed hash of a string (``KeyDeriver.digest``): URL-safe, 22 characters."""

_PREFIX = "sc-"
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Headers that the HTTP client or the API itself owns: a routing key must never replace them.
_RESERVED = frozenset({
    "authorization", "proxy-authorization", "cookie", "host", "content-type",
    "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
    "keep-alive", "expect", "openai-organization", "openai-project",
})


def _keyed(digest: Digest, purpose: str, value: str) -> str:
    return digest(purpose + "\x00" + value)


def lineage(digest: Digest, session_id: str) -> str:
    """The conversation's anchor when it starts: a keyed name of its first session id."""
    return _keyed(digest, "lineage", session_id)


def prompt_cache_key(digest: Digest, anchor: str) -> str:
    """OpenAI's ``prompt_cache_key`` for the conversation."""
    return _PREFIX + _keyed(digest, "prompt-cache", anchor)


def routing_key(digest: Digest, anchor: str) -> str:
    """The value a header-routed router hashes (or pins) for the conversation."""
    return _PREFIX + _keyed(digest, "inference-route", anchor)


def safety_identifier(digest: Digest, anchor: str, user: str | None = None) -> str:
    """OpenAI's ``safety_identifier``: a keyed name of ``user`` when the app knows the signed-in
    user (stable across their conversations, as OpenAI recommends), else of the conversation."""
    if user:
        return _PREFIX + _keyed(digest, "safety-user", user)
    return _PREFIX + _keyed(digest, "safety", anchor)


@dataclass(frozen=True)
class RoutingHints:
    """Headers and JSON body fields to add to a model-server request (all keyed hashes).

    ``headers`` go to the HTTP request (the openai client's ``extra_headers``), ``body`` into its
    JSON body (``extra_body``). Both are empty for ``router="none"``.
    """

    router: RouterKind
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.headers or self.body)

    def merged(
        self,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> tuple[dict[str, str], dict[str, object]]:
        """``(headers, body)``: the app's own values with the hints added. A value the app set
        itself wins (header names compared case-insensitively)."""
        headers = dict(extra_headers or {})
        taken = {name.lower() for name in headers}
        for name, value in self.headers.items():
            if name.lower() not in taken:
                headers[name] = value
        body: dict[str, object] = dict(extra_body or {})
        for name, value in self.body.items():
            body.setdefault(name, value)
        return headers, body


def routing_hints(
    router: RouterKind,
    header: str | None,
    digest: Digest,
    anchor: str,
    *,
    user: str | None = None,
) -> RoutingHints:
    """The hints ``router`` keys on for the conversation named by ``anchor``.

    ``header`` replaces the router's default header (for routers that route on a header the
    operator names); ``user`` is the app's own id of the signed-in user, for OpenAI's
    ``safety_identifier`` (hashed, never sent as it is).
    """
    problem = router_problem(router)
    if problem is not None:
        raise ValueError(f"router {router!r}: {problem}")
    if router == "none":
        return RoutingHints("none")
    if router == "openai":
        return RoutingHints("openai", body={
            "prompt_cache_key": prompt_cache_key(digest, anchor),
            "safety_identifier": safety_identifier(digest, anchor, user),
        })
    name = header or DEFAULT_HEADERS[router]
    return RoutingHints(router, headers={name: routing_key(digest, anchor)})


def router_problem(value: str) -> str | None:
    """Why ``value`` is not a router kind, or ``None`` when it is one."""
    if value in ROUTERS:
        return None
    if value in ("llm-d", "llmd"):
        return ("llm-d needs no routing key from the app: its scheduler scores the prompt's "
                "prefix, and its session affinity replays the gateway's own cookie; use 'none'")
    return "must be " + ", ".join(ROUTERS[:-1]) + " or " + ROUTERS[-1]


def header_problem(router: str, header: str | None) -> str | None:
    """Why ``header`` cannot carry ``router``'s routing key, or ``None`` when it can."""
    if header is None:
        return None
    if router not in DEFAULT_HEADERS:
        return f"is only used with a header-routed router (vllm, sglang), not {router!r}"
    if not _TOKEN.fullmatch(header):
        return "must be a valid header name"
    if header.lower() in _RESERVED:
        return "must not be a header the HTTP client or the API owns"
    return None

