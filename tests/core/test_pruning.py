"""The sliding window: whole turn groups, newest first, at a cost independent of history length."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import overload

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stickyctx.core.messages import GROUP_OPENERS, StoredMessage
from stickyctx.core.pruning import _walk, plan_window, sliding_window
from stickyctx.errors import ContextOverflowError


def history(turns: Sequence[Sequence[tuple[str, int]]]) -> list[StoredMessage]:
    """Stored messages from turns of ``(role, tokens)``, numbered as a store numbers them."""
    out: list[StoredMessage] = []
    cum = group = 0
    for turn in turns:
        for role, tokens in turn:
            seq = len(out) + 1
            if role in GROUP_OPENERS or group == 0:
                group = seq
            cum += tokens
            out.append(StoredMessage(seq, group, role, f"m{seq}", tokens, "cl100k_base", cum,
                                     10))
    return out


def tool_turn(tokens: int) -> list[tuple[str, int]]:
    return [("user", tokens), ("assistant", tokens), ("tool", tokens), ("assistant", tokens)]


# Three turns of 20, 40 and 20 tokens.
TURNS = [[("user", 10), ("assistant", 10)], tool_turn(10), [("user", 10), ("assistant", 10)]]


class Counting(Sequence[StoredMessage]):
    """A history that counts how many of its messages are read."""

    def __init__(self, items: list[StoredMessage]) -> None:
        self.items = items
        self.touched = 0

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> StoredMessage: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[StoredMessage]: ...
    def __getitem__(self, index: int | slice) -> StoredMessage | Sequence[StoredMessage]:
        if isinstance(index, slice):
            part = self.items[index]
            self.touched += len(part)
            return part
        self.touched += 1
        return self.items[index]

    def __iter__(self) -> Iterator[StoredMessage]:
        raise AssertionError("the window must not iterate over the whole history")


def seqs(messages: Sequence[StoredMessage]) -> list[int]:
    return [m.seq for m in messages]


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        pytest.param(80, list(range(1, 9)), id="everything-fits"),
        pytest.param(1000, list(range(1, 9)), id="plenty"),
        pytest.param(79, [3, 4, 5, 6, 7, 8], id="one-token-short"),
        pytest.param(60, [3, 4, 5, 6, 7, 8], id="two-groups-exactly"),
        pytest.param(59, [7, 8], id="no-partial-tool-group"),
        pytest.param(20, [7, 8], id="newest-exactly"),
    ],
)
def test_the_window_holds_the_newest_whole_groups_that_fit(
    available: int, expected: list[int]
) -> None:
    assert seqs(sliding_window(history(TURNS), available)) == expected


def test_every_window_starts_a_group_and_is_the_longest_that_fits() -> None:
    turns = [[("system", 7)], tool_turn(3), [("user", 5), ("assistant", 11)], tool_turn(2),
             [("assistant", 4)], [("user", 9)], tool_turn(6)]
    messages = history(turns)
    total = sum(m.tokens for m in messages)
    newest = sum(m.tokens for m in messages if m.group == messages[-1].group)
    for available in range(newest, total + 2):
        window = sliding_window(messages, available)
        start = len(messages) - len(window)
        assert list(window) == messages[start:]
        assert window[0].seq == window[0].group  # never a tool result of a cut group
        assert window[0].role != "tool"
        assert sum(m.tokens for m in window) <= available
        if start > 0:  # the group just before would not have fitted as well
            before = [m for m in messages if m.group == messages[start - 1].group]
            assert sum(m.tokens for m in window) + sum(m.tokens for m in before) > available


@pytest.mark.parametrize("available", [0, 19, 39])
def test_a_newest_group_too_big_for_the_budget_is_an_error(available: int) -> None:
    messages = history([[("user", 5)], tool_turn(10)])
    with pytest.raises(ContextOverflowError) as caught:
        sliding_window(messages, available)
    assert caught.value.needed == 40
    assert caught.value.budget == available


def test_an_empty_history_gives_an_empty_window() -> None:
    assert list(sliding_window([], 100)) == []


def test_the_cost_does_not_depend_on_the_history_length() -> None:
    tail = [tool_turn(10), [("user", 10), ("assistant", 10)]] * 5  # a window's worth
    touched = []
    for older_turns in (10, 1_000, 20_000):
        messages = Counting(history([[("user", 50), ("assistant", 50)]] * older_turns + tail))
        window = sliding_window(messages, 300)
        assert seqs(window) == seqs(messages.items[-len(window):])
        assert len(window) == 30
        touched.append(messages.touched)
    # Placing the window is a binary search: a read more per doubling of the history...
    assert touched[0] <= touched[1] <= touched[2], touched
    assert touched[2] - touched[0] <= 2 * math.ceil(math.log2(20_000 / 10)), touched
    assert touched[0] <= 8 * 30  # ...and copying it a few reads per message of the window


def test_placing_a_long_window_reads_a_few_messages_not_the_window() -> None:
    # 10,000 turns, all of which fit but the first 100: the start is found, not walked to.
    messages = Counting(history([[("user", 10), ("assistant", 10)]] * 10_000))
    newest = messages.items[-1]
    plan = plan_window(messages, newest.cum - 100 * 20, eviction="sliding")
    assert plan.start == 200  # whole turns: the first 100 of them left out
    assert messages.touched <= 4 * math.ceil(math.log2(20_000)), messages.touched


def _linear_walk(messages: Sequence[StoredMessage], threshold: int, after_seq: int) -> int:
    """The reference: whole groups from the newest back, while each starts at or after the
    threshold (the walk the binary search replaced)."""
    start = index = len(messages) - 1
    start += 1
    while index >= 0 and messages[index].seq > after_seq:
        first = index
        while (first > 0 and messages[first - 1].group == messages[index].group
               and messages[first - 1].seq > after_seq):
            first -= 1
        if messages[first].cum - messages[first].tokens < threshold:
            break
        start, index = first, first - 1
    return start


_turns = st.lists(st.lists(st.tuples(st.sampled_from(["user", "assistant", "tool"]),
                                     st.integers(1, 30)), min_size=1, max_size=4),
                  max_size=12)


@given(_turns, st.integers(-5, 400), st.integers(0, 50))
def test_the_window_start_is_the_one_a_walk_finds(turns: list[list[tuple[str, int]]],
                                                   threshold: int, after_seq: int) -> None:
    messages = history(turns)
    assert _walk(messages, threshold, after_seq) == _linear_walk(messages, threshold, after_seq)
