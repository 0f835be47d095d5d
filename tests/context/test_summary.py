"""Running summaries (``pruning="summarize"``): what leaves the window is folded into a summary
after the request, shown as a system message at the head of the window; a lost fold is redone by
the next request before it assembles its window."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stickyctx.core.summarizer import HEADER

from .backends import MEMORY, REDIS, on
from .chatter import assistant_text, user_text
from .harness import Chat, Driver, settings_for

SYSTEM = "You are a helpful assistant."
STORAGES = [pytest.param("archive", id="archive"), pytest.param("delete", id="delete")]


def summarizing(kind: Driver, **changes: Any) -> Chat:
    return Chat(kind, settings_for(**{"token_budget": 800, "pruning": "summarize",
                                      "eviction": "turn", **changes}))


def early_turns(chat: Chat) -> list[int]:
    """Three short turns that fit the window; the seqs of their six messages."""
    seqs = []
    facts = ("My name is Alice.", "I prefer tea, never coffee.",
             "Remember: my flight number is 4417.")
    for fact in facts:
        with chat.turn() as request:
            seqs.append(request.append("user", fact))
            window = request.window(system=SYSTEM)
            assert window[1:] == request.messages()  # no eviction yet, no summary
            seqs.append(request.append("assistant", "Noted."))
    assert chat.stored().summary is None
    return seqs


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("storage", STORAGES)
def test_evicted_turns_are_folded_after_the_request_and_head_the_next_window(
    kind: Driver, storage: str,
) -> None:
    chat = summarizing(kind, summary_storage=storage)
    seqs = early_turns(chat)
    request = chat.request()
    long_question = "Please plan a detailed three week itinerary for Japan. " * 63
    seqs.append(request.append("user", long_question))
    window = request.window(system=SYSTEM)
    history = request.messages()
    kept = len(window) - 1
    assert 1 <= kept < len(history)  # the early turns left the window
    kept_messages = history[len(history) - kept:]
    assert window == [{"role": "system", "content": SYSTEM}, *kept_messages]
    assert chat.stored().summary is None  # not folded on the request's critical path
    request.append("assistant", "Here is your itinerary.")
    request.finish()
    folded_upto = seqs[len(history) - kept - 1]  # the last message that left the window
    stored = chat.stored()
    assert stored.summary is not None
    assert stored.summary.version == 1
    assert stored.summary.watermark == folded_upto
    assert stored.summary.text.startswith(HEADER)
    assert "Alice" in stored.summary.text
    assert stored.summary.tokens == chat.services.tokenizer.count_text(stored.summary.text)
    with chat.turn() as request:
        window = request.window(system=SYSTEM)
        messages = request.messages()
        assert window[0] == {"role": "system", "content": SYSTEM}
        assert window[1] == {"role": "system", "content": stored.summary.text}
        assert window[2:] == messages[len(messages) - len(window) + 2:]
        assert chat.count(window) <= 800
        assert request.token_count() == chat.count(messages)
        if storage == "archive":  # the folded messages stay in the history
            assert len(messages) == len(seqs) + 1
        else:  # they left the history with the fold: what is left begins after the watermark
            assert messages == [*kept_messages,
                                {"role": "assistant", "content": "Here is your itinerary."}]
    with chat.turn() as request:  # without a system prompt the summary comes first
        assert request.window()[0] == {"role": "system", "content": stored.summary.text}
    assert chat.stored().summary == stored.summary  # reading windows folds nothing more


def test_names_numbers_and_preferences_of_early_turns_survive(kind: Driver) -> None:
    rng = random.Random(21)
    chat = summarizing(kind, token_budget=2400)
    early_turns(chat)
    for _ in range(40):
        with chat.turn() as request:
            request.append("user", user_text(rng))
            window = request.window(system=SYSTEM)
            request.append("assistant", assistant_text(rng))
    assert all("Alice" not in str(m["content"]) for m in window[2:])  # long out of the window
    summary = window[1]["content"]
    assert window[1]["role"] == "system"
    assert summary.startswith(HEADER)
    for fact in ("My name is Alice", "I prefer tea", "4417"):
        assert fact in summary
    stored = chat.stored().summary
    assert stored is not None
    assert stored.version > 1


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("storage", STORAGES)
def test_a_lost_fold_is_done_by_the_next_window_before_it_is_assembled(
    kind: Driver, storage: str,
) -> None:
    chat = summarizing(kind, summary_storage=storage)
    early_turns(chat)
    request = chat.request()
    request.append("user", "Compare every ryokan in Kyoto for me, in detail. " * 50)
    assert request.window(system=SYSTEM)[1]["content"] != "My name is Alice."  # evicting
    request.append("assistant", "Here is the comparison.")
    request.crash_after_response()  # the turn is released, the fold never happens
    assert chat.stored().summary is None
    request = chat.request()
    request.append("user", "And what did I say my name was?")
    window = request.window(system=SYSTEM)
    stored = chat.stored().summary  # folded now, before the window was assembled
    assert stored is not None
    assert stored.version == 1
    assert "Alice" in stored.text
    assert window[1] == {"role": "system", "content": stored.text}
    messages = request.messages()
    assert window[2:] == messages[len(messages) - len(window) + 2:]
    assert window[-2:] == [{"role": "assistant", "content": "Here is the comparison."},
                           {"role": "user", "content": "And what did I say my name was?"}]
    assert chat.count(window) <= 800
    request.finish()
    assert chat.stored().summary == stored  # and not a second time at the end


def test_an_oversized_earlier_turn_does_not_break_a_later_window(kind: Driver) -> None:
    """A turn once too large for the window (the app caught the overflow) leaves it with the next
    short turn; the window of that turn fits and never raises."""
    chat = summarizing(kind)
    early_turns(chat)
    with chat.turn() as request:
        request.append("user", "Summarize this whole document for me please. " * 120)
        request.append("assistant", "It is about trains. " * 10)
    with chat.turn() as request:
        request.messages()  # the app shows the history first
        request.append("user", "Thanks, and my name again?")
        window = request.window(system=SYSTEM)
        assert window[-1] == {"role": "user", "content": "Thanks, and my name again?"}
        assert window[1]["role"] == "system"
        assert "Alice" in window[1]["content"]
        assert chat.count(window) <= 800


@on(*MEMORY, *REDIS)
def test_each_message_is_folded_exactly_once(kind: Driver, folded: list[str]) -> None:
    """Over a long conversation, every message that left the window reached the summarizer once,
    in order, and the summary covers exactly the messages up to its watermark."""
    rng = random.Random(4)
    chat = summarizing(kind, token_budget=1200,
                       summarizer="tests.context.summarizers:sync_summary")
    contents: list[str] = []
    seqs: list[int] = []
    for turn in range(50):
        with chat.turn() as request:
            for role, text in (("user", user_text(rng)), ("assistant", assistant_text(rng))):
                text = f"[{turn}-{role}] {text}"
                seqs.append(request.append(role, text))
                contents.append(text)
                if role == "user":
                    request.window(system=SYSTEM)
    stored = chat.stored().summary
    assert stored is not None
    covered = sum(1 for seq in seqs if seq <= stored.watermark)
    assert covered > 40
    assert folded == contents[:covered]
    assert stored.text == f"sync summary: {covered} messages folded"
