"""Join: runs once after a batch of parallel steps and turns their failures into router errors."""

from __future__ import annotations

from graph.errors import ErrorRecord
from graph.state import AgentState
from nodes.base import NodeCall, Update


async def join(state: AgentState, call: NodeCall) -> Update:
    plan_ids = {s["id"] for s in state.get("planning_plan") or []}
    errors = [
        ErrorRecord(
            node="execute",
            severity=r["severity"] or "critical",
            message=f"{r['capability']}: {r['error'] or 'failed'}",
            step_id=r["step_id"],
            capability=r["capability"],
            attempt=r["attempts"],
            stop_reason=r.get("stop_reason"),
        )
        for r in (state.get("execution_results") or {}).values()
        if r["status"] == "failed" and r["step_id"] in plan_ids
    ]
    return {"control_errors": errors}
