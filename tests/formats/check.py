"""What the openai package accepts: message and item validation with its own types.

pydantic validates the ``Iterable`` fields of the openai TypedDicts lazily, and ignores keys a
TypedDict does not declare. ``validated`` therefore consumes every lazy iterable (validating each
element) and the checks compare the result with the input: equal only when every key at every
depth is one the type declares, with a value of its type, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputItemParam
from pydantic import TypeAdapter

__all__ = ["assert_chat", "assert_chat_message", "assert_responses", "assert_responses_item"]

CHAT: TypeAdapter[Any] = TypeAdapter(ChatCompletionMessageParam)
RESPONSES: TypeAdapter[Any] = TypeAdapter(ResponseInputItemParam)


def validated(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: validated(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, Iterator)):
        return [validated(v) for v in value]
    return value


def assert_chat_message(message: Mapping[str, Any]) -> None:
    assert validated(CHAT.validate_python(message)) == message, message


def assert_responses_item(item: Mapping[str, Any]) -> None:
    assert validated(RESPONSES.validate_python(item)) == item, item


def assert_chat(messages: Sequence[Mapping[str, Any]]) -> None:
    """Every message valid, and the list as the chat API takes it: each tool message follows
    the assistant message that made its call (after that message's other results only), and
    every call is answered before anything else is said."""
    waiting: set[str] = set()
    for message in messages:
        assert_chat_message(message)
        if message["role"] == "tool":
            assert message["tool_call_id"] in waiting, ("a result without its call", message)
            waiting.discard(message["tool_call_id"])
            continue
        assert not waiting, ("calls left unanswered", waiting)
        if message["role"] == "assistant":
            waiting = {call["id"] for call in message.get("tool_calls", ())}
    assert not waiting, ("calls left unanswered", waiting)


def assert_responses(items: Sequence[Mapping[str, Any]]) -> None:
    for item in items:
        assert_responses_item(item)
