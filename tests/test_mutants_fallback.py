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
from types import SimpleNamespace
from typing import Any

from graph.capability import Capability, RunContext
from graph.capability.http import ServiceUnavailable
from graph.config.settings import Settings
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
    """The fallback would answer after 6 s; the turn has 1 s. (Short: a mutant that lets the fallback
    run its course must fail well within mutmut's wall-clock limit, or it is counted as surviving.)"""
    reg = registry_with(
        down(fallback=["slow"], options={"breaker_open": True}, retry={"max_attempts": 1}),
        other("slow", "Slow", options={"delay": 6}, timeout=30),
        limits={"max_seconds": 1, "retry_initial_delay": 0.0, "retry_max_delay": 0.0},
    )
    started = time.monotonic()
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert ("slow", "ok") not in answered_by(state)
    assert time.monotonic() - started < 5.5  # not the fallback's own 6 s (nor its 30 s timeout)


class TurnClock:
    """The graph's clock: real time, plus a jump a capability below makes (`to`: that many seconds
    after the turn's first reading of the clock, when intake took the turn's start)."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.skew = 0.0

    def __call__(self) -> float:
        now = time.time() + self.skew
        if self.start is None:
            self.start = now
        return now

    def to(self, seconds: float) -> None:
        assert self.start is not None
        self.skew = self.start + seconds - time.time()


CLOCK = TurnClock()


class Late(Capability):
    """Its service is down (breaker open), and finding that out took the turn to `options.at` seconds."""

    name = "late"
    description = "Look up the weather."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        CLOCK.to(float(self.options["at"]))
        raise ServiceUnavailable("weather", "HTTP 503", breaker_open=True, breaker={"state": "open"})


class Witness(Capability):
    """A fallback that says what it was given."""

    name = "witness"
    description = "Seasonal averages."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {
            "summary": "seen",
            "task": ctx.task,
            "context": sorted(ctx.context),
            "step_id": ctx.step_id,
            "thread_id": ctx.thread_id,
            "data_dir": str(ctx.data_dir),
        }


def test_a_fallback_still_runs_with_under_a_second_of_the_turn_left(make_graph: Any) -> None:
    CLOCK.start, CLOCK.skew = None, 0.0
    late = {**down(), "class": f"{HERE}:Late", "fallback": ["almanac"], "options": {"at": 9.5}}
    reg = registry_with(late, almanac(), limits={"max_seconds": 10})
    state = ask(make_graph(reg, clock=CLOCK), "what is the weather in Oslo")  # the fallback has 0.5 s
    assert answered_by(state) == [("almanac", "ok")], state["control_stop_reason"]


def test_a_fallback_is_given_the_step_s_task_and_ids(make_graph: Any, settings: Settings) -> None:
    reg = registry_with(
        down(fallback=["witness"], options={"breaker_open": True}), other("witness", "Witness")
    )
    graph = make_graph(reg)
    state = ask(graph, "what is the weather in Oslo", thread="t-7")
    [result] = state["execution_results"].values()
    out = result["output"]
    assert result["capability"] == "witness" and out["task"] == "what is the weather in Oslo"
    assert out["step_id"] == f"{result['step_id']}>fallback:witness" and out["thread_id"] == "t-7"
    assert (
        out["data_dir"] == str(graph.deps.settings.data_dir)
        if hasattr(graph, "deps")
        else out["data_dir"] != "None"
    )
    assert isinstance(out["context"], list)


def test_a_fallback_that_times_out_is_passed_over_for_the_next(make_graph: Any) -> None:
    reg = registry_with(
        down(fallback=["slow", "almanac"], options={"breaker_open": True}),
        other("slow", "Slow", options={"delay": 3}, timeout=0.2),
        almanac(),
    )
    assert answered_by(ask(make_graph(reg), "what is the weather in Oslo")) == [("almanac", "ok")]


def test_an_overloaded_pool_goes_to_the_fallback(make_graph: Any) -> None:
    from graph.pools import Pools

    reg = registry_with(
        down(fallback=["almanac"], pool={"instances": [{"name": "only"}], "capacity": 1, "queue_size": 0}),
        almanac(),
    )
    pools = Pools(reg)
    held = asyncio.run(pools.acquire("down"))  # the only instance is busy, and there is no queue
    state = ask(make_graph(reg, pools=pools), "what is the weather in Oslo")
    assert answered_by(state) == [("almanac", "ok")]
    assert (
        "all 1 instance(s) of down are busy"
        in state["execution_results"][next(iter(state["execution_results"]))]["output"]["fallback"]["reason"]
    )
    pools.release(held, ok=True, seconds=0.0)


def test_a_fallback_gets_only_what_is_left_of_the_turn_on_the_turns_clock(make_graph: Any) -> None:
    """As above, on the graph's clock: the failing step takes the turn to 9 of its 10 s, so the
    fallback (3 s of real sleep, a 30 s timeout of its own) has about 1 s and is cut off. Unlike the
    real-time version, this one reaches the fallback however loaded the machine is (the real-time
    test can spend its 1 s before the fallback, and mutmut then does not count it as a test of
    `_fallback`: `left = inf` and `deadline + clock()` survived, session 15)."""
    CLOCK.start, CLOCK.skew = None, 0.0
    late = {**down(), "class": f"{HERE}:Late", "fallback": ["slow"], "options": {"at": 9.0}}
    reg = registry_with(
        late, other("slow", "Slow", options={"delay": 3}, timeout=30), limits={"max_seconds": 10}
    )
    state = ask(make_graph(reg, clock=CLOCK), "what is the weather in Oslo")
    assert ("slow", "ok") not in answered_by(state), "cut off at the turn's end, not after its own 3 s"


def test_a_step_without_a_deadline_gives_the_fallback_its_own_timeout(settings: Settings) -> None:
    """A payload's `deadline` is optional (None before intake ran): no deadline, no turn bound."""
    from nodes.runner import _fallback

    reg = registry_with(down(fallback=["almanac"]), almanac())
    deps = SimpleNamespace(registry=reg, clock=time.time, settings=settings)
    payload: Any = {"step": {"id": "s1"}, "task": "what is the weather in Oslo", "context": {}}
    found = asyncio.run(_fallback(deps, reg.capabilities["down"], payload, {}, "HTTP 503"))  # type: ignore[arg-type]
    assert found is not None and found[0] == "almanac"
    assert found[1]["fallback"] == {
        "for": "down",
        "by": "almanac",
        "reason": "HTTP 503",
        "note": "down was unavailable (HTTP 503); almanac answered instead",
    }
