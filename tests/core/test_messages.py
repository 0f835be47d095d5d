"""Validating what the app appends, before anything reaches a store."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stickyctx.core.messages import ROLES, StoredMessage, as_dicts, build_message
from stickyctx.core.tokenizer import Tokenizer, load_tokenizer
from stickyctx.errors import InvalidMessageError, MessageTooLargeError

LIMIT = 1 << 20
CALLS = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer("cl100k_base")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_role_is_accepted(tokenizer: Tokenizer, role: str) -> None:
    message = build_message(role, "hello", {}, tokenizer, LIMIT)
    assert message.role == role


def test_a_valid_message_carries_its_count_size_and_fields(tokenizer: Tokenizer) -> None:
    fields = {"name": "alice", "metadata": {"lang": "fr"}}
    message = build_message("user", "Bonjour à tous 👋", fields, tokenizer, LIMIT, "turn-1:0")
    payload = {"role": "user", "content": "Bonjour à tous 👋", **fields}
    assert message.payload() == payload
    assert message.tokens == tokenizer.count_message(payload)
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    assert message.size == len(encoded.encode())
    assert message.encoding == "cl100k_base"
    assert message.dedupe == "turn-1:0"
    fields["name"] = "mallory"
    assert message.fields["name"] == "alice"  # a copy: later changes by the app do not leak in


def test_list_content_and_tool_calls_are_accepted(tokenizer: Tokenizer) -> None:
    parts = [{"type": "text", "text": "what is this?"},
             {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    assert build_message("user", parts, {}, tokenizer, LIMIT).content == parts
    call = build_message("assistant", None, {"tool_calls": CALLS}, tokenizer, LIMIT)
    assert call.content is None
    assert call.fields == {"tool_calls": CALLS}


@pytest.mark.parametrize(
    ("role", "content", "fields"),
    [
        pytest.param("robot", "hi", {}, id="unknown-role"),
        pytest.param("User", "hi", {}, id="role-case"),
        pytest.param(5, "hi", {}, id="role-not-a-string"),
        pytest.param("user", 5, {}, id="content-int"),
        pytest.param("user", {"text": "hi"}, {}, id="content-dict"),
        pytest.param("user", b"hi", {}, id="content-bytes"),
        pytest.param("user", ("a", "b"), {}, id="content-tuple"),
        pytest.param("user", ["hi"], {}, id="part-not-a-dict"),
        pytest.param("user", [{"text": "hi"}], {}, id="part-without-type"),
        pytest.param("user", [{"type": 1}], {}, id="part-type-not-a-string"),
        pytest.param("user", None, {}, id="none-for-user"),
        pytest.param("assistant", None, {}, id="none-without-tool-calls"),
        pytest.param("tool", None, {"tool_calls": CALLS}, id="none-for-tool"),
        pytest.param("user", "hi", {"role": "system"}, id="field-role"),
        pytest.param("user", "hi", {"content": "other"}, id="field-content"),
        pytest.param("user", "hi", {1: "x"}, id="field-name-not-a-string"),
        pytest.param("user", "hi", {"meta": object()}, id="field-not-json"),
        pytest.param("user", "hi", {"meta": {1, 2}}, id="field-set"),
        pytest.param("user", "hi", {"score": float("nan")}, id="field-nan"),
        pytest.param("user", "hi", {"score": float("inf")}, id="field-infinity"),
        pytest.param("user", "bad \ud800 surrogate", {}, id="lone-surrogate"),
        pytest.param("user", [{"type": "text", "text": "\udfff"}], {}, id="surrogate-in-part"),
        pytest.param("user", "hi", {"name": "\ud83d"}, id="surrogate-in-field"),
    ],
)
def test_invalid_messages_are_refused(
    tokenizer: Tokenizer, role: Any, content: Any, fields: dict[Any, Any]
) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        build_message(role, content, fields, tokenizer, LIMIT)
    assert not isinstance(caught.value, MessageTooLargeError)
    assert caught.value.reason
    caught.value.reason.encode()  # the reason itself is loggable text


def test_a_message_over_the_size_limit_is_refused_with_its_size(tokenizer: Tokenizer) -> None:
    content = "x" * 100
    size = len(json.dumps({"role": "user", "content": content}, separators=(",", ":")))
    assert build_message("user", content, {}, tokenizer, size).size == size  # at the limit: ok
    with pytest.raises(MessageTooLargeError) as caught:
        build_message("user", content, {}, tokenizer, size - 1)
    assert caught.value.size == size
    assert caught.value.limit == size - 1
    assert isinstance(caught.value, InvalidMessageError)
    assert content not in str(caught.value)


def test_the_size_counts_utf8_bytes_not_characters(tokenizer: Tokenizer) -> None:
    content = "é" * 50  # 50 characters, 100 bytes
    size = len(json.dumps({"role": "user", "content": content}, separators=(",", ":"),
                          ensure_ascii=False).encode())
    assert build_message("user", content, {}, tokenizer, size).size == size
    with pytest.raises(MessageTooLargeError):
        build_message("user", content, {}, tokenizer, size - 1)


@pytest.mark.parametrize("fields", [
    pytest.param({"tool_calls": CALLS}, id="tool-calls"),
    pytest.param({"function_call": {"name": "f", "arguments": "{}"}}, id="legacy-function-call"),
    pytest.param({"refusal": "I can't help with that."}, id="refusal"),
    pytest.param({"audio": {"id": "audio_1"}}, id="audio-reply"),
])
def test_an_assistant_message_may_stand_on_what_replaces_its_content(
    tokenizer: Tokenizer, fields: dict[str, Any],
) -> None:
    """The assistant messages the chat API's own types allow without content."""
    message = build_message("assistant", None, fields, tokenizer, LIMIT)
    assert message.payload() == {"role": "assistant", "content": None, **fields}
    with pytest.raises(InvalidMessageError):
        build_message("user", None, fields, tokenizer, LIMIT)
    empty = {name: type(value)() for name, value in fields.items()}  # [] or {} or ""
    with pytest.raises(InvalidMessageError):
        build_message("assistant", None, empty, tokenizer, LIMIT)


def test_as_dicts_hands_out_what_as_dict_does_each_a_fresh_copy() -> None:
    """A whole history's dicts (``messages()``) equal each message's ``as_dict()``, whatever
    the message holds, and changing them (content parts, fields) changes no stored message."""
    history = [
        StoredMessage(1, 1, "user", "plain text", 3, "cl100k_base", 3, 30),
        StoredMessage(2, 1, "assistant", None, 5, "cl100k_base", 8, 90,
                      {"tool_calls": [{"id": "c1", "function": {"name": "f"}}]}),
        StoredMessage(3, 1, "tool", "42", 2, "cl100k_base", 10, 40, {"tool_call_id": "c1"}),
        StoredMessage(4, 2, "user", [{"type": "text", "text": "look"}], 4, "cl100k_base", 14,
                      50),
        StoredMessage(5, 2, "assistant", "seen", 1, "cl100k_base", 15, 30,
                      {"name": "bot", "meta": {"lang": "en"}}),
    ]
    pristine = copy.deepcopy(history)
    out = as_dicts(history)
    assert out == [m.as_dict() for m in history]
    assert [type(d) for d in out] == [dict] * len(history)
    for d in out:  # change everything that can be changed
        d["content"] = "changed"
        d["extra"] = 1
    out2 = as_dicts(history)
    out2[1]["tool_calls"][0]["id"] = "changed"
    out2[3]["content"][0]["text"] = "changed"
    out2[4]["meta"]["lang"] = "changed"
    assert history == pristine
    assert as_dicts(history) == [m.as_dict() for m in pristine]
    assert as_dicts(()) == []
