"""The window, and folding what left it into the running summary (sans-I/O), at most once.

A fold takes the session's ``summary`` lease (one summarizer per session at a time), runs the
summarizer (the app's, off the event loop; the built-in one when the app's fails, returns
something else than text or overflows its budget), then compare-and-sets the summary on the
watermark it started from, so that appends made meanwhile survive and an eviction is folded
once across nodes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..core import windowing
from ..core.formats import Format, formatter
from ..core.messages import Snapshot
from ..core.summarizer import fits
from ..core.windowing import Fold, Frame, pending_fold, predates
from ..errors import SummarizerError
from ..sansio import Offload, Op
from ..telemetry import ATTR, SPAN

if TYPE_CHECKING:
    from .logic import Session
    from .services import Services

__all__ = ["Folds", "run_fold"]

logger = logging.getLogger("stickyctx")

_SUMMARY_LEASE_TTL = 120.0


class Folds:
    """A request's folds: what its windows evicted, decided by ``core.windowing``."""

    __slots__ = ("own_from", "pending", "session", "space")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: Fold | None = None  # to fold after the response
        self.space: int | None = None  # the last window's history space, to plan again
        self.own_from: int | None = None  # seq of the first message this request appended

    def window(self, budget: int | None, system: str | None,
               format: Format) -> Op[list[dict[str, Any]]]:
        """``Session.window``: plan (``core.windowing``), fold what must be folded first,
        assemble, and record the window's span."""
        convert = formatter(format)
        session = self.session
        snapshot = yield from session.load()
        started = time.time_ns()
        services = session.services
        params = services.window
        frame = windowing.frame(params, budget, system, services.count_text)
        if params.summarize:
            self.space = frame.available
        planned = windowing.plan(snapshot, frame, params)
        fold = windowing.fold_of(snapshot, planned) if params.summarize else None
        if fold is not None and (yield from self.after_window(snapshot, frame, fold)):
            snapshot = yield from session._reload()
            planned = windowing.plan(snapshot, frame, params)
        summary = None
        if params.summarize and snapshot.summary is not None and snapshot.summary.text:
            summary = windowing.fit_summary(snapshot.summary.text, params, services.count_text,
                                            services.shorten_summary)
        messages, stats = windowing.assemble(frame, snapshot, planned, summary, fold, params)
        session.record(SPAN.WINDOW, {
            ATTR.MESSAGES_BEFORE: stats.messages_before, ATTR.MESSAGES_AFTER: stats.messages_after,
            ATTR.TOKENS_BEFORE: stats.tokens_before, ATTR.TOKENS_AFTER: stats.tokens_after,
            ATTR.EVICTED_GROUPS: stats.evicted_groups, ATTR.WATERMARK: stats.watermark,
        }, started)
        if stats.plain and format == "chat":
            return messages  # already the chat form (the head is plain by construction)
        return convert(messages)

    def after_window(self, snapshot: Snapshot, frame: Frame, fold: Fold) -> Op[bool]:
        """Fold now when the eviction predates this request (an earlier fold was lost or is
        late: True, reload), else after the response (or by the next window, if sooner)."""
        params = self.session.services.window
        staged = self.session.turn.predicted
        if staged and fold.upto >= staged[0]:
            pass  # it reaches into appends not stored yet: after the commit, once they are
        elif (predates(snapshot, frame.available, params, self.own_from)
                and (yield from run_fold(self.session, fold))):
            return True
        self.pending = fold
        return False

    def moved(self, seqs: tuple[int, ...]) -> None:
        """The staged appends were stored at other sequence numbers than shown (someone wrote
        in between): a pending fold planned on the shown ones is dropped (the next window
        plans again), and this request's own appends start where they were stored."""
        if self.pending is not None and self.own_from is not None \
                and self.pending.upto >= self.own_from:
            self.pending = None
        if seqs and (self.own_from is None or seqs[0] < self.own_from):
            self.own_from = seqs[0]

    def finish(self, snapshot: Snapshot | None) -> Op[None]:
        """After the response: replies appended after ``window()`` may push more out, so fold
        up to what the next window would leave out, now, rather than in the next request."""
        fold, self.pending = self.pending, None
        fold = pending_fold(snapshot, self.space, self.session.services.window) or fold
        if fold is not None:
            yield from run_fold(self.session, fold)


def run_fold(session: Session, fold: Fold) -> Op[bool]:
    """Apply ``fold``; True when this request's summary won its compare-and-set."""
    services, store, key = session.services, session.store, session.key
    settings = services.settings
    token = yield from session.call(
        store.acquire_lease(key, holder=session.holder, ttl=_SUMMARY_LEASE_TTL, name="summary"),
        {ATTR.LEASE_NAME: "summary"})
    if token is None:
        return False  # another request is folding this session right now
    try:
        started = time.time_ns()
        budget = services.window.summary_budget - services.window.summary_frame
        text, fallback = yield from _summarize(services, fold, budget)
        applied = yield from session.call(store.apply_summary(
            key, text, services.tokenizer.count_text(text), watermark=fold.upto,
            expected_watermark=fold.expected,
            delete_folded=settings.summary_storage == "delete"))
        session.record(SPAN.SUMMARIZE, {
            ATTR.WATERMARK: fold.upto, ATTR.FALLBACK: fallback,
            ATTR.MESSAGES_BEFORE: len(fold.evicted), ATTR.SUMMARY_APPLIED: applied is not None,
            ATTR.SUMMARIZER: settings.summarizer or "builtin",
        }, started)
        return applied is not None
    finally:
        yield from session.call(store.release_lease(key, token, name="summary"))


def _summarize(services: Services, fold: Fold, budget: int) -> Op[tuple[str, bool]]:
    """The configured summarizer's text, and whether the built-in one had to stand in."""
    evicted = fold.messages()
    text: Any = None
    custom = services.summarizer is not services.builtin_summarizer
    if custom:
        try:
            text = yield Offload(services.summarizer, (fold.previous, evicted, budget))
            if not isinstance(text, str):
                raise SummarizerError(f"summarizer returned {type(text).__name__}, not str")
        except Exception as exc:  # noqa: BLE001 - any failure falls back, never loses data
            logger.warning("stickyctx: summarizer failed, using the built-in one: %s", exc)
            text = None
        if text is not None and not fits(services.tokenizer, text, budget):
            logger.warning("stickyctx: summary over its budget, using the built-in one")
            text = None
    if text is None:
        return str(services.builtin_summarizer(fold.previous, evicted, budget)), custom
    return str(text), False
