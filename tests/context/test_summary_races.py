"""Folds happen at most once per eviction, and never lose or refold a message written meanwhile.

Two requests of one session may compute the same eviction (a tab and a retry, or a turn lock
the app manages itself): a ``summary`` lease and a compare-and-set on the summary's watermark
make exactly one of them apply it. Checked through what the store applied.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .backends import MEMORY, REDIS, on
from .harness import Chat, Driver, Request, settings_for
from .test_summary import SYSTEM, early_turns

TIMEOUT = 10.0
LONG = "Please compare the night trains from Vienna to Rome, Venice and Milan. " * 47
MEDIUM = "Which of the night trains from Vienna has a dining car and a shower? " * 12


def settings(**changes: Any) -> Any:
    return settings_for(**{"token_budget": 800, "pruning": "summarize", "eviction": "turn",
                           **changes})


def lost_fold(chat: Chat) -> None:
    """Early turns, medium turns, then a request whose fold was lost: a fold is pending."""
    early_turns(chat)
    for index in range(5):
        request = chat.request()
        request.append("user", f"Question {index}: " + MEDIUM)
        request.window(system=SYSTEM)
        request.append("assistant", f"Answer {index}.")
        if index < 4:
            request.finish()
        else:
            request.crash_after_response()
    assert chat.store.applied >= 1


@on(*MEMORY, *REDIS)
@pytest.mark.parametrize("second_budget", [
    pytest.param(None, id="same-eviction"),
    pytest.param(500, id="larger-eviction-from-an-older-summary"),
])
def test_two_requests_computing_the_same_eviction_fold_it_once(
    kind: Driver, second_budget: int | None,
) -> None:
    chat = Chat(kind, settings())
    lost_fold(chat)
    before = chat.stored().summary
    assert before is not None
    node = chat.other_node()  # on Redis the second request is served by another node
    first, second = chat.request(auto_lock=False), node.request(auto_lock=False)
    assert first.messages() == second.messages()  # both loaded the same version
    windows = [first.window(system=SYSTEM), second.window(second_budget, system=SYSTEM)]
    first.finish()
    second.finish()
    stored = chat.stored().summary
    assert stored is not None
    assert stored.version == before.version + 1
    assert stored.watermark > before.watermark
    applied = [s for s in chat.store.summaries if s is not None]
    assert applied[-1] == stored
    assert applied[-2] == before
    assert node.store.summaries[-1] is None  # the second request did try, and was refused
    assert chat.count(windows[0]) <= 800
    assert chat.count(windows[1]) <= (second_budget or 800)


class Gate:
    """Holds the first two ``summary`` lease requests until both arrived (two folds in flight)."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=TIMEOUT)
        self.waiting = 2
        self._count = threading.Lock()

    def __call__(self, name: str) -> None:
        if name == "summary":
            with self._count:
                wait = self.waiting > 0
                self.waiting -= 1
            if wait:
                self.barrier.wait()


@on("sync", "redis-sync", "cluster-sync")  # two threads: two WSGI requests of one session
def test_two_threads_folding_at_once_apply_the_summary_once(kind: Driver) -> None:
    chat = Chat(kind, settings())
    lost_fold(chat)  # no gate for the folds of the conversation itself
    gate = Gate()
    chat.store.before_lease = gate
    before = chat.stored().summary
    assert before is not None
    requests = [chat.request(auto_lock=False) for _ in range(2)]

    def run(request: Request) -> list[dict[str, Any]]:
        window = request.window(system=SYSTEM)
        request.finish()
        return window

    with ThreadPoolExecutor(2) as pool:
        windows = list(pool.map(run, requests, timeout=TIMEOUT))
    assert gate.waiting < 0  # both folds reached the lease together, then the late retry
    assert chat.store.applied == before.version + 1
    stored = chat.stored().summary
    assert stored is not None
    assert stored.version == before.version + 1
    assert all(chat.count(w) <= 800 for w in windows)


@on(*MEMORY, *REDIS)
def test_an_append_between_the_window_and_the_fold_survives(kind: Driver,
                                                            folded: list[str]) -> None:
    chat = Chat(kind, settings(summary_storage="delete",
                               summarizer="tests.context.summarizers:sync_summary"))
    early_turns(chat)
    written = [m["content"] for m in chat.request(auto_lock=False).messages()]
    turn = chat.request()
    turn.append("user", LONG)
    window = turn.window(system=SYSTEM)  # evicts early turns: folded when the request ends
    assert chat.stored().summary is None
    late = chat.other_node().request(auto_lock=False)  # a write without the turn lock
    note = "Late note: my passport number is X123."
    late.append("user", note)
    late.finish()
    turn.append("assistant", "Here is the comparison.")
    # The turn's appends are stored together when it commits: the unlocked note lands first.
    written += [note, LONG, "Here is the comparison."]
    turn.finish()
    stored = chat.stored().summary
    assert stored is not None
    assert stored.version == 1
    evicted = 7 - (len(window) - 1)  # of the six early messages and the long question
    assert len(folded) == evicted
    assert note not in folded
    assert stored.text == f"sync summary: {evicted} messages folded"
    with chat.turn() as request:
        messages = request.messages()
        assert [m["content"] for m in messages].count(note) == 1  # not lost
        assert request.token_count() == chat.count(messages)
    for index in range(6):  # later turns push the note out: it is folded, once
        with chat.turn() as request:
            question, answer = f"Question {index}: " + LONG[:600], f"Answer {index}."
            request.append("user", question)
            request.window(system=SYSTEM)
            request.append("assistant", answer)
            written += [question, answer]
    assert note in folded
    assert folded == written[:len(folded)]  # every message once, in order
