"""A specialist's own say ("not mine": the router reroutes, bounded), fallback chains (after the
last retry, or at once when a breaker is open; the answer says it degraded), business rules
checked before side effects run, and the registry checks of `fallback`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graph.capability import Capability, RunContext
from graph.capability.http import ServiceUnavailable
from graph.config.registry import Registry
from graph.errors import RegistryError
from nodes.planning import Plan, PlannedStep, PlanRejected, validate_plan
from tests.conftest import SleepRecorder, answer, ask, fake, guide, registry_with
from tests.testcaps import make_db


class Misrouted(Capability):
    """Says every request is not its own, naming `options.suggest`."""

    name = "misrouted"
    description = "Translate text."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        self.not_mine(suggest=self.options.get("suggest"), reason=str(self.options.get("reason", "not mine")))


class Down(Capability):
    """A capability whose service is down: every call raises `ServiceUnavailable`."""

    name = "down"
    description = "Look up the weather."

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.calls = 0

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        self.calls += 1
        open_ = bool(self.options.get("breaker_open"))
        state = {"service": "weather", "state": "open" if open_ else "closed"}
        raise ServiceUnavailable("weather", "HTTP 503", breaker_open=open_, breaker=state)


class Almanac(Capability):
    """The stand-in: answers from a book instead of the service (or fails too, `options.fail`)."""

    name = "almanac"
    description = "Seasonal averages."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        if self.options.get("fail"):
            raise ConnectionError("the almanac is unavailable too")
        return {"summary": f"seasonal average for {inputs.query!r}: mild"}


HERE = "tests.test_reroute_fallback"
WEATHER = guide("what is the weather in Oslo", "will it rain tomorrow", "weather forecast for Paris")
TRANSLATE = guide("translate this into French", "how do you say hello in Spanish", "translate my text")


def down(**extra: Any) -> dict[str, Any]:
    return {"name": "down", "class": f"{HERE}:Down", "classifier_guide": WEATHER, **extra}


def almanac(**options: Any) -> dict[str, Any]:
    return {
        "name": "almanac",
        "class": f"{HERE}:Almanac",
        "options": options,
        "classifier_guide": guide("seasonal averages for March", "typical climate of a month"),
    }


def misrouted(name: str, suggest: str | None, *queries: str) -> dict[str, Any]:
    return {
        "name": name,
        "class": f"{HERE}:Misrouted",
        "options": {"suggest": suggest, "reason": f"{name} only translates"},
        "classifier_guide": guide(*queries) if queries else TRANSLATE,
    }


# Fallback chains.


def test_an_open_breaker_goes_to_the_fallback_at_once_and_the_answer_says_it_degraded(
    make_graph: Any,
) -> None:
    reg = registry_with(down(fallback=["almanac"], options={"breaker_open": True}), almanac())
    graph = make_graph(reg)
    state = ask(graph, "what is the weather in Oslo")
    assert state["control_stop_reason"] == "success"
    [result] = state["execution_results"].values()
    assert result["status"] == "ok" and result["capability"] == "almanac" and result["attempts"] == 1
    assert result["output"]["fallback"]["for"] == "down"
    assert reg["down"].instance.calls == 1  # type: ignore[attr-defined]
    text = answer(state)
    assert text.startswith("Note: down was unavailable (ServiceUnavailable: weather unavailable: HTTP 503)")
    assert "almanac answered instead" in text and "seasonal average for 'what is the weather in Oslo'" in text


def test_the_fallback_answers_only_after_the_last_retry(make_graph: Any) -> None:
    reg = registry_with(down(fallback=["almanac"], retry={"max_attempts": 3}), almanac())
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert state["control_stop_reason"] == "success"
    [result] = state["execution_results"].values()
    assert result["capability"] == "almanac" and result["attempts"] == 3
    assert reg["down"].instance.calls == 3  # type: ignore[attr-defined]


def test_the_chain_is_tried_in_order_and_when_all_fail_the_step_fails(make_graph: Any) -> None:
    broken_almanac = {**almanac(fail=True), "name": "old_almanac"}
    reg = registry_with(
        down(fallback=["old_almanac", "almanac"], retry={"max_attempts": 1}), broken_almanac, almanac()
    )
    state = ask(make_graph(reg), "what is the weather in Oslo")
    [result] = state["execution_results"].values()
    assert result["capability"] == "almanac"  # the first one failed too
    reg = registry_with(down(fallback=["old_almanac"], retry={"max_attempts": 2}), broken_almanac)
    state = ask(make_graph(reg), "what is the weather in Oslo")
    assert state["control_stop_reason"] == "max_retries"
    [result] = state["execution_results"].values()
    assert result["status"] == "failed" and result["capability"] == "down"


def test_a_capability_without_a_fallback_fails_as_before(make_graph: Any) -> None:
    state = ask(make_graph(registry_with(down(retry={"max_attempts": 2}))), "what is the weather in Oslo")
    assert state["control_stop_reason"] == "max_retries"


# A specialist's own say.


def test_not_mine_reroutes_to_the_suggested_capability(make_graph: Any) -> None:
    reg = registry_with(misrouted("translator", "clock", "what time is it in Tokyo please translate"))
    state = ask(make_graph(reg), "what time is it in Tokyo please translate")
    assert state["control_stop_reason"] == "success", answer(state)
    assert "Asia/Tokyo" in answer(state)
    assert state["control_reclassifications"] == 1
    assert state["planning_excluded"] == ["translator"]
    assert any(
        n.startswith("reroute: translator handed the request to clock (translator only translates)")
        for n in state["planning_notes"]
    )
    assert [r["capability"] for r in state["execution_results"].values()] == ["clock"]


def test_reroutes_are_bounded_by_the_reclassification_limit(make_graph: Any) -> None:
    query = "translate this into French"
    ping = misrouted("ping", "pong", query)
    pong = misrouted("pong", "pung", "say it in French")
    pung = misrouted("pung", "ping", "in French please")
    reg = registry_with(ping, pong, pung, limits={"max_reclassifications": 2})
    state = ask(make_graph(reg), query)
    assert state["control_stop_reason"] == "max_reclassifications"
    assert state["control_reclassifications"] == 2
    assert "pung only translates" in answer(state)


def test_a_suggestion_the_router_cannot_take_is_noted_and_the_classifier_decides(make_graph: Any) -> None:
    reg = registry_with(misrouted("translator", "no_such_capability"))
    state = ask(make_graph(reg), "translate this into French")
    assert state["control_stop_reason"] == "clarify"  # nothing else fits the request
    assert any("suggested no_such_capability" in n and "not taken" in n for n in state["planning_notes"])


# The registry.

FALLBACK_YAML = """\
version: 1
classifier: {encoder: lexical}
capabilities:
  - name: respond
    class: capabilities.respond:Respond
  - name: clarify
    class: capabilities.clarify:Clarify
  - name: clock
    class: capabilities.clock:Clock
    fallback: [%s]
  - name: calculator
    class: capabilities.calculator:Calculator
    enabled: false
"""


@pytest.mark.parametrize(
    ("fallback", "message"),
    [
        (
            "no_such",
            "capabilities[2].fallback[0]: unknown capability 'no_such' (known: calculator, clarify, clock",
        ),
        ("clock", "capabilities[2].fallback[0]: clock cannot be its own fallback"),
        ("respond", "capabilities[2].fallback[0]: respond ends a plan"),
        ("calculator", "capabilities[2].fallback[0]: calculator is disabled"),
        ("clarify, Bad", "capabilities[2].fallback[1]: String should match pattern"),
    ],
)
def test_fallback_names_are_checked_with_file_and_line(fallback: str, message: str) -> None:
    with pytest.raises(RegistryError) as raised:
        Registry.from_text(FALLBACK_YAML % fallback, source="reg.yaml")
    problems = [str(p) for p in raised.value.problems]
    assert any(p.startswith(f"reg.yaml:10: {message}") for p in problems), problems


def test_a_fallback_with_side_effects_is_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "side_effects": True,
        "action_verbs": ["pay"],
        "options": {"db": str(db)},
        "classifier_guide": guide("pay alice"),
    }
    with pytest.raises(RegistryError, match=r"fallback\[0\]: payout has side effects"):
        registry_with(payout, down(fallback=["payout"]))


# Business rules.


def shop(tmp_path: Path, **rules: Any) -> tuple[Registry, Path]:
    db = make_db(tmp_path / "shop.sqlite")
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": str(db)},
        "classifier_guide": guide("find the account of alice", "look up customer bob"),
    }
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "side_effects": True,
        "action_verbs": ["pay"],
        "rules": rules,
        "classifier_guide": guide("pay alice 20 dollars", "send a payout of 50 to bob"),
    }
    return registry_with(lookup, payout), db


def payouts(db: Path) -> list[tuple[Any, ...]]:
    return sqlite3.connect(db).execute("SELECT customer_id, amount FROM payouts").fetchall()


def test_a_step_that_breaks_a_rule_with_this_turns_values_is_dropped_before_it_runs(
    make_graph: Any, tmp_path: Path
) -> None:
    reg, db = shop(tmp_path, inputs={"customer_id": {"max": 7}})
    graph = make_graph(reg)
    state = ask(graph, "pay bob 20 dollars", thread="bob")
    assert state["control_stop_reason"] == "success"
    assert (
        "I did not run payout: it would break a business rule (customer_id=8 is above the limit 7)"
        in answer(state)
    )
    assert payouts(db) == []
    state = ask(graph, "pay alice 20 dollars", thread="alice")
    assert payouts(db) == [(7, 20.0)]


def test_a_plan_that_breaks_a_rule_ends_the_turn_plan_rejected(make_graph: Any, tmp_path: Path) -> None:
    reg, _ = shop(tmp_path, inputs={"amount": {"min": 0, "max": 500}})
    plan = Plan(
        steps=[PlannedStep(capability="payout", inputs={"amount": 900}), PlannedStep(capability="respond")]
    )
    with pytest.raises(PlanRejected, match="amount=900 is above the limit 500") as raised:
        validate_plan(reg, plan, {})
    assert raised.value.stop_reason == "plan_rejected"


def test_a_model_plan_beyond_the_limit_ends_the_turn_plan_rejected_and_nothing_is_paid(
    make_graph: Any, tmp_path: Path
) -> None:
    reg, db = shop(tmp_path, inputs={"amount": {"min": 0, "max": 500}})
    reg = Registry.from_dict(
        {**reg.spec.model_dump(by_alias=True, exclude_none=True), "orchestrator": {"mode": "llm"}},
        source="<t>",
    )
    plan = {"steps": [{"capability": "payout", "inputs": {"amount": 900}}, {"capability": "respond"}]}
    graph = make_graph(reg, models={"orchestrator": fake(plan, repeat=True)}, sleep=SleepRecorder())
    state = ask(graph, "pay alice 900 dollars")
    assert state["control_stop_reason"] == "plan_rejected"
    assert "the plan broke a business rule" in answer(state) and "amount=900" in answer(state)
    assert payouts(db) == [] and not state.get("execution_results")


def test_one_side_effect_of_a_kind_per_plan(tmp_path: Path) -> None:
    reg, _ = shop(tmp_path)
    plan = Plan(
        steps=[
            PlannedStep(capability="payout", inputs={"amount": 20}),
            PlannedStep(capability="payout", inputs={"amount": 30}),
            PlannedStep(capability="respond"),
        ]
    )
    steps, notes = validate_plan(reg, plan, {})
    assert [s["capability"] for s in steps] == ["lookup", "payout", "respond"]
    assert steps[1]["inputs"] == {"amount": 20}
    assert any(n.startswith("business rule: dropped a payout step; a plan may hold 1") for n in notes)


def test_rules_compare_resolved_values(tmp_path: Path) -> None:
    reg, _ = shop(tmp_path, require=["customer_id"], same=[["customer_id", "candidate.customer_id"]])
    rules = reg["payout"].rules
    assert rules is not None
    assert rules.violations({}, before_run=False) == []  # nothing is resolved at plan time
    assert rules.violations({}, before_run=True) == ["customer_id is not resolved"]
    assert rules.violations({"customer_id": 7, "candidate": {"customer_id": 8}}, before_run=True) == [
        "customer_id (7) does not match candidate.customer_id (8)"
    ]
    assert rules.violations({"customer_id": 7, "candidate": {"customer_id": 7}}, before_run=True) == []
