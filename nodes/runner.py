"""The capability runner: executes one plan step (a `Send` task), behind the policy boundary.

It never raises into the graph: the outcome, good or bad, is a `StepResult` under the step's id,
and the join node turns failures into errors for the router. Parallel steps write distinct keys.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda

from graph.capability.base import RunContext
from graph.errors import ErrorSeverity, PolicyDenied, describe
from graph.progress import emit
from graph.retry import backoff
from graph.state import StepPayload, StepResult
from nodes.base import Deps, dual


def make_runner(deps: Deps) -> RunnableLambda:
    async def execute(payload: StepPayload, config: RunnableConfig) -> dict[str, Any]:
        step, attempt = payload["step"], payload["attempt"]
        info = deps.registry[step["capability"]]
        await backoff(info.retry, attempt, deps.sleep, target=info.name)
        emit("capability_started", capability=info.name, step_id=step["id"], attempt=attempt)
        started = time.perf_counter()
        output: dict[str, Any] = {}
        error: str | None = None
        severity: ErrorSeverity | None = None
        stop: str | None = None
        status = "ok"
        try:
            if not deps.registry.allowed(info.name):
                raise PolicyDenied(f"capability {info.name!r} is not in the allowlist")
            if payload["approved"] is False:
                status, error = "denied", "denied by a human"
            elif payload["blocked_by"]:
                status, error = "skipped", f"skipped: {', '.join(payload['blocked_by'])} did not succeed"
            else:
                inputs = info.instance.parse_inputs(payload["task"], step["inputs"], payload["context"])
                ctx = RunContext(
                    task=payload["task"],
                    context=payload["context"],
                    step_id=step["id"],
                    thread_id=(config.get("configurable") or {}).get("thread_id"),
                    approved=payload["approved"],
                    data_dir=deps.settings.data_dir,
                )
                output = await asyncio.wait_for(info.instance.execute(inputs, ctx), timeout=info.timeout)
        except Exception as exc:
            status = "failed"
            error = describe(exc)
            if isinstance(exc, TimeoutError):
                error = f"TimeoutError: no result within {info.timeout:g} s"
            severity = info.instance.classify_error(exc)
            stop = getattr(exc, "stop_reason", None)
        result = StepResult(
            step_id=step["id"],
            capability=info.name,
            status=status,  # type: ignore[typeddict-item]
            output=output,
            error=error,
            severity=severity.value if severity else None,
            stop_reason=stop,
            attempts=attempt,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        emit(
            "capability_finished",
            capability=info.name,
            step_id=step["id"],
            status=status,
            duration_ms=result["duration_ms"],
            error=error,
        )
        update: dict[str, Any] = {
            "execution_results": {step["id"]: result},
            "control_steps": 1,
            "control_timings_ms": {"capabilities": (time.perf_counter() - started) * 1000},
        }
        if status == "ok":
            update["execution_context"] = {k: output[k] for k in info.provides if k in output}
        return update

    return dual("execute", execute)
