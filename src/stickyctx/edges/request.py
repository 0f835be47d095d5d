"""The request flow both edges share: identify the session, then the headers to answer with.

Pure decisions live in ``core.flow``; this adds what a node knows (its membership view, its
clock) and records the affinity decision (telemetry, this node's load).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ..core import flow
from ..core.cookies import secure_cookie_lost
from ..core.flow import SessionState
from ..errors import ConfigError
from ..session.services import Services
from ..settings import Settings
from ..stores import Store, open_store

__all__ = ["SAFE_METHODS", "Edge", "PlainHttpWarning", "identify", "response_headers"]

logger = logging.getLogger("stickyctx")

# Requests whose reads begin no turn (no lease: one round trip, never waiting behind a turn in
# flight); a write they make after all begins the turn then, reloading the session.
SAFE_METHODS = frozenset({"GET", "HEAD"})

App = TypeVar("App")


class Edge(Generic[App]):
    """What both middlewares derive once: settings, services and the store.

    ``settings=None`` reads ``Settings.from_env()``. ``store`` and ``clock`` are for tests and
    embedding: a store to use instead of the one ``STICKYCTX_STORE_URL`` names (one store may
    serve several middlewares, ASGI and WSGI), and the wall clock used for expiry.
    """

    def __init__(
        self,
        app: App,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
    ) -> None:
        self.app = app
        self.config_error: ConfigError | None = None
        try:
            self.settings = settings if settings is not None else Settings.from_env()
            self.services = Services(self.settings, clock=clock or time.time,
                                     tracer_provider=tracer_provider,
                                     meter_provider=meter_provider,
                                     logger_provider=logger_provider)
            self.store = store if store is not None else open_store(self.settings,
                                                                    self.services.clock)
        except ConfigError as exc:
            if not self._defers(exc):
                raise
            self.config_error = exc  # answered by the edge at the app's startup
            return
        self._auto_lock = self.settings.turn_lock == "auto"
        self.exclude_paths = self.settings.exclude_paths
        self.plain_http = PlainHttpWarning(self.settings.secure_cookies)
        self._configure()

    def _defers(self, error: ConfigError) -> bool:
        """Whether a configuration error is kept for the edge to report later instead of raised
        now (see ``StickyMiddleware``); by default it is raised."""
        return False

    def _configure(self) -> None:
        """What the edge derives for itself (its heartbeat, header names in its own form)."""


def identify(services: Services, cookie_headers: Sequence[str],
             session_header: str | None) -> SessionState:
    """The session a request carries (a fresh one when it carries none that verifies)."""
    members = services.members
    state = flow.identify(cookie_headers, session_header, services.codec, services.flow,
                          members.view(), services.clock())
    # Load is sessions, not hits: a brand-new session counts while its first request runs,
    # and afterwards only if it stored something (``MembershipManager.ended``).
    if state.reissue and state.affinity in ("new", "failover"):
        members.placed(state.owner)  # counts toward that node's load until the next heartbeat
        state.placed = state.affinity == "new"
    if state.owner == services.node_id and not state.is_new:
        members.active.touch(state.session_id)
    telemetry = services.telemetry
    if telemetry.active():
        telemetry.affinity(state, services.session_hash)
    return state


def response_headers(services: Services, state: SessionState,
                     vary: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The headers to add: the session's, and ``Vary`` unless the app's (``vary``, its
    values) already covers the header that carried the session."""
    headers = flow.response_headers(state, services.codec, services.flow,
                                    services.members.view(), services.clock())
    header = flow.vary(state)
    if header is not None and not flow.varies_on(vary, header):
        headers.append(("vary", header))
    return headers


class PlainHttpWarning:
    """Warns once (per middleware) that a ``Secure`` cookie went out over plain http to a
    development host (a test client, a LAN address): the client will not send it back, so
    every request starts a new session. Detection only: the cookie's flags never change."""

    __slots__ = ("secure", "warned")

    def __init__(self, secure: bool) -> None:
        self.secure = secure
        self.warned = not secure

    def check(self, headers: Sequence[tuple[str, str]], scheme: str, host: str,
              forwarded_proto: str | None) -> None:
        if self.warned or not any(name == "set-cookie" for name, _ in headers):
            return
        if secure_cookie_lost(self.secure, scheme, host, forwarded_proto):
            self.warned = True
            logger.warning(
                "stickyctx: a Secure session cookie was sent over plain http to %r; clients keep "
                "Secure cookies for https only (test clients, LAN addresses), so each request "
                "will start a new session. For plain-http development set STICKYCTX_DEV=1 or "
                "STICKYCTX_COOKIE_SECURE=0 (never in production); behind a TLS proxy, have it "
                "send X-Forwarded-Proto: https.", host)
