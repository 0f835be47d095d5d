"""Summaries on Redis: ``apply_summary`` is a compare-and-set across nodes, and folding with
``delete_folded`` removes exactly the folded messages while the totals stay exact."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from stickyctx.core.messages import Summary
from stickyctx.stores.redis.schema import META

from .conftest import NewKey, OpenStore, Target, msg


def test_of_two_concurrent_applies_with_the_same_expected_watermark_exactly_one_wins(
    target: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    nodes = [open_store(target.url), open_store(target.url)]
    key = new_key()
    rounds = 12
    nodes[0].append(key, [msg("user" if i % 2 == 0 else "assistant", f"m{i}")
                          for i in range(2 * rounds)], created=time.time())
    barrier = threading.Barrier(2)

    def apply(node: int, expected: int) -> Summary | None:
        barrier.wait(timeout=10)
        return nodes[node].apply_summary(key, f"node {node} folded to {expected + 2}", 1,
                                         watermark=expected + 2, expected_watermark=expected)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for r in range(rounds):
            expected = 2 * r
            results = list(pool.map(apply, [0, 1], [expected, expected]))
            won = [s for s in results if s is not None]
            assert len(won) == 1, results
            stored = nodes[r % 2].load(key).summary
            assert stored == won[0]
            assert (stored.watermark, stored.version) == (expected + 2, r + 1)
    assert len(nodes[1].load(key).messages) == 2 * rounds  # archived: nothing deleted


def test_folding_with_delete_removes_the_folded_messages_and_keeps_totals_exact(
    target: Target, open_store: OpenStore, new_key: NewKey
) -> None:
    folder, writer = open_store(target.url), open_store(target.url)
    key = new_key()
    created = time.time()
    folder.append(key, [msg("user" if i % 2 == 0 else "assistant", f"old {i} " * (i + 1))
                        for i in range(20)], created=created)

    def write() -> None:  # another node keeps appending while the folds happen
        for i in range(30):
            writer.append(key, [msg("user", f"new {i} " * (i % 7 + 1))], created=created)

    thread = threading.Thread(target=write)
    thread.start()
    applied = []
    for watermark in (4, 8, 12, 16):
        applied.append(folder.apply_summary(key, f"up to {watermark}", 3, watermark=watermark,
                                            expected_watermark=watermark - 4,
                                            delete_folded=True))
    thread.join(timeout=30)
    assert all(s is not None for s in applied)
    assert folder.apply_summary(key, "again", 3, watermark=16, expected_watermark=12,
                                delete_folded=True) is None  # once per eviction

    snapshot = open_store(target.url).load(key)
    assert [m.seq for m in snapshot.messages] == list(range(17, 51))
    assert snapshot.summary is not None
    assert snapshot.summary.watermark == 16
    assert snapshot.total_tokens == sum(m.tokens for m in snapshot.messages)
    meta = target.raw.hgetall(key.key(META))
    assert int(meta[b"t"]) == snapshot.total_tokens
    assert int(meta[b"b"]) == sum(m.size for m in snapshot.messages)  # the byte ceiling's count
