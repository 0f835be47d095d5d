"""Summaries through the real middleware: every edge ends the request with the fold, after the
response is decided, and every window the app gets fits the budget."""

from __future__ import annotations

import random

import pytest

from stickyctx.core.summarizer import HEADER

from .apps import EDGES, EDGES_ON_EVERY_STORE, Build, PostAll
from .chatter import assistant_text, user_text
from .harness import Backing, Chat, Driver, settings_for

SYSTEM = "You are a helpful assistant."


@pytest.mark.parametrize(("build", "post_all"), EDGES)
def test_each_edge_folds_after_its_requests(build: Build, post_all: PostAll) -> None:
    settings = settings_for(token_budget=700, pruning="summarize", eviction="turn")
    store = Backing.memory(settings)
    rng = random.Random(6)
    bodies = [{"role": "user", "content": ("My name is Alice. " if turn == 0 else "")
               + user_text(rng), "reply": assistant_text(rng), "system": SYSTEM}
              for turn in range(14)]
    answers = post_all(build(settings, store), bodies)
    assert all(status == 200 for status, _, _ in answers)
    counter = Chat("sync", settings)
    windows = [body["window"] for _, _, body in answers]
    assert all(counter.count(window) <= 700 for window in windows)
    assert store.applied >= 2  # folded over several requests
    last = windows[-1]
    assert last[0] == {"role": "system", "content": SYSTEM}
    assert last[1]["role"] == "system"
    assert last[1]["content"].startswith(HEADER)
    assert "Alice" in last[1]["content"]
    assert len(answers[-1][2]["messages"]) == 28  # archived: nothing was lost


@pytest.mark.parametrize(("build", "post_all", "kind"), EDGES_ON_EVERY_STORE, indirect=["kind"])
def test_the_fold_runs_when_the_request_ends(build: Build, post_all: PostAll,
                                             kind: Driver) -> None:
    """The last request's own question evicts the first turn; nothing comes after it, so only
    the end of that request can have folded it."""
    node = Chat(kind, settings_for(token_budget=800, pruning="summarize", eviction="turn"))
    store = node.store  # the store and settings of a node of this kind
    facts = ["My name is Alice.", "I prefer tea, never coffee.",
             "Remember: my flight number is 4417."]
    bodies = [{"role": "user", "content": fact, "reply": "Noted.", "system": SYSTEM}
              for fact in facts]
    long_question = "Please plan a detailed three week itinerary for Japan. " * 63
    bodies.append({"role": "user", "content": long_question, "reply": "Here it is.",
                   "system": SYSTEM})
    answers = post_all(build(node.settings, store), bodies)
    window = answers[-1][2]["window"]
    assert window[0] == {"role": "system", "content": SYSTEM}
    # The first turn left the window (no summary yet: it is folded when the request ends).
    assert [m["content"] for m in window[1:]] == [facts[1], "Noted.", facts[2], "Noted.",
                                                  long_question]
    assert [s.watermark for s in store.summaries if s is not None] == [2]
    assert "Alice" in next(s.text for s in store.summaries if s is not None)
