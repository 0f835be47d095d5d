"""The cost of a window follows the window, not the history: the messages a request touches to
build a window are the same in number for 100 and for 10,000 stored messages.

Counted, not timed: the store's snapshot views (the memory store's, and on Redis the hot tier's,
which every Redis snapshot is served from) are replaced by a subclass that counts every message
read through them (by index, slice or iteration); on Redis, the steady state's loads must also be
answered by the node's hot tier (the store only confirms the version).
"""

from __future__ import annotations

import pytest

import stickyctx.stores.memory
import stickyctx.stores.redis.hot
from stickyctx.core.messages import StoredMessage
from stickyctx.core.views import Prefix

from .backends import MEMORY, on
from .harness import Chat, Driver, settings_for

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


def window_reads(kind: Driver, size: int, **changes: object) -> tuple[int, list[dict[str, str]]]:
    """The reads of the steady state's window, and that window."""
    chat = Chat(kind, settings_for(**changes))
    with chat.turn() as request:
        request.extend(history(size))
    for _ in range(2):  # the second window is the steady state (a first fold is done once)
        chat.store.tiers.clear()
        with chat.turn() as request:
            CountingPrefix.reads = 0
            window = request.window(1500)
            reads = CountingPrefix.reads
    # ... and its history came from the node's memory: on Redis no history crossed the network
    assert chat.store.tiers
    assert set(chat.store.tiers) == {"local"}
    return reads, window


@on(*MEMORY, "redis-sync")  # the Redis paths share one hot tier code: one kind is enough
@pytest.mark.parametrize("changes", [
    pytest.param({"eviction": "turn"}, id="sliding-turn"),
    pytest.param({"eviction": "block"}, id="sliding-block"),
    pytest.param({"pruning": "summarize", "token_budget": 2000}, id="summarize"),
])
def test_window_reads_do_not_grow_with_the_history(
    kind: Driver, changes: dict[str, object], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stickyctx.stores.memory, "Prefix", CountingPrefix)
    monkeypatch.setattr(stickyctx.stores.redis.hot, "Prefix", CountingPrefix)
    small_reads, small = window_reads(kind, 100, **changes)
    large_reads, large = window_reads(kind, 10_000, **changes)
    shorter = min(len(small), len(large)) - 1  # block windows start at absolute positions
    assert shorter > 40
    assert large[-shorter:] == small[-shorter:]
    assert small_reads > 0
    # The same reads per message of the window, whatever the history's length:
    assert large_reads <= small_reads * len(large) / len(small) + SLACK
    assert large_reads < 8 * len(large)  # a few reads per message in the window, no more
