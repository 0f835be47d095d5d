"""Windows of conversations the Agents SDK wrote: the chat form is what the openai client accepts,
the Responses form is what the SDK itself reads back, whatever kinds of items were stored.

On the embedded store and on a real Redis server (the ``env`` fixture of ``test_agents``), and
for every kind of the openai package's ``ResponseInputItemParam`` (generated from its types).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator, Mapping
from typing import Any, cast

import httpx
import pytest
from agents.models.chatcmpl_converter import Converter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseFunctionToolCall, ResponseInputItemParam

from stickyctx.core.flow import SESSION_HEADER
from stickyctx.core.formats import to_chat, to_responses
from stickyctx.integrations.agents import _to_message
from stickyctx.sansio import run_async
from tests.formats.check import (
    RESPONSES,
    assert_chat,
    assert_chat_message,
    assert_responses,
    assert_responses_item,
    validated,
)
from tests.integrations.test_agents import (  # the fixtures and the canned model of the SDK tests
    TURN,
    CannedModel,
    Env,
    _no_tracing,
    anyio_backend,
    chat_app,
    env,
    items,
    said,
)

__all__ = ["_no_tracing", "anyio_backend", "env"]  # fixtures, used by name

Item = dict[str, Any]
IMAGE = "data:image/png;base64,iVBORw0KGgo="

# One item of each kind the SDK may hand a session (each checked valid below), in an order a
# run could produce them: calls before their outputs.
EVERY_KIND: list[Item] = [
    {"role": "user", "content": [{"type": "input_text", "text": "Do everything."},
                                 {"type": "input_image", "image_url": IMAGE, "detail": "low"}]},
    {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA",
     "summary": [{"type": "summary_text", "text": "Use every tool."}]},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "oslo weather"}},
    {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["refunds"],
     "results": [{"file_id": "file-1", "filename": "policy.pdf", "score": 0.9,
                  "text": "30 days"}]},
    {"type": "computer_call", "id": "cu_1", "call_id": "call_cu", "status": "completed",
     "pending_safety_checks": [], "action": {"type": "click", "button": "left", "x": 1, "y": 2}},
    {"type": "computer_call_output", "call_id": "call_cu",
     "output": {"type": "computer_screenshot", "image_url": IMAGE}},
    {"type": "code_interpreter_call", "id": "ci_1", "status": "completed",
     "container_id": "cntr_1", "code": "print(1)", "outputs": [{"type": "logs", "logs": "1"}]},
    {"type": "image_generation_call", "id": "ig_1", "status": "completed",
     "result": "iVBORw0KGgo="},
    {"type": "local_shell_call", "id": "ls_1", "call_id": "call_ls", "status": "completed",
     "action": {"type": "exec", "command": ["ls"], "env": {}}},
    {"type": "local_shell_call_output", "id": "call_ls", "output": "a.txt"},
    {"type": "shell_call", "call_id": "call_sh", "action": {"commands": ["ls"]}},
    {"type": "shell_call_output", "call_id": "call_sh", "output": [
        {"stdout": "a.txt", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
    {"type": "apply_patch_call", "call_id": "call_ap", "status": "completed",
     "operation": {"type": "create_file", "path": "a.txt", "diff": "+hi"}},
    {"type": "apply_patch_call_output", "call_id": "call_ap", "status": "completed"},
    {"type": "mcp_list_tools", "id": "ml_1", "server_label": "docs",
     "tools": [{"name": "search", "input_schema": {"type": "object"}}]},
    {"type": "mcp_approval_request", "id": "mr_1", "server_label": "docs", "name": "search",
     "arguments": "{}"},
    {"type": "mcp_approval_response", "approval_request_id": "mr_1", "approve": True},
    {"type": "mcp_call", "id": "mc_1", "server_label": "docs", "name": "search",
     "arguments": "{}", "output": "found"},
    {"type": "custom_tool_call", "call_id": "call_ct", "name": "sql", "input": "SELECT 1"},
    {"type": "custom_tool_call_output", "call_id": "call_ct", "output": "1"},
    {"type": "function_call", "id": "fc_1", "call_id": "call_fn", "name": "get_weather",
     "arguments": '{"city": "Oslo"}', "status": "completed"},
    {"type": "function_call_output", "call_id": "call_fn", "output": "4 C"},
    {"type": "item_reference", "id": "msg_0"},
    {"type": "compaction", "encrypted_content": "gAAAA"},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Done.", "annotations": []}]},
]

# What the chat API can be told of that run: the user, the two calls it has a form for (with
# their results), the answer. Hosted tools, reasoning, references and compaction are left out.
EVERY_KIND_AS_CHAT: list[Item] = [
    {"role": "user", "content": [{"type": "text", "text": "Do everything."},
                                 {"type": "image_url", "image_url": {"url": IMAGE,
                                                                     "detail": "low"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_ct", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}]},
    {"role": "tool", "tool_call_id": "call_ct", "content": "1"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_fn", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_fn", "content": "4 C"},
    {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
]


def _literals(hint: Any) -> set[str]:
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    return {value for arg in typing.get_args(hint) for value in _literals(arg)}


def test_the_sample_items_are_valid_and_of_every_kind_the_sdk_stores_as_json() -> None:
    assert_responses(EVERY_KIND)
    kinds = {kind for member in typing.get_args(ResponseInputItemParam)
             for kind in _literals(typing.get_type_hints(member)["type"])}
    sampled = {item.get("type", "message") for item in EVERY_KIND}
    assert sampled <= kinds
    assert len(sampled) >= 24  # every kind the SDK's own tools produce (newer ones: below)


@pytest.mark.anyio
async def test_every_kind_of_item_gives_valid_windows(env: Env) -> None:
    session = env.session()
    await session.add_items(items(EVERY_KIND))
    conv, logic = env.request(session.session_id)
    try:
        chat = await conv.window()
        assert chat == EVERY_KIND_AS_CHAT
        assert_chat(chat)
        assert await conv.messages(format="chat") == chat
        responses = await conv.window(format="responses")
        assert responses == EVERY_KIND == await session.get_items()  # the SDK's own view
        assert await conv.messages(format="responses") == responses
        stored = await conv.messages()
        assert await conv.window(format="stored") == stored  # stored data is unchanged
    finally:
        await run_async(logic.end(), env.store.async_io)


@pytest.mark.anyio
async def test_windows_after_the_runner_wrote_validate(env: Env) -> None:
    """The issue's case: after ``Runner.run`` with a tool call, the chat window had tool messages
    without ``tool_call_id`` and calls as assistant text; now it is what the client takes, and
    says what the SDK's own Chat Completions converter makes of the same items."""
    model = CannedModel([
        [ResponseFunctionToolCall(id="fc_1", type="function_call", call_id="call_1",
                                  name="get_weather", arguments='{"city": "Paris"}',
                                  status="completed")],
        [said("Sunny in Paris.", "msg_1")],
        [ResponseFunctionToolCall(id="fc_2", type="function_call", call_id="call_2",
                                  name="get_weather", arguments='{"city": "Oslo"}',
                                  status="completed")],
        [said("Sunny in Oslo too.", "msg_2")],
    ])
    transport = httpx.ASGITransport(app=chat_app(env, model))
    token = "new"
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        for message in ("Weather in Paris?", "And Oslo?"):
            answer = await client.post("/chat", json={"message": message},
                                       headers={SESSION_HEADER: token})
            assert answer.status_code == 200, answer.text
            token = answer.headers.get(SESSION_HEADER, token)  # sent when it changes
    session_id = answer.json()["session"]
    history = await env.session(session_id).get_items()
    conv, logic = env.request(session_id)
    try:
        chat = await conv.window()
        assert_chat(chat)
        assert [(m["role"], m.get("tool_call_id")) for m in chat] == [
            ("user", None), ("assistant", None), ("tool", "call_1"), ("assistant", None),
            ("user", None), ("assistant", None), ("tool", "call_2"), ("assistant", None)]
        theirs = Converter.items_to_messages(history)
        assert [_plain(m) for m in chat] == [_plain(cast("Item", m)) for m in theirs]
        assert await conv.window(format="responses") == history
    finally:
        await run_async(logic.end(), env.store.async_io)


def _plain(message: Mapping[str, Any]) -> Item:
    """A chat message with its text content as one string (the SDK joins text parts)."""
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(part["text"] for part in content)
    return {**message, "content": content}


@pytest.mark.anyio
async def test_a_token_window_of_tool_turns_keeps_calls_with_their_results(env: Env) -> None:
    turns = [[{**TURN[0], "content": f"question {t}"},
              *({**item, "call_id": f"call_{t}"} if "call_id" in item else item
                for item in TURN[1:])] for t in range(4)]
    session = env.session()
    for turn in turns:
        await session.add_items(items(turn))
    per_turn = (await env.stored(session.session_id)).total_tokens // 4
    conv, logic = env.request(session.session_id)
    try:
        for budget in range(per_turn + per_turn // 2, 5 * per_turn, per_turn // 3):
            chat = await conv.window(budget)
            assert_chat(chat)
            assert chat[0]["role"] == "user"  # a window starts with a turn
            ids = [m["tool_call_id"] for m in chat if m["role"] == "tool"]
            users = [m["content"] for m in chat if m["role"] == "user"]
            assert ids == [f"call_{u.split()[-1]}" for u in users]  # each turn's call, whole
            responses = await conv.window(budget, format="responses")
            assert responses == [item for turn in turns[-len(users):] for item in turn]
    finally:
        await run_async(logic.end(), env.store.async_io)


# Every kind of the openai package's types, generated ---------------------------------------

def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, Iterator)):
        return [_jsonable(v) for v in value]
    return value


def _canonical(raw: Any) -> Item | None:
    """A generated item as the API would hand it back (lazy iterables consumed), or ``None``
    when it is not JSON (such an item is refused by ``add_items``, tested elsewhere)."""
    try:
        item = validated(RESPONSES.validate_python(_jsonable(raw)))
        json.dumps(item, allow_nan=False)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return None
    return cast("Item", item)


_KINDS = [pytest.param(member, id=member.__name__)
          for member in typing.get_args(ResponseInputItemParam)]


# Tool-search items carry whole tool definitions: their generated reprs are large, harmlessly.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize("kind", _KINDS)
def test_every_generated_item_of_every_kind_has_valid_forms(kind: Any) -> None:
    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.lists(st.from_type(kind).map(_canonical), min_size=1, max_size=3))
    def check(generated: list[Item | None]) -> None:
        assume(all(item is not None for item in generated))
        stored = [_to_message(cast("Item", item)) for item in generated]
        for message in to_chat([dict(m) for m in stored]):
            assert_chat_message(message)
        responses = to_responses([dict(m) for m in stored])
        for item in responses:
            assert_responses_item(item)
        assert len(responses) == len(generated)

    check()
