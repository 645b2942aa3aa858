"""What a finished turn routed to, and the classifier's selection pinned to a follow-up's capabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graph.config.registry import Registry
from graph.state import ScoredCapability


def routed_capabilities(state: Mapping[str, Any], registry: Registry) -> list[str]:
    """The capabilities a turn was routed to: its plan's working steps that the classifier selected
    or that an accepted offer named (providers the planner added on its own do not count); the
    terminal step (`clarify`) when nothing else ran. Empty before a plan exists."""
    plan = state.get("planning_plan") or []
    selected = {
        c["name"]
        for c in state.get("planning_capabilities") or []
        if c["selected"] and c["source"] != "always"
    }
    offer = state.get("approval_offer") or {}
    if offer and offer.get("accepted_turn") == state.get("task_turn"):
        selected |= set(offer.get("capabilities") or [])
    names: list[str] = []
    for step in plan:
        name = step["capability"]
        if name in registry and not registry[name].terminal and name in selected and name not in names:
            names.append(name)
    if not names and plan and plan[-1]["capability"] == "clarify":
        return ["clarify"]
    return names


def pin(
    scored: Sequence[ScoredCapability],
    capabilities: Sequence[str],
    registry: Registry,
    excluded: Sequence[str] = (),
) -> tuple[list[ScoredCapability], list[str]]:
    """`scored` with exactly `capabilities` selected (those the router may pick and this turn has
    not ruled out) next to the always-active ones; unchanged when none of them may be picked."""
    allowed = [
        n
        for n in capabilities
        if n in registry and not registry[n].always_active and registry.allowed(n) and n not in excluded
    ]
    if not allowed:
        return list(scored), []
    out: list[ScoredCapability] = []
    for c in scored:
        if c["source"] == "always":
            out.append(c)
        else:
            out.append(
                ScoredCapability(
                    name=c["name"], score=c["score"], selected=c["name"] in allowed, source=c["source"]
                )
            )
    known = {c["name"] for c in out}
    out += [
        ScoredCapability(name=n, score=1.0, selected=True, source="scorer") for n in allowed if n not in known
    ]
    return out, allowed


__all__ = ["pin", "routed_capabilities"]
