"""Routing hints for inference routers: which headers and fields, keyed hashes only."""

from __future__ import annotations

import re

import pytest

from stickyctx import ConfigError, Settings
from stickyctx.core import inference
from stickyctx.core.ids import new_session_id
from stickyctx.core.inference import RoutingHints, lineage, routing_hints
from stickyctx.core.storekeys import KeyDeriver
from tests.conftest import KEY_A

DIGEST = KeyDeriver(b"k" * 32, "app").digest
OTHER_KEY = KeyDeriver(b"o" * 32, "app").digest
VALUE = re.compile(r"sc-[A-Za-z0-9_-]{22}")  # short enough for every router (SMG: 128 bytes)


def _all_values(hints: RoutingHints) -> list[str]:
    return [*hints.headers.values(), *hints.body.values()]


@pytest.mark.parametrize(("router", "headers", "body"), [
    pytest.param("none", set(), set(), id="none"),
    pytest.param("openai", set(), {"prompt_cache_key", "safety_identifier"}, id="openai"),
    pytest.param("vllm", {"x-session-id"}, set(), id="vllm"),
    pytest.param("sglang", {"x-smg-routing-key"}, set(), id="sglang"),
])
def test_each_router_gets_the_fields_it_routes_on(router: inference.RouterKind,
                                                  headers: set[str], body: set[str]) -> None:
    hints = routing_hints(router, None, DIGEST, lineage(DIGEST, new_session_id()))
    assert hints.router == router
    assert set(hints.headers) == headers
    assert set(hints.body) == body
    assert bool(hints) == bool(headers or body)
    assert all(VALUE.fullmatch(value) for value in _all_values(hints))


def test_an_operator_named_header_replaces_the_default() -> None:
    hints = routing_hints("vllm", "x-user-id", DIGEST, "anchor")
    assert hints.headers == {"x-user-id": routing_hints("vllm", None, DIGEST, "anchor")
                             .headers["x-session-id"]}


def test_values_are_keyed_stable_distinct_and_never_the_id() -> None:
    session_id = new_session_id()
    anchor = lineage(DIGEST, session_id)
    first = routing_hints("openai", None, DIGEST, anchor)
    assert first == routing_hints("openai", None, DIGEST, anchor)  # stable
    route = routing_hints("sglang", None, DIGEST, anchor).headers["x-smg-routing-key"]
    values = [*_all_values(first), route]
    assert len(set(values)) == 3  # one purpose each: no two can be linked
    for value in values:
        assert session_id not in value
        assert anchor not in value
        assert all(session_id[i:i + 6] not in value for i in range(len(session_id) - 5))
    other_conversation = routing_hints("openai", None, DIGEST, lineage(DIGEST, new_session_id()))
    assert set(_all_values(other_conversation)).isdisjoint(values)
    other_secret = routing_hints("openai", None, OTHER_KEY, lineage(OTHER_KEY, session_id))
    assert set(_all_values(other_secret)).isdisjoint(values)  # the secret matters


def test_the_safety_identifier_names_the_user_when_the_app_knows_them() -> None:
    mine = routing_hints("openai", None, DIGEST, "conversation-1", user="alice@example.com")
    again = routing_hints("openai", None, DIGEST, "conversation-2", user="alice@example.com")
    anonymous = routing_hints("openai", None, DIGEST, "conversation-1")
    assert mine.body["safety_identifier"] == again.body["safety_identifier"]
    assert mine.body["prompt_cache_key"] != again.body["prompt_cache_key"]
    assert mine.body["safety_identifier"] != anonymous.body["safety_identifier"]
    assert "alice" not in mine.body["safety_identifier"]


def test_the_apps_own_values_win_when_merged() -> None:
    hints = RoutingHints("vllm", headers={"x-session-id": "sc-hint"},
                         body={"prompt_cache_key": "sc-hint"})
    headers, body = hints.merged({"X-Session-Id": "mine", "x-trace": "t"},
                                 {"prompt_cache_key": "mine", "seed": 1})
    assert headers == {"X-Session-Id": "mine", "x-trace": "t"}
    assert body == {"prompt_cache_key": "mine", "seed": 1}
    assert hints.merged() == ({"x-session-id": "sc-hint"}, {"prompt_cache_key": "sc-hint"})


def test_an_unknown_router_is_refused() -> None:
    with pytest.raises(ValueError, match="must be none, openai, vllm or sglang"):
        routing_hints("nginx", None, DIGEST, "anchor")  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "variable", "reason"), [
    pytest.param({"inference_router": "round-robin"}, "INFERENCE_ROUTER", "must be none",
                 id="unknown-router"),
    pytest.param({"inference_router": "llm-d"}, "INFERENCE_ROUTER", "prefix", id="llm-d"),
    pytest.param({"inference_router": "openai", "inference_header": "x-session-id"},
                 "INFERENCE_HEADER", "header-routed", id="header-with-openai"),
    pytest.param({"inference_header": "x-session-id"}, "INFERENCE_HEADER", "header-routed",
                 id="header-without-router"),
    pytest.param({"inference_router": "vllm", "inference_header": "x session"},
                 "INFERENCE_HEADER", "valid header name", id="not-a-header-name"),
    pytest.param({"inference_router": "sglang", "inference_header": "Authorization"},
                 "INFERENCE_HEADER", "owns", id="reserved-header"),
])
def test_bad_router_settings_name_the_variable(changes: dict[str, str], variable: str,
                                               reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(secret_keys=(KEY_A,), node_id="n1", **changes)  # type: ignore[arg-type]
    assert caught.value.variable == "STICKYCTX_" + variable
    assert reason in str(caught.value)
