"""A stored history as OpenAI Chat Completions messages (``window(format="chat")``).

Every message returned has exactly the keys its role's ``ChatCompletion*MessageParam`` allows,
whatever the store holds:

* Chat messages keep their role, content, ``name`` (not on tool messages), ``tool_calls``,
  ``tool_call_id``, legacy ``function_call``, ``refusal`` and ``audio`` (its ``id``); other
  fields (the app's own, an SDK item's ``id``/``status``/``type``) are left out. Content parts
  are mapped to the chat vocabulary (``input_text`` becomes ``text``, ``input_image`` becomes
  ``image_url``, ...); parts with no chat form for the role are left out.
* Agents SDK items: a ``function_call`` or ``custom_tool_call`` becomes a call in the
  ``tool_calls`` of an assistant message (consecutive calls, and the assistant text just before
  them, share one message, as the chat API wants parallel calls); its ``*_output`` becomes a
  ``tool`` message with its ``tool_call_id``; a message item becomes a chat message. Items with no
  chat form (reasoning, hosted tools such as web or file search, computer use, code interpreter,
  MCP, shell, item references, compaction) are left out: the Responses form keeps them.
* Calls and results stay in pairs, as the chat API requires: each assistant message with
  ``tool_calls`` is followed directly by one result per call. A result that does not follow its
  call, and a call that no result answers (a turn interrupted between the two, a result popped),
  are left out; a tool or function result that cannot name its call (no ``tool_call_id``, no
  ``name``) has no chat form either. The store's turn groups keep a turn's calls and results in
  one window, so this only trims histories that were stored cut or out of order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .messages import PLAIN_ROLES
from .parts import chat_part, decode

__all__ = ["to_chat"]

_NAMED = frozenset({"system", "developer", "user", "assistant", "function"})
_CALLS = frozenset({"function_call", "custom_tool_call"})
_RESULTS = frozenset({"function_call_output", "custom_tool_call_output"})


def _content(content: Any, role: str) -> Any:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in (chat_part(part, role) for part in content) if p is not None]
        return parts if parts or not content else ""
    return None if role == "assistant" else ""


def _tool_call(call: Any) -> dict[str, Any] | None:
    """A stored chat tool call with only the keys the chat API takes, or ``None``."""
    if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
        return None
    function, custom = call.get("function"), call.get("custom")
    if call.get("type", "function") == "function" and isinstance(function, Mapping):
        name, arguments = function.get("name"), function.get("arguments")
        if isinstance(name, str):
            return {"id": call["id"], "type": "function", "function": {
                "name": name, "arguments": arguments if isinstance(arguments, str) else "{}"}}
    if call.get("type") == "custom" and isinstance(custom, Mapping):
        name, text = custom.get("name"), custom.get("input")
        if isinstance(name, str) and isinstance(text, str):
            return {"id": call["id"], "type": "custom", "custom": {"name": name, "input": text}}
    return None


def _assistant_extras(message: Mapping[str, Any], out: dict[str, Any]) -> None:
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        kept = [c for c in (_tool_call(call) for call in calls) if c is not None]
        if kept:
            out["tool_calls"] = kept
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping) and isinstance(legacy.get("name"), str):
        arguments = legacy.get("arguments")
        out["function_call"] = {"name": legacy["name"],
                                "arguments": arguments if isinstance(arguments, str) else "{}"}
    if isinstance(message.get("refusal"), str):
        out["refusal"] = message["refusal"]
    audio = message.get("audio")
    if isinstance(audio, Mapping) and isinstance(audio.get("id"), str):
        out["audio"] = {"id": audio["id"]}


def _message(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """One chat message from a stored message or an SDK message item, or ``None``."""
    role = message.get("role")
    if not isinstance(role, str):
        return None
    out: dict[str, Any] = {"role": role, "content": _content(message.get("content"), role)}
    if role in _NAMED and isinstance(message.get("name"), str):
        out["name"] = message["name"]
    if role == "assistant":
        _assistant_extras(message, out)
    elif role == "tool":
        if not isinstance(message.get("tool_call_id"), str):
            return None
        out["tool_call_id"] = message["tool_call_id"]
    elif role == "function" and "name" not in out:
        return None
    return out


def _item_call(item: Mapping[str, Any]) -> dict[str, Any] | None:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        return None
    if item["type"] == "custom_tool_call":
        text = item.get("input")
        return {"id": call_id, "type": "custom",
                "custom": {"name": name, "input": text if isinstance(text, str) else ""}}
    arguments = item.get("arguments")
    return {"id": call_id, "type": "function", "function": {
        "name": name, "arguments": arguments if isinstance(arguments, str) and arguments else "{}"}}


def _item_result(item: Mapping[str, Any]) -> dict[str, Any] | None:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        return None
    output = item.get("output")
    content = output if isinstance(output, str) else _content(output, "tool")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _takes_calls(message: dict[str, Any]) -> bool:
    """Whether an assistant message can carry further tool calls (the same model turn)."""
    return (message["role"] == "assistant" and "function_call" not in message
            and "audio" not in message and "refusal" not in message)


def _add(out: list[dict[str, Any]], message: dict[str, Any]) -> None:
    last = out[-1] if out else None
    if (last is not None and message["role"] == "assistant" and last["role"] == "assistant"
            and "tool_calls" in last and last["content"] is None and message.keys() == {
                "role", "content"}):
        # An SDK turn may store its calls before its text: the text joins the calls' message,
        # which the tool results must follow directly.
        last["content"] = message["content"]
        return
    out.append(message)


def _paired(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``out`` with each assistant message's calls followed directly by their results, once
    each: calls that no result right after answers are dropped (and the message with them when
    it has nothing else to say), and so are results that do not follow their call."""
    kept: list[dict[str, Any]] = []
    i, n = 0, len(out)
    while i < n:
        message = out[i]
        i += 1
        if message["role"] == "tool":
            continue  # not right after the message that made its call
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        if calls is None:
            kept.append(message)
            continue
        wanted = {call["id"] for call in calls}
        results: dict[str, dict[str, Any]] = {}
        while i < n and out[i]["role"] == "tool":
            result = out[i]
            i += 1
            if result["tool_call_id"] in wanted:
                results.setdefault(result["tool_call_id"], result)
        answered = [call for call in calls if call["id"] in results]
        if answered:
            message["tool_calls"] = answered
        else:
            del message["tool_calls"]
            if not message["content"] and message.keys() == {"role", "content"}:
                continue
        kept.append(message)
        kept.extend(results.values())
    return kept


def _plain(message: dict[str, Any]) -> bool:
    """Already in chat form, and never merged or paired: a role and text content, nothing else."""
    return (len(message) == 2 and type(message.get("content")) is str
            and message.get("role") in PLAIN_ROLES)


def to_chat(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Chat Completions form of stored message dicts (``as_dict()`` copies, which it may
    reuse and change)."""
    if all(_plain(m) for m in messages):
        return messages  # the common case: a plain chat history, handed out as it is
    out: list[dict[str, Any]] = []
    for stored in messages:
        if _plain(stored):
            _add(out, stored)
            continue
        item, sdk = decode(stored)
        kind = item.get("type") if sdk else None
        if kind in _CALLS:
            call = _item_call(item)
            if call is None:
                continue
            last = out[-1] if out else None
            if last is not None and _takes_calls(last):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in _RESULTS:
            result = _item_result(item)
            if result is not None:
                out.append(result)
        elif kind in (None, "message") and "role" in item:
            message = _message(item)
            if message is not None:
                _add(out, message)
    return _paired(out)
