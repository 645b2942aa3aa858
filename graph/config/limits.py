"""Limits: small immutable values, every one enforced by the router or a node.

The retry policy they produce (`RetryPolicy`) lives in graph/retry.py, with the backoff that uses it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from graph.retry import RetryPolicy


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
    max_request_chars: int = Field(default=8000, ge=1)
    """Characters of one user message; a longer one ends the turn at intake (`input_too_long`)."""
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
