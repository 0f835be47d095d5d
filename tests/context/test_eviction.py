"""Sliding (``turn``) and ``block`` eviction over a long, realistic chat.

``turn`` keeps the newest groups that fit, so the window's start moves on almost every turn;
``block`` moves it in blocks, so the window keeps the previous turn's window as its prefix (what
a provider's prompt cache needs) on most turns, and still fits.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

import pytest

from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for

SYSTEM = "You are a friendly assistant for everyday planning."
BUDGET = 4000
TURNS = 200


@dataclass
class Run:
    windows: list[list[dict[str, Any]]]
    histories: list[list[dict[str, Any]]]

    def prefix_share(self) -> float:
        """Share of turns whose window starts with the previous turn's whole window."""
        pairs = list(itertools.pairwise(self.windows))
        kept = sum(1 for before, after in pairs if after[:len(before)] == before)
        return kept / len(pairs)

    def evicting_turns(self) -> int:
        pairs = zip(self.windows, self.histories, strict=True)
        return sum(1 for window, history in pairs if len(window) - 1 < len(history))


def chat_run(kind: Driver, eviction: str, pruning: str = "sliding", *, seed: int = 5,
             histories: bool = False) -> Run:
    rng = random.Random(seed)
    chat = Chat(kind, settings_for(token_budget=BUDGET, eviction=eviction, pruning=pruning))
    run = Run([], [])
    for _ in range(TURNS):
        with chat.turn() as request:
            request.append("user", user_text(rng))
            window = request.window(system=SYSTEM)
            assert chat.count(window) <= BUDGET
            run.windows.append(window)
            if histories:
                run.histories.append(request.messages())
            request.append("assistant", assistant_text(rng, 150, 450))
    return run


def test_sliding_keeps_exactly_the_newest_groups_that_fit(kind: Driver) -> None:
    run = chat_run(kind, "turn", histories=True)
    assert run.evicting_turns() > TURNS // 2  # the conversation outgrew the budget early on
    chat = Chat(kind, settings_for())
    head = [{"role": "system", "content": SYSTEM}]
    for window, history in zip(run.windows, run.histories, strict=True):
        body = window[1:]
        assert body == history[len(history) - len(body):]
        assert body[0]["role"] == "user"
        if len(body) < len(history):  # the group before the window would not have fit
            group = history[len(history) - len(body) - 2:]
            assert chat.count(head + group) > BUDGET


@pytest.mark.parametrize("pruning", [pytest.param("sliding", id="sliding"),
                                     pytest.param("summarize", id="summarize")])
def test_block_eviction_keeps_the_prefix_far_more_often_than_sliding(
    kind: Driver, pruning: str,
) -> None:
    block = chat_run(kind, "block", pruning)
    sliding = chat_run(kind, "turn", pruning)
    assert block.prefix_share() >= 0.8
    assert sliding.prefix_share() <= 0.4
    # The window's first message after the system prompt stays put for several turns in a row.
    firsts = [w[1]["content"] for w in block.windows]
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert changes <= TURNS / 4
    assert changes >= 5  # and it does move: old turns leave the window


def test_block_eviction_stays_within_the_budget_when_turns_are_uneven(kind: Driver) -> None:
    """Turns of very different sizes (one nearly the whole budget) never break the budget."""
    rng = random.Random(9)
    chat = Chat(kind, settings_for(token_budget=1500, response_reserve=200))
    for turn in range(60):
        with chat.turn() as request:
            size = 4000 if turn % 17 == 5 else rng.choice((60, 300, 900))
            request.append("user", user_text(rng, size // 2, size))
            window = request.window(system=SYSTEM)
            assert chat.count(window) + 200 <= 1500
            assert window[-1]["role"] == "user"
            assert window[1]["role"] == "user"
            request.append("assistant", assistant_text(rng, 40, 120))
