"""The fallback chain at its edges: a fallback outside the allowlist never runs (the next in the
chain is tried), a fallback whose answer is not JSON is passed over, a failure that is not the
service's (a bug, CRITICAL) goes to no fallback, and a fallback gets only what is left of the
turn's time. Through the graph, with the capabilities of tests/test_reroute_fallback.py.

Written for the mutation check (scripts/mutants fallback): each test pins a branch that a flipped
condition would move."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from graph.capability import Capability, RunContext
from tests.conftest import ask, guide, registry_with
from tests.test_reroute_fallback import almanac, down

HERE = "tests.test_mutants_fallback"


class Garbled(Capability):
    """Answers with something that is not JSON (a datetime)."""

    name = "garbled"
    description = "Seasonal records."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {"summary": "records", "when": datetime(2026, 1, 1)}


class Slow(Capability):
    """Answers after `options.delay` seconds."""

    name = "slow"
    description = "Long-range forecasts."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        await asyncio.sleep(float(self.options.get("delay", 0)))
        return {"summary": "a long-range forecast"}


class Buggy(Capability):
    """Fails with a bug (CRITICAL), not a service failure."""

    name = "buggy"
    description = "Look up the weather."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        raise KeyError("forecast")


def other(name: str, cls: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "class": f"{HERE}:{cls}",
        "classifier_guide": guide(f"{name} questions about the climate"),
        **extra,
    }


def answered_by(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["capability"], r["status"]) for r in state["execution_results"].values()]


def test_a_fallback_outside_the_allowlist_never_runs_and_the_next_one_answers(make_graph: Any) -> None:
    allowed = ["respond", "clarify", "down", "almanac"]
    reg = registry_with(
        down(fallback=["slow", "almanac"], options={"breaker_open": True}),
        other("slow", "Slow"),
        almanac(),
        policy={"allowed_capabilities": allowed},
    )
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert answered_by(state) == [("almanac", "ok")]
    only = registry_with(
        down(fallback=["slow"], options={"breaker_open": True}, retry={"max_attempts": 1}),
        other("slow", "Slow"),
        policy={"allowed_capabilities": ["respond", "clarify", "down"]},
    )
    state = ask(make_graph(only), "what is the weather in Oslo")
    assert answered_by(state) == [("down", "failed")]
    assert "long-range" not in str(state["messages"][-1].content)


def test_a_fallback_answer_that_is_not_json_is_passed_over(make_graph: Any) -> None:
    reg = registry_with(
        down(fallback=["garbled", "almanac"], options={"breaker_open": True}),
        other("garbled", "Garbled"),
        almanac(),
    )
    assert answered_by(ask(make_graph(reg), "what is the weather in Oslo")) == [("almanac", "ok")]


def test_a_bug_goes_to_no_fallback(make_graph: Any) -> None:
    buggy = {"name": "buggy", "class": f"{HERE}:Buggy", "fallback": ["almanac"]}
    reg = registry_with({**down(), **buggy}, almanac())
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert answered_by(state) == [("buggy", "failed")]
    assert state["control_stop_reason"] != "success"


def test_a_fallback_gets_only_what_is_left_of_the_turn(make_graph: Any) -> None:
    reg = registry_with(
        down(fallback=["slow"], options={"breaker_open": True}, retry={"max_attempts": 1}),
        other("slow", "Slow", options={"delay": 20}, timeout=30),
        limits={"max_seconds": 1.5, "retry_initial_delay": 0.0, "retry_max_delay": 0.0},
    )
    started = time.monotonic()
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert time.monotonic() - started < 8  # not the fallback's own 20 s (nor its 30 s timeout)
    assert ("slow", "ok") not in answered_by(state)
