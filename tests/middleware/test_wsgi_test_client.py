"""``StickyWSGIMiddleware`` under Flask's test client, whose responses are read only when asked.

A streamed body that writes to the session holds its turn until it is exhausted or closed; the
test client runs the next request in the same thread while that body is unread. The next request
of the session must be served (not wait for a turn only this thread could release), the body's
writes must all be stored, and a body of another session must keep its turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest

from stickyctx import Settings, StickyWSGIMiddleware
from stickyctx.flask import StickyCtx, current_context

from ..conftest import KEY_A


def make_app(install: str) -> flask.Flask:
    app = flask.Flask("stickyctx_test_client")

    @app.post("/chat")
    def chat() -> Any:
        conv = current_context()
        conv.append("user", flask.request.get_json()["message"])

        def stream() -> Iterator[str]:
            yield "first chunk;"
            conv.append("assistant", "written while streaming")
            yield "second chunk;"
            conv.append("assistant", "written at the end")
            yield "done"

        return flask.Response(stream(), mimetype="text/plain")

    @app.get("/history")
    def history() -> Any:
        return {"messages": [m["content"] for m in current_context().messages()]}

    # turn_timeout bounds a regression: a request waiting for the turn fails busy in 5 s.
    settings = Settings(secret_keys=(KEY_A,), node_id="n1", cookie_secure=False, turn_timeout=5)
    if install == "extension":
        StickyCtx(app, settings)
    else:
        app.wsgi_app = StickyWSGIMiddleware(app.wsgi_app, settings)  # type: ignore[method-assign]
    return app


@pytest.fixture(params=["extension", "middleware"])
def app(request: pytest.FixtureRequest) -> flask.Flask:
    return make_app(request.param)


def test_a_next_request_is_served_while_a_streamed_body_is_half_read(app: flask.Flask) -> None:
    client = app.test_client()
    first = client.post("/chat", json={"message": "hello"})
    chunks = iter(first.response)
    assert next(chunks) == b"first chunk;"
    assert next(chunks) == b"second chunk;"  # it wrote, and holds the turn, mid-body

    during = client.get("/history")
    assert during.status_code == 200
    assert during.get_json()["messages"] == ["hello", "written while streaming"]

    assert b"".join(chunks) == b"done"  # the body goes on and writes again
    first.close()
    after = client.get("/history")
    assert after.get_json()["messages"] == ["hello", "written while streaming",
                                            "written at the end"]


def test_an_unread_body_of_another_session_is_not_disturbed(app: flask.Flask) -> None:
    one, other = app.test_client(), app.test_client()
    first = one.post("/chat", json={"message": "one"})
    chunks = iter(first.response)
    next(chunks)
    next(chunks)  # holds session one's turn
    second = other.post("/chat", json={"message": "other"})
    assert second.get_data() == b"first chunk;second chunk;done"
    # Session one's body still holds its turn: it finishes its writes undisturbed.
    assert b"".join(chunks) == b"done"
    first.close()
    assert one.get("/history").get_json()["messages"] == [
        "one", "written while streaming", "written at the end"]
    assert other.get("/history").get_json()["messages"] == [
        "other", "written while streaming", "written at the end"]
