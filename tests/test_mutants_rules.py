"""Business rules before side effects, at their edges: the shipped refund cap ($0 to $5,000 per
refund, on the plan's amount and on the looked-up candidate's), the values a rule ignores, which
context a plan is checked against, and how many steps of a kind one plan may hold.

Written for the mutation check (scripts/mutants rules plan_rules): each test pins a boundary or a
branch that a flipped comparison or a dropped condition would move."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from graph.config.registry import Registry, default_registry
from graph.config.schema import BusinessRules
from graph.state import PlanStep
from nodes.planning import Plan, PlannedStep, PlanRejected, business_rules, validate_plan
from tests.conftest import guide, registry_with
from tests.testcaps import make_db


@pytest.fixture(scope="module")
def shipped() -> Registry:
    return Registry.from_file(default_registry())


def refund_rules(shipped: Registry) -> BusinessRules:
    rules = shipped["refund"].rules
    assert rules is not None
    return rules


@pytest.mark.parametrize(
    ("values", "broken"),
    [
        ({"amount": 5000}, []),
        ({"amount": 5000.01}, ["amount=5000.01 is above the limit 5000"]),
        ({"amount": 0}, []),
        ({"amount": -0.01}, ["amount=-0.01 is below the minimum 0"]),
        ({"refund_candidate": {"amount": 5000}}, []),
        ({"refund_candidate": {"amount": 5001}}, ["refund_candidate.amount=5001 is above the limit 5000"]),
        ({"refund_candidate": {"amount": -1}}, ["refund_candidate.amount=-1 is below the minimum 0"]),
        (
            {"amount": 6000, "refund_candidate": {"amount": 7000}},
            ["amount=6000 is above the limit 5000", "refund_candidate.amount=7000 is above the limit 5000"],
        ),
    ],
)
def test_the_shipped_refund_cap_at_its_edges(
    shipped: Registry, values: dict[str, Any], broken: list[str]
) -> None:
    rules = refund_rules(shipped)
    assert rules.violations(values, before_run=False) == broken
    assert rules.violations(values, before_run=True)[: len(broken)] == broken


def test_the_shipped_refund_must_be_the_resolved_customers_charge(shipped: Registry) -> None:
    rules = refund_rules(shipped)
    theirs = {"customer_id": "C-1", "refund_candidate": {"customer_id": "C-2", "amount": 10}}
    assert rules.violations(theirs, before_run=True) == [
        "customer_id (C-1) does not match refund_candidate.customer_id (C-2)"
    ]
    assert rules.violations(theirs, before_run=False) == []  # looked up this turn: checked before the run
    mine = {"customer_id": "C-1", "refund_candidate": {"customer_id": "C-1", "amount": 10}}
    assert rules.violations(mine, before_run=True) == []
    # Not resolved on one side: `same` has nothing to compare (what must be resolved is `require`'s).
    assert rules.violations({"customer_id": "C-1"}, before_run=True) == []
    assert rules.violations({"refund_candidate": {"customer_id": "C-2"}}, before_run=True) == []


def test_a_rule_compares_numbers_only_and_digs_only_into_mappings() -> None:
    rules = BusinessRules.model_validate(
        {"inputs": {"count": {"max": 0}, "a.b.c": {"min": 1}}, "require": ["a.b.c"]}
    )
    assert rules.violations({"count": True}, before_run=False) == []  # a flag is not a number
    assert rules.violations({"count": "9"}, before_run=False) == []  # inputs are typed before they run
    assert rules.violations({"count": 1}, before_run=False) == ["count=1 is above the limit 0"]
    assert rules.violations({"count": 0.5}, before_run=False) == ["count=0.5 is above the limit 0"]
    assert rules.violations({"a": {"b": {"c": 0}}}, before_run=False) == ["a.b.c=0 is below the minimum 1"]
    assert rules.violations({"a": {"b": {"c": 1}}}, before_run=True) == []
    assert rules.violations({"a": {"b": {"c": None}}}, before_run=True) == ["a.b.c is not resolved"]
    assert rules.violations({"a": {"b": 5}}, before_run=True) == ["a.b.c is not resolved"]  # not a mapping
    assert rules.violations({"a": [{"b": {"c": 0}}]}, before_run=True) == ["a.b.c is not resolved"]
    assert rules.violations({"a": {"b": {"c": 0}}}, before_run=True) == ["a.b.c=0 is below the minimum 1"]
    assert rules.violations({"a": {"b": {"c": False}}}, before_run=True) == []  # resolved, not a number
    assert rules.violations({"a": {"b": {"c": 0}}, "x": 1}, before_run=True) == [
        "a.b.c=0 is below the minimum 1"
    ]
    bounded = BusinessRules.model_validate({"inputs": {"n": {"min": 2, "max": 3}}})
    assert [bounded.violations({"n": n}, before_run=False) for n in (1.99, 2, 3, 3.01)] == [
        ["n=1.99 is below the minimum 2"],
        [],
        [],
        ["n=3.01 is above the limit 3"],
    ]


def step(name: str, inputs: dict[str, Any] | None = None, deps: Sequence[str] = ()) -> PlanStep:
    return PlanStep(id=f"{name}:{len(deps)}", capability=name, inputs=inputs or {}, depends_on=list(deps))


def test_an_earlier_turns_value_is_checked_unless_this_plan_looks_it_up_again(shipped: Registry) -> None:
    left = {"customer_id": "C-1", "refund_candidate": {"customer_id": "C-1", "amount": 9000}}
    refund = step("refund")
    with pytest.raises(PlanRejected, match=r"refund_candidate\.amount=9000 is above the limit 5000"):
        business_rules(shipped, [refund], left, [])
    billing = step("billing")
    notes: list[str] = []
    kept = business_rules(shipped, [billing, step("refund", deps=[billing["id"]])], left, notes)
    assert [s["capability"] for s in kept] == ["billing", "refund"] and notes == []
    # The plan's own input is checked whatever the context says.
    with pytest.raises(PlanRejected, match=r"amount=5000\.5 is above the limit 5000"):
        business_rules(shipped, [billing, step("refund", {"amount": 5000.5}, [billing["id"]])], {}, [])
    # ... and it is the value checked, over an earlier turn's.
    ok = business_rules(shipped, [step("refund", {"amount": 20})], {"amount": 9000}, [])
    assert [s["capability"] for s in ok] == ["refund"]


def test_a_validated_plan_is_rejected_before_anything_runs_and_a_capped_one_passes(shipped: Registry) -> None:
    over = Plan(
        steps=[
            PlannedStep(capability="refund", inputs={"amount": 5000.01}),
            PlannedStep(capability="respond"),
        ]
    )
    with pytest.raises(PlanRejected) as raised:
        validate_plan(shipped, over, {})
    assert raised.value.stop_reason == "plan_rejected"
    at_cap = Plan(
        steps=[PlannedStep(capability="refund", inputs={"amount": 5000}), PlannedStep(capability="respond")]
    )
    steps, _ = validate_plan(shipped, at_cap, {})
    assert [s["capability"] for s in steps] == ["account", "billing", "refund", "respond"]


def counted(tmp_path: Path, **rules: Any) -> Registry:
    db = make_db(tmp_path / "shop.sqlite")
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": str(db)},
        "classifier_guide": guide("find the account of alice"),
        **({"rules": rules} if rules else {}),
    }
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "side_effects": True,
        "action_verbs": ["pay"],
        "classifier_guide": guide("pay alice 20 dollars"),
    }
    return registry_with(lookup, payout)


def lookups(n: int) -> list[PlanStep]:
    return [PlanStep(id=f"lookup:{i}", capability="lookup", inputs={"i": i}, depends_on=[]) for i in range(n)]


def test_max_per_plan_keeps_that_many_and_drops_what_depends_on_the_rest(tmp_path: Path) -> None:
    reg = counted(tmp_path, max_per_plan=2)
    notes: list[str] = []
    pay = PlanStep(id="payout:x", capability="payout", inputs={}, depends_on=["lookup:2"])
    kept = business_rules(reg, [*lookups(3), pay], {}, notes)
    assert [s["id"] for s in kept] == ["lookup:0", "lookup:1"]
    assert notes == [
        "business rule: dropped a lookup step; a plan may hold 2 (ask for the rest separately)",
        "dropped payout: it depends on a step the business rules dropped",
    ]
    pay_on_kept = PlanStep(id="payout:y", capability="payout", inputs={}, depends_on=["lookup:1"])
    assert [s["id"] for s in business_rules(reg, [*lookups(2), pay_on_kept], {}, [])] == [
        "lookup:0",
        "lookup:1",
        "payout:y",
    ]


def test_without_rules_a_side_effect_is_once_per_plan_and_a_lookup_unlimited(tmp_path: Path) -> None:
    reg = counted(tmp_path)
    pays = [
        PlanStep(id=f"payout:{i}", capability="payout", inputs={"amount": i}, depends_on=[]) for i in (1, 2)
    ]
    notes: list[str] = []
    kept = business_rules(reg, [*lookups(4), *pays], {}, notes)
    assert [s["id"] for s in kept] == ["lookup:0", "lookup:1", "lookup:2", "lookup:3", "payout:1"]
    assert notes == ["business rule: dropped a payout step; a plan may hold 1 (ask for the rest separately)"]


def test_what_depends_on_a_dropped_step_goes_too_and_the_rest_stays(tmp_path: Path) -> None:
    reg = counted(tmp_path, max_per_plan=1)
    pay = PlanStep(id="payout:x", capability="payout", inputs={}, depends_on=["lookup:1"])
    sums = PlanStep(id="calculator:x", capability="calculator", inputs={}, depends_on=["payout:x"])
    clock = PlanStep(id="clock:x", capability="clock", inputs={}, depends_on=[])
    notes: list[str] = []
    kept = business_rules(reg, [*lookups(2), pay, sums, clock], {}, notes)
    assert [s["id"] for s in kept] == ["lookup:0", "clock:x"]
    assert notes[1:] == [
        "dropped payout: it depends on a step the business rules dropped",
        "dropped calculator: it depends on a step the business rules dropped",
    ]


def test_what_must_be_resolved_is_checked_before_the_run_not_at_plan_time(tmp_path: Path) -> None:
    reg = counted(tmp_path, require=["customer_id"], same=[["customer_id", "candidate.customer_id"]])
    left = {"customer_id": 7, "candidate": {"customer_id": 8}}
    kept = business_rules(reg, lookups(1), left, [])  # not resolved, not matching: the router's call
    assert [s["id"] for s in kept] == ["lookup:0"]


def test_a_rejected_plan_names_every_rule_it_breaks(shipped: Registry) -> None:
    left = {"amount": 6000, "refund_candidate": {"customer_id": "C-1", "amount": 7000}}
    with pytest.raises(PlanRejected) as raised:
        business_rules(shipped, [step("refund")], left, [])
    assert str(raised.value) == (
        "the plan breaks refund's business rules: amount=6000 is above the limit 5000; "
        "refund_candidate.amount=7000 is above the limit 5000"
    )
