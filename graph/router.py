"""The central router: a pure function of the state (and the clock) that picks the next node.

Priority: errors by severity, then budgets, then the first missing piece (task, capabilities, plan),
then the next plan step(s). Independent ready steps fan out in parallel with `Send`.
The router writes nothing; the error node asks it again why the run stops.

Side effects: a step of a capability with `side_effects` passes `Router.gates` before it runs, whatever
planned it. The user's latest message (the raw human message: a model may rewrite the extracted task)
must explicitly ask for the action (`graph.intent.side_effect_intent` with the capability's
`action_verbs`): `refuse` (a negated, information-only or status request) skips the step, `confirm`
(a question, a hypothetical) asks a human to confirm exactly what would happen, `act` goes on to the
capability's approval policy (threshold). This is the one place the policy lives. Before all that,
a step whose capability declares business `rules` (registry.yaml) is checked on the values it would
run with: one that breaks them is skipped with a note, even after a human approved it.

Where the router can send a run depends on what the node before it leaves in the state: `EXITS`
says that per node (the severities of its failures, where it goes when it succeeded), `ROUTES`
follows from it (each conditional edge's path map, what Studio and `routegraph graph` draw), and
the edge out of a node refuses a decision its map does not declare (tests/test_router.py drives
the router through the states each node can leave and checks both ways).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.types import Send

from graph.config.registry import CapabilityInfo, Registry
from graph.errors import SEVERITY_RANK, ErrorRecord, ErrorSeverity, RoutegraphError, UndeclaredRoute
from graph.intent import Intent, confirmation, side_effect_intent
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


GateKind = Literal["skip", "confirm", "approve"]


class Gate(NamedTuple):
    """What stands between a ready step and its execution; the approval node acts on it."""

    step: PlanStep
    kind: GateKind
    """`skip`: the step does not run (a side effect the request does not ask for); `confirm`: a human
    confirms a side effect the user only asked about; `approve`: the approval policy asks a human."""
    text: str
    """`skip`: what the answer says instead; otherwise the question put to the human."""
    intent: str
    """Why the side-effect policy decided so ("" for a capability without side effects)."""
    timeout: float | None
    """`approval.timeout_seconds`: an answer after it resolves as `on_timeout`."""
    on_timeout: Literal["deny", "approve"]
    """Always `deny` for `confirm`: a question never becomes a side effect by waiting."""


@dataclass(frozen=True)
class Decision:
    goto: str | list[Send]
    stop_reason: str | None = None
    """Set when the decision ends the run early (goto == "error")."""
    why: str = ""
    errors: list[ErrorRecord] = field(default_factory=list)


def stop(reason: str, why: str, errors: list[ErrorRecord] | None = None) -> Decision:
    return Decision("error", stop_reason=reason, why=why, errors=errors or [])


def preferred_instance(state: AgentState, capability: str) -> str | None:
    """The pool instance this user was served by last time (the profile's `preferred_instances`):
    the runner keeps it while it is healthy and has room (continuity across turns)."""
    profile = state.get("context_profile") or {}
    chosen = (profile.get("preferred_instances") or {}).get(capability)
    return chosen if isinstance(chosen, str) and chosen else None


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
        # Going back to the classifier or the orchestrator is more work: budgets first, so a node
        # that fails before it counts its own retry still ends at max_steps or max_seconds.
        if (budget := self._over_budget(state)) is not None:
            return budget
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
        # Time spent waiting for a human at an approval interrupt is not work: it does not count.
        if turn_elapsed(state, self.clock()) > limits.max_seconds:
            return stop("max_seconds", f"the turn ran longer than {limits.max_seconds:g} s")
        return None

    def deadline(self, state: AgentState) -> float | None:
        """When the turn's `max_seconds` runs out, on this router's clock (None before intake ran)."""
        if not state.get("control_started_at"):
            return None
        now = self.clock()
        return now + self.limits.max_seconds - turn_elapsed(state, now)

    def _next_steps(self, state: AgentState, plan: list[PlanStep]) -> Decision:
        results = state.get("execution_results") or {}
        work = [s for s in plan if not self.registry[s["capability"]].terminal]
        pending = [s for s in work if s["id"] not in results]
        if not pending:
            return Decision(plan[-1]["capability"])
        ready = [s for s in pending if all(d in results for d in s["depends_on"])]
        if not ready:
            return stop("invalid_plan", "no plan step can run: its dependencies never complete")
        if self.gates(state, ready):
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
            deadline=self.deadline(state),
            preferred_instance=preferred_instance(state, step["capability"]),
        )

    def pending_approvals(self, state: AgentState, ready: list[PlanStep]) -> list[tuple[PlanStep, str]]:
        """Ready steps a human must answer for (approve or confirm) and who has not answered yet."""
        return [(g.step, g.text) for g in self.gates(state, ready) if g.kind != "skip"]

    def gates(self, state: AgentState, ready: list[PlanStep]) -> list[Gate]:
        """Ready steps that may not simply run: side effects not asked for, confirmations, approvals.

        A step a human already decided on passes. The question is built from the inputs the step
        will run with (`approval_question`): the same task, plan inputs and context as its `Send`.
        """
        decisions = state.get("approval_decisions") or {}
        context = state.get("execution_context") or {}
        task = state.get("task_current") or ""
        gates: list[Gate] = []
        for step in ready:
            info = self.registry[step["capability"]]
            # Business rules (registry `rules`), on the values the step would run with, before any
            # human is asked and whatever one answered: a step that breaks them does not run.
            if info.rules is not None and (
                broken := info.rules.violations({**context, **step["inputs"]}, before_run=True)
            ):
                text = f"I did not run {info.name}: it would break a business rule ({'; '.join(broken)})."
                gates.append(Gate(step, "skip", text, "business rule", None, "deny"))
                continue
            if step["id"] in decisions:
                continue
            policy = info.approval
            timeout, on_timeout = policy.timeout_seconds, policy.on_timeout
            intent = self.intent(state, step)
            if intent is not None and intent.kind != "act":
                verb = info.action_verbs[0] if info.action_verbs else f"run {info.name} for"
                if intent.kind == "refuse":
                    text = f"I did not {verb} anything: the request does not ask for it ({intent.reason})."
                    gates.append(Gate(step, "skip", text, intent.reason, None, "deny"))
                    continue
                question = approval_question(info, task, step, context, mode="always")
                if question is None:  # nothing it would do, or its inputs are not valid: nothing to ask
                    text = (
                        f"I did not {verb} anything: the request asks about it rather than for it "
                        f"({intent.reason}), and there is nothing to confirm."
                    )
                    gates.append(Gate(step, "skip", text, intent.reason, None, "deny"))
                    continue
                text = (
                    f"Confirm first: the request only asks about this ({intent.reason}); nothing is done "
                    f"unless you approve. {question}"
                )
                gates.append(Gate(step, "confirm", text, intent.reason, timeout, "deny"))
                continue
            if policy.mode == "never":
                continue
            question = approval_question(info, task, step, context)
            if question:
                reason = intent.reason if intent is not None else ""
                gates.append(Gate(step, "approve", question, reason, timeout, on_timeout))
        return gates

    def intent(self, state: AgentState, step: PlanStep) -> Intent | None:
        """Whether the user asked for this side effect; None for a capability without side effects.

        Read from the latest human message as the user wrote it. A plain yes that accepted the
        previous turn's offer (the orchestrator records it in `approval_offer`) asks for the offered
        capabilities.
        """
        info = self.registry[step["capability"]]
        if not info.side_effects:
            return None
        offer = state.get("approval_offer")
        turn = state.get("task_turn")
        if offer and turn and offer.get("accepted_turn") == turn and info.name in offer["capabilities"]:
            return Intent("act", f"the user said yes to the offer: {offer['question']}")
        said = latest_request(state.get("messages") or [])
        intent = side_effect_intent(said, info.action_verbs)
        follow = state.get("context_followup") or {}
        if (
            intent.kind == "refuse"
            and follow.get("kind") == "confirmation"
            and info.name in (follow.get("capabilities") or [])
            and (confirmation(said) is True or follow.get("ask_again") is True)
        ):
            # "alright, go ahead with it" after "is this charge refundable?": a yes to an action no
            # turn offered names none; it is asked about once, never done on the yes alone. So is a
            # yes with a condition ("yep, but only the duplicate"): `ask_again`.
            return Intent("confirm", "a yes to the action the last request asked about, not offered before")
        return intent

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


def approval_question(
    info: CapabilityInfo,
    task: str,
    step: PlanStep,
    context: dict[str, Any],
    *,
    mode: Literal["always"] | None = None,
) -> str | None:
    """The capability's question for this step, from the inputs its execution will parse; None when
    it may run unattended (or its inputs are invalid: it would fail before doing anything).

    `mode="always"`: what the step would do, whatever the threshold (a confirmation question).
    """
    try:
        inputs = info.instance.parse_inputs(task, step["inputs"], context)
    except RoutegraphError:
        return None
    policy = info.approval.model_dump()
    if mode is not None:
        policy["mode"] = mode
    return info.instance.needs_approval(inputs, policy)


def latest_request(messages: Sequence[BaseMessage]) -> str:
    """The text of the latest human message: what the user actually wrote this turn."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            content = message.content
            if isinstance(content, str):
                return content
            # Blocks on their own lines: "don't" and "refund it" in two blocks must not fuse.
            return "\n".join(
                b if isinstance(b, str) else str(b.get("text", ""))
                for b in content
                if isinstance(b, str | dict)
            )
    return ""


def paused_seconds(state: AgentState) -> float:
    """Seconds this turn waited for humans (approval interrupts); a pause of another turn counts 0."""
    if state.get("control_paused_turn") != state.get("task_turn"):
        return 0.0
    return float(state.get("control_paused_seconds") or 0.0)


def turn_elapsed(state: AgentState, now: float) -> float:
    """Seconds of work in this turn at `now`: the wall clock since it started, less the waits for a
    human (answered ones, `paused_seconds`, and the one pending since `approval_asked_at`). What
    `limits.max_seconds` bounds; 0 before the turn started."""
    started = state.get("control_started_at")
    if not started:
        return 0.0
    asked = state.get("approval_asked_at")
    waiting = max(0.0, now - asked) if asked is not None and asked >= started else 0.0
    return now - started - paused_seconds(state) - waiting


def _find_step(state: AgentState, step_id: str) -> PlanStep | None:
    return next((s for s in state.get("planning_plan") or [] if s["id"] == step_id), None)
