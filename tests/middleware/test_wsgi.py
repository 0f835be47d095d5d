"""What only the WSGI edge does: the body iterable's ``close()``, releasing the turn once the
body is exhausted, error answers without Flask, and finding the handle from Flask or an environ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import flask
import pytest
from werkzeug.test import EnvironBuilder

from stickyctx import (
    NoContextError,
    SessionBusyError,
    StickyWSGIMiddleware,
    SyncConversation,
    get_context,
)
from stickyctx.flask import StickyCtx, current_context

from ..conftest import FakeClock, make_settings
from ..edges import Req, make_store, parse_set_cookie, wsgi_request

Environ = dict[str, Any]


class Body:
    """A response body that records how it was consumed and whether it was closed."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("the body failed while streaming")
            yield chunk

    def close(self) -> None:
        self.closed += 1


class Captured:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        self.headers = headers
        return lambda data: None

    def cookie(self) -> str:
        values = [parse_set_cookie(v) for k, v in self.headers if k.lower() == "set-cookie"]
        return "; ".join(f"{c.name}={c.value}" for c in values)


def environ(path: str = "/", cookie: str | None = None) -> Environ:
    headers = {"Cookie": cookie} if cookie else {}
    env: Environ = EnvironBuilder(path=path, headers=headers).get_environ()
    return env


def wrap(app: Callable[[Environ, Any], Iterable[bytes]], clock: FakeClock,
         **changes: Any) -> StickyWSGIMiddleware:
    settings = make_settings(**changes)
    return StickyWSGIMiddleware(app, settings, store=make_store(settings, clock), clock=clock)


def sibling(mw: StickyWSGIMiddleware, app: Callable[[Environ, Any], Iterable[bytes]],
            ) -> StickyWSGIMiddleware:
    """Another app behind the same settings, store and clock (one node, another route)."""
    return StickyWSGIMiddleware(app, mw.settings, store=mw.store, clock=mw.services.clock)


class Touching:
    """A raw WSGI app that takes the session's turn (by reading the context) and answers with a
    new ``Body`` each time; ``bodies`` keeps them.
    """

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.bodies: list[Body] = []

    def __call__(self, env: Environ, start_response: Any) -> Iterable[bytes]:
        env["stickyctx"].messages()
        start_response("200 OK", [("Content-Type", "text/plain")])
        self.bodies.append(Body(self.chunks, self.fail_at))
        return self.bodies[-1]


def session_cookie(mw: StickyWSGIMiddleware) -> str:
    """Start a session through ``mw``; its cookie header value."""
    captured = Captured()
    result = mw(environ(), captured)
    list(result)
    result.close()  # type: ignore[attr-defined]
    return captured.cookie()


def second_status(mw: StickyWSGIMiddleware, cookie: str) -> str:
    captured = Captured()
    result = mw(environ(cookie=cookie), captured)
    list(result)
    result.close()  # type: ignore[attr-defined]
    return captured.status


@pytest.mark.parametrize(("consume", "fails"), [
    pytest.param("all", None, id="fully-iterated"),
    pytest.param("none", None, id="never-iterated"),
    pytest.param("one", None, id="client-went-away"),
    pytest.param("all", 1, id="body-raised"),
])
def test_close_is_always_called_and_the_turn_released(
    clock: FakeClock, consume: str, fails: int | None,
) -> None:
    app = Touching([b"a", b"b", b"c"], fail_at=fails)
    mw = wrap(app, clock, turn_timeout=0)
    ok = sibling(mw, Touching([b"ok"]))
    cookie = session_cookie(ok)

    result = mw(environ(cookie=cookie), Captured())
    [body] = app.bodies
    iterator = iter(result)
    if consume == "one":
        next(iterator)
    elif consume == "all":
        if fails is None:
            assert list(iterator) == [b"a", b"b", b"c"]
        else:
            with pytest.raises(RuntimeError):
                list(iterator)
    result.close()  # type: ignore[attr-defined]

    assert body.closed == 1
    assert second_status(ok, cookie) == "200 OK"  # the turn was released


def test_a_read_turn_ends_when_the_response_starts_not_when_its_body_ends(
        clock: FakeClock) -> None:
    app = Touching([b"a", b"b"])
    mw = wrap(app, clock, turn_timeout=0)
    ok = sibling(mw, Touching([b"ok"]))
    cookie = session_cookie(ok)

    result = mw(environ(cookie=cookie), Captured())
    iterator = iter(result)
    assert next(iterator) == b"a"
    # The turn settled when the response started: a body still streaming holds nothing (a test
    # client that reads bodies late does not block the next request).
    assert second_status(ok, cookie) == "200 OK"
    assert list(iterator) == [b"b"]
    result.close()  # type: ignore[attr-defined]


class WritingBody(Body):
    """A body that appends to the session while it streams (a reply stored at its end)."""

    def __init__(self, env: Environ, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self.env = env

    def __iter__(self) -> Iterator[bytes]:
        yield from super().__iter__()
        self.env["stickyctx"].append("assistant", "stored at the end of the stream")


def test_a_body_that_writes_holds_the_turn_until_it_is_exhausted_before_close(
        clock: FakeClock) -> None:
    bodies: list[WritingBody] = []

    def app(env: Environ, start_response: Any) -> Iterable[bytes]:
        env["stickyctx"].append("user", "question")
        start_response("200 OK", [("Content-Type", "text/plain")])
        bodies.append(WritingBody(env, [b"a", b"b"]))
        return bodies[-1]

    mw = wrap(app, clock, turn_timeout=0)
    ok = sibling(mw, Touching([b"ok"]))
    cookie = session_cookie(ok)
    result = mw(environ(cookie=cookie), Captured())
    iterator = iter(result)
    assert next(iterator) == b"a"
    assert list(iterator) == [b"b"]  # the append at the end took the turn again...
    assert bodies[0].closed == 0
    assert second_status(ok, cookie) == "200 OK"  # ...and released it once exhausted
    result.close()  # type: ignore[attr-defined]
    assert bodies[0].closed == 1
    reader = Touching([b"ok"])
    history = sibling(mw, reader)
    captured = Captured()
    listed = history(environ(cookie=cookie), captured)
    list(listed)
    listed.close()  # type: ignore[attr-defined]


def test_a_stickyctx_error_from_a_plain_wsgi_app_gets_its_http_answer(clock: FakeClock) -> None:
    def app(env: Environ, start_response: Any) -> Iterable[bytes]:
        env["stickyctx"].messages()  # takes the turn; the answer must still release it
        raise SessionBusyError(0.5)

    mw = wrap(app, clock, turn_timeout=0)
    reply = wsgi_request(mw, Req("GET", "/"))
    assert reply.status == 409
    assert reply.header("content-type") == "application/json"
    assert reply.json()["error"] == "session_busy"
    assert reply.header("x-stickyctx-affinity") == "new"
    assert "stickyctx" in reply.cookies
    cookie = "; ".join(f"{c.name}={c.value}" for c in reply.cookies.values())
    assert second_status(sibling(mw, Touching([b"ok"])), cookie) == "200 OK"


def test_any_other_error_propagates_and_releases_the_turn(clock: FakeClock) -> None:
    def app(env: Environ, start_response: Any) -> Iterable[bytes]:
        env["stickyctx"].messages()
        raise KeyError("app bug")

    mw = wrap(app, clock, turn_timeout=0)
    ok = sibling(mw, Touching([b"ok"]))
    cookie = session_cookie(ok)
    with pytest.raises(KeyError):
        mw(environ(cookie=cookie), Captured())
    assert second_status(ok, cookie) == "200 OK"


def test_the_handle_from_an_environ_and_from_a_flask_request(clock: FakeClock) -> None:
    seen: dict[str, Any] = {}
    app = flask.Flask("handles")

    @app.get("/")
    def index() -> Any:
        from_request = get_context(flask.request)
        from_environ = get_context(flask.request.environ)
        seen["same"] = from_request is from_environ is current_context()
        seen["type"] = type(from_request)
        return {"id": from_request.session_id}

    settings = make_settings()
    ext = StickyCtx(settings=settings, store=make_store(settings, clock), clock=clock)
    ext.init_app(app)  # the application-factory form
    reply = wsgi_request(app, Req("GET", "/"))
    assert reply.status == 200
    assert seen == {"same": True, "type": SyncConversation}
    assert app.extensions["stickyctx"] is ext


def test_no_handle_without_the_middleware() -> None:
    app = flask.Flask("bare")
    errors: list[type[BaseException]] = []

    @app.get("/")
    def index() -> Any:
        for call in (lambda: get_context(flask.request), lambda: get_context(flask.request.environ),
                     current_context):
            try:
                call()
            except NoContextError:
                errors.append(NoContextError)
        return "ok"

    assert wsgi_request(app, Req("GET", "/")).status == 200
    assert errors == [NoContextError] * 3
    with pytest.raises(NoContextError):
        get_context(environ())
