"""Classifying a request against its session's pinned owner."""

from __future__ import annotations

import pytest

from stickyctx.core.affinity import AFFINITIES, Affinity, classify


@pytest.mark.parametrize(
    ("owner", "node", "live", "expected"),
    [
        pytest.param(None, "n1", {"n1", "n2"}, "new", id="no-owner-yet"),
        pytest.param("n1", "n1", {"n1", "n2"}, "hit", id="this-node-owns-it"),
        pytest.param("n1", "n1", set(), "hit", id="this-node-even-without-membership"),
        pytest.param("n2", "n1", {"n1", "n2"}, "miss", id="another-live-node-owns-it"),
        pytest.param("n3", "n1", {"n1", "n2"}, "failover", id="owner-gone"),
        pytest.param("n3", "n1", set(), "failover", id="owner-gone-empty-membership"),
        pytest.param("N1", "n1", {"n1"}, "failover", id="ids-are-case-sensitive"),
    ],
)
def test_classify(owner: str | None, node: str, live: set[str], expected: Affinity) -> None:
    assert classify(owner, node, live) == expected


def test_the_classes_are_the_public_ones() -> None:
    assert AFFINITIES == ("new", "hit", "miss", "failover")
