"""The message objects an app may append, as the role, content and fields that are stored.

``extend()`` takes, and ``append(message)`` takes in place of ``role, content``:

* a mapping (an OpenAI-style message dict), as it is;
* a LangChain message (``langchain_core.messages.BaseMessage``), converted by langchain-core's
  own ``convert_to_openai_messages`` (what LangChain sends to OpenAI's chat API: content, name,
  tool calls, tool call id; its ids and metadata are not part of it);
* a pydantic model, such as the openai package's ``ChatCompletionMessage``, as its
  ``model_dump(mode="json", exclude_none=True)``, less the base64 ``data`` of an audio reply
  (the chat API takes a reply back by its audio ``id``; stored, the data would be counted as
  text tokens).

Anything else is an ``InvalidMessageError`` (a client error through the middleware), as is a
LangChain message that langchain-core cannot convert. No library is imported here unless the
app handed over one of its objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidMessageError

__all__ = ["MISSING", "as_mapping", "message_parts"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: The default of ``append``'s ``content``: ``append(message)`` passes a message object alone.
MISSING: Any = _Missing()


def _is_langchain_message(message: object) -> bool:
    return any(cls.__name__ == "BaseMessage" and cls.__module__ == "langchain_core.messages.base"
               for cls in type(message).__mro__)


def _from_langchain(message: object) -> Mapping[str, Any]:
    from langchain_core.messages import BaseMessage, convert_to_openai_messages

    assert isinstance(message, BaseMessage)
    try:
        return convert_to_openai_messages(message)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidMessageError(f"LangChain {type(message).__name__} has no OpenAI chat "
                                  f"form ({type(exc).__name__})") from None


def as_mapping(message: object) -> Mapping[str, Any]:
    """``message`` as an OpenAI-style message mapping (see the module's docstring)."""
    if isinstance(message, Mapping):
        return message
    if _is_langchain_message(message):
        return _from_langchain(message)
    dump = getattr(message, "model_dump", None)
    if callable(dump):
        try:
            data = dump(mode="json", exclude_none=True)
        except Exception as exc:  # noqa: BLE001 - a model that cannot dump is the app's bad input
            raise InvalidMessageError(
                f"{type(message).__name__} could not be dumped: {type(exc).__name__}") from None
        if isinstance(data, dict):
            audio = data.get("audio")
            if isinstance(audio, dict) and "data" in audio:
                data["audio"] = {k: v for k, v in audio.items() if k != "data"}
            return data
    raise InvalidMessageError(
        "a message must be a dict, a pydantic model or a LangChain message, not "
        + type(message).__name__)


def message_parts(message: object) -> tuple[Any, Any, dict[str, Any]]:
    """The role, content and other fields of a message object (role ``""`` when it has none:
    ``build_message`` refuses it)."""
    data = as_mapping(message)
    fields = {k: v for k, v in data.items() if k not in ("role", "content")}
    return data.get("role", ""), data.get("content"), fields
