"""Intake: the first node of every run. A new user message starts a new turn: per-turn state resets."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.types import Overwrite

from graph.state import AgentState
from nodes.base import Deps, dual


def make_intake(deps: Deps) -> RunnableLambda:
    async def intake(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        turn = sum(isinstance(m, HumanMessage) for m in state.get("messages", []))
        if turn == 0 or turn == state.get("task_turn", 0):
            # Nothing new to answer: a finished turn is not run again; the router sends the
            # run to the error node with an explanation.
            return {
                "control_errors": [
                    {
                        "node": "intake",
                        "severity": "critical",
                        "message": "there is no new user message to answer",
                        "step_id": None,
                        "capability": None,
                        "attempt": 1,
                    }
                ],
                "control_stop_reason": None,
            }
        return {
            "task_previous": state.get("task_current"),
            "task_current": None,
            "task_depends_on_history": False,
            "task_turn": turn,
            "planning_capabilities": None,
            "planning_excluded": [],
            "planning_plan": None,
            "planning_notes": [],
            "execution_results": Overwrite({}),
            "control_errors": [],
            "control_reclassifications": 0,
            "control_replans": 0,
            "control_steps": Overwrite(1),  # this node is the turn's first step
            "control_llm_calls": Overwrite(0),
            "control_tokens": Overwrite(0),
            "control_started_at": deps.clock(),
            "control_timings_ms": Overwrite({}),
            "control_stop_reason": None,
            "approval_decisions": Overwrite({}),
        }

    return dual("intake", intake)
