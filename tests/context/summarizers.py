"""Summarizers named by ``STICKYCTX_SUMMARIZER=tests.context.summarizers:NAME`` in these tests.

The well-behaved ones write ``<kind> summary: N messages folded`` where N counts every message
folded so far (read back from the previous summary), and record what they were given, so that a
test can prove each evicted message reaches the summarizer exactly once.
"""

from __future__ import annotations

import re
from typing import Any

FOLDED: list[str] = []  # the content of every message handed to a well-behaved summarizer
_COUNT = re.compile(r"summary: (\d+) messages folded")
NOT_CALLABLE = 42


def _fold(kind: str, previous: str | None, evicted: list[dict[str, Any]]) -> str:
    FOLDED.extend(str(m.get("content")) for m in evicted)
    match = _COUNT.search(previous or "")
    before = int(match.group(1)) if match else 0
    return f"{kind} summary: {before + len(evicted)} messages folded"


def sync_summary(previous: str | None, evicted: list[dict[str, Any]], budget: int) -> str:
    return _fold("sync", previous, evicted)


async def async_summary(previous: str | None, evicted: list[dict[str, Any]], budget: int) -> str:
    return _fold("async", previous, evicted)


def raising_summary(previous: str | None, evicted: list[dict[str, Any]], budget: int) -> str:
    raise RuntimeError("the model behind this summarizer is down")


async def async_raising_summary(previous: str | None, evicted: list[dict[str, Any]],
                                budget: int) -> str:
    raise RuntimeError("the model behind this summarizer is down")


def non_string_summary(previous: str | None, evicted: list[dict[str, Any]], budget: int) -> Any:
    return {"summary": "a dict, not a string"}


def oversized_summary(previous: str | None, evicted: list[dict[str, Any]], budget: int) -> str:
    return "far too long " * (budget + 10)  # three tokens a repetition: over any budget
