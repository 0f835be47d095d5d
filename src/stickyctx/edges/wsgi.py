"""``StickyWSGIMiddleware``: the WSGI edge, the same behaviour as the ASGI one.

Headers are added in a wrapped ``start_response``; what the request holds is released after the
body iterable is exhausted and closed (``close()`` is always called).

A test client (Flask's, werkzeug's) runs requests one after the other in one thread and reads a
response's body only when asked. A streamed body that used the session holds the session's turn
until it is exhausted or closed; a next request of that session in the same thread could only
wait for it in vain (nothing else can move that body on). So a request first releases the turn
held by this thread's unfinished bodies of its own session: their writes so far are stored, and
a body that writes again later takes the turn again, as any write after the response started
does.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..cluster.heartbeat import ThreadHeartbeat
from ..core.flow import excluded
from ..errors import StickyctxError, http_error
from ..sansio import run_sync
from ..session.handle import SyncConversation
from ..session.logic import Session
from .request import SAFE_METHODS, Edge, identify, response_headers

__all__ = ["StickyWSGIMiddleware"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

logger = logging.getLogger("stickyctx")

_STATUS_TEXT = {409: "Conflict", 410: "Gone", 413: "Content Too Large",
                422: "Unprocessable Content", 503: "Service Unavailable"}


def _error_head(status: int, payload: bytes) -> tuple[str, list[tuple[str, str]]]:
    return f"{status} {_STATUS_TEXT[status]}", [("Content-Type", "application/json"),
                                                ("Content-Length", str(len(payload)))]


class StickyWSGIMiddleware(Edge[WSGIApp]):
    """Wrap any WSGI app (see ``Edge`` for the arguments)."""

    def _configure(self) -> None:
        idem = self.services.idempotency_header
        self._idempotency = "HTTP_" + idem.upper().replace("-", "_") if idem else None
        self.heartbeat = (ThreadHeartbeat(self.services.members, self.store)
                          if self.services.members.dynamic else None)
        if self.heartbeat is not None:
            atexit.register(self.heartbeat.stop)  # a clean shutdown leaves at once
        self._unfinished = threading.local()  # .bodies: this thread's bodies not yet finished

    def _bodies(self) -> weakref.WeakSet[_Closing]:
        bodies: weakref.WeakSet[_Closing] | None = getattr(self._unfinished, "bodies", None)
        if bodies is None:
            bodies = self._unfinished.bodies = weakref.WeakSet()
        return bodies

    def _release_held_here(self, session_id: str) -> None:
        """Release the turn of this thread's unfinished bodies of session ``session_id``
        (see the module's docstring): waiting for them would wait for this thread itself."""
        for body in list(self._bodies()):
            held = body.session
            # Only after its response started (its turn settled): before, an app that calls
            # start_response lazily may still answer an error, which must store nothing.
            if (held.state.session_id != session_id or not held.holds_turn
                    or not held.turn.committed):
                continue
            logger.debug("stickyctx: releasing the turn of an unread response body of this "
                         "session (a test client's earlier response)")
            try:
                run_sync(held.unlock(), self.store.sync_io)
            except Exception:  # this request then waits for the turn as usual
                logger.warning("stickyctx: releasing an unread body's turn failed", exc_info=True)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.exclude_paths and excluded(
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), self.exclude_paths):
            return self.app(environ, start_response)  # no session, no headers, no handle
        if self.heartbeat is not None:
            self.heartbeat.ensure_started()
        services = self.services
        cookie = environ.get("HTTP_COOKIE")
        idempotency = environ.get(self._idempotency) if self._idempotency else None
        state = identify(services, [cookie] if cookie else [],
                         environ.get("HTTP_X_STICKYCTX_SESSION"))
        session = Session(services, self.store, state, auto_lock=self._auto_lock,
                          idempotency_key=idempotency or None,
                          locks_reads=environ.get("REQUEST_METHOD") not in SAFE_METHODS)
        bodies = self._bodies()
        if bodies and not state.is_new:
            self._release_held_here(state.session_id)
        environ["stickyctx"] = SyncConversation(session)
        environ["HTTP_X_STICKYCTX_OWNER"] = state.owner
        environ["HTTP_X_STICKYCTX_AFFINITY"] = state.affinity
        started = False
        replacement: list[bytes] = []  # our answer, when the app's turn could not be stored

        def start_with_session(status: str, headers: list[tuple[str, str]],
                               exc_info: Any = None) -> Any:
            nonlocal started
            if not started and session.settles:
                try:  # the turn commits (or rolls back) before the client sees a status
                    run_sync(session.settle(int(status[:3])), self.store.sync_io)
                except StickyctxError as exc:
                    answer = http_error(exc)
                    if answer is None:
                        raise
                    replacement.append(answer[1])
                    status, headers = _error_head(*answer)
            started = True
            added = response_headers(services, state,
                                     [v for k, v in headers if k.lower() == "vary"])
            self.plain_http.check(added, environ.get("wsgi.url_scheme", "http"),
                                  environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
                                  environ.get("HTTP_X_FORWARDED_PROTO"))
            return start_response(status, [*headers, *added], exc_info)

        def finish() -> None:
            try:
                if session.finishes:
                    run_sync(session.finish(), self.store.sync_io)
            except Exception:  # the response is already decided; never fail it here
                logger.warning("stickyctx: releasing the turn lock failed", exc_info=True)

        try:
            body = self.app(environ, start_with_session)
        except StickyctxError as exc:
            answer = http_error(exc)
            if started or answer is None:
                finish()
                raise
            start_with_session(*_error_head(*answer))
            body = replacement or [answer[1]]
        except BaseException:
            finish()
            raise
        if replacement:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            body = replacement
        closing = _Closing(body, finish, session)
        bodies.add(closing)
        return closing


class _Closing:
    """Iterate the app's body; release the request's session resources once it is exhausted
    (so that a server that delays ``close()`` does not delay the next turn), and always close it.
    """

    __slots__ = ("__weakref__", "_body", "_finish", "_finished", "session")

    def __init__(self, body: Iterable[bytes], finish: Callable[[], None],
                 session: Session) -> None:
        self._body = body
        self._finish = finish
        self._finished = False
        self.session = session

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._release()

    def _release(self) -> None:
        if not self._finished:
            self._finished = True
            self._finish()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._release()
