"""Follow-ups, round 9 (session 17): a turn that only swaps one value of the last request keeps that
request's need; "the <description> one" / "the one from <time>" picks an item the last answer listed;
a sound or filler before a hold-off does not turn the no and its reason into a request. Pure:
`resolve` with stand-in scorer readings that pull the other way (the words alone read as another
capability's) and the shipped registry's guides. New wordings, not copies of the development rows."""

from __future__ import annotations

import pytest

from graph.context.followups import resolve
from tests.test_followups_round8 import context, reads, topic

# --- a swap of one value keeps the need ------------------------------------------------------------

PLAN_QUESTION = topic(("knowledge_search", "does the starter plan include the audit log?"))


@pytest.mark.parametrize(
    "text",
    [
        "sorry, wrong plan: Team",
        "I meant Team not Starter",
        "oops, Team, not Starter",
        "make that Team",
        "uh sorry, wrong tier - Team",
        "not starter, Team",
    ],
)
def test_a_swap_of_the_plan_keeps_the_help_center_question(text: str) -> None:
    # The new value's words alone read as sales or account; the need is still the help-center one.
    for scorer in (reads("sales"), reads("account")):
        follow = resolve(text, PLAN_QUESTION, turn=2, **context(standalone=scorer))
        assert (follow.kind, follow.capabilities, follow.task) == (
            "correction",
            ["knowledge_search"],
            "does the Team plan include the audit log?",
        ), text


def test_a_swap_replaces_the_value_it_names_whatever_its_case() -> None:
    status = topic(("knowledge_search", "what's the Enterprise SLA for uptime?"))
    follow = resolve(
        "my bad, Team rather than Enterprise", status, turn=2, **context(standalone=reads("sales"))
    )
    assert (follow.capabilities, follow.task) == (["knowledge_search"], "what's the Team SLA for uptime?")


def test_a_swap_of_a_customer_keeps_the_billing_question() -> None:
    charges = topic(("billing", "what did we charge c-1004 in october?"))
    follow = resolve(
        "whoops, wrong customer: c-1007", charges, turn=2, **context(standalone=reads("account"))
    )
    assert (follow.kind, follow.capabilities, follow.task) == (
        "correction",
        ["billing"],
        "what did we charge c-1007 in october?",
    )


def test_a_swap_that_says_more_is_not_a_bare_swap() -> None:
    question = topic(("knowledge_search", "does the starter plan include the audit log?"))
    # More than a value: a request of its own, read as before (not rewritten into the old clause).
    follow = resolve(
        "sorry, wrong plan: how much would Team cost for 12 people",
        question,
        turn=2,
        **context(standalone=reads("sales")),
    )
    assert follow.task != "does the Team plan include the audit log?"


# --- "the <description> one" after a list ----------------------------------------------------------

CHARGES = topic(("billing", "can you list jane@acme.io's charges this quarter?"))
REFUNDABLE = topic(("billing", "are any of jane@acme.io's charges refundable?"))


@pytest.mark.parametrize(
    "text",
    [
        "what about the seat one?",
        "and the one from september?",
        "what was the annual one for?",
        "tell me about the $120 one",
        "and the one on the 3rd?",
    ],
)
def test_a_described_item_after_a_list_of_charges_stays_with_billing(text: str) -> None:
    # "seat", "annual", "$120" alone read as account words: the "one" is one of the charges listed.
    follow = resolve(text, CHARGES, turn=2, **context(standalone=reads("account")))
    assert follow.capabilities == ["billing"], text
    assert "jane@acme.io" in (follow.task or ""), text


def test_a_described_item_keeps_the_refund_question_it_follows() -> None:
    follow = resolve(
        "is the october one refundable as well?", REFUNDABLE, turn=2, **context(standalone=reads("refund"))
    )
    assert follow.capabilities == ["billing"]
    assert "refundable" in (follow.task or "") and "jane@acme.io" in (follow.task or "")
    # The classifier reads the words alone as billing: still the earlier request is attached.
    follow = resolve(
        "and the one from two months ago?", REFUNDABLE, turn=2, **context(standalone=reads("billing"))
    )
    assert follow.capabilities == ["billing"] and "jane@acme.io" in (follow.task or "")


# --- a filler before a hold-off ---------------------------------------------------------------------

ACCOUNT = topic(("account", "pull up the account for c-1005"))


@pytest.mark.parametrize(
    "text",
    [
        "hmm, hold off, let me double-check the seat count with Mara first",
        "uh, hold off - I'll ask him about the plan",
        "ok so hold off for now, I need to confirm the invoice with finance first",
        "actually, hold off, we'll sort the seats out ourselves",
    ],
)
def test_a_hold_off_after_a_filler_is_a_no_with_its_reason(text: str) -> None:
    # The reason's words alone read as account ("seat count", "plan"): it is the user's own next step.
    follow = resolve(text, ACCOUNT, turn=2, **context(standalone=reads("account")))
    assert (follow.kind, follow.capabilities) == ("switch", []), text
    assert follow.task is not None and "hold off" in follow.task, text


def test_a_hold_off_then_a_request_is_still_read_as_a_request() -> None:
    # "let me see ..." asks to be shown something: not the user's own step.
    follow = resolve(
        "hmm, hold off, let me see her recent charges first",
        ACCOUNT,
        turn=2,
        **context(standalone=reads("billing")),
    )
    assert (follow.kind, follow.task) != ("switch", "hold off")
