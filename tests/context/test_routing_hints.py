"""Routing hints through the handles: the configured router, stable per conversation, keyed."""

from __future__ import annotations

import json

import pytest
from itsdangerous import URLSafeTimedSerializer

from stickyctx.core.flow import SESSION_HEADER
from stickyctx.edges.request import response_headers
from stickyctx.integrations.inference import openai_options, routing_hints

from ..conftest import KEY_A, KEY_B
from .harness import Chat, Driver, settings_for


@pytest.mark.parametrize(("router", "header", "expected"), [
    pytest.param("none", None, (set(), set()), id="none"),
    pytest.param("vllm", None, ({"x-session-id"}, set()), id="vllm"),
    pytest.param("vllm", "x-user-id", ({"x-user-id"}, set()), id="vllm-operator-header"),
    pytest.param("sglang", None, ({"x-smg-routing-key"}, set()), id="sglang"),
    pytest.param("openai", None, (set(), {"prompt_cache_key", "safety_identifier"}),
                 id="openai"),
])
def test_the_configured_router_gets_its_fields_for_the_whole_conversation(
        kind: Driver, router: str, header: str | None,
        expected: tuple[set[str], set[str]]) -> None:
    chat = Chat(kind, settings_for(inference_router=router, inference_header=header))
    seen, ids = [], set()
    for _ in range(3):
        with chat.turn() as request:
            request.append("user", "hello")
            seen.append(routing_hints(request.handle))
            ids.add(request.handle.session_id)
    assert len(ids) == 1
    first = seen[0]
    assert all(hints == first for hints in seen)
    assert (set(first.headers), set(first.body)) == (set(expected[0]), expected[1])
    session_id = ids.pop()
    assert session_id not in json.dumps([first.headers, first.body])
    if router == "openai":  # the same value as the handle's own prompt_cache_key
        assert first.body["prompt_cache_key"] == request.handle.prompt_cache_key


def test_hints_survive_a_new_signing_key_and_differ_between_conversations(kind: Driver) -> None:
    chat = Chat(kind, settings_for(inference_router="sglang"))
    with chat.turn() as request:
        request.append("user", "hello")
        hints = routing_hints(request.handle)
    restarted = Chat(kind, settings_for(secret_keys=(KEY_B, KEY_A), inference_router="sglang"),
                     store=chat.store)
    restarted.token = chat.token  # another process, a new signing key in front
    with restarted.turn() as request:
        assert routing_hints(request.handle) == hints
    others = set()
    for _ in range(20):
        with Chat(kind, chat.settings, services=chat.services, store=chat.store).turn() as request:
            others.add(routing_hints(request.handle).headers["x-smg-routing-key"])
    assert len(others) == 20
    assert hints.headers["x-smg-routing-key"] not in others


def test_a_router_given_in_code_overrides_the_configured_one(kind: Driver) -> None:
    chat = Chat(kind, settings_for(inference_router="vllm", inference_header="x-user-id"))
    with chat.turn() as request:
        configured = routing_hints(request.handle)
        sglang = routing_hints(request.handle, "sglang")
        openai = routing_hints(request.handle, "openai", user="user-42")
        assert request.handle.routing_hints() == configured
    assert set(configured.headers) == {"x-user-id"}
    assert set(sglang.headers) == {"x-smg-routing-key"}  # the operator's header is vllm's only
    # One routing key per conversation, whichever header carries it.
    assert sglang.headers["x-smg-routing-key"] == configured.headers["x-user-id"]
    assert set(openai.body) == {"prompt_cache_key", "safety_identifier"}
    assert "user-42" not in openai.body["safety_identifier"]


def test_openai_options_add_the_hints_to_the_apps_own(kind: Driver) -> None:
    chat = Chat(kind, settings_for(inference_router="vllm"))
    with chat.turn() as request:
        key = routing_hints(request.handle).headers["x-session-id"]
        options = openai_options(request.handle, extra_headers={"x-trace": "t"},
                                 extra_body={"seed": 7})
        assert options == {"extra_headers": {"x-trace": "t", "x-session-id": key},
                           "extra_body": {"seed": 7}}
        assert openai_options(request.handle, extra_headers={"X-Session-ID": "mine"}) == {
            "extra_headers": {"X-Session-ID": "mine"}, "extra_body": {}}
        assert openai_options(request.handle, "none") == {"extra_headers": {},
                                                          "extra_body": {}}


def test_the_conversations_keys_survive_rotate_and_its_token_names_no_old_id(kind: Driver) -> None:
    chat = Chat(kind, settings_for(inference_router="sglang"))
    with chat.turn() as request:
        request.append("user", "hello")
        keys = (routing_hints(request.handle), request.handle.prompt_cache_key)
        first_id = request.handle.session_id
    rotated_ids = []
    for _ in range(2):  # a second rotation keeps the first lineage too
        with chat.turn() as request:
            rotated_ids.append(request._call(lambda h: h.rotate(), lambda h: h.rotate()))
            assert (routing_hints(request.handle), request.handle.prompt_cache_key) == keys
            chat.token = dict(response_headers(chat.services, request.logic.state))[SESSION_HEADER]
        with chat.turn() as request:  # the next request, with the re-issued token
            assert request.handle.session_id == rotated_ids[-1]
            assert request.messages()[0]["content"] == "hello"  # the same conversation
            assert (routing_hints(request.handle), request.handle.prompt_cache_key) == keys
    assert len({first_id, *rotated_ids}) == 3
    claims = chat.services.codec.verify(chat.token)
    assert claims is not None
    assert claims.lineage is not None
    _, payload = URLSafeTimedSerializer(KEY_A, salt="stickyctx.session.v1").loads_unsafe(
        chat.token)
    assert first_id not in json.dumps(payload)  # a keyed name, never the old id
    assert rotated_ids[0] not in json.dumps(payload)
