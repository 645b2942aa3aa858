"""Limits and retry policy: small immutable values, every one enforced by the router or a node."""

from __future__ import annotations

import random
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field


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
        """Seconds to wait before `attempt` (2 for the first retry); 0 for the first attempt."""
        if attempt <= 1:
            return 0.0
        base = min(self.max_delay, self.initial_delay * self.backoff_factor ** (attempt - 2))
        spread = base * self.jitter
        return max(0.0, base - spread + (rng or random).random() * spread)


class Limits(BaseModel):
    """Budgets and bounds for one turn (one user message); all enforced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_retries: int = Field(default=2, ge=0)
    """Retries of one node or plan step after a RETRIABLE failure (attempts = retries + 1)."""
    max_reclassifications: int = Field(default=2, ge=0)
    """Times a turn may go back to the classifier."""
    max_replans: int = Field(default=2, ge=0)
    """Times a turn may go back to the orchestrator."""
    max_steps: int = Field(default=40, ge=1)
    """Node executions in one turn, capability steps included."""
    max_seconds: float = Field(default=120.0, gt=0)
    """Wall-clock seconds for one turn."""
    max_llm_calls: int = Field(default=12, ge=0)
    """Chat-model calls in one turn, all roles together."""
    retry_initial_delay: float = Field(default=0.2, ge=0)
    """Seconds before the first retry of a node; doubles each retry, with jitter."""
    retry_max_delay: float = Field(default=5.0, ge=0)
    """Upper bound on one retry delay, in seconds."""

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_retries + 1,
            initial_delay=self.retry_initial_delay,
            max_delay=self.retry_max_delay,
        )
