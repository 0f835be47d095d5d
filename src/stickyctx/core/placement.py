"""Owner placement: weighted rendezvous hashing with bounded loads.

Pure functions over node specs and load counts. Rendezvous hashing moves only a departed node's
sessions and none when a node joins; the bound (Mirrokni, Thorup, Zadimoghaddam) keeps every
node at or below ``ceil((1 + epsilon) * average)`` sessions because of a placement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from hashlib import blake2b

from .nodes import NodeSpec

__all__ = ["capacity", "place", "rank", "score"]

_TWO_64 = float(2**64)


def score(node: NodeSpec, key: str) -> float:
    """The node's rendezvous score for ``key`` (higher wins), weighted: -w / ln(u), u in (0, 1]."""
    digest = blake2b(f"{node.id}\x00{key}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 1) / (_TWO_64 + 1)
    return -node.weight / math.log(u) if u < 1.0 else math.inf


def rank(key: str, nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    """Nodes in preference order for ``key``."""
    return sorted(nodes, key=lambda n: (score(n, key), n.id), reverse=True)


def capacity(node: NodeSpec, nodes: Sequence[NodeSpec], total: int, epsilon: float) -> int:
    """The most sessions ``node`` may hold when ``total`` sessions are placed."""
    weights = sum(n.weight for n in nodes)
    return max(1, math.ceil((1.0 + epsilon) * total * node.weight / weights))


def place(
    key: str,
    nodes: Sequence[NodeSpec],
    loads: Mapping[str, int] | None = None,
    epsilon: float = 0.25,
) -> str:
    """The owner for a new (or orphaned) session ``key`` among ``nodes``.

    Without ``loads`` this is plain rendezvous hashing. With them, the first node in preference
    order that stays within its bounded-load capacity after taking the session wins.
    """
    if not nodes:
        raise ValueError("no live node to place a session on")
    ranked = rank(key, nodes)
    if loads is None:
        return ranked[0].id
    total = sum(loads.get(n.id, 0) for n in nodes) + 1
    for node in ranked:
        if loads.get(node.id, 0) + 1 <= capacity(node, nodes, total, epsilon):
            return node.id
    return ranked[0].id  # unreachable while epsilon > 0; kept as a safe answer
