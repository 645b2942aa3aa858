"""The always-active `clarify` capability: asks the user to say more when nothing fits."""

from __future__ import annotations

from typing import Any

from graph.capability import Capability, RunContext


class Clarify(Capability):
    name = "clarify"
    description = "Ask the user a clarifying question when no capability fits the request."
    always_active = True
    terminal = True

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        raise NotImplementedError("clarify is executed by the clarify node, not the step runner")
