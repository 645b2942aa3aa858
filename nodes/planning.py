"""Plans as data: the deterministic planner and the validation every plan passes before it runs.

A step of a capability with side effects is built from what this turn looked up: the providers of
what it requires run in the same plan, before it, even when an earlier turn left those values in
the context (the approval question then shows the customer and charge of this request, not of the
last one). A model's plan is untrusted input: `untrusted_inputs` drops the arguments a model must not
set (the task text, values capabilities provide such as a customer id) before validation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from graph.config.registry import Registry
from graph.errors import PolicyDenied, ReclassificationError, ReplanningError, StopError
from graph.state import AgentState, PlanStep, ScoredCapability

InputValue = str | int | float | bool | None


class PlanRejected(StopError):
    """A plan breaks a capability's business rules (registry `rules`): the turn ends, nothing ran."""

    stop_reason = "plan_rejected"


class PlannedStep(BaseModel):
    """One step as a model proposes it."""

    capability: str = Field(max_length=100)
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    """Arguments for the capability; anything it does not declare is ignored."""
    depends_on: list[int] = Field(default_factory=list)
    """Indices of earlier steps whose results this one needs."""


class Plan(BaseModel):
    """An execution plan: steps in order, ending with `respond` (or `clarify`)."""

    steps: list[PlannedStep] = Field(min_length=1, max_length=20)


def step_id(capability: str, inputs: Mapping[str, Any]) -> str:
    """The same capability with the same normalized inputs gets the same id (loop detection)."""
    normalized = json.dumps(
        {k: v.strip().lower() if isinstance(v, str) else v for k, v in sorted(inputs.items())}, sort_keys=True
    )
    return f"{capability}:{hashlib.sha1(normalized.encode()).hexdigest()[:8]}"


def deterministic_plan(
    registry: Registry,
    selected: Sequence[str],
    context: Mapping[str, Any],
    ranking: Sequence[str] = (),
) -> Plan:
    """Selected capabilities plus the providers of what they require, in dependency order.

    When several capabilities provide a required key and none of them was selected, the one the
    classifier ranked highest for this task (`ranking`, best first) is used; registry order breaks ties.
    """
    rank = {name: i for i, name in enumerate(ranking)}
    if not selected:
        return Plan(steps=[PlannedStep(capability="clarify")])
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for key in registry[name].requires:
            if key in context and not registry[name].side_effects:
                continue
            providers = [p for p in registry.providers(key) if registry.allowed(p)]
            if not providers:
                raise ReplanningError(f"{name} needs {key!r} and no allowed capability provides it")
            preferred = [p for p in providers if p in selected] or sorted(
                providers, key=lambda p: rank.get(p, len(rank))
            )
            add(preferred[0])
        order.append(name)

    for name in selected:
        add(name)
    steps = [PlannedStep(capability=name) for name in order]
    steps.append(PlannedStep(capability="respond", depends_on=list(range(len(steps)))))
    return Plan(steps=steps)


def untrusted_inputs(registry: Registry, plan: Plan) -> tuple[Plan, list[str]]:
    """A model's plan without the arguments a model must not set, and a note for each step changed.

    `query` is the task as the user's turn gave it; a value a capability provides (`customer_id`,
    `refund_candidate`) comes from that capability or an earlier turn. A model that could set them
    could point a refund at another customer's account, or rewrite what the user asked.
    """
    provided = {key for info in registry for key in info.provides} | {"query"}
    notes: list[str] = []
    steps = []
    for proposed in plan.steps:
        dropped = sorted(k for k in proposed.inputs if k in provided)
        if dropped:
            notes.append(
                f"{proposed.capability}: ignored the plan's {dropped}: the task and values capabilities "
                "provide are not taken from a model"
            )
            proposed = proposed.model_copy(
                update={"inputs": {k: v for k, v in proposed.inputs.items() if k not in provided}}
            )
        steps.append(proposed)
    return Plan(steps=steps), notes


def validate_plan(
    registry: Registry, plan: Plan, context: Mapping[str, Any]
) -> tuple[list[PlanStep], list[str]]:
    """Check a plan against the registry and policy; fix what can be fixed, raise on the rest.

    Unknown capability -> RECLASSIFICATION; a required input nobody provides -> REPLANNING;
    a capability outside the allowlist -> route_denied. Fixed with a note: terminal steps
    before the end, duplicate steps, dependencies on later steps, no terminal step at the end,
    a side-effect step without this turn's providers of what it requires (they are added).
    A step depends on an earlier step that provides what it requires, even when the context has
    a value from an earlier turn: this turn's value is the one it must use.
    """
    notes: list[str] = []
    steps: list[PlanStep] = []
    index_map: dict[int, str] = {}
    seen: set[str] = set()
    terminal: str | None = None
    for i, proposed in enumerate(plan.steps):
        name = proposed.capability
        if name not in registry:
            err = ReclassificationError(f"the plan names unknown capability {name!r}")
            raise err
        if not registry.allowed(name):
            raise PolicyDenied(f"capability {name!r} is not in the allowlist")
        info = registry[name]
        if info.terminal:
            if i != len(plan.steps) - 1:
                notes.append(f"dropped {name} at step {i}: only the last step may end the plan")
            else:
                terminal = name
            continue
        inputs = {k: v for k, v in proposed.inputs.items() if k in info.instance.Inputs.model_fields}
        if dropped := sorted(set(proposed.inputs) - set(inputs)):
            notes.append(f"{name}: ignored unknown inputs {dropped}")
        sid = step_id(name, inputs)
        if sid in seen:
            notes.append(f"dropped a repeat of {name} with the same inputs")
            index_map[i] = sid
            continue
        deps = []
        for d in proposed.depends_on:
            if d in index_map:
                deps.append(index_map[d])
            else:
                notes.append(f"{name}: dropped dependency on step {d}, which is not an earlier step")
        for key in info.requires:
            providers = [s["id"] for s in steps if key in registry[s["capability"]].provides]
            if not providers and info.side_effects:
                providers = _add_provider(registry, key, name, steps, seen, context, notes)
            elif not providers and (key in context or key in inputs):
                continue
            if not providers:
                raise ReplanningError(f"step {i} ({name}) needs {key!r}, which no earlier step provides")
            deps += [p for p in providers if p not in deps]
        seen.add(sid)
        index_map[i] = sid
        steps.append(PlanStep(id=sid, capability=name, inputs=dict(inputs), depends_on=deps))
    steps = business_rules(registry, steps, context, notes)
    if terminal is None:
        terminal = "respond" if steps else "clarify"
        notes.append(f"appended {terminal}: a plan must end in respond or clarify")
    steps.append(
        PlanStep(id=f"{terminal}:final", capability=terminal, inputs={}, depends_on=[s["id"] for s in steps])
    )
    return steps, notes


def business_rules(
    registry: Registry, steps: list[PlanStep], context: Mapping[str, Any], notes: list[str]
) -> list[PlanStep]:
    """The plan-level business rules, checked before any step runs.

    A capability's steps beyond its `max_per_plan` (1 for side effects unless the registry says
    otherwise) are dropped with a note, and so are the steps that depend on them. A numeric input
    outside the registry's bounds (from the plan, or a value an earlier turn left) rejects the
    plan: `PlanRejected`, stop_reason `plan_rejected` (a context key that a step of this plan
    provides is not checked here: it is looked up again). What needs this turn's lookups
    (`require`, `same`) is checked by the router just before the step runs.
    """
    kept: list[PlanStep] = []
    dropped: set[str] = set()
    count: dict[str, int] = {}
    # What this plan's steps will provide is looked up again: an earlier turn's value says nothing.
    provided = {key for step in steps for key in registry[step["capability"]].provides}
    known = {k: v for k, v in context.items() if k not in provided}
    for step in steps:
        info = registry[step["capability"]]
        rules = info.rules
        if dropped & set(step["depends_on"]):
            dropped.add(step["id"])
            notes.append(f"dropped {step['capability']}: it depends on a step the business rules dropped")
            continue
        limit = rules.max_per_plan if rules is not None and rules.max_per_plan else None
        if limit is None and info.side_effects:
            limit = 1
        count[info.name] = count.get(info.name, 0) + 1
        if limit is not None and count[info.name] > limit:
            dropped.add(step["id"])
            notes.append(
                f"business rule: dropped a {info.name} step; a plan may hold {limit} (ask for the rest separately)"
            )
            continue
        if rules is not None and (broken := rules.violations({**known, **step["inputs"]}, before_run=False)):
            raise PlanRejected(f"the plan breaks {info.name}'s business rules: {'; '.join(broken)}")
        kept.append(step)
    return kept


def _add_provider(
    registry: Registry,
    key: str,
    needed_by: str,
    steps: list[PlanStep],
    seen: set[str],
    context: Mapping[str, Any],
    notes: list[str],
) -> list[str]:
    """Append a step providing `key` (and, first, what it requires and nothing earlier provides);
    return its id. For side effects: what they act on is looked up this turn."""
    providers = [p for p in registry.providers(key) if registry.allowed(p)]
    if not providers:
        raise ReplanningError(f"{needed_by} needs {key!r} and no allowed capability provides it")
    name = providers[0]
    deps: list[str] = []
    for required in registry[name].requires:
        earlier = [s["id"] for s in steps if required in registry[s["capability"]].provides]
        if not earlier and required not in context:
            earlier = _add_provider(registry, required, name, steps, seen, context, notes)
        deps += [d for d in earlier if d not in deps]
    sid = step_id(name, {})
    if sid not in seen:
        seen.add(sid)
        steps.append(PlanStep(id=sid, capability=name, inputs={}, depends_on=deps))
        notes.append(f"added {name} before {needed_by}: a side effect acts on what this turn looked up")
    return [sid]


def reroutes(state: AgentState) -> list[dict[str, Any]]:
    """The "not mine" suggestions (`NotMine`) of the steps whose failures sent the turn back to
    the classifier: `{"from", "to", "reason"}` each."""
    results = state.get("execution_results") or {}
    found = []
    for err in state.get("control_errors") or []:
        result = results.get(err["step_id"] or "")
        reroute = result["output"].get("reroute") if result else None
        if isinstance(reroute, dict) and err["severity"] == "reclassification":
            found.append(reroute)
    return found


def apply_reroutes(
    registry: Registry, scored: list[ScoredCapability], state: AgentState, excluded: Sequence[str]
) -> tuple[list[ScoredCapability], list[str]]:
    """Select the capabilities that specialists named when they said "not mine", with a note each.

    A suggestion is taken when it names a capability the classifier may route to (registered,
    routable, allowed) that this turn has not ruled out; otherwise the note says why it was not,
    and the classifier's own scores decide. Bounded like every reclassification: the classifier
    counts the pass, and the router stops at `limits.max_reclassifications`.
    """
    notes: list[str] = []
    chosen: set[str] = set()
    routable = {c.name for c in registry.routable if registry.allowed(c.name)}
    for r in reroutes(state):
        to, why = r.get("to"), r.get("reason")
        if not to:
            notes.append(
                f"reroute: {r.get('from')} said the request is not its own ({why}), with no suggestion"
            )
        elif to in excluded or to not in routable:
            reason = (
                "already ruled out this turn" if to in excluded else "not a capability the router can pick"
            )
            notes.append(f"reroute: {r.get('from')} suggested {to} ({why}); not taken: {reason}")
        else:
            chosen.add(to)
            notes.append(f"reroute: {r.get('from')} handed the request to {to} ({why})")
    if not chosen:
        return scored, notes
    out = [c if c["name"] not in chosen else {**c, "selected": True} for c in scored]
    known = {c["name"] for c in out}
    out += [
        ScoredCapability(name=n, score=1.0, selected=True, source="scorer") for n in sorted(chosen - known)
    ]
    return out, notes  # type: ignore[return-value]
