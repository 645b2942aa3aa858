"""Mutation-check cases for billing's charge selection (capabilities/support_desk/billing.py): which
charge a refund would touch (`match_charges` and its parts), and the refund billing offers
(`suggested_refund`). `./scripts/mutants charges`, session 17.

Pure and fast on purpose: charges written here, a fixed clock, no database and no graph (mutmut runs
every test that reaches a mutated function for every mutant). The selector's reading of words and the
seeded database are in tests/support_desk/test_charge_selection.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from capabilities.support_desk.billing import (
    REFUND_WINDOW_DAYS,
    ChargeMatch,
    _filter,
    _month_back,
    _newest_month,
    _refundable,
    charge_selector,
    charge_tags,
    match_charges,
    parse_selector,
    pick_charge,
    refund_candidate,
    refund_eligibility,
    request_amounts,
    suggested_refund,
)
from capabilities.support_desk.refund import RefundInputs

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)  # a Wednesday
RENEWAL = "Team plan, monthly renewal"
SEATS = "5 extra Team seats, prorated"


def ch(cid: str, when: datetime | str, **extra: Any) -> dict[str, Any]:
    if isinstance(when, str):
        when = datetime.fromisoformat(when).replace(tzinfo=UTC)
    return {
        "id": cid,
        "invoice_id": extra.pop("invoice_id", f"INV-{cid}"),
        "amount_cents": extra.pop("amount_cents", 9900),
        "status": extra.pop("status", "succeeded"),
        "description": extra.pop("description", RENEWAL),
        "created_at": when.strftime("%Y-%m-%d %H:%M:%S"),
        "refund_id": extra.pop("refund_id", None),
        "refunded_at": extra.pop("refunded_at", None),
        **extra,
    }


def ago(days: int, hours: int = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def ids(charges: Any) -> list[str]:
    return [c["id"] for c in charges]


# --- the parts of a selector ---------------------------------------------------------------------


def test_a_selector_splits_into_stated_soft_and_set_aside_parts() -> None:
    assert parse_selector("desc:renewal|~month:2|-months_ago:0||day:1") == (
        {"desc": "renewal", "day": "1"},
        {"month": "2"},
        {"months_ago": "0"},
    )
    assert parse_selector("amount:12.50") == ({"amount": "12.50"}, {}, {})
    assert parse_selector("") == ({}, {}, {})
    assert parse_selector("days_ago:2-4") == ({"days_ago": "2-4"}, {}, {})


@pytest.mark.parametrize(
    ("description", "status", "tags"),
    [
        ("Team plan, monthly renewal", "succeeded", {"renewal"}),
        ("Annual subscription", "succeeded", {"renewal"}),
        ("Yearly plan", "succeeded", {"renewal"}),
        ("Team plan renewal, 8 seats", "succeeded", {"renewal"}),  # a renewal that names its seats
        ("3 extra seats", "succeeded", {"seats"}),
        ("One seat added", "succeeded", {"seats"}),
        ("Enterprise onboarding fee", "succeeded", {"onboarding"}),
        ("Monthly renewal (retried)", "succeeded", {"renewal", "retry"}),
        ("Renewal retry", "succeeded", {"renewal", "retry"}),
        ("Monthly renewal", "failed", {"renewal", "failed"}),
        ("Card declined: seats", "pending", {"seats", "failed"}),
        ("Seatbelt", "succeeded", set()),
        (None, "succeeded", set()),
    ],
)
def test_what_a_charge_was_for(description: str | None, status: str, tags: set[str]) -> None:
    assert charge_tags({"description": description, "status": status}) == tags


def test_months_back_cross_the_year() -> None:
    assert _month_back(NOW, 0) == (2027, 3)
    assert _month_back(NOW, 2) == (2027, 1)
    assert _month_back(NOW, 3) == (2026, 12)
    assert _month_back(NOW, 15) == (2025, 12)


def test_the_newest_month_of_the_charges() -> None:
    assert _newest_month([]) == []
    found = [ch("a", "2026-12-01"), ch("b", "2027-01-15"), ch("c", "2027-01-01"), ch("d", "2026-01-20")]
    assert ids(_newest_month(found)) == ["b", "c"]
    assert ids(_newest_month([ch("x", "2025-05-01"), ch("y", "2026-04-30")])) == ["y"], "the year counts"


# --- the charges each part fits -------------------------------------------------------------------


def test_an_amount_fits_to_the_cent() -> None:
    charges = [
        ch("a", ago(1), amount_cents=29),
        ch("b", ago(2), amount_cents=30),
        ch("c", ago(3), amount_cents=4850),
    ]
    assert ids(_filter(charges, {"amount": "0.29"}, NOW)) == ["a"]
    assert ids(_filter(charges, {"amount": "48.50"}, NOW)) == ["c"]
    assert ids(_filter(charges, {}, NOW)) == ["a", "b", "c"]


def test_a_description_fits_the_charges_tagged_with_it() -> None:
    charges = [ch("a", ago(1), description=SEATS), ch("b", ago(2)), ch("c", ago(3), description="onboarding")]
    assert ids(_filter(charges, {"desc": "seats"}, NOW)) == ["a"]
    assert ids(_filter(charges, {"desc": "renewal"}, NOW)) == ["b"]


def test_months_ago_is_a_calendar_month() -> None:
    charges = [
        ch("mar", "2027-03-01"),
        ch("feb-end", "2027-02-28 23:00"),
        ch("feb", "2027-02-01"),
        ch("dec", "2026-12-31"),
    ]
    assert ids(_filter(charges, {"months_ago": "0"}, NOW)) == ["mar"]
    assert ids(_filter(charges, {"months_ago": "1"}, NOW)) == ["feb-end", "feb"]
    assert ids(_filter(charges, {"months_ago": "3"}, NOW)) == ["dec"]
    assert ids(_filter([ch("old", "2026-02-01")], {"months_ago": "1"}, NOW)) == [], "not last year's"


def test_a_month_by_name_is_its_latest_past_occurrence() -> None:
    charges = [
        ch("dec-next", "2027-12-01"),
        ch("feb", "2027-02-01"),
        ch("dec", "2026-12-01"),
        ch("dec-old", "2025-12-01"),
    ]
    assert ids(_filter(charges, {"month": "12"}, NOW)) == ["dec"], "not a future one, not 2025's"
    assert ids(_filter(charges, {"month": "2"}, NOW)) == ["feb"]
    # Only a future one of that month: that one (nothing else could be meant).
    assert ids(_filter([ch("dec-next", "2027-12-01")], {"month": "12"}, NOW)) == ["dec-next"]
    # Exactly now counts as past.
    assert ids(_filter([ch("now", NOW), ch("old", "2026-03-01")], {"month": "3"}, NOW)) == ["now"]


def test_a_day_of_the_month_is_the_latest_such_day_unless_a_month_is_said() -> None:
    charges = [
        ch("mar1", "2027-03-01"),
        ch("feb2", "2027-02-02"),
        ch("feb1", "2027-02-01"),
        ch("jan1", "2027-01-01"),
    ]
    assert ids(_filter(charges, {"day": "1"}, NOW)) == ["mar1"]
    assert ids(_filter(charges, {"day": "1", "month": "1"}, NOW)) == ["jan1"]
    assert ids(_filter(charges, {"day": "1", "months_ago": "1"}, NOW)) == ["feb1"]
    assert ids(_filter(charges, {"day": "2"}, NOW)) == ["feb2"]


def test_days_ago_is_an_inclusive_range_of_calendar_days() -> None:
    charges = [ch(f"d{n}", ago(n, hours=0)) for n in (0, 1, 2, 3, 4, 5)]
    assert ids(_filter(charges, {"days_ago": "2-4"}, NOW)) == ["d2", "d3", "d4"]
    assert ids(_filter(charges, {"days_ago": "0-0"}, NOW)) == ["d0"]
    # Calendar days, not 24-hour spans: 11 pm yesterday is one day ago at noon today.
    assert ids(_filter([ch("late", "2027-03-09 23:00")], {"days_ago": "1-1"}, NOW)) == ["late"]


def test_weeks_ago_is_an_iso_week() -> None:
    # NOW is Wednesday 10 March 2027: this week is 8-14 March, last week 1-7 March.
    charges = [
        ch("mon", "2027-03-08"),
        ch("sun", "2027-03-07"),
        ch("mon-1", "2027-03-01"),
        ch("sun-2", "2027-02-28"),
    ]
    assert ids(_filter(charges, {"weeks_ago": "0"}, NOW)) == ["mon"]
    assert ids(_filter(charges, {"weeks_ago": "1"}, NOW)) == ["sun", "mon-1"]


# --- what the policy still refunds ----------------------------------------------------------------


def test_the_refund_window_and_the_other_rules() -> None:
    charges = [
        ch("in", ago(30)),  # the last day of the 30-day window
        ch("out", ago(31)),
        ch("dup-old", ago(200)),  # a duplicate: always
        ch("refunded", ago(2), refund_id=7),
        ch("failed", ago(2), status="failed"),
        ch("pending", ago(2), status="pending"),
    ]
    assert REFUND_WINDOW_DAYS == 30
    assert ids(_refundable(charges, {"dup-old": "x", "refunded": "x", "failed": "x"}, NOW)) == [
        "in",
        "dup-old",
    ]
    assert refund_eligibility(charges[0], None, NOW)[0] is True
    assert refund_eligibility(charges[1], None, NOW)[0] is False


# --- choosing the charge --------------------------------------------------------------------------


def test_an_id_names_one_charge() -> None:
    charges = [ch("K-2", ago(1)), ch("K-1", ago(40))]
    assert match_charges(charges, {}, "charge:K-1", NOW) == ChargeMatch(charges[1], "charge K-1")
    assert match_charges(charges, {}, "charge:K-9", NOW) == ChargeMatch(None, "charge K-9")


def test_the_latest_is_the_newest_successful_charge() -> None:
    charges = [ch("K-3", ago(1), status="failed"), ch("K-2", ago(5)), ch("K-1", ago(9))]
    assert match_charges(charges, {}, "latest", NOW) == ChargeMatch(charges[1], "latest charge")
    assert match_charges(charges[:1], {}, "latest", NOW) == ChargeMatch(None, "latest charge")


def test_a_duplicate_is_the_newest_one_not_refunded_yet() -> None:
    charges = [ch("K-4", ago(3), refund_id=1), ch("K-3", ago(10)), ch("K-2", ago(40)), ch("K-1", ago(41))]
    duplicates = {"K-4": "K-0", "K-3": "K-0", "K-2": "K-1"}
    assert match_charges(charges, duplicates, "auto", NOW) == ChargeMatch(charges[1], "duplicate charge")
    only_refunded = {"K-4": "K-0"}
    assert match_charges(charges, only_refunded, "auto", NOW).charge == charges[0], "says: already refunded"
    # No duplicate: no charge; the charges that could be refunded are the choices.
    assert match_charges(charges, {}, "auto", NOW) == ChargeMatch(
        None, "duplicate charge", choices=(charges[1],)
    )


def test_one_charge_that_fits_is_taken() -> None:
    charges = [ch("K-2", ago(1), description=SEATS, amount_cents=4500), ch("K-1", ago(9))]
    assert match_charges(charges, {}, "desc:seats", NOW) == ChargeMatch(charges[0], "seat purchase charge")
    # Even when the policy refuses it (the answer says why).
    old = [ch("K-9", ago(90), description=SEATS), ch("K-1", ago(9))]
    assert match_charges(old, {}, "desc:seats", NOW) == ChargeMatch(old[0], "seat purchase charge")


def test_nothing_fits_names_none_and_lists_what_could_be_refunded() -> None:
    charges = [ch("K-3", ago(1)), ch("K-2", ago(60)), ch("K-1", ago(2), refund_id=4)]
    assert match_charges(charges, {}, "desc:onboarding", NOW) == ChargeMatch(
        None, "onboarding fee", choices=(charges[0],)
    )


def test_a_charge_set_aside_is_never_the_one_picked() -> None:
    charges = [ch("mar", "2027-03-01"), ch("feb", "2027-02-01")]
    found = match_charges(charges, {}, "desc:renewal|-months_ago:0", NOW)
    assert found == ChargeMatch(charges[1], "renewal charge")
    assert match_charges(charges, {}, "desc:renewal|-desc:renewal", NOW).charge is None


def test_soft_parts_narrow_only_when_something_still_fits() -> None:
    charges = [ch("seats", "2027-03-09", description=SEATS), ch("mar", "2027-03-01"), ch("feb", "2027-02-01")]
    # "and the renewal? (follow-up to: ... last month ...)": last month's renewal.
    assert match_charges(charges, {}, "desc:renewal|~months_ago:1", NOW) == ChargeMatch(
        charges[2], "renewal charge last month"
    )
    # "and the seats? (follow-up to: ... last month ...)": no seats last month, the soft part gives way.
    assert match_charges(charges, {}, "desc:seats|~months_ago:1", NOW) == ChargeMatch(
        charges[0], "seat purchase charge"
    )


def test_failed_charges_only_when_nothing_else_fits() -> None:
    charges = [ch("retry", ago(5), description="renewal, retried"), ch("declined", ago(6), status="failed")]
    assert match_charges(charges, {}, "desc:renewal", NOW).charge == charges[0]
    assert match_charges(charges, {}, "desc:failed", NOW).charge == charges[1]
    both_failed = [ch("f2", ago(5), status="failed"), ch("f1", ago(6), status="failed")]
    assert match_charges(both_failed, {}, "desc:renewal", NOW) == ChargeMatch(
        both_failed[0],
        "renewal charge",
        "the newest of 2 renewal charges, none of which can be refunded",
    )


def test_positions_count_the_charges_that_fit() -> None:
    charges = [ch("c", ago(1)), ch("b", ago(5)), ch("a", ago(9)), ch("s", ago(2), description=SEATS)]
    match = match_charges(charges, {}, "desc:renewal|pos:latest", NOW)
    assert match == ChargeMatch(charges[0], "latest renewal charge", "the latest of 3 renewal charges")
    match = match_charges(charges, {}, "desc:renewal|pos:previous", NOW)
    assert match == ChargeMatch(
        charges[1], "second latest renewal charge", "the second latest of 3 renewal charges"
    )
    match = match_charges(charges, {}, "desc:renewal|pos:first", NOW)
    assert match == ChargeMatch(charges[2], "first renewal charge", "the first of 3 renewal charges")
    assert match_charges(charges, {}, "desc:renewal|days_ago:4-10|nth:2", NOW) == ChargeMatch(
        charges[1], "2nd renewal charge 4 to 10 days ago", "the 2nd of 2 renewal charges 4 to 10 days ago"
    )
    assert match_charges(charges, {}, "desc:renewal|days_ago:4-10|nth:1", NOW).charge == charges[2]
    # One that fits: the position says nothing more, and no note.
    assert match_charges(charges, {}, "desc:seats|pos:latest", NOW) == ChargeMatch(
        charges[3], "latest seat purchase charge"
    )
    assert match_charges(charges, {}, "desc:seats|pos:first", NOW).charge == charges[3]


def test_a_position_past_the_charges_that_fit_picks_none() -> None:
    charges = [ch("c", ago(1)), ch("b", ago(5)), ch("s", ago(2), description=SEATS)]
    assert match_charges(charges, {}, "desc:seats|pos:previous", NOW) == ChargeMatch(
        None, "second latest seat purchase charge", fits=(charges[2],)
    )
    assert match_charges(charges, {}, "desc:renewal|days_ago:0-10|nth:3", NOW) == ChargeMatch(
        None, "3rd renewal charge 0 to 10 days ago", fits=(charges[0], charges[1])
    )
    assert match_charges(charges, {}, "desc:renewal|days_ago:0-10|nth:2", NOW).charge == charges[0]


def test_of_several_the_only_refundable_one() -> None:
    charges = [ch("new", ago(3)), ch("old", ago(45)), ch("older", ago(75))]
    assert match_charges(charges, {}, "desc:renewal", NOW) == ChargeMatch(
        charges[0], "renewal charge", "the only one of 3 renewal charges that can still be refunded"
    )
    # Refunded already: not refundable; the other one is.
    done = [ch("new", ago(3), refund_id=2), ch("mid", ago(10))]
    assert match_charges(done, {}, "desc:renewal", NOW).charge == done[1]


def test_of_several_refundable_ones_the_only_duplicate() -> None:
    charges = [ch("new", ago(3)), ch("dup", ago(12)), ch("orig", ago(12, hours=1))]
    assert match_charges(charges, {"dup": "orig"}, "desc:renewal", NOW) == ChargeMatch(
        charges[1], "renewal charge", "the duplicate among 3 renewal charges"
    )


def test_several_refundable_and_nothing_to_tell_them_apart_asks_which() -> None:
    charges = [ch("new", ago(3)), ch("mid", ago(12)), ch("old", ago(60))]
    assert match_charges(charges, {}, "desc:renewal", NOW) == ChargeMatch(
        None, "renewal charges", choices=(charges[0], charges[1]), ambiguous=True
    )
    # Two duplicates are no better: still ask.
    two = match_charges(charges, {"new": "x", "mid": "y"}, "desc:renewal", NOW)
    assert two.charge is None and two.ambiguous


def test_none_refundable_the_duplicate_then_one_not_refunded() -> None:
    charges = [ch("a", ago(50), refund_id=1), ch("b", ago(60)), ch("c", ago(70), refund_id=2)]
    assert match_charges(charges, {}, "desc:renewal", NOW).charge == charges[1], "not refunded first"
    refunded_dups = [ch("a", ago(50)), ch("b", ago(60), refund_id=3)]
    assert match_charges(refunded_dups, {"b": "z"}, "desc:renewal", NOW).charge == refunded_dups[1]


def test_the_clock_defaults_to_now() -> None:
    today = datetime.now(UTC)
    charges = [ch("today", today), ch("old", today - timedelta(days=90))]
    assert match_charges(charges, {}, "days_ago:0-0").charge == charges[0]
    assert match_charges(charges, {}, "auto").choices == (charges[0],)


# --- the refund billing offers --------------------------------------------------------------------

CANDIDATE = {
    "charge_id": "K-7",
    "eligible": True,
    "duplicate_of": None,
    "amount_cents": 4850,
    "customer_name": "Priya Nair",
    "customer_id": "C-1108",
    "charged_at": "2027-03-01 00:00:00",
}


def test_billing_offers_an_eligible_refund_the_request_asked_about() -> None:
    offer = suggested_refund("could the march renewal be refunded?", CANDIDATE)
    assert offer == {
        "capability": "refund",
        "question": "I can refund $48.50 to Priya Nair (C-1108) for charge K-7 of 01 Mar 2027.",
    }
    duplicate = suggested_refund("why two payments in march?", {**CANDIDATE, "duplicate_of": "K-6"})
    assert duplicate is not None
    assert (
        duplicate["question"]
        == "I can refund $48.50 to Priya Nair (C-1108) for duplicate charge K-7 of 01 Mar 2027."
    )


@pytest.mark.parametrize(
    ("query", "changes"),
    [
        ("could the march renewal be refunded?", {"eligible": False}),
        ("could the march renewal be refunded?", {"charge_id": None}),
        ("could the march renewal be refunded?", {"charge_id": ""}),
        ("why two payments in march?", {"eligible": False, "duplicate_of": "K-6"}),
        ("what was the march payment for?", {}),  # neither a duplicate nor a question about refunds
    ],
)
def test_no_offer_without_an_eligible_charge_and_a_reason_to_offer(
    query: str, changes: dict[str, Any]
) -> None:
    assert suggested_refund(query, {**CANDIDATE, **changes}) is None


def test_the_amounts_a_request_states() -> None:
    mark = " (follow-up to: "
    assert request_amounts(f"and the $12.40 one?{mark}is the $99 renewal refundable?)") == [12.40]
    assert request_amounts(f"yes please{mark}is the $99 renewal refundable?)") == [99.0]
    assert request_amounts("refund $5 and 7 dollars") == [5.0, 7.0]
    assert request_amounts("refund CH-2033 please") == []


def test_a_follow_up_of_a_follow_up_states_its_own_amount_only() -> None:
    mark = " (follow-up to: "
    nested = f"and the $12 one?{mark}what about the $30 one?{mark}is the $99 renewal refundable?))"
    assert request_amounts(nested) == [12.0]
    assert request_amounts(
        f"yes do it{mark}what about the $30 one?{mark}is the $99 renewal refundable?))"
    ) == [
        30.0,
        99.0,
    ]


# --- the candidate and the refund's check of it ----------------------------------------------------

CUSTOMER = {"id": "C-1108", "name": "Priya Nair"}


def test_pick_charge_reads_the_clock_it_is_given() -> None:
    charges = [ch("K-2", NOW), ch("K-1", ago(400))]
    assert pick_charge(charges, {}, "days_ago:0-0", NOW) == charges[0]
    assert pick_charge(charges, {}, "days_ago:400-400", NOW) == charges[1]


def test_a_candidate_with_no_charge_says_why() -> None:
    charges = [ch("K-2", ago(3), amount_cents=4850), ch("K-1", ago(70))]
    by_amount = refund_candidate(CUSTOMER, charges, {}, "amount:12.00", NOW)
    assert by_amount["charge_id"] is None and by_amount["eligible"] is False
    assert by_amount["reason"] == (
        "no charge of $12.00 on this account; the charge that could still be refunded is "
        "K-2 ($48.50 on 07 Mar 2027, Team plan, monthly renewal): is that the one you mean"
    )
    nothing_refundable = refund_candidate(CUSTOMER, charges[1:], {}, "amount:12.00", NOW)
    assert nothing_refundable["reason"] == "no charge of $12.00 on this account"
    by_id = refund_candidate(CUSTOMER, charges, {}, "charge:CH-9", NOW)
    assert by_id["reason"] == "no charge CH-9 on this account" and by_id["choices"] == []
    # An amount with other words: the words are described, and the refundable charge offered.
    with_words = refund_candidate(CUSTOMER, charges, {}, "amount:12.00|desc:seats", NOW)
    assert with_words["reason"].startswith("no seat purchase charge of $12.00 on this account; the charge")
    assert with_words["choices"] == ["K-2"]
    picked = refund_candidate(CUSTOMER, charges, {}, "amount:48.50", NOW)
    assert picked["charge_id"] == "K-2" and picked["eligible"] is True and picked["amount_cents"] == 4850


def _refund_inputs(query: str, **extra: Any) -> RefundInputs:
    """Refund inputs whose candidate billing picked for this very request (same text and selector)."""
    charge_id = extra.get("charge_id")
    candidate = {
        "query": query,
        "selector": charge_selector(query, charge_id),
        "customer_id": "C-1108",
        "customer_name": "Priya Nair",
        "charge_id": "CH-7001",
        "amount_cents": 3000,
        "charged_at": "2027-03-01 00:00:00",
        "eligible": True,
        "reason": "it is 9 days old, within the 30-day refund window",
        "citation": "",
    }
    return RefundInputs(query=query, customer_id="C-1108", refund_candidate=candidate, **extra)


def test_the_refund_takes_a_plan_s_charge_only_when_the_request_names_it() -> None:
    assert _refund_inputs("refund CH-7001 please", charge_id="CH-7001").check() is None
    assert _refund_inputs("refund ch7001 please", charge_id="CH-7001").check() is None
    problem = _refund_inputs("refund the march renewal", charge_id="CH-7001").check()
    assert problem is not None and problem[0] == "not_named"
    not_an_id = _refund_inputs("refund CH-7001 please", charge_id="the duplicate").check()
    assert not_an_id is not None and not_an_id[0] == "not_named"


def test_the_refund_compares_the_plan_s_amount_when_the_request_states_several() -> None:
    # The plan's $30 is one the request states: the candidate of $30 is refunded, whatever else it says.
    assert _refund_inputs("refund the $30 charge, not the $45 one", amount=30.0).check() is None
    mismatch = _refund_inputs("refund the $30 charge, not the $45 one", amount=45.0).check()
    assert mismatch is not None and mismatch[0] == "amount_mismatch"


def test_last_week_seen_from_a_monday() -> None:
    monday = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    charges = [ch("mon", "2027-03-08"), ch("last-mon", "2027-03-01"), ch("sun-before", "2027-02-28")]
    assert ids(_filter(charges, {"weeks_ago": "1"}, monday)) == ["last-mon"]
    assert ids(_filter(charges, {"weeks_ago": "0"}, monday)) == ["mon"]


def test_the_previous_of_two_is_the_older_one() -> None:
    charges = [ch("new", ago(1)), ch("old", ago(5))]
    assert match_charges(charges, {}, "desc:renewal|pos:previous", NOW) == ChargeMatch(
        charges[1], "second latest renewal charge", "the second latest of 2 renewal charges"
    )


def test_a_failed_charge_that_fits_is_set_aside_for_the_successful_one() -> None:
    charges = [ch("retry", ago(5), description="renewal, retried"), ch("declined", ago(6), status="failed")]
    assert match_charges(charges, {}, "desc:renewal", NOW) == ChargeMatch(charges[0], "renewal charge")
