"""Clarify: no capability is confident enough, so ask instead of guessing."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from graph.state import AgentState
from nodes.base import NodeCall, Update
from nodes.orchestrator import DECLINED_NOTE, acknowledgment, declined_offer


async def clarify(state: AgentState, call: NodeCall) -> Update:
    registry = call.deps.registry
    if any(n.startswith(DECLINED_NOTE) for n in state.get("planning_notes") or []) and (
        no := declined_offer(state, registry)
    ):
        # A no or a delay to a side effect on offer (nodes/orchestrator.py): say what was not done.
        return {
            "messages": [AIMessage(content=acknowledgment(no), name="clarify")],
            "control_stop_reason": "clarify",
        }
    offers = "\n".join(f"- {c.name}: {c.description}" for c in registry.routable if registry.allowed(c.name))
    scored = [c for c in state.get("planning_capabilities") or [] if c["source"] != "always"]
    closest = max(scored, key=lambda c: c["score"], default=None)
    hint = ""
    if closest and closest["score"] > 0.2:
        hint = (
            f" The closest match was {closest['name']} (confidence {closest['score']:.2f}),"
            " not enough to act on."
        )
    answer = (
        f"I'm not sure what you need with {state.get('task_current')!r}.{hint}\n"
        f"I can help with:\n{offers}\nCould you say a bit more about what you want?"
    )
    return {"messages": [AIMessage(content=answer, name="clarify")], "control_stop_reason": "clarify"}
