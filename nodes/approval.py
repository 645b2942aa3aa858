"""Approval: pauses the run with `interrupt()` until a human approves or denies pending steps.

Side effects happen after approval, never before: the runner executes an approved step only, and a
denied step is recorded as `denied` without running. Resume with `Command(resume=...)`: `True` /
`False` (or "approve" / "deny") for all pending steps, or a mapping of step id to decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from graph.progress import emit
from graph.state import AgentState, StepResult
from nodes.base import NodeCall, Update

_YES = {"approve", "approved", "yes", "y", "true", "ok"}
_NO = {"deny", "denied", "no", "n", "false", "reject"}


def parse_decision(value: Any, step_id: str) -> bool:
    """A human's answer as a bool; anything unclear counts as a denial (fail safe)."""
    if isinstance(value, Mapping):
        if step_id in value:
            return parse_decision(value[step_id], step_id)
        if "approved" in value:
            return parse_decision(value["approved"], step_id)
        if "decision" in value:
            return parse_decision(value["decision"], step_id)
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _YES
    return False


async def approval(state: AgentState, call: NodeCall) -> Update:
    router = call.deps.router
    pending = router.pending_approvals(state, router.ready_steps(state))
    if not pending:
        return {}
    payload = {
        "type": "approval",
        "task": state.get("task_current"),
        "steps": [
            {"step_id": s["id"], "capability": s["capability"], "inputs": s["inputs"], "question": q}
            for s, q in pending
        ],
        "resume_with": "true/false, 'approve'/'deny', or {step_id: bool}",
    }
    try:
        answer = interrupt(payload)
    except GraphInterrupt:
        # Only a real pause is announced. On resume LangGraph runs this node again from the start and
        # interrupt() returns the human's answer instead of raising: nobody is waiting any more.
        emit("approval_waiting", steps=[s["id"] for s, _ in pending])
        raise
    decisions = {s["id"]: parse_decision(answer, s["id"]) for s, _ in pending}
    denied = {
        sid: StepResult(
            step_id=sid,
            capability=s["capability"],
            status="denied",
            output={},
            error="denied by a human",
            severity=None,
            stop_reason=None,
            attempts=0,
            duration_ms=0.0,
        )
        for s, _ in pending
        if not decisions[(sid := s["id"])]
    }
    return {"approval_decisions": decisions, "execution_results": denied}
