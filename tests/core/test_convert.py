"""Message objects an app may append: dicts, pydantic models (the openai package's messages),
LangChain messages; anything else is refused with the typed error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from openai.types.chat import ChatCompletionMessage
from pydantic import BaseModel

from stickyctx.core.convert import as_mapping, message_parts
from stickyctx.core.messages import build_message
from stickyctx.core.tokenizer import load_tokenizer
from stickyctx.errors import InvalidMessageError

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def completion(**message: Any) -> ChatCompletionMessage:
    return ChatCompletionMessage.model_validate({"role": "assistant", **message})


@pytest.mark.parametrize(("message", "expected"), [
    pytest.param(completion(content="Hello."), {"role": "assistant", "content": "Hello."},
                 id="openai-text"),
    pytest.param(completion(content=None, tool_calls=[CALL]),
                 {"role": "assistant", "tool_calls": [CALL]}, id="openai-tool-calls"),
    pytest.param(completion(content=None, refusal="No."),
                 {"role": "assistant", "refusal": "No."}, id="openai-refusal"),
    pytest.param(completion(content=None, function_call={"name": "f", "arguments": "{}"}),
                 {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                 id="openai-legacy-function-call"),
    pytest.param(completion(content=None, audio={"id": "audio_1", "data": "UklGRg==" * 1000,
                                                 "expires_at": 1, "transcript": "Hi!"}),
                 {"role": "assistant", "audio": {"id": "audio_1", "expires_at": 1,
                                                 "transcript": "Hi!"}},
                 id="openai-audio-reply-without-its-data"),
    pytest.param(HumanMessage("Hi", name="alice", id="h1"),
                 {"role": "user", "content": "Hi", "name": "alice"}, id="langchain-human"),
    pytest.param(SystemMessage("Be brief."), {"role": "system", "content": "Be brief."},
                 id="langchain-system"),
    pytest.param(AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "call_1"}],
                           response_metadata={"model": "m"}),
                 {"role": "assistant", "content": "", "tool_calls": [CALL]},
                 id="langchain-ai-tool-calls"),
    pytest.param(ToolMessage("4 C", tool_call_id="call_1"),
                 {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
                 id="langchain-tool"),
    pytest.param({"role": "user", "content": "as it is", "meta": 1},
                 {"role": "user", "content": "as it is", "meta": 1}, id="mapping"),
])
def test_message_objects_become_what_is_stored(message: Any, expected: dict[str, Any]) -> None:
    assert dict(as_mapping(message)) == expected
    role, content, fields = message_parts(message)
    assert {"role": role, "content": content, **fields} == {"content": None, **expected}
    build_message(role, content, fields, load_tokenizer("cl100k_base"), 1 << 20)  # accepted


class Note(BaseModel):
    text: str


@dataclass
class Plain:
    role: str = "user"
    content: str = "a dataclass is not a message"


class BrokenDump:
    def model_dump(self, **_: Any) -> dict[str, Any]:
        raise RuntimeError("cannot dump")


@pytest.mark.parametrize("message", [
    pytest.param(object(), id="object"),
    pytest.param(42, id="number"),
    pytest.param("user", id="string"),
    pytest.param(["user", "hi"], id="list"),
    pytest.param(Plain(), id="dataclass"),
    pytest.param(BrokenDump(), id="model-dump-raises"),
    pytest.param(RemoveMessage(id="m1"), id="langchain-remove-message"),
])
def test_other_objects_are_invalid_messages(message: Any) -> None:
    with pytest.raises(InvalidMessageError):
        message_parts(message)


def test_a_model_without_a_role_is_refused_when_built() -> None:
    role, content, fields = message_parts(Note(text="no role"))
    assert (role, content, fields) == ("", None, {"text": "no role"})
    with pytest.raises(InvalidMessageError, match="unknown role"):
        build_message(role, content, fields, load_tokenizer("cl100k_base"), 1 << 20)
