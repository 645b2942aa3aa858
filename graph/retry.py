"""Exponential backoff with jitter: the one formula and the one wait behind every retry.

Three places retry after a RETRIABLE failure: a node (nodes/base.py), a plan step (nodes/runner.py)
and the respond node's model call (nodes/respond.py). All three call `backoff(policy, attempt,
sleep)`, which waits before an attempt and never blocks the event loop: `sleep` is injected
(`asyncio.sleep` in a graph, a recorder in tests).

Why not tenacity, or LangGraph's node `RetryPolicy`: both wrap a call in a retry loop. Node and step
retries are not loops. A failure becomes an `ErrorRecord`, the router decides from its severity
(retry, but also replan, reclassify or stop, within `max_retries`, `max_steps` and the turn's time
budget), and the graph re-enters the node as a new checkpointed step whose attempt number comes from
the state. What a re-entered node needs is only "how long before attempt n, then wait", which is
this module. A loop library would fit only respond's in-node loop (nothing routes after respond)
and give the project two ways to back off; LangGraph's retries happen inside one task, out of the
router's sight and budgets. tenacity (already installed through langchain-core) is not needed.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from graph.progress import emit

Sleep = Callable[[float], Awaitable[None]]
"""A non-blocking sleep: `asyncio.sleep`, or a stand-in that records the delays."""


class RetryPolicy(NamedTuple):
    """Exponential backoff with jitter for RETRIABLE failures."""

    max_attempts: int = 3
    """Attempts in all, the first one included."""
    initial_delay: float = 0.2
    """Seconds before the second attempt."""
    backoff_factor: float = 2.0
    """Multiplier applied to the delay after each attempt."""
    max_delay: float = 5.0
    """Upper bound on one delay, in seconds."""
    jitter: float = 0.5
    """Fraction of the delay drawn at random, so retries of parallel steps do not align."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before `attempt` (2 for the first retry); 0 for the first attempt.

        The capped exponential delay, less a random share of up to `jitter` of it: never longer
        than `max_delay`, never shorter than `(1 - jitter)` times the exponential delay.
        """
        if attempt <= 1:
            return 0.0
        base = min(self.max_delay, self.initial_delay * self.backoff_factor ** (attempt - 2))
        spread = base * self.jitter
        return max(0.0, base - spread + (rng or random).random() * spread)


async def backoff(
    policy: RetryPolicy,
    attempt: int,
    sleep: Sleep,
    *,
    target: str | None = None,
    rng: random.Random | None = None,
) -> float:
    """Wait before `attempt` (the first attempt does not wait); return the seconds waited.

    With a `target` (a node or capability name), a `retry` progress event is emitted first, so a
    person watching the run sees why nothing happens for a while.
    """
    if attempt <= 1:
        return 0.0
    delay = policy.delay(attempt, rng)
    if target is not None:
        emit("retry", target=target, attempt=attempt, delay=delay)
    await sleep(delay)
    return delay
