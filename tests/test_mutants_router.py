"""The router on a failure, at its edges: the worst error decides; a reclassification (a
specialist's "not mine" included) goes back to the classifier until `max_reclassifications`, a
replanning to the orchestrator until `max_replans`; a CRITICAL one stops with its own stop_reason;
and each decision carries the error that made it (the error node explains from it).

Written for the mutation check (scripts/mutants router): each test pins a branch or a value that a
flipped condition would move."""

from __future__ import annotations

import time
from typing import Any

import pytest

from graph.errors import ErrorRecord
from graph.router import Router
from tests.conftest import registry_with


def error(severity: str, message: str, **extra: Any) -> ErrorRecord:
    record = ErrorRecord(
        node="execute", severity=severity, message=message, step_id=None, capability=None, attempt=1
    )
    record.update(extra)  # type: ignore[typeddict-item]
    return record


def router(**limits: Any) -> Router:
    return Router(registry_with(limits=limits))


def state(*errors: ErrorRecord, **values: Any) -> Any:
    return {"control_errors": list(errors), "control_started_at": time.time(), **values}


def test_a_reclassification_goes_back_to_the_classifier_until_the_limit() -> None:
    worst = error("reclassification", "translator: not mine")
    first = router(max_reclassifications=1).decide(state(worst))  # no pass counted yet
    assert (first.goto, first.stop_reason, first.why) == ("classifier", None, "translator: not mine")
    at_limit = router(max_reclassifications=1).decide(state(worst, control_reclassifications=1))
    assert (at_limit.goto, at_limit.stop_reason, at_limit.why) == (
        "error",
        "max_reclassifications",
        "translator: not mine",
    )
    assert at_limit.errors == [worst]
    none_allowed = router(max_reclassifications=0).decide(state(worst))
    assert none_allowed.stop_reason == "max_reclassifications"


def test_a_replanning_goes_back_to_the_orchestrator_until_the_limit() -> None:
    worst = error("replanning", "step 1 needs 'customer_id'")
    first = router(max_replans=1).decide(state(worst))
    assert (first.goto, first.stop_reason, first.why) == ("orchestrator", None, "step 1 needs 'customer_id'")
    at_limit = router(max_replans=1).decide(state(worst, control_replans=1))
    assert (at_limit.goto, at_limit.stop_reason, at_limit.why) == (
        "error",
        "max_replans",
        "step 1 needs 'customer_id'",
    )
    assert at_limit.errors == [worst]


@pytest.mark.parametrize(("own", "reason"), [("route_denied", "route_denied"), (None, "error")])
def test_a_critical_error_stops_with_its_own_stop_reason(own: str | None, reason: str) -> None:
    worst = error("critical", "capability 'payout' is not in the allowlist", stop_reason=own)
    decision = router().decide(state(error("retriable", "a timeout"), worst, error("replanning", "x")))
    assert (decision.goto, decision.stop_reason, decision.why) == (
        "error",
        reason,
        "capability 'payout' is not in the allowlist",
    )
    assert decision.errors == [worst]


def test_the_worst_error_decides() -> None:
    errors = [
        error("retriable", "a timeout"),
        error("reclassification", "not mine"),
        error("replanning", "plan"),
    ]
    assert router().decide(state(*errors)).goto == "classifier"
    assert router().decide(state(errors[0], errors[2])).goto == "orchestrator"


def test_a_budget_spent_stops_before_going_back() -> None:
    decision = router(max_steps=3).decide(state(error("reclassification", "not mine"), control_steps=3))
    assert decision.stop_reason == "max_steps"
