"""The safety decisions, each with a test that fails when the decision flips (see ./scripts/mutants).

The allowlist at planning and at execution, and the checks a refund passes before it is written:
the customer, the amount that was approved, the policy's eligibility. Approval answers, side-effect
intent and redaction have their own files (test_approval, test_intent, test_redact).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import nodes.approval as approval_module
from capabilities.support_desk.billing import (
    REFUND_WINDOW_DAYS,
    Billing,
    charge_selector,
    find_amount,
    find_duplicates,
    pick_charge,
    refund_candidate,
    refund_eligibility,
)
from capabilities.support_desk.refund import Refund
from graph.capability import RunContext
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import PolicyDenied, ReclassificationError, ReplanningError
from graph.intent import REFUND_VERBS, side_effect_intent
from graph.redact import Redactor, redact, redact_value
from graph.router import Gate
from nodes.approval import ApprovalUnanswered, parse_decision, parse_words
from nodes.base import Deps
from nodes.planning import Plan, PlannedStep, deterministic_plan, validate_plan
from nodes.runner import make_runner
from tests.conftest import guide, registry_with
from tests.testcaps import make_db

# --- the allowlist -------------------------------------------------------------------------------

ONLY_CLOCK = {"allowed_capabilities": ["respond", "clarify", "clock"]}


def test_the_allowlist_admits_only_registered_listed_capabilities() -> None:
    open_registry, closed = registry_with(), registry_with(policy=ONLY_CLOCK)
    assert open_registry.allowed("calculator") and open_registry.allowed("clock")
    assert closed.allowed("clock") and closed.allowed("respond")
    assert not closed.allowed("calculator"), "registered but not listed"
    assert not open_registry.allowed("ghost"), "not registered: never allowed, allowlist or not"
    assert not closed.allowed("ghost")


def test_planning_refuses_a_plan_with_a_capability_outside_the_allowlist() -> None:
    closed = registry_with(policy=ONLY_CLOCK)
    plan = Plan(steps=[PlannedStep(capability="calculator"), PlannedStep(capability="respond")])
    with pytest.raises(PolicyDenied, match="'calculator' is not in the allowlist"):
        validate_plan(closed, plan, {})
    # The same plan passes where calculator is allowed, and an allowed plan passes the closed registry.
    steps, _ = validate_plan(registry_with(), plan, {})
    assert [s["capability"] for s in steps] == ["calculator", "respond"]
    steps, _ = validate_plan(closed, Plan(steps=[PlannedStep(capability="clock")]), {})
    assert [s["capability"] for s in steps] == ["clock", "respond"]


def test_planning_refuses_a_denied_terminal_step_too() -> None:
    no_respond = registry_with(policy={"allowed_capabilities": ["clarify", "clock"]})
    with pytest.raises(PolicyDenied):
        validate_plan(no_respond, Plan(steps=[PlannedStep(capability="respond")]), {})


def test_an_unknown_capability_is_not_planned() -> None:
    with pytest.raises(ReclassificationError):
        validate_plan(registry_with(), Plan(steps=[PlannedStep(capability="ghost")]), {})


def lookups_and_payout(db: Path, allowed: list[str] | None) -> Registry:
    def lookup(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "class": "tests.testcaps:Lookup",
            "options": {"db": str(db)},
            "classifier_guide": guide(f"find the account of alice ({name})"),
        }

    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "classifier_guide": guide("pay alice 20 dollars"),
    }
    policy = {"allowed_capabilities": ["respond", "clarify", *allowed]} if allowed is not None else {}
    return registry_with(lookup("lookup_a"), lookup("lookup_b"), payout, policy=policy)


def test_the_planner_uses_only_allowed_providers(tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    both = lookups_and_payout(db, None)
    assert [s.capability for s in deterministic_plan(both, ["payout"], {}).steps] == [
        "lookup_a",
        "payout",
        "respond",
    ]
    only_b = lookups_and_payout(db, ["lookup_b", "payout"])
    assert [s.capability for s in deterministic_plan(only_b, ["payout"], {}).steps] == [
        "lookup_b",
        "payout",
        "respond",
    ]
    none = lookups_and_payout(db, ["payout"])
    with pytest.raises(ReplanningError, match="no allowed capability provides"):
        deterministic_plan(none, ["payout"], {})


def payload(capability: str, *, approved: bool | None = True, blocked_by: list[str] | None = None) -> Any:
    return {
        "step": {"id": f"{capability}:1", "capability": capability, "inputs": {}, "depends_on": []},
        "attempt": 1,
        "task": "pay alice 500 dollars",
        "context": {"customer_id": 7},
        "approved": approved,
        "blocked_by": blocked_by or [],
    }


def payouts(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM payouts").fetchone()[0])
    finally:
        conn.close()


async def execute(registry: Registry, tmp_path: Path, step: Any) -> dict[str, Any]:
    deps = Deps(registry=registry, settings=Settings.offline(tmp_path), models=None, router=None)  # type: ignore[arg-type]
    # The node's coroutine itself: outside a graph run there is no stream for its progress events.
    update = await make_runner(deps).afunc(step, {"configurable": {"thread_id": "t"}})
    return dict(update["execution_results"][step["step"]["id"]])


async def test_the_runner_refuses_a_step_outside_the_allowlist_even_when_approved(tmp_path: Path) -> None:
    """Execution checks the allowlist again: a plan that got past planning still cannot act."""
    db = make_db(tmp_path / "shop.sqlite")
    denied = await execute(lookups_and_payout(db, ["lookup_a"]), tmp_path, payload("payout"))
    assert denied["status"] == "failed" and denied["stop_reason"] == "route_denied"
    assert "not in the allowlist" in (denied["error"] or "")
    assert payouts(db) == 0
    allowed = await execute(lookups_and_payout(db, ["lookup_a", "payout"]), tmp_path, payload("payout"))
    assert allowed["status"] == "ok" and payouts(db) == 1


async def test_the_runner_runs_neither_a_denied_nor_a_blocked_step(tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    registry = lookups_and_payout(db, None)
    denied = await execute(registry, tmp_path, payload("payout", approved=False))
    assert denied["status"] == "denied" and denied["error"] == "denied by a human"
    blocked = await execute(registry, tmp_path, payload("payout", blocked_by=["lookup_a:1"]))
    assert blocked["status"] == "skipped" and "lookup_a:1" in (blocked["error"] or "")
    assert payouts(db) == 0
    unasked = await execute(registry, tmp_path, payload("payout", approved=None))
    assert unasked["status"] == "ok" and payouts(db) == 1, "no approval needed: it runs"


async def test_the_runner_stops_a_step_at_its_timeout(tmp_path: Path) -> None:
    slow = {
        "name": "slow",
        "class": "tests.testcaps:Slow",
        "options": {"seconds": 5},
        "timeout": 0.2,
        "classifier_guide": guide("think for a long time"),
    }
    result = await execute(registry_with(slow), tmp_path, payload("slow"))
    assert result["status"] == "failed" and result["error"] == (
        "TimeoutError: no result within 0.2 s (the step was abandoned)"
    )


# --- refund eligibility: the written policy ------------------------------------------------------

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)


def charge(cid: str, days_old: int, **extra: Any) -> dict[str, Any]:
    created = (NOW - timedelta(days=days_old)).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "id": cid,
        "invoice_id": extra.pop("invoice_id", f"INV-{cid}"),
        "amount_cents": extra.pop("amount_cents", 12500),
        "status": extra.pop("status", "succeeded"),
        "created_at": created,
        "refund_id": extra.pop("refund_id", None),
        "refunded_at": extra.pop("refunded_at", None),
        **extra,
    }


def test_the_refund_window_ends_after_its_last_day() -> None:
    assert refund_eligibility(charge("CH-1", 0), None, NOW)[0] is True
    assert refund_eligibility(charge("CH-1", REFUND_WINDOW_DAYS), None, NOW)[0] is True
    eligible, why, cite = refund_eligibility(charge("CH-1", REFUND_WINDOW_DAYS + 1), None, NOW)
    assert eligible is False and "past the 30-day refund window" in why and "Refund window" in cite


def test_duplicates_are_refundable_at_any_age_but_not_twice_and_failed_charges_never() -> None:
    assert refund_eligibility(charge("CH-2", 400), "CH-1", NOW)[0] is True
    refunded = charge("CH-2", 1, refund_id=7001, refunded_at="2026-10-19 12:00:00")
    assert refund_eligibility(refunded, "CH-1", NOW)[0] is False
    assert refund_eligibility(refunded, None, NOW)[0] is False
    failed = charge("CH-3", 1, status="failed")
    assert refund_eligibility(failed, None, NOW)[0] is False
    assert refund_eligibility(failed, "CH-1", NOW)[0] is False, "a failed charge took no money"


def test_only_a_second_successful_charge_of_one_invoice_is_a_duplicate() -> None:
    first = charge("CH-1", 10, invoice_id="INV-1")
    second = charge("CH-2", 9, invoice_id="INV-1")
    assert find_duplicates([second, first]) == {"CH-2": "CH-1"}, "the later one, whatever the order"
    # A failed attempt and its successful retry: one payment, no duplicate.
    failed = charge("CH-3", 10, invoice_id="INV-2", status="failed")
    retry = charge("CH-4", 9, invoice_id="INV-2")
    assert find_duplicates([failed, retry]) == {}
    assert find_duplicates([retry, charge("CH-5", 8, invoice_id="INV-2", status="failed")]) == {}
    # Charges with no invoice are never duplicates of each other.
    loose = [charge("CH-6", 5, invoice_id=None), charge("CH-7", 4, invoice_id=None)]
    assert find_duplicates(loose) == {}
    early_failure = charge("CH-9", 30, invoice_id="INV-9", status="failed")
    assert find_duplicates([early_failure, first, second]) == {"CH-2": "CH-1"}, "a failure skips one charge"
    assert find_duplicates([first, second, charge("CH-8", 8, invoice_id="INV-1")]) == {
        "CH-2": "CH-1",
        "CH-8": "CH-1",
    }


def test_the_charge_picked_for_a_refund_is_the_one_asked_about() -> None:
    old = charge("CH-1", 40, invoice_id="INV-1", amount_cents=3000)
    dup_refunded = charge("CH-2", 39, invoice_id="INV-1", amount_cents=3000, refund_id=1)
    dup_open = charge("CH-3", 38, invoice_id="INV-1", amount_cents=3000)
    failed = charge("CH-4", 1, amount_cents=3000, status="failed")
    newest = [failed, dup_open, dup_refunded, old]
    dups = find_duplicates(newest)
    assert pick_charge(newest, dups, "charge:CH-1") == old
    assert pick_charge(newest, dups, "charge:CH-9") is None
    assert pick_charge(newest, dups, "auto") == dup_open, "the duplicate not refunded yet"
    assert pick_charge(newest, dups, "amount:30.00") == dup_open, (
        "a duplicate not refunded, never the failed one"
    )
    assert pick_charge(newest, dups, "amount:31.00") is None
    assert pick_charge(newest, dups, "latest") == dup_open, "the latest successful charge"
    assert pick_charge([failed], {}, "latest") is None
    assert pick_charge([dup_refunded], {"CH-2": "CH-1"}, "auto") == dup_refunded
    assert pick_charge([old], {}, "auto") is None, "no duplicate, nothing named: nothing to refund"
    assert pick_charge([failed, old], {}, "latest") == old, "the latest successful one, duplicate or not"
    # A refunded duplicate listed first still loses to the open one, by amount and by default.
    first_refunded = [dup_refunded, dup_open, old]
    assert pick_charge(first_refunded, dups, "auto") == dup_open
    assert pick_charge(first_refunded, dups, "amount:30.00") == dup_open


def test_the_refund_candidate_carries_the_policy_verdict() -> None:
    customer = {"id": "C-1", "name": "Jane"}
    old = charge("CH-1", 40)
    cand = refund_candidate(customer, [old], {}, "charge:CH-1", NOW)
    assert cand["eligible"] is False and cand["charge_id"] == "CH-1" and cand["customer_id"] == "C-1"
    recent = charge("CH-2", 3, amount_cents=3600)
    cand = refund_candidate(customer, [recent, old], {}, "charge:CH-2", NOW)
    assert cand["eligible"] is True and cand["amount"] == 36.0 and cand["amount_cents"] == 3600
    missing = refund_candidate(customer, [old], {}, "charge:CH-9", NOW)
    assert missing["eligible"] is False and missing["charge_id"] is None and missing["amount"] is None


def test_the_charge_a_request_names() -> None:
    assert charge_selector("refund ch-2004 please") == "charge:CH-2004"
    assert charge_selector("refund it", "CH2004") == "charge:CH-2004"
    assert charge_selector("refund the $1,250.50 charge") == "amount:1250.50"
    assert charge_selector("refund my last charge") == "latest"
    assert charge_selector("refund my last charge, the duplicate") == "auto"
    assert charge_selector("refund my duplicate charge") == "auto"
    assert find_amount("30 dollars") == 30.0 and find_amount("USD 12.5") == 12.5
    assert find_amount("no amount here") is None


# --- the refund: checks before it is written -------------------------------------------------------


@pytest.fixture
def desk(tmp_path: Path) -> tuple[Billing, Refund, Path]:
    db = tmp_path / "support.sqlite"
    return Billing({"db": str(db)}), Refund({"db": str(db)}), db


async def run(cap: Any, text: str, context: dict[str, Any], **args: Any) -> dict[str, Any]:
    inputs = cap.parse_inputs(text, args, context)
    ctx = RunContext(task=text, context=context, step_id="refund:1", thread_id="t", approved=True)
    return dict(await cap.execute(inputs, ctx))


def refunds(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute("SELECT charge_id, amount_cents FROM refunds ORDER BY id")]
    finally:
        conn.close()


SEEDED = [("CH-2031", 27000)]


async def with_candidate(billing: Billing, text: str, customer: str) -> dict[str, Any]:
    out = await run(billing, text, {"customer_id": customer})
    return {"customer_id": customer, "refund_candidate": out["refund_candidate"]}


def forged(context: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Billing's candidate with `changes`: what execution must still check against the database."""
    return {**context, "refund_candidate": {**context["refund_candidate"], **changes}}


async def test_a_refund_of_another_amount_than_the_approved_one_is_not_written(
    desk: tuple[Billing, Refund, Path],
) -> None:
    billing, refund, db = desk
    # An amount only the plan states (not the request) is never taken.
    context = await with_candidate(billing, "refund my duplicate payment", "C-1002")  # CH-2013, $30
    planned = await run(refund, "refund my duplicate payment", context, amount=30.0)
    assert planned["refund"]["status"] == "not_named" and "No refund made" in planned["summary"]
    # An amount the request states that is not the checked charge's.
    for text in ("refund CH-2013, the $31 duplicate", "refund CH-2013, the $30.01 duplicate"):
        wrong = await run(refund, text, await with_candidate(billing, text, "C-1002"))
        assert wrong["refund"]["status"] == "amount_mismatch" and "No refund made" in wrong["summary"]
    # A candidate whose amount is not the charge's in the database (what was approved): not written.
    stale = await run(refund, "refund my duplicate payment", forged(context, amount_cents=3100))
    assert stale["refund"]["status"] == "amount_mismatch" and "No refund made" in stale["summary"]
    assert refunds(db) == SEEDED
    text = "refund CH-2013, the $30 duplicate"
    right = await run(refund, text, await with_candidate(billing, text, "C-1002"), amount=30.0)
    assert right["refund"]["status"] == "refunded" and right["refund"]["amount"] == 30.0
    assert refunds(db) == [*SEEDED, ("CH-2013", 3000)]


async def test_a_refund_of_a_named_charge_needs_billings_check_of_it(
    desk: tuple[Billing, Refund, Path],
) -> None:
    billing, refund, db = desk
    context = await with_candidate(billing, "refund CH-2034", "C-1004")
    unchecked = await run(refund, "refund CH-2034", {"customer_id": "C-1004"})
    assert unchecked["refund"]["status"] == "not_checked" and "No refund made" in unchecked["summary"]
    assert refunds(db) == SEEDED
    out = await run(refund, "refund CH-2034", context)
    assert out["refund"]["status"] == "refunded" and refunds(db) == [*SEEDED, ("CH-2034", 3600)]


async def test_a_duplicate_is_refunded_once_and_only_after_a_billing_step(
    desk: tuple[Billing, Refund, Path],
) -> None:
    billing, refund, db = desk
    context = await with_candidate(billing, "refund my duplicate charge", "C-1001")
    unchecked = await run(refund, "refund my duplicate charge", {"customer_id": "C-1001"})
    assert unchecked["refund"]["status"] == "not_checked"
    assert refunds(db) == SEEDED
    out = await run(refund, "refund my duplicate charge", context)
    assert out["refund"]["status"] == "refunded" and out["refund"]["charge_id"] == "CH-2003"
    again = await run(refund, "refund my duplicate charge", context)
    assert again["refund"]["status"] == "already_refunded" and again["refund"]["charge_id"] == "CH-2003"
    assert refunds(db) == [*SEEDED, ("CH-2003", 12500)]


async def test_a_refund_is_only_for_the_conversations_customer(desk: tuple[Billing, Refund, Path]) -> None:
    billing, refund, db = desk
    nobody = await run(refund, "refund the duplicate, I'm jane@acme.io", {})
    assert nobody["refund"]["status"] == "needs_identity"
    # Jane named while the conversation is about Omar: billing checks Jane's charge, not for Omar.
    text = "refund CH-2003, I'm jane@acme.io"
    other = await run(refund, text, await with_candidate(billing, text, "C-1002"))
    assert other["refund"]["status"] == "not_checked"
    # A candidate of Omar's own charge for a request naming Jane: the write checks the customer again.
    omars = await with_candidate(billing, "refund CH-2013", "C-1002")
    named = "refund CH-2013, I'm jane@acme.io"
    mismatch = await run(refund, named, forged(omars, query=named))
    # Jane's e-mail and Omar's charge point to two customers: the write identifies nobody (since
    # session 17's identity clues) or finds the mismatch; either way nothing is written.
    assert mismatch["refund"]["status"] in {"customer_mismatch", "needs_identity"}
    # Jane's charge named while the conversation is about Omar: not his charge, nothing written.
    foreign = await run(refund, "refund CH-2003", await with_candidate(billing, "refund CH-2003", "C-1002"))
    # (billing now asks whose charge it is instead of checking it for Omar: nothing to refund either way)
    assert foreign["refund"]["status"] in {"no_charge", "not_checked"}
    # A billing candidate for Jane does not carry over to Omar's refund.
    janes = await with_candidate(billing, "refund my duplicate charge", "C-1001")
    mixed = {"customer_id": "C-1002", "refund_candidate": janes["refund_candidate"]}
    inputs = refund.parse_inputs("refund my duplicate charge", {}, mixed)
    assert inputs.candidate is None and inputs.charge_id is None and inputs.amount is None
    assert (await run(refund, "refund my duplicate charge", mixed))["refund"]["status"] == "not_checked"
    assert refunds(db) == SEEDED


async def test_a_refund_the_policy_refuses_is_not_written(desk: tuple[Billing, Refund, Path]) -> None:
    billing, refund, db = desk
    cases = [("refund CH-2001", "C-1001"), ("refund CH-2053", "C-1006"), ("refund CH-2031", "C-1004")]
    contexts = {text: await with_candidate(billing, text, customer) for text, customer in cases}
    for text, context in contexts.items():
        out = await run(refund, text, context)
        assert out["refund"]["status"] == "not_eligible" and "No refund made" in out["summary"], text
    # Execution checks the policy again in the write: a candidate wrongly marked eligible is refused.
    too_old = await run(refund, "refund CH-2001", forged(contexts["refund CH-2001"], eligible=True))
    assert too_old["refund"]["status"] == "not_eligible"
    failed = await run(refund, "refund CH-2053", forged(contexts["refund CH-2053"], eligible=True))
    assert failed["refund"]["status"] == "not_eligible"
    again = await run(refund, "refund CH-2031", forged(contexts["refund CH-2031"], eligible=True))
    assert again["refund"] == {
        "status": "already_refunded",
        "charge_id": "CH-2031",
        "refund_id": "R-7001",
        "amount": 270.0,
    }
    assert refunds(db) == SEEDED


async def test_a_refund_above_the_threshold_is_asked_about(desk: tuple[Billing, Refund, Path]) -> None:
    billing, refund, db = desk
    policy = {"mode": "above", "field": "amount", "threshold": 30}
    context = await with_candidate(billing, "refund my duplicate payment", "C-1002")  # $30
    at = refund.parse_inputs("refund my duplicate payment", {}, context)
    assert at.candidate is not None and at.candidate["amount_cents"] == 3000
    assert refund.needs_approval(at, policy) is None, "at the threshold: no question"
    above = refund.parse_inputs("refund my duplicate payment", {}, context)
    assert refund.needs_approval(above, {**policy, "threshold": 29.99}), "above it: ask"
    assert refund.needs_approval(above, {**policy, "mode": "always"}), "always: ask"
    # Amount unknown (nothing checked): no question, because nothing can be written.
    unknown = refund.parse_inputs("refund it", {}, {"customer_id": "C-1002"})
    assert unknown.amount is None and unknown.check() is not None
    assert unknown.check()[0] == "not_checked"  # type: ignore[index]
    assert refund.needs_approval(unknown, {**policy, "mode": "always"}) is None
    assert (await run(refund, "refund it", {"customer_id": "C-1002"}))["refund"]["status"] == "not_checked"
    assert refunds(db) == SEEDED


# --- approval: answers nested in any shape keep their step, and unclear never approves ----------

WRAPPERS: list[Any] = [
    lambda v: v,
    lambda v: [v],
    lambda v: [v, v],  # one answer per pending step, by position
    lambda v: {"s1": v, "s2": v},
    lambda v: {"approved": v},
    lambda v: {"decision": v},
    lambda v: {"decisions": v},
    lambda v: {"decisions": [v]},
]


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_an_answer_per_step_keeps_its_step_inside_any_wrapper(wrap: Any) -> None:
    order = ["s1", "s2"]
    for inner in ({"s1": "yes", "s2": "no"}, ["yes", "no"]):
        assert parse_decision(wrap(inner), "s2", order=order) is False, (inner, wrap(inner))
        assert parse_decision(wrap(inner), "s1", order=order) is True, (inner, wrap(inner))


def nested(value: Any, levels: int, kind: str) -> Any:
    for _ in range(levels):
        value = {
            "list": [value],
            "pair": [value, value],
            "step": {"s1": value},
            "approved": {"approved": value},
            "decisions": {"decisions": value},
        }[kind]
    return value


@pytest.mark.parametrize("kind", ["list", "pair", "step", "approved", "decisions"])
def test_answers_nested_past_the_depth_limit_are_unclear(kind: str) -> None:
    order = ["s1", "s2"]
    assert parse_decision(nested("yes", 6, kind), "s1", order=order) is True
    assert parse_decision(nested("no", 6, kind), "s1", order=order) is False
    assert parse_decision(nested("yes", 7, kind), "s1", order=order) is None
    assert parse_decision(nested(True, 50, kind), "s1", order=order) is None


def test_a_self_containing_answer_is_unclear_not_a_crash() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert parse_decision(loop, "s1") is None
    again: dict[str, Any] = {}
    again["approved"] = again
    assert parse_decision(again, "s1") is None
    chain: dict[str, Any] = {}
    chain["decisions"] = chain
    assert parse_decision(chain, "s1") is None
    pair: list[Any] = []
    pair += [pair, pair]
    assert parse_decision(pair, "s1", order=["s1", "s2"]) is None


def test_agent_inbox_respond_aliases_and_message_text() -> None:
    assert parse_decision({"type": "respond", "args": "yes please"}, "s1") is True
    assert parse_decision({"type": "Response", "message": "no thanks"}, "s1") is False
    assert parse_decision({"type": "response", "message": "yes"}, "s1") is True
    assert parse_decision({"type": "response", "args": None, "message": "yes"}, "s1") is None
    assert parse_decision({"type": "response"}, "s1") is None
    assert parse_decision({"type": "edit", "args": "yes"}, "s1") is None


def test_long_answers_are_unclear() -> None:
    at_limit = ("ok " * 27)[:80]
    assert len(at_limit) == 80 and parse_words(at_limit) is True
    assert parse_words(at_limit + "!") is None and parse_words("ok " * 40) is None


# --- the approval node: per-step decisions, denials recorded, unclear answers bounded -------------


ASKED_AT = 1_000_000.0


class FakeRouter:
    """Every step is gated by the approval policy (`approve`), with no approval timeout."""

    def __init__(self, steps: list[tuple[dict[str, Any], str]]) -> None:
        self.steps = steps

    def ready_steps(self, state: Any) -> list[dict[str, Any]]:
        return [s for s, _ in self.steps]

    def gates(self, state: Any, ready: Any) -> list[Gate]:
        decided = state.get("approval_decisions") or {}
        return [Gate(s, "approve", q, "", None, "deny") for s, q in self.steps if s["id"] not in decided]


async def approve(
    monkeypatch: pytest.MonkeyPatch,
    answers: list[Any],
    state: dict[str, Any],
    *,
    steps: int = 1,
    max_steps: int = 10,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the approval node's two passes with scripted answers to its questions; (update, questions asked).

    The first pass only notes when the question is put: it asks nothing and decides nothing.
    """
    asked: list[dict[str, Any]] = []
    replies = iter(answers)

    def ask(payload: dict[str, Any]) -> Any:
        asked.append(payload)
        return next(replies)

    monkeypatch.setattr(approval_module, "_ask", ask)
    pending = [
        ({"id": f"s{i}", "capability": "payout", "inputs": {"amount": 500}, "depends_on": []}, f"Pay #{i}?")
        for i in range(1, steps + 1)
    ]
    deps = SimpleNamespace(
        router=FakeRouter(pending),
        limits=SimpleNamespace(max_steps=max_steps),
        clock=lambda: ASKED_AT,
        registry={"payout": SimpleNamespace(action_verbs=("pay",))},
    )
    first = await approval_module.approval(state, SimpleNamespace(deps=deps, keep={}))  # type: ignore[arg-type]
    assert first == {"approval_asked_at": ASKED_AT} and asked == [], "the first pass asks nothing"
    again = {**state, **first}
    update = await approval_module.approval(again, SimpleNamespace(deps=deps, keep={}))  # type: ignore[arg-type]
    return update, asked


async def test_the_node_records_each_steps_decision_and_every_denial(monkeypatch: pytest.MonkeyPatch) -> None:
    update, asked = await approve(monkeypatch, [["yes", "no"]], {}, steps=2)
    assert len(asked) == 1
    assert update["approval_decisions"] == {"s1": True, "s2": False}
    why = "I did not run payout: the action was denied, so nothing was changed."
    assert update["execution_results"] == {
        "s2": {
            "step_id": "s2",
            "capability": "payout",
            "status": "denied",
            "output": {"summary": why},
            "error": why,
            "severity": None,
            "stop_reason": None,
            "attempts": 0,
            "duration_ms": 0.0,
        }
    }, "a denied step is recorded as never run"


async def test_the_node_asks_again_only_for_the_steps_left_unclear(monkeypatch: pytest.MonkeyPatch) -> None:
    update, asked = await approve(monkeypatch, [["yes", "maybe", "no"], ["no", "maybe"], "yes"], {}, steps=2)
    assert "3 answers for 2 steps" in asked[1]["not_understood"]
    assert [s["step_id"] for s in asked[2]["steps"]] == ["s2"], "s1 was answered in the second round"
    assert update["approval_decisions"] == {"s1": False, "s2": True}


@pytest.mark.parametrize(
    ("state", "max_steps", "spare"),
    [({"control_steps": 3}, 6, 2), ({}, 3, 2), ({"control_steps": 0}, 4, 3)],
)
async def test_each_unclear_answer_spends_a_step_of_the_budget(
    monkeypatch: pytest.MonkeyPatch, state: dict[str, Any], max_steps: int, spare: int
) -> None:
    update, asked = await approve(monkeypatch, ["hmm"] * spare + ["yes"], state, max_steps=max_steps)
    assert update["approval_decisions"] == {"s1": True} and len(asked) == spare + 1
    with pytest.raises(ApprovalUnanswered, match="nothing was done"):
        await approve(monkeypatch, ["hmm"] * (spare + 1) + ["yes"], state, max_steps=max_steps)


# --- side-effect intent: a failure to read the request never acts ---------------------------------


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_intent_fails_safe_when_it_cannot_read_the_request() -> None:
    broken = side_effect_intent(Unprintable(), REFUND_VERBS)  # type: ignore[arg-type]
    assert broken.kind == "refuse" and broken.reason == "could not read the request (RuntimeError)"
    bad_verbs = side_effect_intent("refund CH-2033 now", [42])  # type: ignore[list-item]
    assert bad_verbs.kind == "refuse" and not bad_verbs.act
    assert side_effect_intent("refund CH-2033", []).kind == "refuse"
    assert side_effect_intent("refund CH-2033", ["", "  "]).reason == "no request to "


@pytest.mark.parametrize(
    "text",
    [
        "I want the refund policy",
        "I need a refund form",
        "we want refund information",
        "I want the refunded amount back",
        "I need the refunded charge refunded again",
    ],
)
def test_a_wish_about_a_refund_topic_or_a_past_refund_is_not_an_instruction(text: str) -> None:
    assert side_effect_intent(text, REFUND_VERBS).kind == "confirm"


# --- redaction: values under secret names, short known secrets, log records ----------------------


def test_values_under_secret_header_names_are_masked_whatever_their_shape() -> None:
    headers = {
        "Authorization": "Bearer abcdefghijkl",
        "proxy-authorization": "Basic zzzzzzzz",
        "Cookie": "session abcdef",
        "SET-COOKIE": "id abcdef",
        "X-Request-Id": "abc",
    }
    assert redact_value(headers) == {
        "Authorization": "Bearer ***",
        "proxy-authorization": "Basic ***",
        "Cookie": "***",
        "SET-COOKIE": "***",
        "X-Request-Id": "abc",
    }


def test_a_known_secret_of_the_minimum_length_is_masked() -> None:
    r = Redactor(["k9!z", "abc", "s3cr3t-longer"])
    assert r.redact("key k9!z and abc and s3cr3t-longer") == "key *** and abc and ***"
    assert r.redact("s3cr3t-longerX") == "s3cr3t-longerX", "not inside a longer word"


def test_basic_is_masked_only_when_it_decodes_to_user_and_password() -> None:
    assert redact("We offer a Basic subscription") == "We offer a Basic subscription"
    assert redact("Basic dXNlcjpwYXNz") == "Basic ***"
    assert redact("the Basic configuration") == "the Basic configuration", "not base64 at all"
    assert redact("Basic dXNlcjpwYXNzd29yZA") == "Basic ***", "unpadded base64 of user:password"
    assert redact("Basic dXNlcjpwYXNzd29yZA=") == "Basic ***"
    assert redact("Basic dXNlcjpwYXNzdw") == "Basic ***", "user:passw, its two '=' left out"


# Every alternative of a secret shape, with the context that stays: dropping one leaks its secret.
SHAPES = [
    ("whsec_abcdefghij1234", "whsec_***"),
    ("xapp-1-A0123456789-abcdef", "xapp-***"),
    ("npm_" + "a1B2" * 8, "npm_***"),
    ("pypi-" + "AgEIcHlwaS5vcmc" * 3, "pypi-***"),
    ("[('authorization', 'opaque123')]", "[('authorization', '***')]"),
    ("Authorization: ApiKey abc123", "Authorization: ApiKey ***"),
    *(
        (f"Authorization: {scheme} abc123", f"Authorization: {scheme} ***")
        for scheme in ("Digest", "HMAC", "Negotiate", "NTLM")
    ),
    ("Authorization: Api-Key abc123", "Authorization: Api-Key ***"),
    (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027",
        "Authorization: AWS4-HMAC-SHA256 ***, SignedHeaders=host, Signature=***",
    ),
    ("secret_key=abc123", "secret_key=***"),
    *((f"{name}=abc123", f"{name}=***") for name in ("apikey", "private_key", "pwd", "pass", "passphrase")),
    ("passwd=hunter2", "passwd=***"),
    ("credentials=abc123", "credentials=***"),
    ("credential: xyz789", "credential: ***"),
    (r"{\"password\": \"hunter2\", \"user\": \"bob\"}", r"{\"password\": \"***\", \"user\": \"bob\"}"),
    ('password="p\\"q rest" next', 'password="***" next'),
    ("my token is 3f9a8b7c6d5e4f3a2b1c", "my token is ***"),
    ("the secret was a1b2c3d4e5f6g7h8i9", "the secret was ***"),
    ("password is Tr0ub4dor3xyzabcd", "password is ***"),
    ("api key 3f9a8b7c6d5e4f3a2b1c", "api key ***"),
    ("https://user:pass@host?next=a@b", "https://user:***@host?next=a@b"),
    ("https://user:pass@host#x@y", "https://user:***@host#x@y"),
    ("see http://example.com:8080?to=a@b.co", "see http://example.com:8080?to=a@b.co"),
    ("see http://example.com:8080#a@b.co", "see http://example.com:8080#a@b.co"),
    # The password ends at the last `@` before the host, also after a `/` or a space inside it.
    ("postgresql://u:se/cr@et@host/db", "postgresql://u:***@host/db"),
    ("postgresql://user:se cr@et@host/db", "postgresql://user:***@host/db"),
    ("postgresql://user:se cr@host/db?next=a@b", "postgresql://user:***@host/db?next=a@b"),
    ("x://u:p@h x://u:q@h", "x://u:***@h x://u:***@h"),
]


@pytest.mark.parametrize(("text", "masked"), SHAPES)
def test_every_secret_shape_is_masked_and_its_context_kept(text: str, masked: str) -> None:
    assert redact(text) == masked
