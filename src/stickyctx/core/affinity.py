"""Classifying a request against its session's owner."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

__all__ = ["AFFINITIES", "Affinity", "classify"]

Affinity = Literal["new", "hit", "miss", "failover"]
AFFINITIES: tuple[Affinity, ...] = ("new", "hit", "miss", "failover")


def classify(owner: str | None, node_id: str, live: Collection[str]) -> Affinity:
    """``owner`` is the pinned owner from a valid token, ``None`` for a new session.

    ``hit``: this node owns it. ``miss``: another live node owns it (served here from the store).
    ``failover``: the pinned owner is not live any more (the caller re-places the session).
    """
    if owner is None:
        return "new"
    if owner == node_id:
        return "hit"
    if owner in live:
        return "miss"
    return "failover"
