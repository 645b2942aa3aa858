"""Assignment policies: which free instance of a pool takes the next step.

Each policy is a pure function of the pool's instances (those free to take a step, in declaration
order) and of the pool's own small memory (`Cursor`): no I/O, no clock, so the behaviour is easy to
test and to reason about. The pool calls them under its lock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from graph.config.schema import PoolPolicy


class Candidate(Protocol):
    """What a policy reads of an instance."""

    name: str
    weight: float
    in_flight: int
    capacity: int | None
    latency_ewma: float | None
    success_ewma: float | None


@dataclass
class Cursor:
    """A pool's memory between picks: the round-robin position, the smooth weighted round-robin
    counters, and the random source of the performance policy's exploration."""

    turn: int = 0
    current: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))


Policy = Callable[[Sequence[Candidate], Sequence[str], Cursor, float], Candidate]
"""(free instances, names of all instances in order, cursor, exploration) -> the chosen one."""


def round_robin(free: Sequence[Candidate], order: Sequence[str], cursor: Cursor, _: float) -> Candidate:
    """The next instance in declaration order after the last one chosen, skipping busy ones."""
    by_name = {c.name: c for c in free}
    n = len(order)
    for k in range(n):
        name = order[(cursor.turn + k) % n]
        if name in by_name:
            cursor.turn = (cursor.turn + k + 1) % n
            return by_name[name]
    return free[0]


def weighted(free: Sequence[Candidate], order: Sequence[str], cursor: Cursor, _: float) -> Candidate:
    """Smooth weighted round-robin (nginx's): over any window, each instance gets its share of
    picks in proportion to its weight, evenly spread (a 2:1 pair goes a, b, a, a, b, a ...)."""
    total = 0.0
    best: Candidate | None = None
    for c in free:
        cursor.current[c.name] = cursor.current.get(c.name, 0.0) + c.weight
        total += c.weight
        if best is None or cursor.current[c.name] > cursor.current[best.name]:
            best = c
    assert best is not None
    cursor.current[best.name] -= total
    return best


def least_in_flight(free: Sequence[Candidate], order: Sequence[str], cursor: Cursor, x: float) -> Candidate:
    """The instance with the fewest steps in flight per unit of capacity; ties in turn."""
    low = min(_load(c) for c in free)
    return round_robin([c for c in free if _load(c) == low], order, cursor, x)


def performance(free: Sequence[Candidate], order: Sequence[str], cursor: Cursor, exploration: float) -> Candidate:
    """The best expected rate of good answers: success rate² / latency, shared by the steps it is
    already running. An instance never measured is tried first; with probability `exploration` a
    random one is, so a recovered instance wins its share back."""
    untried = [c for c in free if c.latency_ewma is None]
    if untried:
        return round_robin(untried, order, cursor, exploration)
    if len(free) > 1 and cursor.rng.random() < exploration:
        return cursor.rng.choice(list(free))
    return max(free, key=score)


def score(c: Candidate) -> float:
    """The performance policy's score (higher is better)."""
    success = 1.0 if c.success_ewma is None else c.success_ewma
    latency = max(c.latency_ewma or 0.0, 1e-4)
    return success * success / (latency * (1 + c.in_flight))


def _load(c: Candidate) -> float:
    return c.in_flight / c.capacity if c.capacity else c.in_flight / 1e9


POLICIES: dict[PoolPolicy, Policy] = {
    "round_robin": round_robin,
    "weighted": weighted,
    "least_in_flight": least_in_flight,
    "performance": performance,
}
