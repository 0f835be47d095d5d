"""What the output forms share: reading a stored message back as the item it stands for, and
the content parts of the Chat Completions and Responses vocabularies, mapped either way.

Stored content parts may be in either vocabulary (``text``/``image_url`` as the chat API writes
them, ``input_text``/``output_text``/``input_image`` as the Agents SDK writes them). Each mapper
returns ``None`` for a part that has no form in the target vocabulary (for that role): the
formats leave such parts out rather than send something the API refuses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ITEM_FIELD",
    "chat_part",
    "decode",
    "input_part",
    "is_text_part",
    "text_of",
]

#: The field that marks a stored message as an OpenAI Agents SDK item kept as its JSON.
ITEM_FIELD = "agents_item"

_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})
_IMAGE_DETAILS = frozenset({"auto", "low", "high", "original"})  # the same in both APIs
_FILE_SOURCES = frozenset({"file_data", "file_id", "file_url"})


def decode(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The item a stored message stands for, and whether it was stored as an Agents SDK item
    (then it is the item as the SDK gave it; else it is the message itself)."""
    if message.get(ITEM_FIELD) is True:
        content = message.get("content")
        if isinstance(content, str):
            try:
                item = json.loads(content)
            except ValueError:
                item = None
            if isinstance(item, dict):
                return item, True
    return message, False


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def is_text_part(part: Any) -> bool:
    return (isinstance(part, Mapping) and part.get("type") in _TEXT_TYPES
            and isinstance(part.get("text"), str))


def text_of(content: Any) -> str:
    """The text of a content value: the string, or its text parts joined by new lines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if is_text_part(part))
    return ""


def _image_url(part: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The URL and detail of an image part of either vocabulary (LangChain also writes the URL
    of an ``image_url`` part as a plain string)."""
    if part.get("type") == "input_image":
        return _str(part.get("image_url")), _str(part.get("detail"))
    image = part.get("image_url")
    if isinstance(image, Mapping):
        return _str(image.get("url")), _str(image.get("detail"))
    return _str(image), None


def _file_fields(file: Mapping[str, Any]) -> dict[str, str]:
    return {k: file[k] for k in ("file_data", "file_id", "filename")
            if isinstance(file.get(k), str)}


def chat_part(part: Any, role: str) -> dict[str, Any] | None:
    """``part`` as a Chat Completions content part of a ``role`` message, or ``None``.

    User messages take text, images, audio and files; assistant messages text and refusals;
    system, developer and tool messages text only.
    """
    if is_text_part(part):
        return {"type": "text", "text": part["text"]}
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if role == "assistant":
        refusal = _str(part.get("refusal"))
        return {"type": "refusal", "refusal": refusal} if kind == "refusal" and refusal else None
    if role != "user":
        return None
    if kind in ("image_url", "input_image"):
        url, detail = _image_url(part)
        if not url:
            return None  # an image known only by a file id has no chat form
        image: dict[str, str] = {"url": url}
        if detail in _IMAGE_DETAILS:
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if kind == "input_audio":
        audio = part.get("input_audio")
        if isinstance(audio, Mapping) and isinstance(audio.get("data"), str) \
                and audio.get("format") in ("wav", "mp3"):
            return {"type": "input_audio",
                    "input_audio": {"data": audio["data"], "format": audio["format"]}}
        return None
    if kind == "file":
        file = part.get("file")
        fields = _file_fields(file) if isinstance(file, Mapping) else {}
        return {"type": "file", "file": fields} if fields.keys() & _FILE_SOURCES else None
    if kind == "input_file":
        fields = _file_fields(part)
        if "file_data" in fields or "file_id" in fields:
            return {"type": "file", "file": fields}
    return None


def input_part(part: Any) -> dict[str, Any] | None:
    """``part`` as a Responses input content part (of a user, system or developer message, or
    of a tool's output), or ``None``."""
    if is_text_part(part):
        return {"type": "input_text", "text": part["text"]}
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        url, detail = _image_url(part)
        image: dict[str, Any] = {"type": "input_image",
                                 "detail": detail if detail in _IMAGE_DETAILS else "auto"}
        file_id = _str(part.get("file_id")) if kind == "input_image" else None
        if url:
            image["image_url"] = url
        elif file_id:
            image["file_id"] = file_id
        else:
            return None
        return image
    if kind == "file":
        file = part.get("file")
        fields = _file_fields(file) if isinstance(file, Mapping) else {}
        return {"type": "input_file", **fields} if fields.keys() & _FILE_SOURCES else None
    if kind == "input_file":
        fields = _file_fields(part)
        url = _str(part.get("file_url"))
        if url:
            fields["file_url"] = url
        return {"type": "input_file", **fields} if fields.keys() & _FILE_SOURCES else None
    return None
