"""The forms a history is handed out in: ``format=`` of ``window()`` and ``messages()``.

* ``"chat"``: OpenAI Chat Completions messages, each valid as the openai package's
  ``ChatCompletionMessageParam`` with no key its role does not take (``chat_format``).
* ``"responses"``: OpenAI Responses input items, each valid as ``ResponseInputItemParam``
  (``responses_format``), so that conversations written by the Agents SDK and by plain chat code
  share one history.
* ``"stored"``: the messages as stored, fields and all (what the Agents SDK session reads).

The stored data never changes: the forms are computed on the way out, from the message dicts,
without I/O. Token counts (the budget, ``token_count()``) are those of the stored form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .chat_format import to_chat
from .parts import ITEM_FIELD
from .responses_format import to_responses

__all__ = ["FORMATS", "ITEM_FIELD", "Format", "formatter", "to_chat", "to_responses"]

Format = Literal["chat", "responses", "stored"]
FORMATS: tuple[Format, ...] = ("chat", "responses", "stored")

Converter = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _stored(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return messages


_CONVERTERS: dict[str, Converter] = {"chat": to_chat, "responses": to_responses,
                                     "stored": _stored}


def formatter(format: str) -> Converter:
    """The function that turns stored message dicts into ``format``; ``ValueError`` for a name
    that is not one of ``FORMATS``."""
    try:
        return _CONVERTERS[format]
    except (KeyError, TypeError):
        raise ValueError(f"unknown format {format!r}; expected one of "
                         + ", ".join(FORMATS)) from None
