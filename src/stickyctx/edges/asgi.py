"""``StickyMiddleware``: the ASGI edge (HTTP and WebSocket; lifespan passes through).

Pure ASGI, no Starlette import: it reads the request's headers, asks the engine to identify the
session, exposes the handle in ``scope["state"]["stickyctx"]``, annotates the request headers,
adds its headers when the response starts (``http.response.start`` / ``websocket.accept``) and
releases what the request held when the app returns.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..cluster.heartbeat import AsyncHeartbeat
from ..core.flow import AFFINITY_ANNOTATION, OWNER_ANNOTATION, SESSION_HEADER, excluded
from ..errors import ConfigError, StickyctxError, http_error
from ..sansio import run_async
from ..session.handle import Conversation
from ..session.logic import Session
from .request import SAFE_METHODS, Edge, identify, response_headers

__all__ = ["StickyMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("stickyctx")

_SESSION = SESSION_HEADER.encode()
_OWNER = OWNER_ANNOTATION.encode()
_AFFINITY = AFFINITY_ANNOTATION.encode()
_START = frozenset({"http.response.start", "websocket.accept"})


def _error_start(status: int, body: bytes) -> Message:
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]}


def _built_by_starlette() -> bool:
    """Whether Starlette is building its middleware stack (``app.add_middleware``): it does so
    inside the first event it receives, the lifespan startup, where uvicorn's default lifespan
    mode ("auto") takes any exception for "lifespan unsupported" and serves on."""
    frame = inspect.currentframe()
    for _ in range(8):
        if frame is None:
            return False
        if frame.f_code.co_name == "build_middleware_stack":  # Starlette's, or FastAPI's
            return True
        frame = frame.f_back
    return False


class StickyMiddleware(Edge[ASGIApp]):
    """Wrap any ASGI app (see ``Edge`` for the arguments).

    A configuration error is raised at construction; when Starlette constructs the middleware
    (``app.add_middleware``), it is reported at the lifespan startup instead
    (``lifespan.startup.failed``, naming the variable), so that the server stops rather than
    answer 500 on every route (uvicorn, Hypercorn and Granian stop on it in every lifespan
    mode that runs the lifespan).
    """

    def _defers(self, error: ConfigError) -> bool:
        return _built_by_starlette()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = self.config_error
        assert error is not None
        if scope["type"] != "lifespan":
            raise error  # (a server that runs no lifespan: every request fails, loudly)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                logger.error("stickyctx: the configuration is invalid: %s", error)
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _configure(self) -> None:
        idem = self.services.idempotency_header
        self._idempotency = idem.encode() if idem else None
        self.heartbeat = (AsyncHeartbeat(self.services.members, self.store)
                          if self.services.members.dynamic else None)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass lifespan through; join the membership at startup, leave it at shutdown."""
        heartbeat = self.heartbeat
        if heartbeat is None:
            await self.app(scope, receive, send)
            return

        async def receive_and_leave() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await heartbeat.stop(leave=True)
            return message

        async def send_and_join(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await heartbeat.beat()  # a first view before the first request
                except Exception as exc:  # noqa: BLE001 - the loop retries; serve meanwhile
                    logger.warning("stickyctx: first membership heartbeat failed: %s", exc)
                heartbeat.ensure_started()
            await send(message)

        await self.app(scope, receive_and_leave, send_and_join)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.config_error is not None:
            await self._refuse(scope, receive, send)
            return
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self.exclude_paths and excluded(scope.get("path", ""), self.exclude_paths):
            await self.app(scope, receive, send)  # no session, no headers, no handle
            return
        if self.heartbeat is not None:
            self.heartbeat.ensure_started()

        cookies: list[str] = []
        host = ""
        forwarded_proto: str | None = None
        session_header: str | None = None
        idempotency: str | None = None
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookies.append(value.decode("latin-1"))
            elif name == _SESSION:
                # Two session headers are ambiguous: start afresh rather than pick one.
                session_header = "new" if session_header is not None else value.decode("latin-1")
            elif name in (_OWNER, _AFFINITY):
                continue  # never let a client forge our annotations
            elif name == self._idempotency:
                idempotency = value.decode("latin-1")  # compared whole (hashed)
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"x-forwarded-proto":
                forwarded_proto = value.decode("latin-1")
            headers.append((name, value))

        services = self.services
        state = identify(services, cookies, session_header)
        if kind == "websocket":
            state.used = True  # its accept is a socket's only chance to send cookies
        session = Session(services, self.store, state,
                          auto_lock=self._auto_lock and kind == "http",
                          idempotency_key=idempotency,
                          locks_reads=scope.get("method") not in SAFE_METHODS)
        headers.append((_OWNER, state.owner.encode()))
        headers.append((_AFFINITY, state.affinity.encode()))
        scope = dict(scope)
        scope["headers"] = headers
        # The per-request state dict is shared with the server and outer middleware: set our
        # handle in it rather than in a copy, so that everyone sees the same state.
        app_state = scope.get("state")
        if app_state is None:
            app_state = scope["state"] = {}
        app_state["stickyctx"] = Conversation(session)

        started = False
        scheme = scope.get("scheme") or ("ws" if kind == "websocket" else "http")

        def ours(app_headers: Any) -> list[tuple[bytes, bytes]]:
            """Our headers for a response whose own headers are ``app_headers``."""
            vary = [v.decode("latin-1") for k, v in app_headers if k.lower() == b"vary"]
            added = response_headers(services, state, vary)
            self.plain_http.check(added, scheme, host, forwarded_proto)
            return [(k.encode(), v.encode("latin-1")) for k, v in added]

        replaced = False  # the app's response gave way to ours: its turn could not be stored

        async def send_with_session(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and not started and session.settles:
                try:  # the turn commits (or rolls back) before the client sees a status
                    await run_async(session.settle(message["status"]), self.store.async_io)
                except StickyctxError as exc:
                    answer = http_error(exc)
                    if answer is None:
                        raise
                    replaced = True
                    start = _error_start(*answer)
                    start["headers"] = [*start["headers"], *ours(())]
                    started = True
                    await send(start)
                    await send({"type": "http.response.body", "body": answer[1]})
                    return
            if message["type"] in _START:
                started = True
                app_headers = message.get("headers", ())
                message["headers"] = [*app_headers, *ours(app_headers)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StickyctxError as exc:
            answer = http_error(exc)
            if started or answer is None or kind != "http":
                raise
            await send_with_session(_error_start(*answer))
            if not replaced:
                await send({"type": "http.response.body", "body": answer[1]})
        finally:
            try:
                if session.finishes:
                    await run_async(session.finish(), self.store.async_io)
            except Exception:  # the response is already decided; never fail it here
                logger.warning("stickyctx: releasing the turn lock failed", exc_info=True)
