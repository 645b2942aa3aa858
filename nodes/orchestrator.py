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
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

from langchain_core.messages import HumanMessage, SystemMessage

from graph.config.registry import Registry
from graph.context.offers import accepts, asked_last_turn, declined, open_offer, verbs_of
from graph.intent import confirmation, side_effect_intent, turns_down
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


class Declined(NamedTuple):
    """A no or a delay to a side effect the conversation put on the table (`declined_offer`)."""

    kind: Literal["hold", "withdraw"]
    offer: SideEffectOffer | None
    """The open offer it answers; None for a question about the action that made no offer."""
    verbs: list[str]


DECLINED_NOTE = "side_effect_declined"
"""The planning note of a turn whose message declined (or put off) a side effect: the clarify node
answers it with what was not done (`acknowledgment`)."""


def _asked_about(state: AgentState, registry: Registry) -> list[str]:
    """The action words of the side effects the previous request asked about without asking for them
    ("is this month's renewal refundable?": the intent check says confirm; "could it be refunded?": a
    question with the action in any form), when the previous turn
    ran no such capability (the topic it left names none)."""
    humans = [m for m in state.get("messages") or [] if isinstance(m, HumanMessage)]
    if len(humans) < 2:
        return []
    turn = int(state.get("task_turn") or 0)
    ran = {e["capability"] for e in state.get("context_topic") or [] if int(e.get("turn", 0)) == turn - 1}
    previous = humans[-2].content if isinstance(humans[-2].content, str) else ""
    verbs: list[str] = []
    for info in registry.capabilities.values():
        if not info.side_effects or not info.action_verbs or info.name in ran:
            continue
        forms = "|".join(re.escape(v) for v in info.action_verbs)
        if side_effect_intent(previous, info.action_verbs).kind == "confirm" or (
            # "could this month's renewal be refunded - could it?": a question about the action in
            # any of its forms, negating nothing
            "?" in previous
            and re.search(rf"\b(?:{forms})(?:s|es|ed|d|ing|able)?\b", previous, re.I)
            and not turns_down(previous, info.action_verbs)
        ):
            verbs += info.action_verbs
    return verbs


def declined_offer(state: AgentState, registry: Registry | None = None) -> Declined | None:
    """This turn's message as a no or a delay (`offers.declined`) to the thread's open offer, or to
    the side effect the previous request asked about when it made no offer ("could it be refunded?"
    that ended in a question back): the turn then runs nothing and says what was not done. None when
    the message is anything else (a yes, a question, a request of its own, a correction)."""
    if registry is None:
        return None
    said = latest_request(state.get("messages") or [])
    offer = open_offer(state)
    if offer is not None:
        verbs = verbs_of(registry, offer)
    elif not (verbs := _asked_about(state, registry)):
        return None
    kind = declined(said, verbs)
    return Declined(kind, offer, verbs) if kind is not None else None


def _not_done(question: str, verbs: Sequence[str]) -> str | None:
    """What an offer's question would have done, as not done: "I can refund $80.00 to Aisha Bello
    (C-1007) for charge CH-2063 of 01 Dec 2026." (a suggestion) or "... unless you approve. Refund
    $80.00 to Aisha Bello (C-1007) for charge CH-2063 of 01 Dec 2026? Policy: ..." (a confirmation
    question) -> "I did not refund $80.00 to Aisha Bello (C-1007) for charge CH-2063 of 01 Dec 2026".
    The verb opens the sentence or follows "I can"; a verb quoted inside the question's reason ("the
    refund window") is not what it would do."""
    end = r"(.*?)(?:\?|\.(?=\s|$)|$)"
    for verb in sorted(verbs, key=len, reverse=True):
        word = re.escape(verb)
        for pattern in (rf"\bI\s+can\s+({word})\b{end}", rf"(?:^|(?<=[.?!:]\s))({word})\b{end}"):
            m = re.search(pattern, question, re.I)
            if m and m.group(2).strip():
                return f"I did not {m.group(1).lower()}{m.group(2).rstrip()}"
    return None


def acknowledgment(found: Declined) -> str:
    """The answer to a no or a delay: what was not done, that nothing changed, and (for a delay) how
    to have it done later. Never the action's past participle ("refunded"): nothing happened."""
    verb = found.verbs[0] if found.verbs else "do"
    what = (
        _not_done(found.offer.get("question") or "", found.verbs) if found.offer is not None else None
    ) or f"I did not {verb} anything"
    if found.kind == "hold":
        later = " When you are ready, say “go ahead” and I will do it." if found.offer is not None else ""
        return f"OK, I'll wait: {what}, and nothing was changed.{later}"
    return f"OK, I won't go ahead: {what}, and nothing was changed."


async def orchestrator(state: AgentState, call: NodeCall) -> Update:
    registry = call.deps.registry
    context = state.get("execution_context") or {}
    if (no := declined_offer(state, registry)) is not None:
        # "no, leave it", "hold on, checking with her first": nothing runs this turn; the clarify node
        # says what was not done. A delay keeps the offer open (graph/context/offers.py `after_turn`).
        steps, notes = validate_plan(registry, deterministic_plan(registry, [], context), context)
        what = no.offer["question"] if no.offer is not None else "the action the last request asked about"
        results = state.get("execution_results") or {}
        return {
            "planning_plan": steps,
            "planning_notes": [
                *(state.get("planning_notes") or []),
                *notes,
                f"{DECLINED_NOTE} ({no.kind}): the user said {'not yet' if no.kind == 'hold' else 'no'} "
                f"to {what}",
            ],
            "execution_results": {sid: None for sid, r in results.items() if r["status"] == "failed"},
        }
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
