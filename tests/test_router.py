"""Every router branch, decided from a state alone; and every decision within its edge's path map."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.types import Send

from graph.errors import ErrorSeverity
from graph.router import EXITS, ROUTES, Router, UndeclaredRoute
from nodes.planning import Plan, PlannedStep, deterministic_plan, validate_plan
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
    {
        "name": "guarded",
        "class": "tests.testcaps:Flaky",
        "approval": {"mode": "always"},
        "classifier_guide": {"examples": [{"query": "guard"}]},
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


# --- the path maps: every decision after a node is one its edge declares -------------------------

SPENT = ({"control_steps": 10}, {"control_llm_calls": 4}, {"control_started_at": 900.0})
"""Each budget of REGISTRY's limits spent (the clock says 1000)."""


def picked(goto: str | list[Send]) -> set[str]:
    return {goto} if isinstance(goto, str) else {send.node for send in goto}


def result(
    step: dict[str, Any], status: str, severity: str | None = None, attempt: int = 1
) -> dict[str, Any]:
    failed = status == "failed"
    return {
        **ok(step["id"], step["capability"]),
        "status": status,
        "error": "boom" if failed else None,
        "severity": severity,
        "attempts": attempt,
    }


def node_failures(node: str) -> Iterator[dict[str, Any]]:
    """A node's own failures, of each severity it raises, first to last attempt, bounds fresh and spent."""
    for severity in EXITS[node].errors:
        for attempt in (1, 2, 3):
            for spent in ({}, {"control_reclassifications": 2, "control_replans": 1}):
                yield {"control_errors": [err(severity.value, node=node, attempt=attempt)], **spent}


def written(*steps: PlannedStep) -> dict[str, Any]:
    """A plan as a model might write it (validated as the orchestrator does)."""
    validated, _ = validate_plan(REGISTRY, Plan(steps=list(steps)), {})
    return {**planned(), "planning_plan": validated}


def chained_approvals() -> dict[str, Any]:
    """Two steps that each ask a human, the second after the first (denying one readies the other)."""
    return written(
        PlannedStep(capability="guarded", inputs={"query": "first"}),
        PlannedStep(capability="guarded", inputs={"query": "second"}, depends_on=[0]),
        PlannedStep(capability="respond"),
    )


def plan_run(state: dict[str, Any], answer: bool, outcome: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """What a plan leaves for the router, node by node: the orchestrator's plan, then each approval
    (`answer` to every question) and each join (every step ends in `outcome`; a failure in each
    severity and attempt, as join reports it, branches off)."""
    source = "orchestrator"
    for _ in range(20):
        yield source, state
        goto = ROUTER.decide(state).goto  # type: ignore[arg-type]
        results = dict(state.get("execution_results") or {})
        if goto == "approval":
            pending = ROUTER.pending_approvals(state, ROUTER.ready_steps(state))  # type: ignore[arg-type]
            decisions = {**(state.get("approval_decisions") or {}), **{s["id"]: answer for s, _ in pending}}
            denied = {s["id"]: result(s, "denied") for s, _ in pending if not answer}
            state = {**state, "approval_decisions": decisions, "execution_results": {**results, **denied}}
            source = "approval"
        elif isinstance(goto, list):
            batch = [send.arg["step"] for send in goto]
            for step in batch:
                for severity in ErrorSeverity:
                    for attempt in (1, 2, 3):
                        failed = result(step, "failed", severity.value, attempt)
                        error = err(severity.value, node="execute", step=step["id"], cap=step["capability"])
                        yield (
                            "join",
                            {
                                **state,
                                "execution_results": {**results, step["id"]: failed},
                                "control_errors": [{**error, "attempt": attempt}],
                            },
                        )
            done = {step["id"]: result(step, outcome) for step in batch}
            state = {**state, "execution_results": {**results, **done}, "control_errors": []}
            source = "join"
        else:
            return
    raise AssertionError("the plan did not finish in 20 router decisions")


def exits() -> Iterator[tuple[str, dict[str, Any]]]:
    """(node, state) pairs: what each node the router runs after can leave in the state."""
    fresh = {"control_started_at": 995.0, "control_steps": 1}
    turns = [
        ("intake", fresh),
        ("task_extraction", {**fresh, "task_current": "t"}),
        ("classifier", {**fresh, "task_current": "t", "planning_capabilities": []}),
    ]
    for node, state in turns:
        yield node, state
        for failure in node_failures(node):
            yield node, {**state, **failure}
    for failure in node_failures("orchestrator"):
        yield "orchestrator", {**planned("calculator"), "planning_plan": None, **failure}
    plans = [
        planned(),
        planned("calculator"),
        planned("calculator", "clock"),
        planned("payout"),
        planned("flaky"),
        planned("guarded"),
        planned("guarded", "calculator"),
        chained_approvals(),
        written(PlannedStep(capability="guarded"), PlannedStep(capability="clarify")),
        written(PlannedStep(capability="calculator"), PlannedStep(capability="clarify")),
    ]
    for plan in plans:
        for answer in (True, False):
            for outcome in ("ok", "denied", "skipped"):
                yield from plan_run(plan, answer, outcome)
        # A new plan after a failure keeps the steps that succeeded (by id): it may have no work left.
        done = {s["id"]: result(s, "ok") for s in plan["planning_plan"][:-1]}
        yield "orchestrator", {**plan, "execution_results": done}
    for failure in node_failures("approval"):
        yield "approval", {**planned("guarded"), **failure}


def test_every_decision_after_a_node_is_in_its_path_map_and_every_path_is_taken() -> None:
    taken: dict[str, set[str]] = {source: set() for source in ROUTES}
    count = 0
    for source, state in exits():
        for spent in ({}, *SPENT):
            goto = ROUTER.route(source, {**state, **spent})  # type: ignore[arg-type]  # raises UndeclaredRoute
            assert picked(goto) <= set(ROUTES[source]), (source, state)
            taken[source] |= picked(goto)
            count += 1
    assert taken == {source: set(targets) for source, targets in ROUTES.items()}, (
        "a declared path is never taken"
    )
    assert count > 1000


def test_the_path_maps() -> None:
    plan = ["approval", "execute", "respond", "clarify", "error"]
    expected = {
        "intake": ("task_extraction", "error"),
        "task_extraction": ("task_extraction", "classifier", "error"),
        "classifier": ("classifier", "orchestrator", "error"),
        "orchestrator": ("classifier", "orchestrator", *plan),
        "join": ("classifier", "orchestrator", *plan),
        "approval": tuple(plan),
    }
    assert expected == ROUTES
    assert sum(map(len, ROUTES.values())) == 27  # conditional edges drawn (every node to every node: 48)


def test_a_decision_outside_the_path_map_is_refused() -> None:
    # task_extraction never asks for a new plan: if it did, the drawing (and the graph) would not say so.
    state = {"task_current": "t", "control_errors": [err("replanning", node="task_extraction")]}
    assert decide(state).goto == "orchestrator"
    with pytest.raises(UndeclaredRoute, match="from task_extraction to orchestrator"):
        ROUTER.route("task_extraction", state)  # type: ignore[arg-type]
    retry = {"task_current": "t", "control_errors": [err("retriable", node="join", attempt=1)]}
    with pytest.raises(UndeclaredRoute, match="from join to join"):
        ROUTER.edge("join")(retry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not run after 'execute'"):
        ROUTER.edge("execute")
