"""Folding what left the window into the running summary (sans-I/O), at most once.

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

from ..core.summarizer import fits
from ..core.windowing import Fold
from ..errors import SummarizerError
from ..sansio import Offload, Op
from ..telemetry import ATTR, SPAN

if TYPE_CHECKING:
    from .logic import Session
    from .services import Services

__all__ = ["run_fold"]

logger = logging.getLogger("stickyctx")

_SUMMARY_LEASE_TTL = 120.0


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
