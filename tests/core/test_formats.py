"""The chat and Responses forms of stored histories: every message shape the store can hold comes
out as the openai package's own types accept it (``tests.formats.check``), and says the same."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stickyctx.core.formats import FORMATS, ITEM_FIELD, formatter, to_chat, to_responses
from stickyctx.core.messages import build_message
from stickyctx.core.tokenizer import load_tokenizer
from tests.formats.check import assert_chat, assert_responses

Message = dict[str, Any]

IMAGE = "https://example.com/cat.png"
CALL_A = {"id": "call_a", "type": "function",
          "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
CALL_B = {"id": "call_b", "type": "function",
          "function": {"name": "time", "arguments": '{"tz": "CET"}'}}
CUSTOM = {"id": "call_c", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}


def sdk(item: Message, role: str = "assistant") -> Message:
    """An Agents SDK item as ``StickySession`` stores it (its JSON, marked)."""
    return {"role": role, "content": json.dumps(item), ITEM_FIELD: True}


# (stored history, its chat form, its Responses form)
SHAPES = [
    pytest.param(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}],
        id="plain-chat"),
    pytest.param(
        [{"role": "user", "content": "Hi", "name": "alice", "metadata": {"lang": "en"}},
         {"role": "assistant", "content": "Hello.", "name": "bot", "rating": 5}],
        [{"role": "user", "content": "Hi", "name": "alice"},
         {"role": "assistant", "content": "Hello.", "name": "bot"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
        id="app-fields-left-out"),
    pytest.param(
        [{"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}],
        [{"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}],
        [{"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]}],
        id="developer"),
    pytest.param(
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}}]}],
        [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}}]}],
        [{"role": "user", "content": [  # Responses input messages take no audio part
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": IMAGE, "detail": "low"},
            {"type": "input_file", "file_id": "file-1", "filename": "a.pdf"}]}],
        id="multimodal-parts"),
    pytest.param(
        [{"role": "user", "content": "Weather and time in Oslo?"},
         {"role": "assistant", "content": None, "tool_calls": [CALL_A, CALL_B], "id": "x"},
         {"role": "tool", "tool_call_id": "call_a", "content": "4 C", "name": "weather"},
         {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "9:00"}]},
         {"role": "assistant", "content": "4 C at 9:00."}],
        [{"role": "user", "content": "Weather and time in Oslo?"},
         {"role": "assistant", "content": None, "tool_calls": [CALL_A, CALL_B]},
         {"role": "tool", "tool_call_id": "call_a", "content": "4 C"},
         {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "9:00"}]},
         {"role": "assistant", "content": "4 C at 9:00."}],
        [{"role": "user", "content": "Weather and time in Oslo?"},
         {"type": "function_call", "call_id": "call_a", "name": "weather",
          "arguments": '{"city": "Oslo"}'},
         {"type": "function_call", "call_id": "call_b", "name": "time",
          "arguments": '{"tz": "CET"}'},
         {"type": "function_call_output", "call_id": "call_a", "output": "4 C"},
         {"type": "function_call_output", "call_id": "call_b",
          "output": [{"type": "input_text", "text": "9:00"}]},
         {"role": "assistant", "content": "4 C at 9:00."}],
        id="tool-calls-and-results"),
    pytest.param(
        [{"role": "user", "content": "Count the rows."},
         {"role": "assistant", "content": "Running it.", "tool_calls": [CUSTOM]},
         {"role": "tool", "tool_call_id": "call_c", "content": "1"}],
        [{"role": "user", "content": "Count the rows."},
         {"role": "assistant", "content": "Running it.", "tool_calls": [CUSTOM]},
         {"role": "tool", "tool_call_id": "call_c", "content": "1"}],
        [{"role": "user", "content": "Count the rows."},
         {"role": "assistant", "content": "Running it."},
         {"type": "custom_tool_call", "call_id": "call_c", "name": "sql", "input": "SELECT 1"},
         {"type": "custom_tool_call_output", "call_id": "call_c", "output": "1"}],
        id="custom-tool-call"),
    pytest.param(
        [{"role": "user", "content": "Weather?"},
         {"role": "assistant", "content": None,
          "function_call": {"name": "weather", "arguments": "{}"}},
         {"role": "function", "name": "weather", "content": "sunny"}],
        [{"role": "user", "content": "Weather?"},
         {"role": "assistant", "content": None,
          "function_call": {"name": "weather", "arguments": "{}"}},
         {"role": "function", "name": "weather", "content": "sunny"}],
        None,  # the derived call id is checked below
        id="legacy-function-call"),
    pytest.param(
        [{"role": "user", "content": "Help me pick a lock."},
         {"role": "assistant", "content": None, "refusal": "I can't help with that."}],
        [{"role": "user", "content": "Help me pick a lock."},
         {"role": "assistant", "content": None, "refusal": "I can't help with that."}],
        [{"role": "user", "content": "Help me pick a lock."},
         {"role": "assistant", "content": "I can't help with that."}],
        id="refusal"),
    pytest.param(
        [{"role": "user", "content": "Say hi out loud."},
         {"role": "assistant", "content": None,
          "audio": {"id": "audio_1", "transcript": "Hi!", "expires_at": 1}}],
        [{"role": "user", "content": "Say hi out loud."},
         {"role": "assistant", "content": None, "audio": {"id": "audio_1"}}],
        [{"role": "user", "content": "Say hi out loud."},
         {"role": "assistant", "content": "Hi!"}],
        id="audio-reply"),
    pytest.param(
        [{"role": "user", "content": "Find the news."},
         sdk({"type": "reasoning", "id": "rs_1", "summary": []}),
         sdk({"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "news"}}),
         {"role": "assistant", "content": [{"type": "output_text", "text": "Here.",
                                            "annotations": []}],
          "type": "message", "id": "msg_1", "status": "completed"}],
        [{"role": "user", "content": "Find the news."},
         {"role": "assistant", "content": [{"type": "text", "text": "Here."}]}],
        [{"role": "user", "content": "Find the news."},
         {"type": "reasoning", "id": "rs_1", "summary": []},
         {"type": "web_search_call", "id": "ws_1", "status": "completed",
          "action": {"type": "search", "query": "news"}},
         {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
          "content": [{"type": "output_text", "text": "Here.", "annotations": []}]}],
        id="sdk-items-without-a-chat-form"),
    pytest.param(
        [{"role": "user", "content": "Weather?"},
         sdk({"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "",
              "id": "fc_1", "status": "completed"}),
         sdk({"type": "function_call_output", "call_id": "call_1",
              "output": [{"type": "input_text", "text": "sunny"},
                         {"type": "input_image", "image_url": IMAGE, "detail": "auto"}]},
             role="tool")],
        [{"role": "user", "content": "Weather?"},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "weather", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "call_1",
          "content": [{"type": "text", "text": "sunny"}]}],
        [{"role": "user", "content": "Weather?"},
         {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "",
          "id": "fc_1", "status": "completed"},
         {"type": "function_call_output", "call_id": "call_1",
          "output": [{"type": "input_text", "text": "sunny"},
                     {"type": "input_image", "image_url": IMAGE, "detail": "auto"}]}],
        id="sdk-function-call"),
]


@pytest.mark.parametrize(("stored", "chat", "responses"), SHAPES)
def test_each_shape_has_a_valid_chat_form(stored: list[Message], chat: list[Message],
                                          responses: list[Message] | None) -> None:
    out = to_chat(copy.deepcopy(stored))
    assert out == chat
    assert_chat(out)


@pytest.mark.parametrize(("stored", "chat", "responses"), SHAPES)
def test_each_shape_has_a_valid_responses_form(stored: list[Message], chat: list[Message],
                                               responses: list[Message] | None) -> None:
    out = to_responses(copy.deepcopy(stored))
    if responses is not None:
        assert out == responses
    assert_responses(out)


def test_every_shape_is_one_the_store_accepts() -> None:
    """The shapes above are what ``append`` stores (the validation of what apps append)."""
    tokenizer = load_tokenizer("cl100k_base")
    for case in SHAPES:
        for message in case.values[0]:
            fields = {k: v for k, v in message.items() if k not in ("role", "content")}
            build_message(message["role"], message["content"], fields, tokenizer, 1 << 20)


def test_a_legacy_function_result_answers_its_call_by_a_derived_id() -> None:
    stored = [{"role": "assistant", "content": None,
               "function_call": {"name": "weather", "arguments": "{}"}},
              {"role": "function", "name": "weather", "content": "sunny"}] * 2
    out = to_responses(stored)
    assert_responses(out)
    assert [item["type"] for item in out] == ["function_call", "function_call_output"] * 2
    first, second = out[0]["call_id"], out[2]["call_id"]
    assert (out[1]["call_id"], out[3]["call_id"]) == (first, second)
    assert first != second  # the same call made twice gets two ids
    assert to_responses(stored)[0]["call_id"] == first  # and the same ids every time
    orphan = to_responses([{"role": "function", "name": "weather", "content": "sunny"}])
    assert orphan == []


def test_sdk_text_after_calls_joins_them_and_parallel_calls_share_a_message() -> None:
    """A streamed SDK turn may store its calls before its text; the chat API wants one assistant
    message with every call, followed by their results."""
    call = {"type": "function_call", "name": "f", "arguments": "{}"}
    stored = [
        {"role": "user", "content": "go"},
        sdk({**call, "call_id": "c1"}), sdk({**call, "call_id": "c2"}),
        {"role": "assistant", "content": "Calling f twice."},
        sdk({"type": "function_call_output", "call_id": "c1", "output": "one"}, role="tool"),
        sdk({"type": "function_call_output", "call_id": "c2", "output": "two"}, role="tool"),
    ]
    out = to_chat(stored)
    assert_chat(out)
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "tool"]
    assert out[1]["content"] == "Calling f twice."
    assert [c["id"] for c in out[1]["tool_calls"]] == ["c1", "c2"]


@pytest.mark.parametrize(("stored", "roles"), [
    pytest.param([{"role": "user", "content": "q"},
                  {"role": "assistant", "content": None, "tool_calls": [CALL_A]}],
                 ["user"], id="call-never-answered"),
    pytest.param([{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "", "tool_calls": [CALL_A]}],
                 ["user"], id="call-never-answered-with-empty-text"),
    pytest.param([{"role": "user", "content": "q"},
                  {"role": "assistant", "content": "Checking.", "tool_calls": [CALL_A, CALL_B]},
                  {"role": "tool", "tool_call_id": "call_b", "content": "ok"}],
                 ["user", "assistant", "tool"], id="one-of-two-answered"),
    pytest.param([{"role": "tool", "tool_call_id": "call_a", "content": "4 C"},
                  {"role": "user", "content": "q"}],
                 ["user"], id="result-without-its-call"),
    pytest.param([{"role": "assistant", "content": None, "tool_calls": [CALL_A]},
                  {"role": "user", "content": "interrupting"},
                  {"role": "tool", "tool_call_id": "call_a", "content": "4 C"}],
                 ["user"], id="result-not-right-after-its-call"),
    pytest.param([{"role": "user", "content": "q"},
                  {"role": "tool", "content": "no call id"}],
                 ["user"], id="result-without-a-call-id"),
])
def test_calls_and_results_always_come_in_pairs(stored: list[Message],
                                                roles: list[str]) -> None:
    out = to_chat(stored)
    assert [m["role"] for m in out] == roles
    assert_chat(out)


def test_the_stored_form_is_the_input_and_unknown_formats_are_refused() -> None:
    stored = [{"role": "user", "content": "hi", "meta": 1}]
    assert formatter("stored")(stored) is stored
    assert set(FORMATS) == {"chat", "responses", "stored"}
    for bad in ("langchain", "", None):
        with pytest.raises(ValueError, match="unknown format"):
            formatter(bad)  # type: ignore[arg-type]


# Generated histories of chat turns: user, then assistant text or calls with their results ----

_text = st.text(max_size=12)
_call_ids = st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=6)


@st.composite
def _turn(draw: st.DrawFn) -> list[Message]:
    turn: list[Message] = [{"role": draw(st.sampled_from(["user", "system", "developer"])),
                            "content": draw(_text)}]
    for _ in range(draw(st.integers(0, 2))):
        ids = draw(st.lists(_call_ids, min_size=1, max_size=3, unique=True))
        ids = [f"{len(turn)}-{i}" for i in ids]
        turn.append({"role": "assistant", "content": draw(st.none() | _text),
                     "tool_calls": [{"id": i, "type": "function",
                                     "function": {"name": "f", "arguments": "{}"}}
                                    for i in ids]})
        answered = draw(st.lists(st.sampled_from(ids), unique=True))
        turn += [{"role": "tool", "tool_call_id": i, "content": draw(_text)} for i in answered]
    if draw(st.booleans()):
        turn.append({"role": "assistant", "content": draw(_text)})
    return turn


@given(st.lists(_turn(), max_size=5), st.integers(0, 30))
def test_any_tail_of_a_history_has_a_valid_chat_form(turns: list[list[Message]],
                                                     cut: int) -> None:
    history = [m for turn in turns for m in turn]
    for stored in (history, history[cut:]):
        out = to_chat(copy.deepcopy(stored))
        assert_chat(out)
        assert_responses(to_responses(copy.deepcopy(stored)))
        said = [m["content"] for m in stored if m["role"] in ("user", "system", "developer")]
        assert [m["content"] for m in out if m["role"] in ("user", "system", "developer")] \
            == said  # what people said is never dropped


_ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool"])
_CONTENT = st.one_of(st.text(max_size=8), st.none(),
                     st.just([{"type": "text", "text": "part"}]))
_FIELDS = st.one_of(st.just({}), st.just({"name": "n"}), st.just({"tool_call_id": "c1"}))


@given(st.lists(st.tuples(_ROLES, _CONTENT, _FIELDS), max_size=12))
def test_the_windows_fast_path_is_the_chat_conversion_it_skips(
        shapes: list[tuple[str, Any, dict[str, Any]]]) -> None:
    """A window of plain messages skips the chat conversion: only when converting them would
    give them back unchanged, and with the same dicts ``as_dict`` gives."""
    from stickyctx.core.chat_format import _plain
    from stickyctx.core.messages import StoredMessage
    from stickyctx.core.windowing import _dicts

    stored = [StoredMessage(i + 1, i + 1, role, content, 1, "cl100k_base", i + 1, 1, fields)
              for i, (role, content, fields) in enumerate(shapes)]
    dicts, plain = _dicts(stored)
    assert dicts == [m.as_dict() for m in stored]
    assert plain == all(_plain(d) for d in dicts)
    if plain:
        assert to_chat([m.as_dict() for m in stored]) == dicts
