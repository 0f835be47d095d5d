"""The example chat apps (FastAPI and Flask) and the ``stickyctx.chat_example`` pieces they share.

Each example is driven through its framework's test client, and the FastAPI one also through a
real uvicorn process; the OpenAI-compatible backend is exercised against a local HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from stickyctx.chat_example import _NAME as NAME_EXPRESSION
from stickyctx.chat_example import CHAT_PAGE, Backend, BackendError, areply, offline_reply, reply
from stickyctx.cli.demo import load_example
from stickyctx.core.tokenizer import load_tokenizer

from ..conftest import KEY_A, AppServer

COOKIE = "stickyctx"
COOKIES = (COOKIE, "stickyctx_node")
EXAMPLE_ENV = {
    "STICKYCTX_SECRET_KEYS": KEY_A,
    "STICKYCTX_NODE_ID": "n1",
    "STICKYCTX_COOKIE_SECURE": "0",
}


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Only the variables a test sets: nothing from the developer's shell leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(EXAMPLE_ENV)


# One way to drive the three servers -------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str


class HttpxDriver:
    """A Starlette TestClient or an httpx.Client against a real server: both are httpx."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, path: str, *, json: Any = None,
                raw: bytes | None = None) -> Reply:
        kwargs: dict[str, Any] = {"json": json} if raw is None else {
            "content": raw, "headers": {"content-type": "application/json"}}
        response = self.client.request(method, path, **kwargs)
        content_type = response.headers.get("content-type", "")
        body = response.json() if "json" in content_type else response.text
        return Reply(response.status_code, body, content_type)

    def cookie(self, name: str) -> str | None:
        return self.client.cookies.get(name)

    def saved_cookies(self) -> Any:
        return list(self.client.cookies.jar)

    def forget_cookies(self) -> None:
        self.client.cookies.clear()

    def restore_cookies(self, saved: Any) -> None:
        self.forget_cookies()
        for cookie in saved:
            self.client.cookies.jar.set_cookie(cookie)


class FlaskDriver:
    def __init__(self, client: Any) -> None:
        self.client = client

    def request(self, method: str, path: str, *, json: Any = None,
                raw: bytes | None = None) -> Reply:
        kwargs: dict[str, Any] = {"json": json} if raw is None else {
            "data": raw, "content_type": "application/json"}
        response = self.client.open(path, method=method, **kwargs)
        body = response.get_json() if response.is_json else response.get_data(as_text=True)
        return Reply(response.status_code, body, response.content_type)

    def cookie(self, name: str) -> str | None:
        found = self.client.get_cookie(name)
        return None if found is None else str(found.value)

    def saved_cookies(self) -> Any:
        return {name: value for name in COOKIES if (value := self.cookie(name)) is not None}

    def forget_cookies(self) -> None:
        for name in COOKIES:
            self.client.delete_cookie(name)

    def restore_cookies(self, saved: Any) -> None:
        self.forget_cookies()
        for name, value in saved.items():
            self.client.set_cookie(name, value)


Driver = HttpxDriver | FlaskDriver


@pytest.fixture(params=[
    pytest.param("fastapi", id="fastapi-testclient"),
    pytest.param("flask", id="flask-testclient"),
    pytest.param("uvicorn", id="fastapi-uvicorn"),
])
def driver(request: pytest.FixtureRequest, example_env: dict[str, str],
           app_server: Callable[..., AppServer]) -> Iterator[Driver]:
    if request.param == "fastapi":
        with TestClient(load_example("fastapi")) as client:
            yield HttpxDriver(client)
    elif request.param == "flask":
        yield FlaskDriver(load_example("flask").test_client())
    else:
        server = app_server("examples.fastapi.app:app", example_env)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield HttpxDriver(client)


# The examples -----------------------------------------------------------------------------

TURNS = [
    "Hello, my name is Ada.",
    "What is the capital of France?",
    "Tell me a joke",
    "How many messages so far?",
    "Goodbye!",
]


def test_five_turns_keep_their_history(driver: Driver) -> None:
    replies = []
    for number, text in enumerate(TURNS, start=1):
        answer = driver.request("POST", "/chat", json={"message": text})
        assert answer.status == 200, answer.body
        body = answer.body
        assert set(body) == {"reply", "node", "owner", "affinity", "turns", "tokens"}
        assert body["turns"] == number
        assert body["affinity"] == ("new" if number == 1 else "hit")
        assert (body["node"], body["owner"]) == ("n1", "n1")
        assert f'You said "{text}"' in body["reply"]
        replies.append(body)
    # The name from turn 1 is remembered: the window the reply saw held the whole conversation.
    assert "Nice to meet you, Ada!" in replies[0]["reply"]
    assert "I remember your name: Ada." in replies[-1]["reply"]
    assert 'before that you said "How many messages so far?"' in replies[-1]["reply"]
    tokens = [r["tokens"] for r in replies]
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)

    history = driver.request("GET", "/history")
    assert history.status == 200
    messages = history.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 5
    assert [m["content"] for m in messages[0::2]] == TURNS
    assert [m["content"] for m in messages[1::2]] == [r["reply"] for r in replies]
    # ``tokens`` is the stored total, counted as the chat API counts it.
    assert tokens[-1] == load_tokenizer("cl100k_base").count_messages(messages)


def test_conversations_are_isolated(driver: Driver) -> None:
    driver.request("POST", "/chat", json={"message": "my name is Grace"})
    assert driver.cookie(COOKIE)
    driver.forget_cookies()  # a new browser
    assert driver.cookie(COOKIE) is None
    answer = driver.request("POST", "/chat", json={"message": "who am I?"})
    assert answer.body["turns"] == 1
    assert answer.body["affinity"] == "new"
    assert "Grace" not in answer.body["reply"]


def test_page_and_healthz(driver: Driver) -> None:
    page = driver.request("GET", "/")
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert page.body == CHAT_PAGE
    health = driver.request("GET", "/healthz")
    assert health.status == 200
    assert health.body["node"] == "n1"
    assert {k: v for k, v in health.body["store"].items() if k != "detail"} == {
        "kind": "memory", "ok": True}
    assert driver.cookie("stickyctx") is None  # neither the page nor the check made a session


@pytest.mark.parametrize(("payload", "raw"), [
    pytest.param({}, None, id="missing"),
    pytest.param({"message": 5}, None, id="not-a-string"),
    pytest.param({"message": None}, None, id="null"),
    pytest.param({"message": ""}, None, id="empty"),
    pytest.param({"message": "  \n "}, None, id="blank"),
    pytest.param(["message"], None, id="not-an-object"),
    pytest.param(None, b"{not json", id="not-json"),
])
def test_bad_input_is_422_and_stores_nothing(driver: Driver, payload: Any,
                                             raw: bytes | None) -> None:
    answer = driver.request("POST", "/chat", json=payload, raw=raw)
    assert answer.status == 422
    assert "json" in answer.content_type
    assert "detail" in answer.body
    good = driver.request("POST", "/chat", json={"message": "hi"})
    assert good.body["turns"] == 1


def test_delete_session_then_replayed_cookie_starts_afresh(driver: Driver) -> None:
    driver.request("POST", "/chat", json={"message": "my name is Alan"})
    driver.request("POST", "/chat", json={"message": "second"})
    old = driver.cookie(COOKIE)
    assert old
    saved = driver.saved_cookies()

    gone = driver.request("DELETE", "/session")
    assert (gone.status, gone.body) == (200, {"destroyed": True})
    assert driver.cookie(COOKIE) is None  # the cookie was expired

    driver.restore_cookies(saved)  # a stale or stolen copy of the old cookies is replayed
    assert driver.cookie(COOKIE) == old
    answer = driver.request("POST", "/chat", json={"message": "do you know me?"})
    assert answer.status == 200
    assert answer.body["affinity"] == "new"
    assert answer.body["turns"] == 1
    assert "Alan" not in answer.body["reply"]
    assert driver.cookie(COOKIE) not in (None, old)
    history = driver.request("GET", "/history").body["messages"]
    assert [m["content"] for m in history[0::2]] == ["do you know me?"]


# The backend of the examples, against a local OpenAI-compatible server ------------------------


class ChatServer:
    """A small OpenAI-compatible ``/chat/completions`` endpoint on a free loopback port."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.status = 200
        self.answer: Any = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                owner.requests.append((self.path, dict(self.headers), body))
                default = {"choices": [{"message": {"role": "assistant",
                                                    "content": f"{len(body['messages'])} seen"}}]}
                data = json.dumps(owner.answer if owner.answer is not None else default).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize(("environ", "expected"), [
    pytest.param({}, None, id="offline"),
    pytest.param({"OPENAI_API_KEY": " "}, None, id="blank-key"),
    pytest.param({"OPENAI_API_KEY": "sk-test"},
                 Backend("https://api.openai.com/v1", "sk-test", "gpt-4o-mini"), id="key-only"),
    pytest.param({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "STICKYCTX_DEMO_MODEL": "local"},
                 Backend("http://127.0.0.1:9/v1", None, "local"), id="url-and-model"),
])
def test_backend_from_env(environ: dict[str, str], expected: Backend | None) -> None:
    assert Backend.from_env(environ) == expected


def test_backend_speaks_chat_completions(chat_server: ChatServer) -> None:
    backend = Backend(chat_server.url, "sk-test", "tiny", timeout=10)
    window = [{"role": "system", "content": "be brief"},
              {"role": "user", "content": "hi", "turn_id": "app-field"}]
    assert backend.complete(window) == "2 seen"
    path, headers, body = chat_server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {"model": "tiny", "messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "hi"}]}
    assert "sk-test" not in repr(backend)


def test_reply_and_areply_use_the_configured_backend(chat_server: ChatServer) -> None:
    environ = {"OPENAI_BASE_URL": chat_server.url}
    window = [{"role": "user", "content": "hi"}]
    assert reply(window, environ=environ) == "1 seen"
    assert asyncio.run(areply(window, environ=environ)) == "1 seen"
    assert "Authorization" not in chat_server.requests[0][1]
    assert reply(window, environ={}) == offline_reply(window)
    assert asyncio.run(areply(window, environ={})) == offline_reply(window)


@pytest.mark.parametrize(("status", "answer", "message"), [
    pytest.param(500, {"error": "boom"}, "HTTP 500", id="error-status"),
    pytest.param(200, {"choices": []}, "not a chat completion", id="no-choices"),
    pytest.param(200, {"choices": [{"message": {"content": None}}]}, "no text", id="no-text"),
])
def test_backend_failures_are_clear(chat_server: ChatServer, status: int, answer: Any,
                                    message: str) -> None:
    chat_server.status, chat_server.answer = status, answer
    with pytest.raises(BackendError, match=message):
        Backend(chat_server.url, timeout=10).complete([{"role": "user", "content": "hi"}])


def test_backend_unreachable_or_silent_fails_within_its_timeout(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(BackendError, match="unreachable"):
        Backend(silent_server, timeout=0.3).complete([{"role": "user", "content": "hi"}])
    assert time.monotonic() - started < 5
    with pytest.raises(BackendError, match="http:// or https://"):
        Backend("ftp://example.invalid").complete([])


@pytest.mark.parametrize("kind", ["fastapi", "flask"])
def test_examples_answer_from_the_backend_or_502(kind: str, example_env: dict[str, str],
                                                 chat_server: ChatServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.url)
    monkeypatch.setenv("STICKYCTX_DEMO_MODEL", "tiny")
    app = load_example(kind)  # type: ignore[arg-type]
    driver: Driver = (HttpxDriver(TestClient(app)) if kind == "fastapi"
                      else FlaskDriver(app.test_client()))
    answer = driver.request("POST", "/chat", json={"message": "hi"})
    assert answer.status == 200
    assert answer.body["reply"] == "2 seen"  # the system prompt and the user message
    sent = chat_server.requests[0][2]
    assert sent["model"] == "tiny"
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][1] == {"role": "user", "content": "hi"}

    chat_server.status = 503
    failed = driver.request("POST", "/chat", json={"message": "again"})
    assert failed.status == 502
    assert failed.body["error"] == "backend_failed"


# Offline replies ------------------------------------------------------------------------------


def test_offline_reply_is_deterministic_and_remembers() -> None:
    window = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi, MY NAME IS Lovelace."},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": [{"type": "text", "text": "what   is\nmy name?"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ]
    first = offline_reply(window)
    assert first == offline_reply([dict(m) for m in window])
    assert first == ('You said "what is my name?". That was message 2 of our conversation; '
                     'before that you said "hi, MY NAME IS Lovelace.". '
                     "I remember your name: Lovelace.")


@pytest.mark.parametrize(("window", "expected"), [
    pytest.param([], "Hello!", id="empty"),
    pytest.param([{"role": "system", "content": "x"}], "Hello!", id="system-only"),
    pytest.param([{"role": "user", "content": "call me Ishmael"}], "Nice to meet you, Ishmael!",
                 id="call-me"),
    pytest.param([{"role": "user", "content": "hello"}], 'Tell me "my name is ..."',
                 id="no-name"),
    pytest.param([{"role": "user", "content": "x" * 500}], "x" * 117 + "...", id="long"),
    pytest.param([{"role": "user", "content": "my name is Ada"},
                  {"role": "user", "content": "no, my name is Grace"}],
                 "Nice to meet you, Grace!", id="renamed"),
    pytest.param([{"role": "user", "content": "my name i\u017f Ada"}], "Nice to meet you, Ada!",
                 id="long-s"),  # re's case rule: U+017F is an "s"
    pytest.param([{"role": "user", "content": "My Name \u0131s \u00c9mile"}],
                 "Nice to meet you, \u00c9mile!", id="dotless-i"),
])
def test_offline_reply_cases(window: list[dict[str, Any]], expected: str) -> None:
    assert expected in offline_reply(window)


_PIECES = st.sampled_from(["my name is ", "MY NAME IS ", "call me ", "Call Me ", "recall me ",
                           "Ada", "grace", "3x", " ", "\n", ".", "my ", "name ", "i", "İ", "ſ",
                           "K", "é"])


@settings(max_examples=500)
@given(st.lists(st.lists(_PIECES, max_size=12).map("".join), min_size=1, max_size=6))
def test_the_name_remembered_is_the_one_given_last(said: list[str]) -> None:
    """The reply's name is the ``_NAME`` match that starts last in the user's messages, however
    the search for it is made fast."""
    expected = None
    for text in said:
        for at in range(len(text)):
            found = NAME_EXPRESSION.match(text, at)
            if found:
                expected = found.group(1)
    window = [{"role": "user", "content": text} for text in said]
    answer = offline_reply(window)
    if expected is None:
        assert 'Tell me "my name is ..."' in answer
    else:
        assert f"{expected}!" in answer or f"I remember your name: {expected}." in answer
