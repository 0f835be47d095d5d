"""Token counts of messages about to be appended: small ones at once, large ones off the loop.

Counting is CPU work proportional to the text (a 1 MB message takes 0.1 to 0.3 s with tiktoken).
Done inside an ASGI request, it would stall every other request of the worker for that long. A
message over ``INLINE_BYTES`` is counted in one ``Offload`` step instead: the async driver runs it
in a worker thread (tiktoken releases the GIL while it encodes), the sync driver in place (a WSGI
request has its thread already).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.messages import NewMessage
from ..core.tokenizer import Tokenizer
from ..sansio import Offload, Op

__all__ = ["INLINE_BYTES", "counted"]

INLINE_BYTES = 16_384  # a message up to this size (its JSON form) is counted in place: < 5 ms


def _count(tokenizer: Tokenizer, messages: Sequence[NewMessage]) -> list[int]:
    return [tokenizer.count_message(m.payload()) for m in messages]


def counted(messages: Sequence[NewMessage], tokenizer: Tokenizer) -> Op[list[NewMessage]]:
    """``messages`` (built with ``count=False``) with their token counts."""
    large = [m for m in messages if m.size > INLINE_BYTES]
    counts: list[int] = []
    if large:
        counts = yield Offload(_count, (tokenizer, large))
    found = iter(counts)
    return [m.with_tokens(next(found) if m.size > INLINE_BYTES
                          else tokenizer.count_message(m.payload())) for m in messages]
