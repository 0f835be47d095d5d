"""The example apps' streamed replies: the reply of ``reply``/``areply`` in word chunks.

The offline reply streams word by word, ``DEMO_TOKEN_DELAY_MS`` milliseconds apart (default
25), so that a reload, a stop or a node's death can land in the middle of a reply. A configured
backend's answer is fetched whole, then streamed the same way.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from . import areply, reply

__all__ = ["atokens", "token_delay", "tokens", "words"]

_WORD = re.compile(r"\s*\S+")
DEFAULT_DELAY_MS = 25


def token_delay(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between two chunks (``DEMO_TOKEN_DELAY_MS``; a bad value is the default)."""
    raw = (os.environ if environ is None else environ).get("DEMO_TOKEN_DELAY_MS", "").strip()
    try:
        ms = float(raw) if raw else DEFAULT_DELAY_MS
    except ValueError:
        ms = DEFAULT_DELAY_MS
    return max(0.0, ms) / 1000


def words(text: str) -> list[str]:
    """``text`` in chunks of one word each (with the spaces before it): they join back to it."""
    chunks = _WORD.findall(text)
    tail = text[sum(map(len, chunks)):]
    if tail and chunks:
        chunks[-1] += tail
    return chunks or ([text] if text else [])


def tokens(window: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """The reply to ``window``, word by word (blocking: for WSGI apps)."""
    delay = token_delay()
    for n, chunk in enumerate(words(reply(window))):
        if n and delay:
            time.sleep(delay)
        yield chunk


async def atokens(window: Sequence[Mapping[str, Any]]) -> AsyncIterator[str]:
    """The reply to ``window``, word by word (for ASGI apps)."""
    delay = token_delay()
    for n, chunk in enumerate(words(await areply(window))):
        if n and delay:
            await asyncio.sleep(delay)
        yield chunk
