"""Placement quality, measured with the real placement code (``stickyctx simulate``).

Sessions are placed one after another the way the middleware places them (bounded loads over
the live nodes, the owner pinned afterwards), then one node leaves and one joins. After each
change every pinned session is decided again as a request decides it (``classify``: kept while
its owner is live, re-placed when it is gone), and the sessions whose owner changed are counted.
For comparison, ``join_rehash_moved`` counts the sessions a stateless balancer hashing every
request (plain rendezvous, nothing pinned) would move when the node joins.

Every placement scores every node, so a run costs about sessions x nodes scores. At hundreds or
thousands of nodes, ``sample`` keeps the two passes that only estimate a share (re-hashing on the
join, the new node's share of later sessions) to that many sessions, spread evenly over the
population; the placement of every session, the failover of every session of the departed node
and the check of every pinned session on the join still run in full.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..core.affinity import classify
from ..core.nodes import NodeSpec
from ..core.placement import place

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    nodes: int
    sessions: int
    epsilon: float
    max_over_avg: float  # placement of new sessions
    bound: int  # ceil((1 + epsilon) * average)
    leave_moved: int  # sessions that changed owner when one node left
    leave_owned: int  # sessions the departed node owned (the minimum that must move)
    leave_survivor_max_over_avg: float
    leave_spread: int  # survivors that took some of the departed node's sessions
    join_moved: int  # pinned sessions moved when a node joined (0 by design)
    join_rehash_moved: int  # of join_rehash_checked: moved by plain rendezvous re-hashing
    join_new_share: float  # share of the next sessions the new node takes
    place_us: float  # median cost of placing one session
    hit_check_us: float  # median cost of the affinity check on a hit (no placement)
    join_rehash_checked: int = 0  # sessions re-hashed for join_rehash_moved (all, or --sample)
    join_new_sessions: int = 0  # the next sessions placed after the join
    place_p90_us: float = 0.0  # 90th percentile of the cost of placing one session
    seconds: float = 0.0  # the run's wall-clock time

    @property
    def rehash_share(self) -> float:
        return self.join_rehash_moved / (self.join_rehash_checked or self.sessions)

    def rows(self) -> list[tuple[str, str]]:
        minimum = 1 / self.nodes
        return [
            ("nodes / sessions / epsilon", f"{self.nodes} / {self.sessions} / {self.epsilon}"),
            ("new-session placement max/avg", f"{self.max_over_avg:.3f} (bound {self.bound} "
                                              f"sessions per node = 1+eps)"),
            ("moved when one node leaves", f"{self.leave_moved / self.sessions:.2%} (its own "
                                           f"sessions {self.leave_owned / self.sessions:.2%}; "
                                           f"1/N = {minimum:.2%})"),
            ("only the departed node's sessions moved",
             str(self.leave_moved == self.leave_owned)),
            ("survivors max/avg after the failure", f"{self.leave_survivor_max_over_avg:.3f}"),
            ("survivors that took the failed node's sessions",
             f"{self.leave_spread} of {self.nodes - 1}"),
            ("moved when one node joins", f"{self.join_moved} (0 by design: owners are pinned)"),
            ("re-hashing every request would move", f"{self.rehash_share:.2%} "
                                                    f"(1/(N+1) = {1 / (self.nodes + 1):.2%})"
                                                    f"{self._sampled()}"),
            ("new node's share of the next sessions", f"{self.join_new_share:.2%} "
                                                      f"(of {self.join_new_sessions:,})"),
            ("placement cost (median)", f"{self.place_us:.1f} µs (p90 {self.place_p90_us:.1f} µs)"),
            ("affinity check on a hit (median)", f"{self.hit_check_us:.2f} µs"),
        ]

    def _sampled(self) -> str:
        checked = self.join_rehash_checked
        if not checked or checked == self.sessions:
            return ""
        p = self.rehash_share
        margin = 1.96 * math.sqrt(p * (1 - p) / checked)  # a 95% interval's half-width
        return f"; {checked:,} sessions re-hashed, ±{margin:.2%}"


def _median_us(samples: list[float]) -> float:
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def _p90_us(samples: list[float]) -> float:
    """Of samples already sorted."""
    return samples[int(len(samples) * 0.9)] * 1e6


def steps(sessions: int, sample: int | None = None) -> int:
    """The units of work ``simulate`` reports to ``progress`` in all: three passes over the
    sessions (placement, a node leaving, a node joining), the last one over ``sample`` of them
    when given."""
    return 2 * sessions + _checked(sessions, sample)


def _checked(sessions: int, sample: int | None) -> int:
    return sessions if sample is None else min(sample, sessions)


_TICK = 4096  # sessions between two progress reports


def simulate(nodes: int, sessions: int, epsilon: float = 0.25,
             progress: Callable[[int], object] | None = None,
             sample: int | None = None) -> SimulationResult:
    """``progress(n)``: n more units of work done (``steps(sessions, sample)`` in all).

    ``sample``: re-hash only that many sessions (spread evenly over all of them) for the join's
    comparison, and place at most that many sessions after the join."""
    tick = progress or (lambda _: None)
    if nodes < 2 or sessions < nodes:
        raise ValueError("simulate needs at least 2 nodes and as many sessions as nodes")
    if sample is not None and sample < 1:
        raise ValueError("simulate needs a sample of at least one session")
    run_started = time.perf_counter()
    specs = [NodeSpec(f"node-{i:03d}") for i in range(nodes)]
    keys = [f"session-{i:08d}" for i in range(sessions)]
    loads: Counter[str] = Counter()
    owner: dict[str, str] = {}
    timings: list[float] = []
    for i, key in enumerate(keys, 1):
        started = time.perf_counter()
        chosen = place(key, specs, loads, epsilon)
        timings.append(time.perf_counter() - started)
        owner[key] = chosen
        loads[chosen] += 1
        if i % _TICK == 0:
            tick(_TICK)
    tick(sessions % _TICK)
    average = sessions / nodes
    max_over_avg = max(loads.values()) / average

    # One node leaves: every session is decided again as a request served by a survivor would
    # decide it; a session whose owner is gone fails over, placed with the survivors' loads.
    gone = specs[0].id
    survivors = specs[1:]
    serving = survivors[0].id
    live = {n.id for n in survivors}
    after = Counter({n.id: loads[n.id] for n in survivors})
    moved = 0
    takers: set[str] = set()
    for i, key in enumerate(keys, 1):
        if classify(owner[key], serving, live) == "failover":
            chosen = place(key, survivors, after, epsilon)
            after[chosen] += 1
            takers.add(chosen)
            moved += chosen != owner[key]
        if i % _TICK == 0:
            tick(_TICK)
    tick(sessions % _TICK)
    survivor_max = max(after.values()) / (sessions / len(survivors))

    # One node joins: pinned sessions are decided again, as a request served by the new node
    # would decide them (kept: their owners are live); the next sessions see its empty load.
    newcomer = NodeSpec(f"node-{nodes:03d}")
    joined = [*specs, newcomer]
    live = {n.id for n in joined}
    join_moved = sum(classify(owner[key], newcomer.id, live) == "failover" for key in keys)
    # What a balancer hashing each request would do instead: move every session whose top
    # rendezvous choice is now the new node.
    checked = _checked(sessions, sample)
    rehashed = keys if checked == sessions else [keys[i * sessions // checked]
                                                 for i in range(checked)]
    rehash_moved = 0
    for i, key in enumerate(rehashed, 1):
        rehash_moved += place(key, joined) == newcomer.id
        if i % _TICK == 0:
            tick(_TICK)
    tick(checked % _TICK)
    join_loads = Counter(loads)
    extra = max(nodes, sessions // 10)
    if sample is not None:
        extra = max(nodes, min(extra, sample))
    taken = 0
    for i in range(extra):
        chosen = place(f"later-{i:08d}", joined, join_loads, epsilon)
        join_loads[chosen] += 1
        taken += chosen == joined[-1].id

    live = {n.id for n in specs}
    checks = []
    for key in keys[: min(len(keys), 20_000)]:
        started = time.perf_counter()
        classify(owner[key], owner[key], live)
        checks.append(time.perf_counter() - started)
    return SimulationResult(
        nodes=nodes, sessions=sessions, epsilon=epsilon, max_over_avg=max_over_avg,
        bound=math.ceil(round((1 + epsilon) * average, 9)), leave_moved=moved,
        leave_owned=loads[gone], leave_survivor_max_over_avg=survivor_max,
        leave_spread=len(takers), join_moved=join_moved, join_rehash_moved=rehash_moved,
        join_new_share=taken / extra,
        place_us=_median_us(timings), hit_check_us=_median_us(checks),
        join_rehash_checked=checked, join_new_sessions=extra, place_p90_us=_p90_us(timings),
        seconds=time.perf_counter() - run_started,
    )
