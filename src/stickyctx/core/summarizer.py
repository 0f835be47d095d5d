"""Running summaries: the built-in extractive summarizer and the summarizer contract.

A summarizer is ``summarize(previous_summary, evicted_messages, budget_tokens) -> str`` (or an
``async def`` returning ``str``): it folds the messages that leave the window into the previous
summary, in at most ``budget_tokens`` tokens. ``STICKYCTX_SUMMARIZER=module:callable`` names one.

The built-in one needs no network and is deterministic: it keeps the sentences that carry names,
numbers, decisions and the user's stated preferences, highest value first, newest first among
equals, within the budget, and prints them in conversation order.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Union

from ..errors import ConfigError
from .tokenizer import Tokenizer

__all__ = ["HEADER", "ExtractiveSummarizer", "Summarizer", "load_summarizer", "message_text"]

Summarizer = Callable[[Union[str, None], list[dict[str, Any]], int],  # noqa: UP007
                      Union[str, Awaitable[str]]]  # noqa: UP007

HEADER = "Summary of the earlier conversation:"
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_PREFERENCE = re.compile(
    r"\b(i (really )?(prefer|like|love|hate|want|need|always|never|usually)|my name is|call me|"
    r"i am|i'm|please (always|never|don't|do not)|don't|do not|remember)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(decided|decision|agreed|agree|let's|we will|we'll|i will|i'll|chose|choose|chosen|"
    r"confirmed|confirm|plan is|booked|scheduled|deadline|must|should)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_LINE = re.compile(r"^- (\w+): (.*)$")


def message_text(message: Mapping[str, Any]) -> str:
    """The plain text of a message (text parts joined; other parts left out)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _score(role: str, sentence: str) -> int:
    score = 1 if role == "earlier" else 0
    if _PREFERENCE.search(sentence):
        score += 4 if role == "user" else 2
    if _DECISION.search(sentence):
        score += 3
    if _NUMBER.search(sentence):
        score += 2
    if _NAME.search(sentence.strip()):
        score += 2
    return score


class ExtractiveSummarizer:
    """The built-in summarizer (deterministic, offline). Counts with the engine's tokenizer."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, previous: str | None, evicted: list[dict[str, Any]], budget: int) -> str:
        lines: list[tuple[str, str]] = []  # (role, sentence) in conversation order
        for raw in (previous or "").splitlines():
            match = _LINE.match(raw.strip())
            if match:
                lines.append((match.group(1), match.group(2)))
            elif raw.strip() and raw.strip() != HEADER:
                # A summary written by another summarizer: keep its sentences as earlier facts.
                lines.extend(("earlier", " ".join(s.split()))
                             for s in _SENTENCE.findall(raw) if s.strip())
        for message in evicted:
            role = str(message.get("role", ""))
            if role not in ("user", "assistant"):
                continue
            for sentence in _SENTENCE.findall(message_text(message)):
                text = " ".join(sentence.split())
                if text and _score(role, text) > 0:
                    lines.append((role, text))
        # Highest value first; among equals, the newest first.
        order = sorted(range(len(lines)), key=lambda i: (-_score(*lines[i]), -i))
        used = self.tokenizer.count_text(HEADER)
        kept: set[int] = set()
        for i in order:
            cost = self.tokenizer.count_text("\n- {}: {}".format(*lines[i]))
            if used + cost <= budget:
                kept.add(i)
                used += cost
        if not kept:
            return ""
        body = "\n".join("- {}: {}".format(*lines[i]) for i in sorted(kept))
        return f"{HEADER}\n{body}"


def load_summarizer(spec: str) -> Summarizer:
    """Import ``module:callable``; ``ConfigError`` naming ``STICKYCTX_SUMMARIZER`` otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError("STICKYCTX_SUMMARIZER", "expected 'module:callable'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a module that fails to import, however it fails
        raise ConfigError("STICKYCTX_SUMMARIZER",
                          f"cannot import module: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise ConfigError("STICKYCTX_SUMMARIZER", "the named attribute is not callable")
    return target  # type: ignore[no-any-return]


def fits(tokenizer: Tokenizer, text: object, budget: int) -> bool:
    return isinstance(text, str) and tokenizer.count_text(text) <= budget
