"""Support routing, precision (issue 19 item 5; session 16): capabilities selected next to the right
one that the request does not ask for. Each rule with a case where it fires and one where it must not.

The node's rules take calibrated clause rows (numpy, columns in `LABELS` order), as in
tests/test_support_round4.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.classifier.clauses import clause_spans, names_a_need
from graph.config.registry import Registry
from nodes.classifier import (
    _HYPOTHETICAL,
    clause_needs,
    context_of_how_to,
    foreign_clauses,
    narrates,
    our_how_to,
    owned_name,
    owns_others,
    read_as_other,
    told_not_asked,
    unclaimed,
)

ROOT = Path(__file__).resolve().parent.parent

LABELS = ["account", "billing", "incidents", "knowledge_search", "refund", "sales"]
HOW_TO = "knowledge_search"


def row(**conf: float) -> np.ndarray:
    """A clause's calibrated confidences: the named ones, 1e-4 for the rest."""
    return np.array([conf.get(n, 1e-4) for n in LABELS])


def rows_of(task: str, *confs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    spans = clause_spans(task)
    pieces = [task[a:b] for (a, b), need in zip(spans, names_a_need(task, spans), strict=True) if need]
    assert len(pieces) == len(confs), pieces
    return list(zip(pieces, confs, strict=True))


# -- a capability is not selected from a story told around another need ---------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "We were promised the setup would be free",
        "we sync invoices through your API every night",
        "I inherited the admin role from a colleague last week",
        "they plan the payments around it",
    ],
)
def test_a_statement_with_a_subject_narrates(piece: str) -> None:
    assert narrates(piece)


@pytest.mark.parametrize(
    "piece",
    [
        "how do we rotate the API key",  # a how-to
        "is the API down",  # a question
        "please send the invoice",  # an imperative
        "If we moved to annual billing",  # a hypothetical
        "Say we removed three seats",  # a hypothetical, "say ..."
        "plus instructions to enable SSO",  # a noun phrase in a list names a need
        "I wonder if you could look up our renewal date",  # a request inside a statement
        "we want the money back for the double charge",
        "our CFO is asking whether the second charge is a mistake",
    ],
)
def test_a_question_a_hypothetical_or_a_list_item_does_not_narrate(piece: str) -> None:
    assert not narrates(piece)


def test_say_we_opens_a_hypothetical() -> None:
    assert _HYPOTHETICAL.search("Say we cancel mid-month: is the rest paid back?")
    assert _HYPOTHETICAL.search("let's say I downgrade tomorrow")
    assert not _HYPOTHETICAL.search("they say we owe more than last month")


def test_the_help_centre_winning_only_a_story_is_dropped() -> None:
    task = "We were promised the setup would be free, yet there is a charge on our card"
    rows = rows_of(task, row(knowledge_search=0.99, billing=0.01), row(billing=0.999))
    ranked = [("billing", 0.999), ("knowledge_search", 0.99)]
    chosen = {"billing", "knowledge_search"}
    assert told_not_asked(task, rows, LABELS, LABELS, chosen, ranked, HOW_TO) == {HOW_TO}


def test_the_help_centre_winning_a_question_stays() -> None:
    task = "There is a charge on our card, and how do we change the billing address"
    rows = rows_of(task, row(billing=0.999), row(knowledge_search=0.99))
    ranked = [("billing", 0.999), ("knowledge_search", 0.99)]
    chosen = {"billing", "knowledge_search"}
    assert told_not_asked(task, rows, LABELS, LABELS, chosen, ranked) == set()


def test_the_help_centre_as_the_best_or_alone_stays() -> None:
    task = "We were promised the setup would be free, yet there is a charge on our card"
    rows = rows_of(task, row(knowledge_search=0.999), row(billing=0.99))
    best = [("knowledge_search", 0.999), ("billing", 0.99)]
    assert told_not_asked(task, rows, LABELS, LABELS, {"billing", HOW_TO}, best) == set()
    alone = [("billing", 0.999), ("knowledge_search", 0.99)]
    assert told_not_asked(task, rows, LABELS, LABELS, {HOW_TO}, alone) == set()


def test_any_capability_winning_only_a_story_is_dropped() -> None:
    task = "We will be twelve people in March and I heard Starter stops at ten. What would Team cost us"
    rows = rows_of(task, row(account=0.3), row(account=0.2), row(sales=0.999))
    ranked = [("sales", 0.999), ("account", 0.3)]
    assert told_not_asked(task, rows, LABELS, LABELS, {"account", "sales"}, ranked) == {"account"}


def test_a_request_that_says_it_has_several_needs_keeps_its_stories() -> None:
    task = "Two things: we were billed twice in March, and what would Team cost us"
    rows = rows_of(task, row(account=0.01), row(billing=0.6), row(sales=0.999))
    ranked = [("sales", 0.999), ("billing", 0.6)]
    assert told_not_asked(task, rows, LABELS, LABELS, {"billing", "sales"}, ranked) == set()
    plain = "we were billed twice in March. What would Team cost us"
    rows = rows_of(plain, row(billing=0.6), row(sales=0.999))
    assert told_not_asked(plain, rows, LABELS, LABELS, {"billing", "sales"}, ranked) == {"billing"}


def test_a_story_before_a_question_joined_as_another_need_is_a_need() -> None:
    task = "I was billed twice in March and the exports time out. Also, what would Team cost us?"
    rows = rows_of(task, row(billing=0.99), row(incidents=0.999), row(sales=0.999))
    ranked = [("incidents", 0.999), ("sales", 0.999), ("billing", 0.99)]
    chosen = {"billing", "incidents", "sales"}
    assert told_not_asked(task, rows, LABELS, LABELS, chosen, ranked) == set()
    unmarked = "I was billed twice in March and the exports time out. What would Team cost us?"
    rows = rows_of(unmarked, row(billing=0.99), row(incidents=0.999), row(sales=0.999))
    assert told_not_asked(unmarked, rows, LABELS, LABELS, chosen, ranked) == {"billing"}


def test_a_request_that_asks_nothing_is_its_stories() -> None:
    task = "we were billed twice in March and the exports time out"
    rows = rows_of(task, row(billing=0.99), row(incidents=0.999))
    ranked = [("incidents", 0.999), ("billing", 0.99)]
    assert told_not_asked(task, rows, LABELS, LABELS, {"billing", "incidents"}, ranked, HOW_TO) == set()
    # ... but the help centre answers questions: a story alone is not one.
    task = "we were promised the setup would be free and there is a charge on our card"
    rows = rows_of(task, row(knowledge_search=0.99), row(billing=0.999))
    ranked = [("billing", 0.999), ("knowledge_search", 0.99)]
    chosen = {"billing", HOW_TO}
    assert told_not_asked(task, rows, LABELS, LABELS, chosen, ranked, HOW_TO) == {HOW_TO}


def test_the_help_centre_winning_no_clause_stays() -> None:
    task = "There is a charge on our card, and we cancelled last week"
    rows = rows_of(task, row(billing=0.999), row(refund=0.5))
    ranked = [("billing", 0.999), ("knowledge_search", 0.3)]
    chosen = {"billing", "knowledge_search"}
    assert told_not_asked(task, rows, LABELS, LABELS, chosen, ranked) == set()


# -- someone else's order, subscription or provider ------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_file(ROOT / "registry.yaml")


@pytest.mark.parametrize(
    ("piece", "name"),
    [
        ("my Deliveroo order never came", ["Deliveroo"]),
        ("Our Hulu subscription renewed twice", ["Hulu"]),
        ("my Hulu family plan went up", ["Hulu", "family"]),
        ("our water provider billed us twice", ["water"]),
        ("is the API down", []),
    ],
)
def test_owned_name_is_whose_order_subscription_or_provider(piece: str, name: list[str]) -> None:
    assert owned_name(piece) == name


@pytest.mark.parametrize(
    "task",
    [
        "my Deliveroo order was charged twice, please refund it",
        "Our Hulu subscription renewed twice this month",
        "my Hulu family plan went up in price, can I get part of it back?",
    ],
)
def test_another_companys_order_or_subscription_is_foreign(registry: Registry, task: str) -> None:
    assert foreign_clauses(task, registry)


@pytest.mark.parametrize(
    "task",
    [
        "we were charged twice for our Team plan, please refund one",
        "when does our current subscription renew",
        "refund my duplicate charge, I'm jane@acme.io",
    ],
)
def test_our_own_plan_or_subscription_is_not_foreign(registry: Registry, task: str) -> None:
    assert not foreign_clauses(task, registry)


# -- a short statement names no secondary need --------------------------------------------------


def test_a_statement_of_two_words_names_no_secondary_need() -> None:
    task = "is INV-2201 still refundable? just checking"
    rows = rows_of(task, row(billing=0.9), row(incidents=0.05))
    assert clause_needs(task, rows, LABELS, LABELS, {"billing"}) == []


def test_a_longer_statement_still_names_one() -> None:
    task = "is INV-2201 still refundable? the webhook deliveries keep failing since Monday"
    rows = rows_of(task, row(billing=0.9), row(incidents=0.05))
    assert clause_needs(task, rows, LABELS, LABELS, {"billing"}) == ["incidents"]


def test_a_short_question_still_names_one() -> None:
    task = "is INV-2201 still refundable? and is it down"
    rows = rows_of(task, row(billing=0.9), row(incidents=0.05))
    assert clause_needs(task, rows, LABELS, LABELS, {"billing"}) == ["incidents"]


# -- a clause read as another need no longer chooses its first reading ------------------------------


def test_a_clause_read_as_another_need_gives_up_its_first_reading() -> None:
    task = "which plan is Nimbus on, and can you send back the duplicate charge"
    rows = rows_of(task, row(account=0.99), row(knowledge_search=0.95, refund=0.9))
    ranked = [("account", 0.99), ("knowledge_search", 0.95), ("refund", 0.9)]
    chosen = {"account", "knowledge_search"}
    assert clause_needs(task, rows, LABELS, LABELS, chosen) == ["refund"]
    assert read_as_other(task, rows, LABELS, LABELS, chosen, {"refund"}, ranked) == {"knowledge_search"}


def test_a_first_reading_that_another_clause_chose_too_stays() -> None:
    task = "how do I export invoices, and can you send back the duplicate charge"
    rows = rows_of(task, row(knowledge_search=0.99), row(knowledge_search=0.95, refund=0.9))
    ranked = [("knowledge_search", 0.99), ("refund", 0.9)]
    assert read_as_other(task, rows, LABELS, LABELS, {"knowledge_search"}, {"refund"}, ranked) == set()


def test_the_requests_own_best_is_never_given_up() -> None:
    task = "which plan is Nimbus on, and can you send back the duplicate charge"
    rows = rows_of(task, row(account=0.9), row(knowledge_search=0.999, refund=0.998))
    ranked = [("knowledge_search", 0.999), ("refund", 0.998), ("account", 0.9)]
    chosen = {"account", "knowledge_search"}
    assert read_as_other(task, rows, LABELS, LABELS, chosen, {"refund"}, ranked) == set()


# -- a greeting is no how-to --------------------------------------------------------------------


def test_a_greeting_shaped_like_a_how_to_is_not_one(registry: Registry) -> None:
    assert not our_how_to("hi, how are you today?", registry)
    assert not our_how_to("hello! how are you doing", registry)
    assert our_how_to("how do I remove a user who left the company", registry)


# -- the request's best, won only by a statement before a lone how-to, is its situation -----------


def test_the_best_won_only_by_a_statement_before_a_lone_how_to_is_its_situation(registry: Registry) -> None:
    task = "The receipts still show our old address; where do I update it?"
    rows = rows_of(task, row(billing=0.999), row(knowledge_search=0.99))
    chosen = {"billing", "knowledge_search"}
    assert context_of_how_to(task, rows, registry, chosen, set(), LABELS, LABELS) == {"billing"}
    # The same best asked for in a clause of its own stays.
    asked = "Please check the receipts for our old address; where do I update it?"
    rows = rows_of(asked, row(billing=0.999), row(knowledge_search=0.99))
    assert context_of_how_to(asked, rows, registry, chosen, set(), LABELS, LABELS) == set()


# -- a capability no clause chose is not a need next to those the clauses chose --------------------


def test_a_capability_no_clause_chose_is_dropped_next_to_the_best() -> None:
    task = "any news on the API status, and also the Enterprise price per user?"
    rows = rows_of(task, row(incidents=0.9, knowledge_search=0.05), row(sales=0.999))
    ranked = [("sales", 0.999), ("incidents", 0.9), ("knowledge_search", 0.4)]
    chosen = {"incidents", "knowledge_search", "sales"}
    assert unclaimed(rows, LABELS, LABELS, chosen, ranked) == {"knowledge_search"}


def test_the_best_or_a_request_without_clauses_keeps_what_it_selected() -> None:
    task = "any news on the API status, and also the Enterprise price per user?"
    rows = rows_of(task, row(incidents=0.9), row(sales=0.999))
    ranked = [("knowledge_search", 0.9999), ("sales", 0.999), ("incidents", 0.9)]
    chosen = {"incidents", "knowledge_search", "sales"}
    assert unclaimed(rows, LABELS, LABELS, chosen, ranked) == set()
    assert unclaimed([], LABELS, LABELS, {"billing", "sales"}, [("sales", 0.9), ("billing", 0.5)]) == set()


def test_owned_names_are_foreign_only_where_the_out_of_scope_examples_say_so(registry: Registry) -> None:
    # The support desk's examples name a gym membership and a FedEx delivery; a personal assistant
    # whose user's "wells fargo account" is its business names none.
    assert owns_others(registry)
    assistant = registry.with_overlay(
        {"classifier": {"out_of_scope_examples": ["tell me a joke", "what's the weather like"], "labelled_examples": []}},
        source="t",
    )
    assert not owns_others(assistant)
    assert not foreign_clauses("my Deliveroo order was charged twice, please refund it", assistant)
    assert foreign_clauses("my Deliveroo order was charged twice, please refund it", registry)
