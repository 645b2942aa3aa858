"""Which charge a support request means: by what it was for, when, its position and its amount.

Three levels: the pure selector (`charge_selector`: text only, the refund's approval check derives it
again), the matching against a customer's charges (`match_charges`, on charges written here with a
fixed clock, a year boundary included, and on the seeded database, whose dates are relative to
today: month names are computed, never written), and the graph with the shipped registry (the
approval question names the charge and its amount; a refund is written once).

Every sentence here is written for these tests, not taken from the data files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from capabilities.support_desk.account import Account
from capabilities.support_desk.billing import (
    Billing,
    charge_selector,
    charge_tags,
    described_charges,
    find_duplicates,
    load_charges,
    match_charges,
    refund_eligibility,
    request_amounts,
)
from capabilities.support_desk.db import SupportDB, now_utc
from capabilities.support_desk.refund import Refund
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from tests.support_desk.test_support import Desk, checked, rows, run, shipped_registry

# --- the selector: text only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "selector"),
    [
        # What the charge was for.
        ("we never used the additional seats, money back please", "desc:seats"),
        ("please reverse the seat purchase", "desc:seats"),
        ("our subscription renewed and we had already left, refund it", "desc:renewal"),
        ("can the onboarding fee come back to us", "desc:onboarding"),
        ("the retried payment should not have gone through", "desc:retry"),
        # When: month names, relative months, days of the month, days ago, weeks.
        ("I'd like the money from the september invoice back", "month:9"),
        ("reverse what you took in Feb.", "month:2"),
        ("the renewal from two months back, can it be returned", "desc:renewal|months_ago:2"),
        ("our previous month's payment looks wrong", "months_ago:1"),
        ("what was that charge on the 15th?", "day:15"),
        ("the payment from 6 days ago", "days_ago:5-7"),
        ("you charged us yesterday for nothing", "days_ago:1-1"),
        ("the thing you billed this week", "weeks_ago:0"),
        ("refund the renewal of March 1st", "desc:renewal|month:3|day:1"),
        # Positions and ordinals.
        ("the one before the last one, please reverse it", "pos:previous"),
        ("give me back the earliest charge", "pos:first"),
        ("my newest renewal can go back", "desc:renewal|pos:latest"),
        ("the third payment in august", "month:8|nth:3"),
        # Combinations with an amount.
        ("the $270 seats bill of last month", "amount:270.00|desc:seats|months_ago:1"),
        # The legacy forms stay as they were (the refund compares them).
        ("give back the 12 dollars", "amount:12.00"),
        ("my most recent payment, refund it", "latest"),
        ("money back for the second charge please", "auto"),
        ("you took it twice in october", "auto"),
        ("return the extra payment", "auto"),
        ("refund please", "auto"),
        ("refund CH-2100, it was the september renewal", "charge:CH-2100"),
    ],
)
def test_the_selector_reads_descriptions_times_and_positions(text: str, selector: str) -> None:
    assert charge_selector(text) == selector


def test_words_that_are_not_dates_or_positions_stay_out() -> None:
    assert charge_selector("may I please have my money back for the seats") == "desc:seats"
    assert charge_selector("we march on: refund the renewal") == "desc:renewal"
    assert charge_selector("last month's invoice, refund it") == "months_ago:1", "a month, not 'the last'"
    assert charge_selector("the first of the month renewal") == "desc:renewal|day:1"
    assert charge_selector("the team plan for 12 seats renewal") == "desc:renewal", "seats of the plan"
    assert charge_selector("we did not need those seats after all") == "desc:seats", "no charge set aside"
    assert charge_selector("list the recent payments for this account") == "auto", "a list, not a position"
    assert charge_selector("the last 2 invoices please") == "auto"


def test_a_charge_set_aside_is_not_the_one_meant() -> None:
    assert charge_selector("the renewal, but not the one from this month") == "desc:renewal|-months_ago:0"
    assert charge_selector("refund the seats and leave the renewal alone") == "desc:seats|-desc:renewal"
    # A duplicate said with it still decides: "only the duplicate, not this month's".
    assert charge_selector("just the double payment, not the december one") == "auto"


def test_a_follow_up_replaces_what_it_names_and_keeps_the_rest_as_soft_parts() -> None:
    mark = " (follow-up to: "
    assert charge_selector(f"and the april one?{mark}is my march renewal refundable? C-1)") == (
        "month:4|~desc:renewal"
    )
    assert charge_selector(f"how about the seat one?{mark}is this month's renewal refundable?)") == (
        "desc:seats|~months_ago:0"
    )
    # The earlier id gives way to new words describing a charge; with none, the earlier request decides.
    assert charge_selector(f"what about the seats?{mark}is CH-2100 refundable?)") == "desc:seats"
    assert charge_selector(f"yes, go ahead{mark}could the extra seats be refunded?)") == "desc:seats"
    assert charge_selector(f"sure{mark}refund CH-2100)") == "charge:CH-2100"
    assert charge_selector(f"the duplicate then{mark}is last month's renewal refundable?)") == "auto"
    # The refund compares the follow-up's own amount, as the selector reads it.
    assert request_amounts(f"and the $36 one?{mark}can the $270 renewal be refunded?)") == [36.0]
    assert request_amounts(f"ok do it{mark}can the $270 renewal be refunded?)") == [270.0]


# --- matching against charges (a fixed clock, across a year boundary) ----------------------------

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
RENEWAL = "Team plan, 4 seats, monthly renewal"


def charge(cid: str, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "invoice_id": extra.pop("invoice_id", f"INV-{cid}"),
        "amount_cents": extra.pop("amount_cents", 10000),
        "status": extra.pop("status", "succeeded"),
        "description": extra.pop("description", RENEWAL),
        "created_at": when.strftime("%Y-%m-%d %H:%M:%S"),
        "refund_id": extra.pop("refund_id", None),
        "refunded_at": extra.pop("refunded_at", None),
        **extra,
    }


def at(year: int, month: int, day: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, 0, minute, tzinfo=UTC)


@pytest.fixture
def account() -> SimpleNamespace:
    """Renewals on the 1st of November, December (charged twice) and January; 3 seats bought on
    7 January; an onboarding fee long ago. Newest first, as `load_charges` returns them."""
    charges = [
        charge("CH-9", at(2027, 1, 7), amount_cents=2700, description="3 extra Team seats, prorated"),
        charge("CH-8", at(2027, 1, 1)),
        charge("CH-7", at(2026, 12, 1, 4), invoice_id="INV-DEC"),
        charge("CH-6", at(2026, 12, 1), invoice_id="INV-DEC"),
        charge("CH-5", at(2026, 11, 1)),
        charge("CH-4", at(2025, 12, 1)),
        charge("CH-3", at(2025, 9, 15), amount_cents=50000, description="Enterprise onboarding fee"),
    ]
    return SimpleNamespace(charges=charges, duplicates=find_duplicates(charges))


def picked(account: SimpleNamespace, text: str) -> str | None:
    found = match_charges(account.charges, account.duplicates, charge_selector(text), NOW).charge
    return found["id"] if found else None


def test_descriptions_match_what_each_charge_was_for(account: SimpleNamespace) -> None:
    assert charge_tags(account.charges[0]) == {"seats"}
    assert charge_tags(account.charges[1]) == {"renewal"}
    assert picked(account, "refund the extra seats") == "CH-9"
    assert picked(account, "is the onboarding fee refundable?") == "CH-3"
    # Four renewals; only the December duplicate and January's are refundable; one is the duplicate.
    match = match_charges(account.charges, account.duplicates, charge_selector("refund the renewal"), NOW)
    assert match.charge and match.charge["id"] == "CH-7" and "duplicate" in match.note


def test_month_names_are_the_latest_such_month_of_the_charges(account: SimpleNamespace) -> None:
    # December is last year's (2026), not 2025's nor a future one; the two December charges are one
    # invoice charged twice: the duplicate is the one a refund can be for.
    assert picked(account, "can our december payment come back?") == "CH-7"
    assert picked(account, "the first december payment") == "CH-6"
    assert picked(account, "the second december payment") == "CH-7"
    assert picked(account, "the january renewal") == "CH-8"
    assert picked(account, "the november renewal") == "CH-5"
    assert picked(account, "the renewal from this month") == "CH-8"
    assert picked(account, "last month's renewal") == "CH-7"
    assert picked(account, "the renewal on the 1st") == "CH-8", "the latest 1st with a charge"
    assert picked(account, "the seats we bought 3 days ago") == "CH-9"
    assert picked(account, "the $27 charge from a few days ago") == "CH-9"
    assert picked(account, "my previous payment") == "CH-8"
    assert picked(account, "refund the renewal, not this month's") == "CH-7"


def test_nothing_that_fits_names_no_charge_and_says_what_could_be(account: SimpleNamespace) -> None:
    none = match_charges(
        account.charges, account.duplicates, charge_selector("the third november charge"), NOW
    )
    assert none.charge is None and [c["id"] for c in none.fits] == ["CH-5"]
    seats_in_october = match_charges(
        account.charges, account.duplicates, charge_selector("refund the seats from october"), NOW
    )
    assert seats_in_october.charge is None
    assert {c["id"] for c in seats_in_october.choices} == {"CH-9", "CH-8", "CH-7"}


def test_several_refundable_charges_and_nothing_to_tell_them_apart_asks_which() -> None:
    charges = [
        charge("CH-2", at(2027, 1, 7), amount_cents=2700, description="3 extra Team seats, prorated"),
        charge("CH-1", at(2027, 1, 1)),
    ]
    match = match_charges(charges, {}, charge_selector("refund this month's charge"), NOW)
    assert match.charge is None and match.ambiguous and [c["id"] for c in match.choices] == ["CH-2", "CH-1"]
    # No duplicate and nothing said: no charge, the refundable ones are the choices.
    vague = match_charges(charges, {}, charge_selector("refund my charge please"), NOW)
    assert vague.charge is None and [c["id"] for c in vague.choices] == ["CH-2", "CH-1"]
    # One of the two named: that one.
    assert match_charges(charges, {}, charge_selector("the seats one"), NOW).charge == charges[0]


def test_soft_parts_give_way_when_with_them_nothing_fits(account: SimpleNamespace) -> None:
    mark = " (follow-up to: "
    # "the seat one" after "this month's renewal": the seats were bought this month too.
    assert picked(account, f"and the seat one?{mark}is this month's renewal refundable?)") == "CH-9"
    # After "last month's renewal" the seats (bought this month) still are the ones meant.
    assert picked(account, f"and the seat one?{mark}is last month's renewal refundable?)") == "CH-9"
    assert picked(account, f"what about november?{mark}is the december renewal refundable?)") == "CH-5"


def test_the_refundable_shortcut_agrees_with_the_policy(account: SimpleNamespace) -> None:
    from capabilities.support_desk.billing import _refundable

    refundable = {c["id"] for c in _refundable(account.charges, account.duplicates, NOW)}
    by_policy = {
        c["id"] for c in account.charges if refund_eligibility(c, account.duplicates.get(c["id"]), NOW)[0]
    }
    assert refundable == by_policy == {"CH-9", "CH-8", "CH-7"}


# --- the seeded database (dates relative to today) -------------------------------------------------


def month_name(months_back: int) -> str:
    now = now_utc()
    index = now.year * 12 + now.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1).strftime("%B")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[SimpleNamespace]:
    db = tmp_path / "support.sqlite"
    options = {"db": str(db)}
    yield SimpleNamespace(account=Account(options), billing=Billing(options), refund=Refund(options), db=db)


def candidate(seeded: SimpleNamespace, text: str, customer: str) -> dict[str, Any]:
    out = asyncio.run(run(seeded.billing, text, context={"customer_id": customer}))
    return dict(out["refund_candidate"]) | {"summary": out["summary"]}


def test_seeded_charges_by_month_name_day_and_description(seeded: SimpleNamespace) -> None:
    this, last, before = month_name(0), month_name(1), month_name(2)
    assert candidate(seeded, f"can Aisha have her {this} renewal back?", "C-1007")["charge_id"] == "CH-2063"
    assert candidate(seeded, f"and her {last.lower()} renewal?", "C-1007")["charge_id"] == "CH-2062"
    assert candidate(seeded, f"is the {before} payment refundable?", "C-1007")["charge_id"] == "CH-2061"
    mei = candidate(seeded, "the renewal on the 1st was a mistake, can the $10 be refunded?", "C-1005")
    assert mei["charge_id"] == "CH-2043" and mei["eligible"]
    seats = candidate(seeded, "could the added seats be refunded?", "C-1004")
    assert seats["charge_id"] == "CH-2034" and seats["amount_cents"] == 3600 and seats["eligible"]
    assert (
        "Refund eligibility of CH-2034 ($36.00" in seats["summary"] and "extra Team seats" in seats["summary"]
    )
    # Three renewals; the only one the policy still refunds is this month's.
    renewal = candidate(seeded, "is Lukas's renewal refundable?", "C-1004")
    assert renewal["charge_id"] == "CH-2033" and "the only one of 3 renewal charges" in renewal["picked"]
    # A retry after a declined charge: the retry, never the failed one.
    assert candidate(seeded, f"refund the {this} renewal", "C-1006")["charge_id"] == "CH-2054"
    assert candidate(seeded, "refund the declined one", "C-1006")["eligible"] is False


def test_seeded_vague_request_without_a_duplicate_lists_the_refundable_charges(
    seeded: SimpleNamespace,
) -> None:
    vague = candidate(seeded, "refund my charge please", "C-1004")
    assert vague["charge_id"] is None and vague["choices"] == ["CH-2034", "CH-2033"]
    assert "CH-2034 ($36.00" in vague["reason"] and "CH-2033 ($270.00" in vague["reason"]
    assert "which one do you mean" in vague["reason"]
    # With a duplicate on the account, nothing said still means the duplicate (as before).
    assert candidate(seeded, "refund my charge please", "C-1002")["charge_id"] == "CH-2013"


def test_a_question_about_a_described_charge_says_what_it_was_for(seeded: SimpleNamespace) -> None:
    out = candidate(seeded, "that 36 dollar thing from three days ago, what is it?", "C-1004")
    assert (
        "CH-2034 ($36.00 on" in out["summary"] and "was for: 2 extra Team seats, prorated" in out["summary"]
    )
    with SupportDB(seeded.db).connect() as conn:
        charges = load_charges(conn, "C-1004")
    found, wanted = described_charges(charges, charge_selector("the onboarding fee"), now_utc()) or ([], "")
    assert found == [] and wanted == "onboarding fee"


def test_the_refund_check_compares_the_same_selector(seeded: SimpleNamespace) -> None:
    text = "could the extra seats be refunded? I'm lukas.becker@fjordsoft.de"
    context = asyncio.run(checked(seeded, text))
    inputs = seeded.refund.parse_inputs(text, {}, context)
    assert inputs.check() is None and inputs.candidate and inputs.candidate["charge_id"] == "CH-2034"
    question = seeded.refund.needs_approval(inputs, {"mode": "always"})
    assert question and "Refund $36.00 to Lukas Becker (C-1004) for charge CH-2034" in question
    # Another request (the renewal) does not use the seats' candidate.
    other = seeded.refund.parse_inputs(
        "could the renewal be refunded? I'm lukas.becker@fjordsoft.de", {}, context
    )
    assert other.candidate is None and other.check() is not None
    # A vague request: nothing to ask, nothing written; the answer lists the charges.
    vague = "refund my charge, I'm lukas.becker@fjordsoft.de"
    out = asyncio.run(run(seeded.refund, vague, context=asyncio.run(checked(seeded, vague))))
    assert out["refund"]["status"] == "no_charge" and "CH-2033 ($270.00" in out["summary"]
    assert rows(seeded.db, "SELECT count(*) FROM refunds") == [(1,)], "only the seeded refund"


# --- the graph, shipped registry -----------------------------------------------------------------


@pytest.fixture
def desk(tmp_path: Path, shared_model_cache: Path) -> Desk:
    """A desk on its own database: each test's refunds are its own."""
    registry = shipped_registry(tmp_path / "support.sqlite")
    settings = Settings.offline(tmp_path, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="sqlite")
    return Desk(graph, registry, settings, tmp_path / "support.sqlite")


def answer(state: dict[str, Any]) -> str:
    return str(state["messages"][-1].content)


def refunds(desk: Desk, customer: str) -> list[tuple[Any, ...]]:
    return rows(desk.db, "SELECT charge_id FROM refunds WHERE customer_id = ? ORDER BY id", customer)


def test_the_extra_seats_charge_is_asked_about_by_id_and_amount_and_refunded_once(desk: Desk) -> None:
    desk.ask("could you refund the extra seats charge for lukas.becker@fjordsoft.de?", "seats")
    (payload,) = desk.pending("seats")
    (step,) = payload["steps"]
    assert "Refund $36.00 to Lukas Becker (C-1004) for charge CH-2034" in step["question"]
    assert "(2 extra Team seats, prorated)?" in step["question"], "what it was for, as the request named it"
    assert refunds(desk, "C-1004") == [("CH-2031",)], "nothing is written before the yes"
    done = desk.resume(True, "seats")
    assert "Refunded $36.00" in answer(done) and "CH-2034" in answer(done)
    assert refunds(desk, "C-1004") == [("CH-2031",), ("CH-2034",)]
    # Asked again as an instruction ($36 is under the approval threshold): no second refund.
    again = desk.ask("refund the extra seats charge for lukas.becker@fjordsoft.de", "seats-again")
    assert not desk.pending("seats-again")
    assert "already refunded" in answer(again)
    assert refunds(desk, "C-1004") == [("CH-2031",), ("CH-2034",)]


def test_this_months_renewal_is_the_current_months_charge(desk: Desk) -> None:
    desk.ask("refund this month's renewal for c1007", "renewal")
    (payload,) = desk.pending("renewal")
    question = payload["steps"][0]["question"]
    assert "Refund $80.00 to Aisha Bello (C-1007) for charge CH-2063" in question
    done = desk.resume(True, "renewal")
    assert "Refunded $80.00 (approved)" in answer(done) and refunds(desk, "C-1007") == [("CH-2063",)]


def test_a_vague_refund_without_a_duplicate_asks_which_listing_the_charges(desk: Desk) -> None:
    state = desk.ask("refund my charge, I'm lukas.becker@fjordsoft.de", "vague")
    assert not desk.pending("vague"), "nothing to approve: no charge was picked"
    text = answer(state)
    assert "CH-2034 ($36.00" in text and "CH-2033 ($270.00" in text and "which one do you mean" in text
    assert refunds(desk, "C-1004") == [("CH-2031",)]


def test_a_follow_up_names_the_charge_by_month_or_description(desk: Desk) -> None:
    last, before = month_name(1), month_name(2)
    state = desk.ask(f"is the {last.lower()} charge on lukas.becker@fjordsoft.de refundable?", "months")
    assert "Refund eligibility of CH-2032" in answer(state)
    state = desk.ask(f"and the {before.lower()} one?", "months")
    assert "Refund eligibility of CH-2031" in answer(state) and "already refunded" in answer(state)
    state = desk.ask("what about the seats charge?", "months")
    assert "Refund eligibility of CH-2034" in answer(state)
    assert refunds(desk, "C-1004") == [("CH-2031",)]
