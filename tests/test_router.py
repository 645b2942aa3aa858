"""Every router branch, decided from a state alone."""

from __future__ import annotations

from typing import Any

from langgraph.types import Send

from graph.router import Router
from nodes.planning import deterministic_plan, validate_plan
from tests.conftest import registry_with

REGISTRY = registry_with(
    {
        "name": "flaky",
        "class": "tests.testcaps:Flaky",
        "retry": {"max_attempts": 2},
        "classifier_guide": {"examples": [{"query": "echo"}]},
    },
    {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": ":memory:"},
        "classifier_guide": {"examples": [{"query": "find alice"}]},
    },
    {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": ":memory:"},
        "classifier_guide": {"examples": [{"query": "pay alice"}]},
    },
    limits={
        "max_retries": 2,
        "max_reclassifications": 2,
        "max_replans": 1,
        "max_steps": 10,
        "max_llm_calls": 3,
        "max_seconds": 60,
    },
)
ROUTER = Router(REGISTRY, clock=lambda: 1000.0)


def err(
    severity: str,
    *,
    node: str = "classifier",
    attempt: int = 1,
    step: str | None = None,
    cap: str | None = None,
    stop: str | None = None,
) -> dict[str, Any]:
    return {
        "node": node,
        "severity": severity,
        "message": f"{severity} failure",
        "step_id": step,
        "capability": cap,
        "attempt": attempt,
        "stop_reason": stop,
    }


def planned(*names: str) -> dict[str, Any]:
    steps, _ = validate_plan(REGISTRY, deterministic_plan(REGISTRY, list(names), {}), {})
    return {
        "task_current": "t",
        "planning_capabilities": [],
        "planning_plan": steps,
        "control_started_at": 990.0,
    }


def ok(step_id: str, cap: str) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "capability": cap,
        "status": "ok",
        "output": {},
        "error": None,
        "severity": None,
        "stop_reason": None,
        "attempts": 1,
        "duration_ms": 1.0,
    }


def decide(state: dict[str, Any]) -> Any:
    return ROUTER.decide(state)  # type: ignore[arg-type]


def test_missing_pieces_in_priority_order() -> None:
    assert decide({}).goto == "task_extraction"
    assert decide({"task_current": "t"}).goto == "classifier"
    assert decide({"task_current": "t", "planning_capabilities": []}).goto == "orchestrator"


def test_critical_error_stops_first_even_with_other_errors() -> None:
    d = decide({"control_errors": [err("retriable"), err("critical"), err("reclassification")]})
    assert (d.goto, d.stop_reason) == ("error", "error")


def test_critical_error_with_its_own_stop_reason() -> None:
    d = decide({"control_errors": [err("critical", stop="route_denied")]})
    assert d.stop_reason == "route_denied"


def test_reclassification_is_bounded() -> None:
    assert (
        decide({"control_errors": [err("reclassification")], "control_reclassifications": 1}).goto
        == "classifier"
    )
    d = decide({"control_errors": [err("reclassification")], "control_reclassifications": 2})
    assert (d.goto, d.stop_reason) == ("error", "max_reclassifications")


def test_replanning_is_bounded() -> None:
    assert decide({"control_errors": [err("replanning")], "control_replans": 0}).goto == "orchestrator"
    assert decide({"control_errors": [err("replanning")], "control_replans": 1}).stop_reason == "max_replans"


def test_reclassification_outranks_replanning_and_retry() -> None:
    assert (
        decide({"control_errors": [err("retriable"), err("replanning"), err("reclassification")]}).goto
        == "classifier"
    )


def test_retriable_node_error_retries_the_same_node_until_max_retries() -> None:
    assert (
        decide({"control_errors": [err("retriable", node="orchestrator", attempt=2)]}).goto == "orchestrator"
    )
    d = decide({"control_errors": [err("retriable", node="orchestrator", attempt=3)]})
    assert d.stop_reason == "max_retries"


def test_retriable_step_error_sends_the_step_again_with_the_next_attempt() -> None:
    state = planned("flaky")
    step = state["planning_plan"][0]
    state["control_errors"] = [err("retriable", node="execute", step=step["id"], cap="flaky", attempt=1)]
    (send,) = decide(state).goto
    assert isinstance(send, Send) and send.node == "execute"
    assert send.arg["attempt"] == 2 and send.arg["step"] == step
    # The capability's own retry policy (max_attempts 2) bounds it.
    state["control_errors"] = [err("retriable", node="execute", step=step["id"], cap="flaky", attempt=2)]
    assert decide(state).stop_reason == "max_retries"


def test_budgets() -> None:
    base = planned("calculator")
    assert decide({**base, "control_steps": 10}).stop_reason == "max_steps"
    assert decide({**base, "control_llm_calls": 4}).stop_reason == "max_llm_calls"
    assert decide({**base, "control_started_at": 900.0}).stop_reason == "max_seconds"
    assert isinstance(decide({**base, "control_steps": 9, "control_llm_calls": 3}).goto, list)


def test_independent_steps_fan_out_in_parallel() -> None:
    goto = decide(planned("calculator", "clock")).goto
    assert [s.arg["step"]["capability"] for s in goto] == ["calculator", "clock"]
    assert all(s.arg["attempt"] == 1 for s in goto)


def test_dependent_step_waits_for_its_provider() -> None:
    state = planned("payout")
    # Payout requires customer_id: the planner added lookup first.
    goto = decide(state).goto
    assert [s.arg["step"]["capability"] for s in goto] == ["lookup"]
    lookup_id = state["planning_plan"][0]["id"]
    state["execution_results"] = {lookup_id: ok(lookup_id, "lookup")}
    assert [s.arg["step"]["capability"] for s in decide(state).goto] == ["payout"]


def test_terminal_step_after_all_work_is_done() -> None:
    state = planned("calculator")
    sid = state["planning_plan"][0]["id"]
    state["execution_results"] = {sid: ok(sid, "calculator")}
    assert decide(state).goto == "respond"
    assert decide(planned()).goto == "clarify"


def test_unsatisfiable_dependencies_stop_with_invalid_plan() -> None:
    state = planned("calculator")
    state["planning_plan"][0]["depends_on"] = ["nowhere:0"]
    assert decide(state).stop_reason == "invalid_plan"


def test_denied_dependency_blocks_the_dependent_step() -> None:
    state = planned("payout")
    lookup_id = state["planning_plan"][0]["id"]
    state["execution_results"] = {lookup_id: {**ok(lookup_id, "lookup"), "status": "denied"}}
    (send,) = decide(state).goto
    assert send.arg["blocked_by"] == [lookup_id]


def test_router_is_pure() -> None:
    state = planned("calculator", "clock")
    before = repr(state)
    decide(state)
    assert repr(state) == before
