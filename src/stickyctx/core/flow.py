"""The request flow's decisions: identify and place a session, then decide what to send back.

``identify`` turns what a request carries (cookies, the session header) into a ``SessionState``;
``response_headers`` turns the state at response time into headers. Both are pure: the ASGI and
WSGI edges only move bytes in and out of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .affinity import Affinity, classify
from .cookies import AMBIGUOUS, CookieSpec, read_cookies
from .ids import new_session_id
from .nodes import NodeSpec
from .placement import place
from .tokens import TokenCodec

__all__ = [
    "AFFINITY_HEADER",
    "ENDPOINT_HEADER",
    "NEW_SESSION_REQUESTS",
    "NODE_HEADER",
    "SESSION_HEADER",
    "FlowConfig",
    "Membership",
    "SessionState",
    "excluded",
    "identify",
    "issues",
    "response_headers",
    "varies_on",
    "vary",
]

SESSION_HEADER = "x-stickyctx-session"
NODE_HEADER = "x-stickyctx-node"
AFFINITY_HEADER = "x-stickyctx-affinity"
ENDPOINT_HEADER = "x-stickyctx-endpoint"
OWNER_ANNOTATION = "x-stickyctx-owner"
AFFINITY_ANNOTATION = "x-stickyctx-affinity"
# A header-transport client that has no token yet sends one of these to ask for one.
NEW_SESSION_REQUESTS = frozenset({"", "new"})

Transport = Literal["cookie", "header"]


@dataclass(frozen=True, slots=True)
class Membership:
    """A snapshot of the live nodes (and their session counts, when shared)."""

    nodes: tuple[NodeSpec, ...]
    loads: dict[str, int] | None = None

    def ids(self) -> frozenset[str]:
        return frozenset(n.id for n in self.nodes)

    def address(self, node_id: str) -> str | None:
        for node in self.nodes:
            if node.id == node_id:
                return node.address
        return None


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """What the decisions need from ``Settings``, derived once per middleware."""

    node_id: str
    cookie_name: str
    route_cookie: str
    cookie: CookieSpec
    absolute_ttl: int
    balance_factor: float
    lazy: bool = True  # a new session's token is sent only once the app has used the session
    exclude_paths: tuple[str, ...] = ()  # paths (and what lies under them) left untouched


@dataclass(slots=True)
class SessionState:
    """One request's view of its session; the handle changes it (rotate, destroy, expiry)."""

    session_id: str
    owner: str
    created: int
    affinity: Affinity
    transport: Transport
    reissue: bool = False  # the token must be sent (new, rotated, re-signed, re-placed)
    route_ok: bool = True  # the routing cookie already names the owner
    destroyed: bool = False
    previous_id: str | None = None  # set by rotation, for telemetry
    lineage: str | None = None  # keyed name of the conversation's first id, once rotated
    key_fallback: bool = False  # the token verified with an older signing key
    placed: bool = False  # counted toward its owner's load when identified (a new session)
    principal: str | None = None  # who the audit trail names (the app sets it on the handle)
    used: bool = False  # the app read the session (its id, a context method): see ``issues``
    asked: bool = False  # a header-transport client asked for a new session ("new")
    # (owner, affinity) of a conversation the app opened in this request (session.users): the
    # node and affinity headers name it, so clients echo the node that holds the conversation.
    route: tuple[str, Affinity] | None = None

    @property
    def is_new(self) -> bool:
        return self.affinity == "new"


def identify(
    cookie_headers: Sequence[str],
    session_header: str | None,
    codec: TokenCodec,
    config: FlowConfig,
    membership: Membership,
    now: float,
) -> SessionState:
    """Read the session from a request. Anything unusable starts a fresh session, never an error."""
    transport: Transport = "header" if session_header is not None else "cookie"
    raw: str | None
    # Both cookies in one pass (the routing cookie only matters on the cookie transport).
    found, route = read_cookies(cookie_headers, (config.cookie_name, config.route_cookie))
    if session_header is not None:
        raw = None if session_header.strip().lower() in NEW_SESSION_REQUESTS else session_header
    else:
        raw = None if found is AMBIGUOUS or found is None else str(found)
    claims = codec.verify(raw.strip(), now) if raw else None
    if claims is None:
        state = new_session(config, membership, now, transport)
        state.asked = session_header is not None
    else:
        live = membership.ids()
        affinity = classify(claims.owner, config.node_id, live)
        owner = claims.owner
        if affinity == "failover":
            owner = place(claims.session_id, membership.nodes, membership.loads,
                          config.balance_factor)
        state = SessionState(
            session_id=claims.session_id,
            owner=owner,
            created=claims.created,
            affinity=affinity,
            transport=transport,
            reissue=affinity == "failover" or claims.key_index > 0,
            key_fallback=claims.key_index > 0,
            lineage=claims.lineage,
        )
    if transport == "cookie":
        state.route_ok = route == state.owner
    return state


def new_session(
    config: FlowConfig, membership: Membership, now: float, transport: Transport
) -> SessionState:
    session_id = new_session_id()
    owner = place(session_id, membership.nodes, membership.loads, config.balance_factor)
    return SessionState(session_id, owner, int(now), "new", transport, reissue=True,
                        route_ok=False)


def excluded(path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or lies under one (``/static`` covers
    ``/static`` and ``/static/app.js``, not ``/statics``)."""
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return True
    return False


def issues(state: SessionState, config: FlowConfig) -> bool:
    """Whether the response carries the session at all (its token, routing cookie, ``Vary``).

    Lazily (the default), a brand-new session the app never used is not sent: a health check, a
    bot or a static file gets no cookie, and the next request that uses the session creates it
    then. No affinity is lost: a new session holds nothing to route to. A client that asked for
    a session (``X-Stickyctx-Session: new``) always gets one, and every existing session is
    re-issued when it must be (re-placed after a failover, re-signed with the newest key).
    """
    return not (config.lazy and state.is_new and not state.used and not state.asked
                and not state.destroyed)


def vary(state: SessionState) -> str | None:
    """The request header the response depends on, for ``Vary``: the one that carried the
    session, once the app used it (what it answers then depends on whose session it is)."""
    if not state.used:
        return None
    return "Cookie" if state.transport == "cookie" else "X-Stickyctx-Session"


def varies_on(values: Sequence[str], header: str) -> bool:
    """Whether ``Vary`` values already cover ``header`` (or are ``*``)."""
    wanted = header.lower()
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item in ("*", wanted):
                return True
    return False


def response_headers(
    state: SessionState,
    codec: TokenCodec,
    config: FlowConfig,
    membership: Membership,
    now: float,
) -> list[tuple[str, str]]:
    """The headers to add to the response for ``state`` (``Vary`` aside: see ``vary``)."""
    owner, affinity = state.route or (state.owner, state.affinity)
    headers = [(NODE_HEADER, owner), (AFFINITY_HEADER, affinity)]
    address = membership.address(owner)
    if address:
        headers.append((ENDPOINT_HEADER, address))
    if not issues(state, config):
        return headers
    if state.destroyed:
        if state.transport == "cookie":
            headers.append(("set-cookie", config.cookie.header(config.cookie_name, "", 0)))
            headers.append(("set-cookie", config.cookie.header(config.route_cookie, "", 0)))
        else:
            headers.append((SESSION_HEADER, ""))
        return headers
    remaining = state.created + config.absolute_ttl - int(now)
    if state.reissue:
        token = codec.sign(state.session_id, state.owner, state.created, state.lineage)
        if state.transport == "cookie":
            cookie = config.cookie.header(config.cookie_name, token, remaining)
            headers.append(("set-cookie", cookie))
        else:
            headers.append((SESSION_HEADER, token))
    if state.transport == "cookie" and (state.reissue or not state.route_ok):
        headers.append(("set-cookie", config.cookie.header(config.route_cookie, state.owner,
                                                           remaining)))
    return headers
