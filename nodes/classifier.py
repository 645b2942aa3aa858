"""Classifier: which capabilities does the task need?

Always-active capabilities are added without a model call. The others are scored:
- `embedding`: the offline few-shot scorer over the guide examples (graph/classifier/scorer.py);
- `llm`: ONE structured call that judges all candidates together;
- `cascade`: the scorer decides where it is confident; one LLM call judges only the uncertain ones.
A capability is selected when its confidence reaches the threshold; when none does, the plan is
`clarify` (never a guess). After a RECLASSIFICATION error the failing capability is excluded.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.classifier import FewShotScorer, near_threshold
from graph.config.registry import CapabilityInfo, Registry
from graph.config.schema import ClassifierMode
from graph.context.turns import pin
from graph.models import LLMGateway, add_notes
from graph.state import AgentState, ScoredCapability
from nodes.base import NodeCall, Update
from nodes.planning import apply_reroutes


class CapabilityJudgement(BaseModel):
    name: str = Field(max_length=100)
    """A candidate's name, exactly as listed."""
    relevant: bool
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(default="", max_length=500)


class Classification(BaseModel):
    """The model's judgement of every candidate capability in one answer."""

    judgements: list[CapabilityJudgement] = Field(max_length=200)


SYSTEM = (
    "You route a user's task to specialist capabilities. For EVERY candidate below, judge whether the "
    "task needs it (a task may need several, or none). Give a confidence in [0, 1] and a short reason. "
    "Use the examples: result true means the capability was needed, false that it was not."
)


def resolve_mode(call: NodeCall) -> ClassifierMode:
    mode = call.deps.registry.spec.classifier.mode
    if mode == "auto":
        return "cascade" if call.llm.available("classifier") else "embedding"
    return mode


def describe_candidates(candidates: Sequence[CapabilityInfo], examples_per_capability: int = 6) -> str:
    lines = []
    for cap in candidates:
        guide = cap.classifier_guide
        lines.append(f"- {cap.name}: {cap.description}")
        if guide.instructions:
            lines.append(f"  when: {guide.instructions}")
        for ex in guide.examples[:examples_per_capability]:
            lines.append(f"  example: {ex.query!r} -> {str(ex.result).lower()} ({ex.reason})")
    return "\n".join(lines)


async def judge(
    llm: LLMGateway, task: str, candidates: Sequence[CapabilityInfo], context: str
) -> dict[str, float]:
    """One model call for all candidates; names the model made up are ignored (untrusted output)."""
    prompt = f"Task: {task}\n{context}\nCandidates:\n{describe_candidates(candidates)}"
    result = await llm.structured(
        "classifier", [SystemMessage(content=SYSTEM), HumanMessage(content=prompt)], Classification
    )
    names = {c.name for c in candidates}
    scores = {name: 0.0 for name in names}
    for j in result.judgements:
        if j.name in names:
            scores[j.name] = j.confidence if j.relevant else min(j.confidence, 1.0 - j.confidence)
    return scores


def implied(registry: Registry, chosen: set[str], unasked: set[str]) -> set[str]:
    """Selected capabilities that only stand for an input of another selected one: not asked for
    (`Score.asked`) and providing what an asked one requires. "I was charged for a seat I never
    used, please refund it" names a charge, but asks for the refund; the planner still runs the
    lookup the refund requires (`requires`/`provides`), the classifier need not select it."""
    asked = chosen - unasked
    needed = {key for name in asked for key in registry.capabilities[name].requires}
    return {n for n in chosen & unasked if needed & set(registry.capabilities[n].provides)}


async def classify(
    task: str,
    registry: Registry,
    scorer: FewShotScorer,
    llm: LLMGateway,
    *,
    mode: ClassifierMode,
    excluded: Sequence[str] = (),
    context: str = "",
) -> list[ScoredCapability]:
    """Score and select capabilities for a task: the classifier node's work, reusable by `routegraph eval`."""
    settings = registry.spec.classifier
    candidates = [c for c in registry.routable if c.name not in excluded and registry.allowed(c.name)]
    source: dict[str, str] = {}
    scores: dict[str, float] = {}
    eligible: set[str] | None = None  # None: any capability above its threshold
    secondary: set[str] = set()  # named clearly by a clause of its own (FewShotScorer.score)
    unasked: set[str] = set()  # best match of statements only, not of a request
    if mode == "llm" and candidates:
        scores = await judge(llm, task, candidates, context)
        source = dict.fromkeys(scores, "llm")
    elif candidates:
        # Encoding (and, the first time, loading and fine-tuning the encoder) is CPU and file work:
        # off the event loop, which stays free for other runs (LangGraph server).
        scored = await asyncio.to_thread(scorer.score, task, [c.name for c in candidates])
        scores = {s.name: s.confidence for s in scored}
        if settings.selection == "per_clause":
            eligible = {s.name for s in scored if s.wins}
            secondary = {s.name for s in scored if s.secondary}
            unasked = {s.name for s in scored if not s.asked}
        source = dict.fromkeys(scores, "scorer")
        if mode == "cascade":
            band = settings.cascade_band
            uncertain = [
                c
                for c in candidates
                if near_threshold(scores[c.name], scorer.threshold_for(c.name, settings.threshold), band)
            ]
            if uncertain:
                judged = await judge(llm, task, uncertain, context)
                scores.update(judged)
                source.update(dict.fromkeys(judged, "llm"))

    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    chosen = {
        n
        for n, s in ranked[: settings.max_capabilities]
        if s >= (settings.threshold if source[n] == "llm" else scorer.threshold_for(n, settings.threshold))
        and (eligible is None or source[n] == "llm" or n in eligible)
    }
    if chosen:  # a request's secondary needs, next to what it selected by the thresholds
        extra = [n for n, _ in ranked if n in secondary and n not in chosen and source[n] == "scorer"]
        chosen |= set(extra[: max(0, settings.max_capabilities - len(chosen))])
        chosen -= implied(registry, chosen, unasked)
    if mode != "llm" and candidates:
        for provider, consumers in await asyncio.to_thread(
            _fed_by_who, task, registry, scorer, [c.name for c in candidates], chosen
        ):
            # "list the charges for jane@acme.io": the address made it an account request; the need is
            # billing's, and the planner adds account back as billing's provider.
            chosen.discard(provider)
            chosen |= set(consumers)
            for n in consumers:
                source[n] = "scorer"
    out = [
        ScoredCapability(name=c.name, score=1.0, selected=True, source="always")
        for c in registry
        if c.always_active
    ]
    out += [
        ScoredCapability(name=n, score=round(s, 4), selected=n in chosen, source=source[n])  # type: ignore[typeddict-item]
        for n, s in ranked
    ]
    return out


_WHO = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+|\bC-?\d{3,}\b", re.I)
"""Who the request is about (an e-mail address, a customer id): not what it needs."""


def _fed_by_who(
    task: str, registry: Registry, scorer: FewShotScorer, names: Sequence[str], chosen: set[str]
) -> list[tuple[str, list[str]]]:
    """Selected providers that only the identifiers chose: the request without its identifiers does
    not select them, but selects capabilities they provide for (registry `provides`/`requires`)."""
    rest = " ".join(_WHO.sub(" ", task).split())
    if rest == " ".join(task.split()) or not re.search(r"[A-Za-z]{3,}", rest):
        return []
    default = registry.spec.classifier.threshold
    won = {
        s.name
        for s in scorer.score(rest, list(names))
        if s.wins and s.confidence >= scorer.threshold_for(s.name, default)
    }
    out = []
    for provider in sorted(chosen - won):
        if provider not in registry:
            continue
        given = set(registry[provider].provides)
        consumers = [n for n in sorted(won - chosen) if n in registry and given & set(registry[n].requires)]
        if consumers:
            out.append((provider, consumers))
    return out


async def classifier(state: AgentState, call: NodeCall) -> Update:
    excluded = list(state.get("planning_excluded") or [])
    failures = [e for e in state.get("control_errors") or [] if e["severity"] == "reclassification"]
    if failures:
        call.keep["control_reclassifications"] = state.get("control_reclassifications", 0) + 1
        excluded += [e["capability"] for e in failures if e["capability"] and e["capability"] not in excluded]
        call.keep["planning_excluded"] = excluded
    scorer = await asyncio.to_thread(lambda: call.deps.scorer)
    mode = resolve_mode(call)
    note = call.llm.offline_note("classifier")
    if note and mode != "embedding":
        mode = "embedding"  # the model is offline: the few-shot scorer decides alone
    task = state.get("task_current") or ""
    context = "".join(f"\nEarlier attempt failed: {e['message']}" for e in failures)
    try:
        selected = await classify(
            task, call.deps.registry, scorer, call.llm, mode=mode, excluded=excluded, context=context
        )
    except Exception as exc:
        # Malformed judgements or no answer: retried by the router until the role goes offline
        # or this is the last attempt; then the embedding scorer classifies alone.
        note = call.llm.fallback_note(
            "classifier", exc, last_attempt=call.attempt > call.deps.limits.max_retries
        )
        if note is None:
            raise
        selected = await classify(
            task, call.deps.registry, scorer, call.llm, mode="embedding", excluded=excluded, context=context
        )
    selected, rerouted = apply_reroutes(call.deps.registry, selected, state, excluded)  # a specialist's say
    follow = state.get("context_followup") or {}
    if follow.get("capabilities") and not failures and not rerouted:
        # A follow-up goes to the capability the conversation is about (graph/context/followups.py).
        selected, _pinned = pin(selected, follow["capabilities"], call.deps.registry, excluded)
    update: Update = {"planning_plan": None, "planning_capabilities": selected}
    if note or rerouted:
        update["planning_notes"] = add_notes(state.get("planning_notes"), note, *rerouted)
    return update
