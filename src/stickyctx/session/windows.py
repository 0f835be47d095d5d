"""Windows and running summaries: the part of a request's session logic that assembles the
context handed to the model and folds what leaves it into the summary (sans-I/O,
see ``stickyctx.sansio``).

``SessionLogic`` inherits this; it is kept apart because it is one concept: what the window is,
and when and how evicted turns are summarized (after the response, at most once, never lost).
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import replace
from typing import Any

from ..core.flow import SessionState
from ..core.messages import Snapshot
from ..core.pruning import WindowPlan, plan_window
from ..core.storekeys import SessionKey
from ..core.summarizer import fits
from ..core.tokenizer import REPLY_PRIMER_TOKENS
from ..core.views import Prefix
from ..errors import ContextOverflowError, SummarizerError
from ..sansio.drive import Call, Compute, Op, Record
from ..telemetry import ATTR, SPAN
from .services import Engine

__all__ = ["Windowing"]

logger = logging.getLogger("stickyctx")

_SUMMARY_LEASE_TTL = 120.0


class _Fold:
    """Messages that left the window and wait to be folded into the running summary. They are
    turned into message dicts only when the fold runs (a later plan often supersedes it)."""

    __slots__ = ("evicted", "expected", "previous", "upto")

    def __init__(self, snapshot: Snapshot, plan: WindowPlan) -> None:
        summary = snapshot.summary
        self.evicted = snapshot.messages[plan.first:plan.start]
        self.expected = summary.watermark if summary else 0  # the watermark it must still have
        self.upto = self.evicted[-1].seq  # the last seq the new summary covers
        self.previous = summary.text if summary else None


class Windowing:
    """Window assembly and summary folds, mixed into ``SessionLogic`` (which holds the state)."""

    # The state this part owns (``SessionLogic.__init__`` sets it); the rest is declared here
    # for the type checker and lives in ``SessionLogic``'s slots.
    __slots__ = ("_fold", "_own_from", "_snapshot", "_window_space")

    engine: Engine
    state: SessionState
    _snapshot: Snapshot | None
    _own_from: int | None
    _window_space: int | None
    _fold: _Fold | None

    @property
    def key(self) -> SessionKey:
        raise NotImplementedError

    @property
    def holder(self) -> str:
        raise NotImplementedError

    def load(self) -> Op[Snapshot]:
        raise NotImplementedError

    def window(self, budget: int | None, system: str | None) -> Op[list[dict[str, Any]]]:
        snapshot = yield from self.load()
        started = time.time_ns()
        settings = self.engine.settings
        limit = settings.token_budget if budget is None else budget
        head: list[dict[str, Any]] = []
        available = limit - settings.response_reserve - REPLY_PRIMER_TOKENS
        head_tokens = 0
        if system is not None:
            head.append({"role": "system", "content": system})
            head_tokens = self.engine.tokenizer.count_message(head[0])
            available -= head_tokens
        summarize = settings.pruning == "summarize"
        if summarize:
            available -= settings.effective_summary_budget
            self._window_space = available  # to plan the fold again at the end of the request
        plan = self._window_plan(snapshot, available, limit, summarize)
        evicted_groups = None
        if summarize and plan.start > plan.first:
            fold = _Fold(snapshot, plan)
            evicted_groups = len({m.group for m in fold.evicted})
            if self._stale_eviction(snapshot, available) and (yield from self._run_fold(fold)):
                snapshot = yield from self._reload()
                plan = self._window_plan(snapshot, available, limit, summarize)
            else:
                self._fold = fold  # after the response (or by the next window, if sooner)
        if summarize and snapshot.summary is not None and snapshot.summary.text:
            text, tokens = self._fitted_summary(snapshot.summary.text)
            if text:
                head.append({"role": "system", "content": text})
                head_tokens += tokens + self.engine.summary_frame
        window = head + [m.as_dict() for m in snapshot.messages[plan.start:]]
        yield Record(SPAN.WINDOW, {
            ATTR.MESSAGES_BEFORE: len(snapshot.messages), ATTR.MESSAGES_AFTER: len(window),
            ATTR.TOKENS_BEFORE: snapshot.total_tokens,
            ATTR.TOKENS_AFTER: plan.tokens + head_tokens + REPLY_PRIMER_TOKENS,
            ATTR.EVICTED_GROUPS: evicted_groups,
            ATTR.WATERMARK: snapshot.summary.watermark if snapshot.summary else None,
        }, started, time.time_ns())
        return window

    def _fitted_summary(self, text: str) -> tuple[str, int]:
        """The stored summary and its tokens, re-fitted when it no longer fits its budget (it
        was counted with another encoding, or the summary budget shrank since): for this window
        only. Counts are memoized by the engine: a summary changes once per fold."""
        engine = self.engine
        budget = engine.settings.effective_summary_budget - engine.summary_frame
        tokens = engine.count_text(text)
        if tokens <= budget:
            return text, tokens
        fitted = engine.builtin_summarizer(text, [], budget)
        return fitted, engine.count_text(fitted)

    def _window_plan(self, snapshot: Snapshot, available: int, limit: int,
                     summarize: bool) -> WindowPlan:
        """The plan, or ``ContextOverflowError`` with what the smallest window needs (the newest
        group with the system prompt, summary budget, reply primer and response reserve) against
        the budget the caller asked for."""
        try:
            plan = self._plan(snapshot, max(available, 0), summarize)
        except ContextOverflowError as exc:
            raise ContextOverflowError(exc.needed + limit - available, limit) from None
        if available < 0:  # not even an empty history fits
            raise ContextOverflowError(limit - available, limit)
        return plan

    def _plan(self, snapshot: Snapshot, available: int, summarize: bool) -> WindowPlan:
        settings = self.engine.settings
        after = snapshot.summary.watermark if summarize and snapshot.summary is not None else 0
        return plan_window(snapshot.messages, available, eviction=settings.eviction,
                           low_water=settings.low_water, after_seq=after)

    def _stale_eviction(self, snapshot: Snapshot, available: int) -> bool:
        """Whether the window was already evicting before this request's own appends (so an
        earlier fold was lost or is late): then it is folded now rather than after the response.
        """
        if self._own_from is None:
            return True  # this request appended nothing: the eviction predates it
        own = self._own_from
        before = Prefix(snapshot.messages,
                        bisect.bisect_left(snapshot.messages, own, key=lambda m: m.seq))
        try:
            plan = self._plan(replace(snapshot, messages=before), available, True)
        except ContextOverflowError:
            return True  # the history before this request's appends did not even fit
        return plan.start > plan.first

    def _reload(self) -> Op[Snapshot]:
        self._snapshot = None
        return (yield from self.load())

    def _run_fold(self, fold: _Fold) -> Op[bool]:
        """Fold evicted messages into the summary, at most once per eviction across requests
        (a ``summary`` lease, then a compare-and-set on the watermark). True when applied."""
        settings = self.engine.settings
        token = yield Call("acquire_lease", (self.key,), {
            "holder": self.holder, "ttl": _SUMMARY_LEASE_TTL, "name": "summary"},
            {ATTR.LEASE_NAME: "summary"})
        if token is None:
            return False  # another request is folding this session right now
        try:
            started = time.time_ns()
            budget = settings.effective_summary_budget - self.engine.summary_frame
            text, fallback = yield from self._summarize(fold, budget)
            applied = yield Call("apply_summary", (
                self.key, text, self.engine.tokenizer.count_text(text)), {
                "watermark": fold.upto, "expected_watermark": fold.expected,
                "delete_folded": settings.summary_storage == "delete"})
            yield Record(SPAN.SUMMARIZE, {
                ATTR.WATERMARK: fold.upto, ATTR.FALLBACK: fallback,
                ATTR.MESSAGES_BEFORE: len(fold.evicted), ATTR.SUMMARY_APPLIED: applied is not None,
                ATTR.SUMMARIZER: settings.summarizer or "builtin",
            }, started, time.time_ns())
            return applied is not None
        finally:
            yield Call("release_lease", (self.key, token), {"name": "summary"})

    def _summarize(self, fold: _Fold, budget: int) -> Op[tuple[str, bool]]:
        """The configured summarizer's text, and whether the built-in one had to stand in
        (the configured one raised, returned a non-string, or overflowed its budget)."""
        engine = self.engine
        evicted = [m.as_dict() for m in fold.evicted]
        text: Any = None
        custom = engine.summarizer is not engine.builtin_summarizer
        if custom:
            try:
                text = yield Compute(engine.summarizer, (fold.previous, evicted, budget))
                if not isinstance(text, str):
                    raise SummarizerError(f"summarizer returned {type(text).__name__}, not str")
            except Exception as exc:  # noqa: BLE001 - any failure falls back, never loses data
                logger.warning("stickyctx: summarizer failed, using the built-in one: %s", exc)
                text = None
            if text is not None and not fits(engine.tokenizer, text, budget):
                logger.warning("stickyctx: summary over its budget, using the built-in one")
                text = None
        if text is None:
            text = engine.builtin_summarizer(fold.previous, evicted, budget)
            return str(text), custom
        return str(text), False

    def _final_fold(self) -> _Fold | None:
        snapshot, space = self._snapshot, self._window_space
        if snapshot is None or space is None or not snapshot.exists:
            return None
        try:
            plan = self._plan(snapshot, max(space, 0), True)
        except ContextOverflowError:
            return None
        if plan.start <= plan.first:
            return None
        return _Fold(snapshot, plan)
