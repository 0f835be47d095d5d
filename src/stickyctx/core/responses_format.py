"""A stored history as OpenAI Responses input items (``window(format="responses")``).

* Agents SDK items come back exactly as the SDK gave them (every kind: they are Responses items).
* Chat messages become the items that say the same: a user, system or developer message an input
  message (content parts mapped: ``text`` becomes ``input_text``, ``image_url`` becomes
  ``input_image``, ``file`` becomes ``input_file``; parts with no Responses form, such as chat
  audio input, are left out); an assistant message a message with string content (its text
  parts and refusal joined), or the SDK's output message when it is one (``id``, ``status`` and
  ``output_text`` parts); its ``tool_calls`` become ``function_call`` / ``custom_tool_call``
  items; a ``tool`` message becomes the matching ``*_call_output``.
* Legacy ``function_call`` / ``function`` messages carry no call id: each call gets one derived
  from its name, arguments and how many identical calls precede it in the list, and the next
  ``function`` message of that name answers it. A result that cannot name its call is left out.
* An assistant message that carries only audio becomes its transcript when one was stored, else
  it is left out (Responses has no reference to a chat audio reply).
* Fields the Responses items do not take (``name``, the app's own) are left out.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from .parts import decode, input_part, is_text_part, text_of

__all__ = ["to_responses"]

_INPUT_ROLES = frozenset({"user", "system", "developer"})
_STATUSES = frozenset({"in_progress", "completed", "incomplete"})
_PHASES = frozenset({"commentary", "final_answer"})


class _LegacyCalls:
    """Call ids for legacy function calls, and which result answers which call."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._open: dict[str, deque[str]] = {}

    def call(self, name: str, arguments: str) -> str:
        key = f"{name}\x00{arguments}"
        n = self._seen[key]
        self._seen[key] += 1
        call_id = "call_" + hashlib.sha256(f"{key}\x00{n}".encode()).hexdigest()[:24]
        self._open.setdefault(name, deque()).append(call_id)
        return call_id

    def result(self, name: str) -> str | None:
        waiting = self._open.get(name)
        return waiting.popleft() if waiting else None


def _input_content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return [p for p in (input_part(part) for part in content) if p is not None]
    return ""


def _input_message(message: Mapping[str, Any]) -> dict[str, Any]:
    out = {"role": message["role"], "content": _input_content(message.get("content"))}
    return {"type": "message", **out} if "type" in message else out


def _output_part(part: Mapping[str, Any]) -> dict[str, Any]:
    if part["type"] == "refusal":
        return {"type": "refusal", "refusal": part["refusal"]}
    annotations = part.get("annotations")
    out = {"type": "output_text", "text": part["text"],
           "annotations": annotations if isinstance(annotations, list) else []}
    if isinstance(part.get("logprobs"), list):
        out["logprobs"] = part["logprobs"]
    return out


def _is_output_part(part: Any) -> bool:
    if not isinstance(part, Mapping):
        return False
    if part.get("type") == "refusal":
        return isinstance(part.get("refusal"), str)
    return part.get("type") == "output_text" and is_text_part(part)


def _output_message(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The SDK's output message, when ``message`` is one as stored."""
    content = message.get("content")
    if not (isinstance(content, list) and content and all(_is_output_part(p) for p in content)
            and isinstance(message.get("id"), str) and message.get("status") in _STATUSES):
        return None
    out = {"type": "message", "role": "assistant", "id": message["id"],
           "status": message["status"], "content": [_output_part(p) for p in content]}
    if message.get("phase") in _PHASES:
        out["phase"] = message["phase"]
    return out


def _assistant_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    pieces = [text_of(content)] if content is not None else []
    if isinstance(content, list):
        pieces += [p["refusal"] for p in content if isinstance(p, Mapping)
                   and p.get("type") == "refusal" and isinstance(p.get("refusal"), str)]
    if isinstance(message.get("refusal"), str):
        pieces.append(message["refusal"])
    audio = message.get("audio")
    if isinstance(audio, Mapping) and isinstance(audio.get("transcript"), str):
        pieces.append(audio["transcript"])
    return "\n".join(p for p in pieces if p)


def _calls(message: Mapping[str, Any], legacy: _LegacyCalls,
           custom: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
            continue
        function, tool = call.get("function"), call.get("custom")
        if call.get("type") == "custom" and isinstance(tool, Mapping) \
                and isinstance(tool.get("name"), str):
            text = tool.get("input")
            custom.add(call["id"])
            out.append({"type": "custom_tool_call", "call_id": call["id"], "name": tool["name"],
                        "input": text if isinstance(text, str) else ""})
        elif isinstance(function, Mapping) and isinstance(function.get("name"), str):
            arguments = function.get("arguments")
            out.append({"type": "function_call", "call_id": call["id"], "name": function["name"],
                        "arguments": arguments if isinstance(arguments, str) else "{}"})
    function = message.get("function_call")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else "{}"
        out.append({"type": "function_call", "call_id": legacy.call(function["name"], arguments),
                    "name": function["name"], "arguments": arguments})
    return out


def _assistant(message: Mapping[str, Any], legacy: _LegacyCalls,
               custom: set[str]) -> list[dict[str, Any]]:
    output = _output_message(message)
    calls = _calls(message, legacy, custom)
    if output is not None:
        return [output, *calls]
    text = _assistant_text(message)
    if not text and (calls or message.get("content") is None):
        return calls  # nothing said: the calls alone (or nothing, for a bare audio reply)
    said = {"role": "assistant", "content": text}
    return [{"type": "message", **said} if "type" in message else said, *calls]


def _result(call_id: str, content: Any, custom: set[str]) -> dict[str, Any]:
    kind = "custom_tool_call_output" if call_id in custom else "function_call_output"
    return {"type": kind, "call_id": call_id, "output": _input_content(content)}


def to_responses(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Responses input items of stored message dicts (fresh dicts)."""
    out: list[dict[str, Any]] = []
    legacy = _LegacyCalls()
    custom: set[str] = set()  # call ids of custom tool calls: their results are custom outputs
    for stored in messages:
        item, sdk = decode(stored)
        if sdk:
            out.append(dict(item))
            continue
        role = stored.get("role")
        if role in _INPUT_ROLES:
            out.append(_input_message(stored))
        elif role == "assistant":
            out.extend(_assistant(stored, legacy, custom))
        elif role == "tool" and isinstance(stored.get("tool_call_id"), str):
            out.append(_result(stored["tool_call_id"], stored.get("content"), custom))
        elif role == "function" and isinstance(stored.get("name"), str):
            call_id = legacy.result(stored["name"])
            if call_id is not None:
                out.append(_result(call_id, stored.get("content"), custom))
    return out
