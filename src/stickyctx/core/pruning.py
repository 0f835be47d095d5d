"""Choosing what of a history fits a token budget: whole turn groups, newest first.

The cost is proportional to the size of the window, not of the history: the walk starts at the
newest message and stops at the first group that falls outside, using the counts stored with each
message (nothing is re-tokenized).

Two eviction policies:

* ``turn``: plain sliding, the newest groups that fit. The window's first message changes on
  almost every turn, so a provider's prompt cache never sees the same prefix twice.
* ``block`` (default): the window's start only moves in blocks. With ``A`` tokens available and
  a low-water mark ``L``, the start is the first group boundary at or after the cumulative-token
  position ``ceil((C - A) / B) * B`` where ``C`` is the cumulative count at the newest message
  and ``B = (1 - L) * A``. That position changes only when ``C`` crosses a multiple of ``B``, so
  the window keeps a byte-identical prefix for as many turns as ``B`` tokens take to arrive,
  while always fitting ``A``. It depends only on the stored cumulative counts: stateless, the
  same on every node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ContextOverflowError
from .messages import StoredMessage

__all__ = ["Eviction", "WindowPlan", "plan_window", "sliding_window"]

Eviction = Literal["block", "turn"]


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """``messages[start:]`` is the window; ``messages[first:start]`` falls out of it.

    ``first`` is the index of the first message after ``after_seq`` (the summary watermark).
    """

    start: int
    first: int
    tokens: int  # tokens of the window's messages

    @property
    def evicted(self) -> range:
        return range(self.first, self.start)


def _first_after(messages: Sequence[StoredMessage], after_seq: int) -> int:
    """Index of the first message with ``seq > after_seq`` (binary search on seq)."""
    if not messages or messages[0].seq > after_seq:
        return 0  # no summary watermark inside the history: O(1), whatever its length
    lo, hi = 0, len(messages)
    while lo < hi:
        mid = (lo + hi) // 2
        if messages[mid].seq <= after_seq:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _walk(messages: Sequence[StoredMessage], threshold: int, after_seq: int) -> int:
    """Index where the window starts: the oldest whole group (after the watermark) that starts
    at a cumulative position of at least ``threshold``; ``len(messages)`` when not even the
    newest group does.

    A binary search, not a walk: positions before a message (``cum - tokens``) only grow along
    the history, so the window costs O(log n) to place whatever its length (a long window on
    every turn was the largest cost of a turn)."""
    n = len(messages)
    floor = _first_after(messages, after_seq)  # a group cut by the watermark starts here
    lo, hi = floor, n
    while lo < hi:  # the first message that starts at or after the threshold
        mid = (lo + hi) // 2
        message = messages[mid]
        if message.cum - message.tokens < threshold:
            lo = mid + 1
        else:
            hi = mid
    if floor < lo < n:  # inside a group: the window starts at the next whole one
        group = messages[lo - 1].group
        while lo < n and messages[lo].group == group:
            lo += 1
    return lo


def plan_window(
    messages: Sequence[StoredMessage],
    available: int,
    *,
    eviction: Eviction = "block",
    low_water: float = 0.75,
    after_seq: int = 0,
) -> WindowPlan:
    """Plan the window over ``messages`` (ordered by seq) that fits ``available`` tokens.

    Messages with ``seq <= after_seq`` are never part of it (they are in the summary). Raises
    ``ContextOverflowError`` when the newest group alone does not fit.
    """
    n = len(messages)
    first = _first_after(messages, after_seq)
    if first == n:
        return WindowPlan(n, n, 0)
    newest = messages[-1]
    threshold = newest.cum - available  # the window must start at or after this position
    start = n
    if threshold <= 0:  # everything after the watermark fits: no walk (most conversations)
        start = first
    elif eviction == "block":
        block = max(1, int((1.0 - low_water) * available))
        start = _walk(messages, math.ceil(threshold / block) * block, after_seq)
    if start == n:  # plain sliding, or a block boundary that would leave nothing
        start = _walk(messages, threshold, after_seq)
    if start == n:
        group = newest.group
        index = n - 1
        while index > first and messages[index - 1].group == group:
            index -= 1
        before = messages[index].cum - messages[index].tokens
        raise ContextOverflowError(newest.cum - before, available)
    tokens = newest.cum - (messages[start].cum - messages[start].tokens)
    return WindowPlan(start, min(first, start), tokens)


def sliding_window(messages: Sequence[StoredMessage], available: int) -> Sequence[StoredMessage]:
    """The newest whole turn groups whose tokens add up to at most ``available``."""
    plan = plan_window(messages, available, eviction="turn")
    return messages[plan.start:]
