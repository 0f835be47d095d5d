"""Owner placement: weighted rendezvous hashing with bounded loads.

Pure functions over node specs and load counts. Rendezvous hashing moves only a departed node's
sessions and none when a node joins; the bound (Mirrokni, Thorup, Zadimoghaddam) keeps every
node at or below ``ceil((1 + epsilon) * average)`` sessions because of a placement.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Mapping, Sequence
from hashlib import blake2b

from .nodes import NodeSpec

__all__ = ["capacity", "place", "rank", "score"]

_TWO_64 = float(2**64)
_MASK = 2**64 - 1
_DENOMINATOR = _TWO_64 + 1


def _hash(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


# Node ids: few, hashed once each. The bound is well above any fleet's size (a cache smaller than
# the membership would re-hash every node on every placement).
_seed = functools.lru_cache(maxsize=65536)(_hash)


def _mix(x: int) -> int:
    """splitmix64's finalizer: a fast, well-spread 64-bit mix, the same in every process."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _score(node: NodeSpec, key_hash: int) -> float:
    u = (_mix(key_hash ^ _seed(node.id)) + 1) / (_TWO_64 + 1)
    return -node.weight / math.log(u) if u < 1.0 else math.inf


def _scored(key_hash: int, nodes: Sequence[NodeSpec]) -> list[tuple[float, str, NodeSpec]]:
    """``(score, id, node)`` for every node: ``_score`` inlined, the same arithmetic (a placement
    scores every node, so this loop is its cost: about half that of calling ``_score``)."""
    seed, log, inf, mask = _seed, math.log, math.inf, _MASK
    out = []
    for node in nodes:
        x = key_hash ^ seed(node.id)
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        u = ((x ^ (x >> 31)) + 1) / _DENOMINATOR
        out.append((-node.weight / log(u) if u < 1.0 else inf, node.id, node))
    return out


def score(node: NodeSpec, key: str) -> float:
    """The node's rendezvous score for ``key`` (higher wins), weighted: -w / ln(u), u in (0, 1]."""
    return _score(node, _hash(key))


def rank(key: str, nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    """Nodes in preference order for ``key``."""
    key_hash = _hash(key)
    return sorted(nodes, key=lambda n: (_score(n, key_hash), n.id), reverse=True)


def _ceil(value: float) -> int:
    """``ceil`` that ignores floating-point noise: 1.1 * 200 is 220, not 221."""
    return math.ceil(round(value, 9))


def _bound(nodes: Sequence[NodeSpec], total: int, epsilon: float) -> float:
    """The bounded-load cap per unit of weight when ``total`` sessions are placed."""
    return (1.0 + epsilon) * total / sum(n.weight for n in nodes)


def _cap(node: NodeSpec, bound: float) -> int:
    return max(1, _ceil(bound * node.weight))


def capacity(node: NodeSpec, nodes: Sequence[NodeSpec], total: int, epsilon: float) -> int:
    """The most sessions ``node`` may hold when ``total`` sessions are placed."""
    return _cap(node, _bound(nodes, total, epsilon))


def place(
    key: str,
    nodes: Sequence[NodeSpec],
    loads: Mapping[str, int] | None = None,
    epsilon: float = 0.25,
) -> str:
    """The owner for a new (or orphaned) session ``key`` among ``nodes``.

    Without ``loads`` this is plain rendezvous hashing. With them, the two most preferred nodes
    that stay within their bounded-load capacity after taking the session are candidates, and
    the less loaded of the two wins (ties: the more preferred). The bound caps every node at
    ``ceil((1 + epsilon) * average)``; the second choice keeps the spread far tighter than that.
    """
    if not nodes:
        raise ValueError("no live node to place a session on")
    key_hash = _hash(key)
    scored = _scored(key_hash, nodes)
    if loads is None:
        return max(scored)[1]
    bound = _bound(nodes, sum(loads.get(n.id, 0) for n in nodes) + 1, epsilon)

    def fits(node: NodeSpec) -> bool:
        return loads.get(node.id, 0) + 1 <= _cap(node, bound)

    # Usually the first or second preference takes it: look at a few before sorting them all.
    candidates = [n for _, _, n in heapq.nlargest(4, scored) if fits(n)][:2]
    if len(candidates) < 2 and len(nodes) > 4:
        candidates = [n for _, _, n in sorted(scored, reverse=True) if fits(n)][:2]
    if not candidates:
        return max(scored)[1]  # unreachable while epsilon > 0; kept as a safe answer
    return min(candidates, key=lambda n: (loads.get(n.id, 0) / n.weight,
                                          candidates.index(n))).id
