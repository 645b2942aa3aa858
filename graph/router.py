"""The central router: a pure function of the state (and the clock) that picks the next node.

Priority: errors by severity, then budgets, then the first missing piece (task, capabilities, plan),
then the next plan step(s). Independent ready steps fan out in parallel with `Send`.
The router writes nothing; the error node asks it again why the run stops.

Where the router can send a run depends on what the node before it leaves in the state: `EXITS`
says that per node (the severities of its failures, where it goes when it succeeded), `ROUTES`
follows from it (each conditional edge's path map, what Studio and `routegraph graph` draw), and
the edge out of a node refuses a decision its map does not declare (tests/test_router.py drives
the router through the states each node can leave and checks both ways).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from langgraph.types import Send

from graph.config.registry import Registry
from graph.errors import SEVERITY_RANK, ErrorRecord, ErrorSeverity, RoutegraphError, UndeclaredRoute
from graph.state import AgentState, PlanStep, StepPayload

NODES = (
    "task_extraction",
    "classifier",
    "orchestrator",
    "approval",
    "execute",
    "respond",
    "clarify",
    "error",
)
"""Every node the router can pick, in the order path maps list them."""

PLAN_STEPS = ("approval", "execute", "respond", "clarify")
"""Where a plan goes next: a human's approval, its ready steps (`Send` to execute), or its terminal
step (respond or clarify: the last step of every validated plan)."""


class Exit(NamedTuple):
    """What a node can leave in the state for the router (one row of `EXITS`)."""

    errors: tuple[ErrorSeverity, ...]
    """Severities of the node's own failures: RETRIABLE runs the node again, RECLASSIFICATION goes
    to the classifier, REPLANNING to the orchestrator, CRITICAL (and any exhausted bound) to error."""
    then: tuple[str, ...]
    """Where a run goes after the node succeeded (a budget spent sends it to error instead)."""
    step_errors: bool = False
    """The failures are plan steps' (join): a retriable one is sent to `execute` again."""


_ALL = tuple(ErrorSeverity)
_RETRIABLE, _CRITICAL = ErrorSeverity.RETRIABLE, ErrorSeverity.CRITICAL

EXITS: dict[str, Exit] = {
    # A new turn has no task yet; without a new user message intake records a critical error.
    "intake": Exit((_CRITICAL,), then=("task_extraction",)),
    # Model failures are retried; the task is there, the capabilities are not.
    "task_extraction": Exit((_RETRIABLE, _CRITICAL), then=("classifier",)),
    # Model failures are retried; the classifier clears the plan.
    "classifier": Exit((_RETRIABLE, _CRITICAL), then=("orchestrator",)),
    # Model failures are retried; plan validation: an unknown capability reclassifies, a missing
    # input replans, a capability outside the allowlist stops.
    "orchestrator": Exit(_ALL, then=PLAN_STEPS),
    # A batch of steps finished: their failures carry the capabilities' severities.
    "join": Exit(_ALL, then=PLAN_STEPS, step_errors=True),
    # Decisions recorded: approved steps run, and a denial can make dependent steps ready that ask too.
    "approval": Exit((_CRITICAL,), then=PLAN_STEPS),
}
"""The nodes the router runs after, and what each can leave behind (see the nodes' code)."""


def targets(source: str) -> tuple[str, ...]:
    """Every node the router can pick after `source`, by the rules of `Router.decide`."""
    row = EXITS[source]
    on_error = {
        ErrorSeverity.RETRIABLE: "execute" if row.step_errors else source,
        ErrorSeverity.REPLANNING: "orchestrator",
        ErrorSeverity.RECLASSIFICATION: "classifier",
        ErrorSeverity.CRITICAL: "error",
    }
    found = {"error", *row.then, *(on_error[severity] for severity in row.errors)}
    return tuple(node for node in NODES if node in found)


ROUTES: dict[str, tuple[str, ...]] = {source: targets(source) for source in EXITS}
"""The path map of each conditional edge: source node -> the nodes the router can pick after it."""


@dataclass(frozen=True)
class Decision:
    goto: str | list[Send]
    stop_reason: str | None = None
    """Set when the decision ends the run early (goto == "error")."""
    why: str = ""
    errors: list[ErrorRecord] = field(default_factory=list)


def stop(reason: str, why: str, errors: list[ErrorRecord] | None = None) -> Decision:
    return Decision("error", stop_reason=reason, why=why, errors=errors or [])


class Router:
    """Routing decisions for one registry; `router.edge(source)` is the conditional edge out of a node."""

    def __init__(self, registry: Registry, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.limits = registry.spec.limits
        self.clock = clock

    def edge(self, source: str) -> RouterEdge:
        """The conditional edge out of `source` (its path map is `ROUTES[source]`)."""
        return RouterEdge(self, source)

    def route(self, source: str, state: AgentState) -> str | list[Send]:
        """The next node(s) after `source`; raises `UndeclaredRoute` outside `ROUTES[source]`."""
        goto = self.decide(state).goto
        picked = [goto] if isinstance(goto, str) else [send.node for send in goto]
        if undeclared := [node for node in picked if node not in ROUTES[source]]:
            raise UndeclaredRoute(
                f"the router sent the run from {source} to {undeclared[0]}, which ROUTES[{source!r}] "
                f"does not declare: {', '.join(ROUTES[source])} (graph/router.py, EXITS)"
            )
        return goto

    def decide(self, state: AgentState) -> Decision:
        errors = state.get("control_errors") or []
        if errors:
            return self._on_errors(state, errors)
        if (budget := self._over_budget(state)) is not None:
            return budget
        if not state.get("task_current"):
            return Decision("task_extraction")
        if state.get("planning_capabilities") is None:
            return Decision("classifier")
        plan = state.get("planning_plan")
        if plan is None:
            return Decision("orchestrator")
        return self._next_steps(state, plan)

    def _on_errors(self, state: AgentState, errors: list[ErrorRecord]) -> Decision:
        worst = max(errors, key=lambda e: SEVERITY_RANK[ErrorSeverity(e["severity"])])
        severity = ErrorSeverity(worst["severity"])
        if severity is ErrorSeverity.CRITICAL:
            reason = worst.get("stop_reason") or "error"
            return stop(reason, worst["message"], [worst])
        if severity is ErrorSeverity.RECLASSIFICATION:
            if state.get("control_reclassifications", 0) >= self.limits.max_reclassifications:
                return stop("max_reclassifications", worst["message"], [worst])
            return Decision("classifier", why=worst["message"])
        if severity is ErrorSeverity.REPLANNING:
            if state.get("control_replans", 0) >= self.limits.max_replans:
                return stop("max_replans", worst["message"], [worst])
            return Decision("orchestrator", why=worst["message"])
        return self._retry(state, errors)

    def _retry(self, state: AgentState, errors: list[ErrorRecord]) -> Decision:
        sends: list[Send] = []
        node_retry: str | None = None
        for err in errors:
            capability = err["capability"]
            if err["step_id"] and capability is not None and capability in self.registry:
                max_attempts = self.registry[capability].retry.max_attempts
            else:
                max_attempts = self.limits.max_retries + 1
            if err["attempt"] >= max_attempts:
                return stop("max_retries", f"{err['message']} (after {err['attempt']} attempts)", [err])
            if err["step_id"]:
                step = _find_step(state, err["step_id"])
                if step is None:
                    return stop("error", f"cannot retry unknown step {err['step_id']}", [err])
                sends.append(Send("execute", self.payload(state, step, attempt=err["attempt"] + 1)))
            else:
                node_retry = err["node"]
        if (budget := self._over_budget(state)) is not None:
            return budget
        return Decision(sends or node_retry or "error", why="retry")

    def _over_budget(self, state: AgentState) -> Decision | None:
        limits = self.limits
        if state.get("control_steps", 0) >= limits.max_steps:
            return stop("max_steps", f"the turn used its {limits.max_steps} steps")
        if state.get("control_llm_calls", 0) > limits.max_llm_calls:
            return stop("max_llm_calls", f"the turn used more than {limits.max_llm_calls} model calls")
        started = state.get("control_started_at")
        if started and self.clock() - started > limits.max_seconds:
            return stop("max_seconds", f"the turn ran longer than {limits.max_seconds:g} s")
        return None

    def _next_steps(self, state: AgentState, plan: list[PlanStep]) -> Decision:
        results = state.get("execution_results") or {}
        work = [s for s in plan if not self.registry[s["capability"]].terminal]
        pending = [s for s in work if s["id"] not in results]
        if not pending:
            return Decision(plan[-1]["capability"])
        ready = [s for s in pending if all(d in results for d in s["depends_on"])]
        if not ready:
            return stop("invalid_plan", "no plan step can run: its dependencies never complete")
        if self.pending_approvals(state, ready):
            return Decision("approval")
        return Decision([Send("execute", self.payload(state, s, attempt=1)) for s in ready])

    def payload(self, state: AgentState, step: PlanStep, *, attempt: int) -> StepPayload:
        decisions = state.get("approval_decisions") or {}
        results = state.get("execution_results") or {}
        return StepPayload(
            step=step,
            attempt=attempt,
            task=state.get("task_current") or "",
            context=dict(state.get("execution_context") or {}),
            approved=decisions.get(step["id"]),
            blocked_by=[d for d in step["depends_on"] if d in results and results[d]["status"] != "ok"],
        )

    def pending_approvals(self, state: AgentState, ready: list[PlanStep]) -> list[tuple[PlanStep, str]]:
        """Ready steps whose approval policy asks a human, and who has not answered yet."""
        decisions = state.get("approval_decisions") or {}
        context = state.get("execution_context") or {}
        pending = []
        for step in ready:
            if step["id"] in decisions:
                continue
            info = self.registry[step["capability"]]
            if info.approval.mode == "never":
                continue
            question = approval_question(info, state.get("task_current") or "", step, context)
            if question:
                pending.append((step, question))
        return pending

    def ready_steps(self, state: AgentState) -> list[PlanStep]:
        plan = state.get("planning_plan") or []
        results = state.get("execution_results") or {}
        return [
            s
            for s in plan
            if not self.registry[s["capability"]].terminal
            and s["id"] not in results
            and all(d in results for d in s["depends_on"])
        ]


class RouterEdge:
    """The conditional edge out of one node: `Router.route` from that node, sync and async."""

    def __init__(self, router: Router, source: str) -> None:
        if source not in ROUTES:
            raise ValueError(f"the router does not run after {source!r}: {', '.join(ROUTES)}")
        self.router = router
        self.source = source

    def __call__(self, state: AgentState) -> str | list[Send]:
        return self.router.route(self.source, state)

    async def acall(self, state: AgentState) -> str | list[Send]:
        """The same decision for async runs: LangGraph would run a sync edge in a worker thread."""
        return self.router.route(self.source, state)


def approval_question(info: Any, task: str, step: PlanStep, context: dict[str, Any]) -> str | None:
    try:
        inputs = info.instance.parse_inputs(task, step["inputs"], context)
    except RoutegraphError:
        return None
    return info.instance.needs_approval(inputs, info.approval.model_dump())


def _find_step(state: AgentState, step_id: str) -> PlanStep | None:
    return next((s for s in state.get("planning_plan") or [] if s["id"] == step_id), None)
