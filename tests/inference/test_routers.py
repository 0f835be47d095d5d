"""Affinity to the model server, end to end: test app -> real inference router -> stub servers.

The apps (``fastapi_app``, ``flask_app``) call the router with the openai client and
``openai_options(conv)``; the router is the real ``sglang-router`` or ``vllm-router``; the model
servers are stubs that answer with their name and record what reached them.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from stickyctx.core.inference import DEFAULT_HEADERS
from tests.conftest import AppServer

from .conftest import FASTAPI, FLASK
from .servers import Router, StubModelServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

StartServer = Callable[[str], StubModelServer]
StartRouter = Callable[[str, list[StubModelServer]], Router]
StartApp = Callable[[str, str, str], AppServer]

_TURN = re.compile(r"conversation (\d+) turn \d+")


class ChatClient:
    """One conversation, as a browser holds it (its own cookies)."""

    def __init__(self, app: AppServer, number: int) -> None:
        self.http = httpx.Client(base_url=app.url, timeout=30)
        self.number = number
        self.turns = 0
        self.backends: list[str] = []  # the model server that answered each turn
        self.failures = 0  # answers that failed (and were asked again)
        self.sessions: set[str] = set()

    def ask(self, *, hints: bool = True, deadline: float = 30.0) -> str:
        """One turn. A failed answer (the model server behind the key just died) is asked
        again, polling until one arrives or ``deadline`` seconds have passed."""
        message = f"conversation {self.number} turn {self.turns}"
        self.turns += 1
        end = time.monotonic() + deadline
        delay = 0.02
        while True:
            reply = self.http.post("/ask", json={"message": message, "hints": hints})
            if reply.status_code == 200:
                break
            assert reply.status_code == 502, reply.text
            self.failures += 1
            assert time.monotonic() < end, f"conversation {self.number}: no answer in time"
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        data = reply.json()
        self.backends.append(data["backend"])
        self.sessions.add(data["session"])
        backend: str = data["backend"]
        return backend

    def login(self) -> None:
        reply = self.http.post("/login")
        reply.raise_for_status()
        self.sessions.add(reply.json()["session"])

    def close(self) -> None:
        self.http.close()




Conversations = Callable[[AppServer, int], list[ChatClient]]


@pytest.fixture
def conversations() -> Iterator[Conversations]:
    """``conversations(app, n)``: n new conversations with ``app``, closed at the end."""
    with ExitStack() as stack:
        def start(app: AppServer, count: int) -> list[ChatClient]:
            clients = [ChatClient(app, number) for number in range(count)]
            for client in clients:
                stack.callback(client.close)
            return clients

        yield start


def _rounds(clients: Iterable[ChatClient], turns: int) -> None:
    """``turns`` turns of every conversation, interleaved as concurrent users would be."""
    clients = list(clients)
    for _ in range(turns):
        for client in clients:
            client.ask()


def _home(backends: list[str]) -> str:
    """The model server that answered at least 99% of ``backends``."""
    home, count = Counter(backends).most_common(1)[0]
    assert count / len(backends) >= 0.99, backends
    return home


def _records(servers: Iterable[StubModelServer]) -> list[dict[str, Any]]:
    return [record for server in servers for record in server.requests()]


def _conversation_of(record: dict[str, Any]) -> int:
    match = _TURN.fullmatch(record["body"]["messages"][-1]["content"])
    assert match is not None, record
    return int(match.group(1))


def _assert_no_session_id(records: list[dict[str, Any]], clients: list[ChatClient]) -> None:
    """Neither a raw session id (nor either half of one) nor a session token reached a model
    server, in a header or in the body."""
    assert records
    seen = json.dumps(records)
    for session_id in (s for client in clients for s in client.sessions):
        assert session_id not in seen
        assert session_id[:12] not in seen
        assert session_id[12:] not in seen
    for client in clients:  # the session token (the routing cookie names a node: not secret)
        token = client.http.cookies.get("stickyctx")
        assert token
        assert token not in seen


@pytest.mark.parametrize(("kind", "target"), [
    pytest.param("sglang", FASTAPI, id="sglang-router-fastapi"),
    pytest.param("vllm", FLASK, id="vllm-router-flask"),
])
def test_every_request_of_a_conversation_reaches_one_model_server(
        kind: str, target: str, model_servers: StartServer, router: StartRouter,
        chat_app: StartApp, conversations: Conversations) -> None:
    servers = [model_servers("A"), model_servers("B")]
    app = chat_app(target, kind, router(kind, servers).url + "/v1")
    clients = conversations(app, 30)
    _rounds(clients, 12)
    homes = {client.number: _home(client.backends) for client in clients}
    assert all(client.failures == 0 for client in clients)
    assert set(homes.values()) == {"A", "B"}  # the conversations are spread over both

    # What the model servers saw: the router's header, one keyed value per conversation.
    header = DEFAULT_HEADERS[kind]  # type: ignore[index]
    records = _records(servers)
    assert len(records) == 30 * 12
    keys: dict[int, set[str]] = defaultdict(set)
    for record in records:
        keys[_conversation_of(record)].add(record["headers"][header])
    assert all(len(values) == 1 for values in keys.values())
    assert len({value for values in keys.values() for value in values}) == 30
    _assert_no_session_id(records, clients)

    # The control: without the hints, the same router does not keep each conversation on one
    # server while spreading them (sglang-router places each request at random; vllm-router
    # hashes an empty key for a chat request, so every conversation lands on one server).
    control = conversations(app, 6)
    for _ in range(8):
        for client in control:
            client.ask(hints=False)
    one_each = all(len(set(client.backends)) == 1 for client in control)
    spread = len({backend for client in control for backend in client.backends}) == 2
    assert not (one_each and spread)


@pytest.mark.parametrize(("kind", "target"), [
    pytest.param("sglang", FLASK, id="sglang-router-flask"),
    pytest.param("vllm", FASTAPI, id="vllm-router-fastapi"),
])
def test_a_conversation_moves_only_when_its_model_server_dies(
        kind: str, target: str, model_servers: StartServer, router: StartRouter,
        chat_app: StartApp, conversations: Conversations) -> None:
    servers = {name: model_servers(name) for name in "ABC"}
    app = chat_app(target, kind, router(kind, list(servers.values())).url + "/v1")
    clients = conversations(app, 24)
    _rounds(clients, 4)
    homes = {client.number: _home(client.backends) for client in clients}
    victim = Counter(homes.values()).most_common(1)[0][0]
    assert len(set(homes.values())) > 1, homes  # some conversations live elsewhere

    seen_by_victim = servers[victim].requests()  # what it recorded, read while it lives
    servers[victim].kill()  # SIGKILL
    _rounds(clients, 6)

    for client in clients:
        after = client.backends[4:]
        if homes[client.number] != victim:  # stays put, never even sees an error
            assert after == [homes[client.number]] * 6, (client.number, client.backends)
            assert client.failures == 0
        else:  # moves to a live server, once, and stays there
            assert victim not in after
            assert len(set(after)) == 1, (client.number, client.backends)
    assert sum(home == victim for home in homes.values()) >= 8  # the most common of three
    live = [server for name, server in servers.items() if name != victim]
    _assert_no_session_id(seen_by_victim + _records(live), clients)


@pytest.mark.parametrize("target", [pytest.param(FASTAPI, id="fastapi"),
                                    pytest.param(FLASK, id="flask")])
def test_openai_gets_a_keyed_prompt_cache_key_and_safety_identifier(
        target: str, model_servers: StartServer, chat_app: StartApp,
        conversations: Conversations) -> None:
    """OpenAI routes by body fields: a stub in its place records what the client sends."""
    server = model_servers("openai")
    app = chat_app(target, "openai", server.url + "/v1")
    clients = conversations(app, 5)
    _rounds(clients, 3)
    records = server.requests()
    assert len(records) == 15
    fields: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for record in records:
        body = record["body"]
        fields[_conversation_of(record)].add((body["prompt_cache_key"],
                                              body["safety_identifier"]))
        assert not {"x-session-id", "x-smg-routing-key"} & set(record["headers"])
    assert all(len(values) == 1 for values in fields.values())  # stable in a conversation
    values = [v for pairs in fields.values() for pair in pairs for v in pair]
    assert len(set(values)) == 10  # distinct between conversations and between purposes
    assert all(re.fullmatch(r"sc-[A-Za-z0-9_-]{22}", value) for value in values)
    _assert_no_session_id(records, clients)


def test_a_conversation_keeps_its_model_server_when_its_user_signs_in(
        model_servers: StartServer, router: StartRouter, chat_app: StartApp,
        conversations: Conversations) -> None:
    """Signing in rotates the session id (``conv.rotate()``); the conversation's routing key is
    derived from its lineage, carried in the token, so it stays on its model server."""
    servers = [model_servers("A"), model_servers("B")]
    app = chat_app(FASTAPI, "sglang", router("sglang", servers).url + "/v1")
    clients = conversations(app, 20)
    _rounds(clients, 3)
    for client in clients:
        client.login()
    _rounds(clients, 3)
    for client in clients:
        assert len(client.sessions) == 2  # a new id after the sign-in
        assert len(set(client.backends)) == 1, (client.number, client.backends)
    assert {client.backends[0] for client in clients} == {"A", "B"}
    _assert_no_session_id(_records(servers), clients)
