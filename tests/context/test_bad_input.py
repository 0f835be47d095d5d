"""Bad messages get a typed error from the handle, and a JSON error response through the
middleware (ASGI and WSGI, with or without a framework); nothing of them is stored."""

from __future__ import annotations

from typing import Any

import pytest

from stickyctx import InvalidMessageError, MessageTooLargeError

from .apps import EDGES, Build, PostAll
from .backends import MEMORY, REDIS, Backing, on
from .harness import Chat, Driver, settings_for

BAD = [
    pytest.param({"role": "wizard", "content": "hello"}, id="unknown-role"),
    pytest.param({"role": "User", "content": "hello"}, id="role-in-the-wrong-case"),
    pytest.param({"role": "user", "content": 42}, id="number-content"),
    pytest.param({"role": "user", "content": {"text": "hello"}}, id="dict-content"),
    pytest.param({"role": "user", "content": None}, id="no-content-without-tool-calls"),
    pytest.param({"role": "user", "content": [{"text": "no type"}]}, id="part-without-type"),
    pytest.param({"role": "user", "content": ["plain string part"]}, id="part-not-a-dict"),
]


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("message", BAD)
def test_the_handle_refuses_a_bad_message(kind: Driver, message: dict[str, Any]) -> None:
    chat = Chat(kind, settings_for())
    with chat.turn() as request:
        request.append("user", "a good one first")
        before = request.token_count()
        with pytest.raises(InvalidMessageError):
            request.append(message["role"], message["content"])
        with pytest.raises(InvalidMessageError):
            request.extend([{"role": "user", "content": "fine"}, message])
        assert request.messages() == [{"role": "user", "content": "a good one first"}]
        assert request.token_count() == before


@on(*MEMORY, *REDIS)
def test_the_handle_refuses_content_that_is_not_text(kind: Driver) -> None:
    chat = Chat(kind, settings_for())
    with chat.turn() as request:
        for content in (b"bytes", 3.5, ("a", "tuple"), object()):
            with pytest.raises(InvalidMessageError):
                request.append("user", content)
        for extra in (object(), float("nan"), {"nested": {1, 2}}):
            with pytest.raises(InvalidMessageError):  # extra fields must be JSON
                request.append("user", "hi", metadata=extra)
        assert request.messages() == []


# Through the edges on the memory store: a bad message is refused before the store is reached,
# and the handle tests above check that nothing of it is stored, on every kind.
@pytest.mark.parametrize(("build", "post_all"), EDGES)
@pytest.mark.parametrize("message", BAD)
def test_a_bad_message_is_a_422_json_answer(
    build: Build, post_all: PostAll, message: dict[str, Any],
) -> None:
    settings = settings_for()
    app = build(settings, Backing.memory(settings))
    good = {"role": "user", "content": "hello"}
    answers = post_all(app, [good, message, good])
    assert answers[0][0] == 200
    status, content_type, body = answers[1]
    assert (status, content_type) == (422, "application/json")
    assert body["error"] == "invalid_message"
    assert body["detail"]
    assert answers[2][0] == 200
    assert answers[2][2]["seq"] == 2
    assert answers[2][2]["messages"] == [good, good]


@pytest.mark.parametrize(("build", "post_all"), EDGES)
def test_a_message_over_the_size_limit_is_a_413_json_answer(
    build: Build, post_all: PostAll,
) -> None:
    settings = settings_for(max_message_bytes=500)
    app = build(settings, Backing.memory(settings))
    [(status, content_type, body)] = post_all(app, [{"role": "user", "content": "x" * 600}])
    assert (status, content_type, body["error"]) == (413, "application/json",
                                                     "message_too_large")
    assert issubclass(MessageTooLargeError, InvalidMessageError)  # handled before the 422 rule
