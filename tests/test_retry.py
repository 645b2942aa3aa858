"""The one backoff: delays grow, jitter stays within its share, the cap holds, and the wait is the
injected non-blocking sleep (never time.sleep)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

import graph.retry
from graph.config.limits import Limits
from graph.retry import RetryPolicy, backoff
from tests.conftest import SleepRecorder


class FixedRandom(random.Random):
    """A random source that always draws `value` in [0, 1)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_delays_grow_exponentially_from_the_second_attempt() -> None:
    policy = RetryPolicy(initial_delay=0.1, backoff_factor=2.0, max_delay=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8])


def test_jitter_takes_at_most_its_share_off_the_delay() -> None:
    policy = RetryPolicy(initial_delay=1.0, backoff_factor=2.0, max_delay=100.0, jitter=0.25)
    assert policy.delay(3, FixedRandom(0.0)) == pytest.approx(1.5)  # the whole share off
    assert policy.delay(3, FixedRandom(0.999999)) == pytest.approx(2.0)  # almost none
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(500)]
    assert all(1.5 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 400, "parallel retries do not wait the same time"


def test_every_delay_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, backoff_factor=3.0, max_delay=2.0, jitter=0.5)
    rng = random.Random(1)
    assert all(policy.delay(n, rng) <= 2.0 for n in range(2, 60) for _ in range(20))
    assert RetryPolicy(initial_delay=0.5, max_delay=2.0, jitter=0.0).delay(40) == 2.0


def test_limits_make_the_policy_nodes_use() -> None:
    policy = Limits(max_retries=4, retry_initial_delay=0.3, retry_max_delay=1.0).retry_policy()
    assert policy == RetryPolicy(max_attempts=5, initial_delay=0.3, max_delay=1.0)


async def test_backoff_awaits_the_injected_sleep_and_never_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocking(seconds: float) -> None:
        raise AssertionError("time.sleep would block the event loop")

    monkeypatch.setattr(time, "sleep", blocking)
    sleep = SleepRecorder()
    policy = RetryPolicy(initial_delay=0.1, max_delay=10.0, jitter=0.0)
    assert await backoff(policy, 1, sleep) == 0.0
    assert sleep.delays == [], "the first attempt does not wait"
    waited = [await backoff(policy, n, sleep) for n in (2, 3, 4)]
    assert waited == sleep.delays == pytest.approx([0.1, 0.2, 0.4])


async def test_backoff_says_what_it_waits_for_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(graph.retry, "emit", lambda event, **fields: events.append((event, fields)))
    sleep = SleepRecorder()
    policy = RetryPolicy(initial_delay=0.2, jitter=0.0)
    await backoff(policy, 2, sleep, target="classifier")
    await backoff(policy, 2, sleep)
    await backoff(policy, 1, sleep, target="classifier")
    assert events == [("retry", {"target": "classifier", "attempt": 2, "delay": pytest.approx(0.2)})]
