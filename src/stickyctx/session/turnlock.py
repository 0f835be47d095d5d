"""The turn lock of one request: a lease on the session, with its fencing token.

One turn at a time per session, across nodes: the lease is taken by the first context call
(``turn_lock=auto``) or by ``turn()``, waited for with backoff up to ``STICKYCTX_TURN_TIMEOUT``
(then ``SessionBusyError``), and taken over at once when its holder's node left the membership.
Writes present the fencing token, so a writer whose lease was taken over is refused. A lease
attempt whose answer was lost may have been granted: it is released by holder at the end.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import TYPE_CHECKING

from ..errors import SessionBusyError, StoreUnavailableError
from ..sansio import Op, Sleep
from ..telemetry import ATTR

if TYPE_CHECKING:
    from .logic import Session

__all__ = ["TurnLock"]

_FIRST_WAIT = 0.002
_MAX_WAIT = 0.05


class TurnLock:
    __slots__ = ("_holder", "fence", "session", "uncertain")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.fence: int | None = None  # the lease's fencing token, while it is held
        self.uncertain = False  # an attempt failed with no answer: the lease may be ours
        self._holder: str | None = None

    @property
    def holder(self) -> str:
        """This request's name on leases (made when first needed: most requests take none)."""
        if self._holder is None:
            self._holder = f"{self.session.services.node_id}:{secrets.token_hex(6)}"
        return self._holder

    def take(self) -> Op[bool]:
        """Take the lease; True if taken now, False if this request already holds it."""
        if self.fence is not None:
            return False
        session = self.session
        settings = session.services.settings
        started = time.monotonic()
        delay, waited = _FIRST_WAIT, 0.0
        while True:
            try:
                token = yield from session.call(session.store.acquire_lease(
                    session.key, holder=self.holder, ttl=settings.turn_lease_ttl,
                    live=session.services.members.confirmed_live()),
                    {ATTR.LEASE_NAME: "turn", ATTR.LEASE_WAIT: waited})
            except StoreUnavailableError:
                self.uncertain = True
                raise
            if token is not None:
                self.fence = int(token)
                return True
            waited = time.monotonic() - started
            if waited >= settings.turn_timeout:
                raise SessionBusyError(waited)
            yield Sleep(min(delay, settings.turn_timeout - waited))
            delay = min(delay * 2, _MAX_WAIT)
            waited = time.monotonic() - started

    def release(self) -> Op[None]:
        session = self.session
        if self.uncertain and self.fence is None:
            self.uncertain = False
            with contextlib.suppress(StoreUnavailableError):  # still down: its TTL ends it
                yield from session.call(session.store.release_lease(
                    session.key, 0, holder=self.holder))
        if self.fence is not None:
            token, self.fence = self.fence, None
            yield from session.call(session.store.release_lease(session.key, token))
