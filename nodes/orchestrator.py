"""Orchestrator: turn the selected capabilities into a validated plan.

With a model: one structured plan, validated before any step runs; the model's arguments are
untrusted (`untrusted_inputs`). Offline: the deterministic planner from requires/provides. A
REPLANNING error comes back here with its message as context.

A yes to the thread's open offer (`approval_offer`, graph/context/offers.py: a side effect the user
only asked about, or one a capability's result suggested, in the last few turns) accepts it: this
turn's task becomes the offered task and the plan is the offered capabilities (deterministic, no
model), which the router then treats as explicitly requested. The approval policy still applies.
"""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage, SystemMessage

from graph.config.registry import Registry
from graph.context.offers import accepts, asked_last_turn, open_offer, verbs_of
from graph.intent import confirmation
from graph.router import latest_request
from graph.state import AgentState, SideEffectOffer
from nodes.approval import parse_words
from nodes.base import NodeCall, Update
from nodes.planning import Plan, deterministic_plan, untrusted_inputs, validate_plan

SYSTEM = (
    "You plan how specialist capabilities answer a user's task. Use only the capabilities listed. "
    "Give each step the inputs it needs; steps that need another step's result list that step's index "
    "in depends_on; independent steps must not depend on each other (they run in parallel). "
    "End the plan with the 'respond' capability."
)


def describe(registry: Registry, names: list[str]) -> str:
    lines = []
    for name in names:
        info = registry[name]
        fields = [f for f in info.instance.Inputs.model_fields if f != "query"]
        lines.append(
            f"- {name}: {info.description} inputs={fields} provides={list(info.provides)} "
            f"requires={list(info.requires)}"
            + (
                f" guide: {info.orchestrator_guide.instructions}"
                if info.orchestrator_guide.instructions
                else ""
            )
        )
    return "\n".join(lines)


def accepted_offer(state: AgentState, registry: Registry | None = None) -> SideEffectOffer | None:
    """The thread's open offer (`open_offer`), when this turn's message says yes to it (`accepts`;
    the question the last turn asked also takes a plain yes in the approval node's words, `parse_words`)."""
    offer = open_offer(state)
    if offer is None:
        return None
    said = latest_request(state.get("messages") or [])
    plain = parse_words(said) is True or confirmation(said) is True  # "sure thing, please proceed"
    if plain and asked_last_turn(state, offer):
        return offer
    verbs = verbs_of(registry, offer) if registry is not None else []
    return offer if accepts(offer, said, verbs, asked=asked_last_turn(state, offer)) else None


async def orchestrator(state: AgentState, call: NodeCall) -> Update:
    registry = call.deps.registry
    context = state.get("execution_context") or {}
    if (offer := accepted_offer(state, registry)) is not None:
        names = [n for n in offer["capabilities"] if n in registry and registry.allowed(n)]
        steps, notes = validate_plan(registry, deterministic_plan(registry, names, context), context)
        results = state.get("execution_results") or {}
        return {
            "task_current": offer["task"],
            "approval_offer": {**offer, "accepted_turn": state.get("task_turn", 0)},
            "planning_plan": steps,
            "planning_notes": [
                *(state.get("planning_notes") or []),
                *notes,
                f"side_effect_confirmed: the user said yes to the offer of turn {offer['turn']} ({offer['question']})",
            ],
            "execution_results": {sid: None for sid, r in results.items() if r["status"] == "failed"},
        }
    selected = [
        c["name"]
        for c in state.get("planning_capabilities") or []
        if c["selected"] and c["source"] != "always"
    ]
    update: Update = {}
    failures = [e for e in state.get("control_errors") or [] if e["severity"] == "replanning"]
    if failures:
        call.keep["control_replans"] = state.get("control_replans", 0) + 1
    mode = registry.spec.orchestrator.mode
    use_llm = mode == "llm" or (mode == "auto" and call.llm.available("orchestrator"))
    # `auto`: a model that keeps failing hands over to the deterministic planner, with a note.
    # `llm`: the plan must come from the model; failures are retried until max_retries.
    note = call.llm.offline_note("orchestrator") if mode == "auto" and selected else None
    plan: Plan | None = None
    if use_llm and selected:
        names = sorted(
            {*selected, *(p for n in selected for k in registry[n].requires for p in registry.providers(k))}
        )
        prompt = (
            f"Task: {state.get('task_current')}\n"
            f"Known context keys: {json.dumps(sorted(context))}\n"
            f"Capabilities:\n{describe(registry, names)}\n- respond: answers the user (always last)"
            + "".join(f"\nThe previous plan was rejected: {e['message']}" for e in failures)
        )
        try:
            plan = await call.llm.structured(
                "orchestrator", [SystemMessage(content=SYSTEM), HumanMessage(content=prompt)], Plan
            )
        except Exception as exc:
            last = call.attempt > call.deps.limits.max_retries
            note = call.llm.fallback_note("orchestrator", exc, last_attempt=last) if mode == "auto" else None
            if note is None:
                raise
    untrusted: list[str] = []
    if plan is not None:
        plan, untrusted = untrusted_inputs(registry, plan)
    else:
        ranking = [c["name"] for c in state.get("planning_capabilities") or []]  # best first
        plan = deterministic_plan(registry, selected, context, ranking)
    steps, notes = validate_plan(registry, plan, context)
    notes = [*untrusted, *notes]
    if note:
        notes = [*notes, note]
    results = state.get("execution_results") or {}
    update["planning_plan"] = steps
    update["planning_notes"] = [*(state.get("planning_notes") or []), *notes]
    # Failed attempts of an earlier plan are history now; successful ones are reused by step id.
    update["execution_results"] = {sid: None for sid, r in results.items() if r["status"] == "failed"}
    return update
