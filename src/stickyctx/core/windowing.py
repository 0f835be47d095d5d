"""The window handed to the model, and what leaves it for the running summary: pure decisions.

A window request is *framed* (the budget asked for, the system prompt, the summary's reserved
space and the reply primer leave ``available`` tokens for history), *planned* over a snapshot
(``pruning.plan_window``: whole turn groups, block eviction), then *assembled* (system prompt,
the running summary fitted to its budget, the planned messages). With summarization on, the
messages that leave the window become a ``Fold``: folded now when the eviction predates this
request (an earlier fold was lost or is late), else after the response, at most once.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ContextOverflowError
from .messages import PLAIN_ROLES, Snapshot, StoredMessage
from .pruning import Eviction, WindowPlan, plan_window
from .tokenizer import REPLY_PRIMER_TOKENS
from .views import Prefix

__all__ = ["Fold", "Frame", "WindowParams", "WindowStats", "assemble", "fit_summary", "fold_of",
           "frame", "pending_fold", "plan", "predates"]


@dataclass(frozen=True, slots=True)
class WindowParams:
    """What the window decisions need from ``Settings`` (derived once per middleware)."""

    token_budget: int
    response_reserve: int
    summarize: bool
    summary_budget: int  # tokens reserved for the summary message, its framing included
    summary_frame: int  # the framing tokens of a system message
    eviction: Eviction
    low_water: float


@dataclass(frozen=True, slots=True)
class Frame:
    """One window request: ``available`` tokens are left for history messages."""

    limit: int  # the budget asked for
    available: int
    head: tuple[dict[str, Any], ...]  # the system prompt, when given
    head_tokens: int


@dataclass(frozen=True, slots=True)
class Fold:
    """Messages that left the window and wait to be folded into the running summary; turned
    into message dicts only when the fold runs (a later plan often supersedes it)."""

    evicted: Sequence[StoredMessage]
    expected: int  # the summary watermark the fold must still find (compare-and-set)
    upto: int  # the last seq the new summary covers
    previous: str | None  # the summary it extends

    def messages(self) -> list[dict[str, Any]]:
        return [m.as_dict() for m in self.evicted]


def frame(params: WindowParams, budget: int | None, system: str | None,
          count_text: Callable[[str], int]) -> Frame:
    """The budget's frame. The system prompt counts as a system message: its text (through
    ``count_text``, memoized by the caller: the same prompt comes every turn) plus the framing
    of a system message, ``params.summary_frame``."""
    limit = params.token_budget if budget is None else budget
    available = limit - params.response_reserve - REPLY_PRIMER_TOKENS
    head: tuple[dict[str, Any], ...] = ()
    head_tokens = 0
    if system is not None:
        head = ({"role": "system", "content": system},)
        head_tokens = params.summary_frame + count_text(system)
        available -= head_tokens
    if params.summarize:
        available -= params.summary_budget
    return Frame(limit, available, head, head_tokens)


def _plan(snapshot: Snapshot, available: int, params: WindowParams) -> WindowPlan:
    summary = snapshot.summary
    after = summary.watermark if params.summarize and summary is not None else 0
    return plan_window(snapshot.messages, available, eviction=params.eviction,
                       low_water=params.low_water, after_seq=after)


def plan(snapshot: Snapshot, window: Frame, params: WindowParams) -> WindowPlan:
    """The plan, or ``ContextOverflowError`` with what the smallest window needs (the newest
    group with the system prompt, summary budget, reply primer and response reserve) against
    the budget the caller asked for."""
    gap = window.limit - window.available
    try:
        planned = _plan(snapshot, max(window.available, 0), params)
    except ContextOverflowError as exc:
        raise ContextOverflowError(exc.needed + gap, window.limit) from None
    if window.available < 0:  # not even an empty history fits
        raise ContextOverflowError(gap, window.limit)
    return planned


def fold_of(snapshot: Snapshot, planned: WindowPlan) -> Fold | None:
    """What ``planned`` evicts past the summary watermark, as a fold (``None``: nothing)."""
    if planned.start <= planned.first:
        return None
    summary = snapshot.summary
    evicted = snapshot.messages[planned.first:planned.start]
    return Fold(evicted, summary.watermark if summary else 0, evicted[-1].seq,
                summary.text if summary else None)


def predates(snapshot: Snapshot, available: int, params: WindowParams,
             own_from: int | None) -> bool:
    """Whether the window was already evicting before this request's own appends (from seq
    ``own_from``): then an earlier fold was lost or is late, and it is folded now."""
    if own_from is None:
        return True  # this request appended nothing: the eviction predates it
    messages = snapshot.messages
    before = Prefix(messages, bisect.bisect_left(messages, own_from, key=lambda m: m.seq))
    try:
        planned = _plan(replace(snapshot, messages=before), max(available, 0), params)
    except ContextOverflowError:
        return True  # the history before this request's appends did not even fit
    return planned.start > planned.first


def pending_fold(snapshot: Snapshot | None, available: int | None,
                 params: WindowParams) -> Fold | None:
    """At the end of a request: what the next window would evict (replies appended after
    ``window()`` may push more out), to fold after the response rather than in the next one."""
    if snapshot is None or available is None or not snapshot.exists:
        return None
    try:
        planned = _plan(snapshot, max(available, 0), params)
    except ContextOverflowError:
        return None
    return fold_of(snapshot, planned)


def fit_summary(text: str, params: WindowParams, count_text: Callable[[str], int],
                shorten: Callable[[str, int], str]) -> tuple[str, int]:
    """The stored summary and its tokens, shortened (``shorten(text, budget)``) when it no
    longer fits its budget (counted with another encoding, or the budget shrank since)."""
    budget = params.summary_budget - params.summary_frame
    tokens = count_text(text)
    if tokens <= budget:
        return text, tokens
    fitted = shorten(text, budget)
    return fitted, count_text(fitted)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What a window did, for telemetry (counts only, never content)."""

    messages_before: int
    messages_after: int
    tokens_before: int
    tokens_after: int
    evicted_groups: int | None
    watermark: int | None
    plain: bool = False  # every message is a plain chat message (see ``_dicts``)


def assemble(window: Frame, snapshot: Snapshot, planned: WindowPlan,
             summary: tuple[str, int] | None, fold: Fold | None, params: WindowParams,
             ) -> tuple[list[dict[str, Any]], WindowStats]:
    """The window's messages (system prompt, summary, history), and what it did."""
    head = list(window.head)
    head_tokens = window.head_tokens
    if summary is not None and summary[0]:
        head.append({"role": "system", "content": summary[0]})
        head_tokens += summary[1] + params.summary_frame
    history, plain = _dicts(snapshot.messages[planned.start:])
    plain = plain and all(type(m.get("content")) is str for m in head)
    messages = head + history
    stored = snapshot.summary
    return messages, WindowStats(
        len(snapshot.messages), len(messages), snapshot.total_tokens,
        planned.tokens + head_tokens + REPLY_PRIMER_TOKENS,
        len({m.group for m in fold.evicted}) if fold is not None else None,
        stored.watermark if stored else None, plain)


def _dicts(messages: Sequence[StoredMessage]) -> tuple[list[dict[str, Any]], bool]:
    """Fresh message dicts, and whether all are plain chat messages (a role and text, nothing
    else: already in the chat form, so converting them would change nothing)."""
    out: list[dict[str, Any]] = []
    add = out.append
    plain = True
    for m in messages:
        if m.fields or type(m.content) is not str or m.role not in PLAIN_ROLES:
            plain = False
            add(m.as_dict())
        else:
            add({"role": m.role, "content": m.content})
    return out, plain
