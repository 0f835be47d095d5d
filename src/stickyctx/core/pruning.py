"""Choosing what of a history fits a token budget: whole turn groups, newest first.

The cost is proportional to the size of the window, not of the history: the walk starts at the
newest message and stops at the first group that does not fit, using the counts stored with
each message (nothing is re-tokenized).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ContextOverflowError
from .messages import StoredMessage

__all__ = ["sliding_window"]


def sliding_window(messages: Sequence[StoredMessage], available: int) -> Sequence[StoredMessage]:
    """The newest whole turn groups whose tokens add up to at most ``available``.

    Raises ``ContextOverflowError`` when the newest group alone does not fit.
    """
    used = 0
    start = len(messages)
    index = len(messages) - 1
    while index >= 0:
        group = messages[index].group
        group_tokens = 0
        first = index
        while first >= 0 and messages[first].group == group:
            group_tokens += messages[first].tokens
            first -= 1
        if used + group_tokens > available:
            if start == len(messages):
                raise ContextOverflowError(group_tokens, available)
            break
        used += group_tokens
        start = first + 1
        index = first
    return messages[start:]
