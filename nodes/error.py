"""Error: the run stops; say what happened, what was done, and the stop_reason.

A request intake refused (empty: `clarify`; too long: `input_too_long`) is answered with intake's
one line alone: nothing was attempted, so there is nothing to explain or report.

The answer quotes error messages and capability outputs, so it is redacted with the settings'
redactor (graph/redact.py): a key a failure or a capability echoed is not repeated to the user.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage

from graph.state import AgentState
from nodes.base import NodeCall, Update
from nodes.respond import ordered_results, template_answer

_EXPLAIN = {
    "max_retries": "a step kept failing after every retry",
    "max_reclassifications": "the request kept being routed to capabilities that could not handle it",
    "max_replans": "no valid plan could be made",
    "max_steps": "the turn used up its step budget",
    "max_seconds": "the turn ran out of time",
    "max_llm_calls": "the turn used up its model-call budget",
    "route_denied": "the plan asked for a capability the policy does not allow",
    "invalid_plan": "the plan could not be executed",
    "plan_rejected": "the plan broke a business rule, so nothing was done",
    "overloaded": "every instance of a specialist was busy and the wait for one ran out",
    "error": "an unexpected error occurred",
}


_REFUSED = {"clarify", "input_too_long"}
"""Stop reasons of a request intake refused (empty, too long): its message is the whole answer."""


async def error(state: AgentState, call: NodeCall) -> Update:
    decision = call.deps.router.decide(state)
    reason = decision.stop_reason or "error"
    redact = call.deps.settings.redactor().redact
    if reason in _REFUSED:
        return {
            "messages": [
                AIMessage(content=redact(decision.why), name="clarify" if reason == "clarify" else "error")
            ],
            "control_stop_reason": reason,
            "control_errors": state.get("control_errors") or decision.errors,
        }
    lines = [f"I could not finish this request: {_EXPLAIN.get(reason, reason)}."]
    if decision.why:
        lines.append(f"Details: {decision.why}")
    done = [(s, r) for s, r in ordered_results(state) if r["status"] == "ok"]
    if done:
        lines.append("What I did find:\n" + template_answer(call.deps.registry, done))
    lines.append(f"(stop_reason: {reason})")
    return {
        "messages": [AIMessage(content=redact("\n".join(lines)), name="error")],
        "control_stop_reason": reason,
        "control_errors": state.get("control_errors") or decision.errors,
    }
