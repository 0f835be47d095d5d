"""The cost of a window follows the window, not the history: the messages a request touches to
build a window are the same in number for 100 and for 10,000 stored messages.

Counted, not timed: the store's snapshot views are replaced by a subclass that counts every
message read through them (by index, slice or iteration).
"""

from __future__ import annotations

import pytest

import stickyctx.stores.memory
from stickyctx.core.messages import StoredMessage
from stickyctx.core.views import Prefix

from .harness import Chat, settings_for

SLACK = 16  # a binary search over the seqs may take a few more steps in a longer history


class CountingPrefix(Prefix[StoredMessage]):
    __slots__ = ()
    reads = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        found = super().__getitem__(index)
        CountingPrefix.reads += len(found) if isinstance(index, slice) else 1
        return found

    def __iter__(self):  # type: ignore[no-untyped-def]
        for item in super().__iter__():
            CountingPrefix.reads += 1
            yield item


def history(size: int) -> list[dict[str, str]]:
    """``size`` messages whose newest ones are the same whatever the size."""
    return [{"role": "user" if (size - i) % 2 == 0 else "assistant",
             "content": f"Message {size - i} from the end: a question about trains to Oslo."}
            for i in range(size)]


def window_reads(kind: str, size: int, **changes: object) -> tuple[int, list[dict[str, str]]]:
    chat = Chat(kind, settings_for(**changes))
    with chat.turn() as request:
        request.extend(history(size))
    for _ in range(2):  # the second window is the steady state (a first fold is done once)
        with chat.turn() as request:
            CountingPrefix.reads = 0
            window = request.window(1500)
            reads = CountingPrefix.reads
    return reads, window


@pytest.mark.parametrize("changes", [
    pytest.param({"eviction": "turn"}, id="sliding-turn"),
    pytest.param({"eviction": "block"}, id="sliding-block"),
    pytest.param({"pruning": "summarize", "token_budget": 2000}, id="summarize"),
])
def test_window_reads_do_not_grow_with_the_history(
    kind: str, changes: dict[str, object], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stickyctx.stores.memory, "Prefix", CountingPrefix)
    small_reads, small = window_reads(kind, 100, **changes)
    large_reads, large = window_reads(kind, 10_000, **changes)
    shorter = min(len(small), len(large)) - 1  # block windows start at absolute positions
    assert shorter > 40
    assert large[-shorter:] == small[-shorter:]
    assert small_reads > 0
    # The same reads per message of the window, whatever the history's length:
    assert large_reads <= small_reads * len(large) / len(small) + SLACK
    assert large_reads < 8 * len(large)  # a few reads per message in the window, no more
