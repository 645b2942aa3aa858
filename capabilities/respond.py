"""The always-active `respond` capability: ends every answered plan (run by the respond node)."""

from __future__ import annotations

from typing import Any

from graph.capability import Capability, RunContext


class Respond(Capability):
    name = "respond"
    description = "Answer the user with what the other capabilities found."
    always_active = True
    terminal = True

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        raise NotImplementedError("respond is executed by the respond node, not the step runner")
