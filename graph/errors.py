"""Error severities and the exceptions that carry them.

The router never inspects exception types: nodes turn failures into an `ErrorRecord` with a
severity, and the router acts on severities alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NotRequired, TypedDict


class ErrorSeverity(StrEnum):
    """What the router does with a failure, from mildest to gravest."""

    RETRIABLE = "retriable"
    """Run the same node (or plan step) again after an exponential backoff with jitter."""
    REPLANNING = "replanning"
    """Go back to the orchestrator with the validation error as context."""
    RECLASSIFICATION = "reclassification"
    """Go back to the classifier with the failure as context."""
    CRITICAL = "critical"
    """Stop: the error node explains what happened."""


SEVERITY_RANK: dict[ErrorSeverity, int] = {
    ErrorSeverity.RETRIABLE: 0,
    ErrorSeverity.REPLANNING: 1,
    ErrorSeverity.RECLASSIFICATION: 2,
    ErrorSeverity.CRITICAL: 3,
}


class RoutegraphError(Exception):
    """Base class for errors that know their own severity."""

    severity: ErrorSeverity = ErrorSeverity.CRITICAL


class RetriableError(RoutegraphError):
    severity = ErrorSeverity.RETRIABLE


class ModelOutputError(RetriableError):
    """A model answered with something that does not parse or violates the schema.

    Model output is untrusted input: asking again is the first remedy, bounded by `max_retries`.
    """


class ReclassificationError(RoutegraphError):
    severity = ErrorSeverity.RECLASSIFICATION


class ReplanningError(RoutegraphError):
    severity = ErrorSeverity.REPLANNING


class MissingInput(RoutegraphError):
    """A required input is absent: the plan must supply it (REPLANNING)."""

    severity = ErrorSeverity.REPLANNING


class NotApplicable(ReclassificationError):
    """The request does not fit this capability after all (e.g. no arithmetic in it)."""


class CriticalError(RoutegraphError):
    severity = ErrorSeverity.CRITICAL


class StopError(CriticalError):
    """A critical failure that ends the run with a specific stop_reason."""

    stop_reason = "error"


class PolicyDenied(StopError):
    """A step was refused by the policy boundary (allowlist)."""

    stop_reason = "route_denied"


class BudgetExhausted(StopError):
    """A node wanted a model call after the turn's `max_llm_calls` were spent."""

    stop_reason = "max_llm_calls"


class ErrorRecord(TypedDict):
    """A failure as stored in the state: plain data, so checkpoints and Studio can show it."""

    node: str
    severity: str
    message: str
    step_id: str | None
    capability: str | None
    attempt: int
    stop_reason: NotRequired[str | None]


def error_record(
    node: str,
    exc: BaseException,
    *,
    attempt: int,
    severity: ErrorSeverity | None = None,
    step_id: str | None = None,
    capability: str | None = None,
) -> ErrorRecord:
    return ErrorRecord(
        node=node,
        severity=(severity or severity_of(exc)).value,
        message=describe(exc),
        step_id=step_id,
        capability=capability,
        attempt=attempt,
        stop_reason=getattr(exc, "stop_reason", None),
    )


def severity_of(exc: BaseException) -> ErrorSeverity:
    """Severity of an exception raised outside any capability: unknown exceptions are CRITICAL."""
    if isinstance(exc, RoutegraphError):
        return exc.severity
    return ErrorSeverity.CRITICAL


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
