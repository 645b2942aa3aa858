"""Support routing, round 14 (issue 19; session 21): requests nobody tuned on.

- an instruction to check a record before an action that depends on what the check finds ("look at
  INV-3107 and, if it was paid twice, refund the second payment") asks for the check too: billing
  beside the refund, whatever the check's own words scored;
- "While you were out" is no name of someone else's service that is out, and an organisation's
  possessive ("Whitaker Legal's subscription") is a customer's subscription, not another vendor's
  product;
- "if it's not too much trouble (for your lovely system)", "if you don't mind" and a phone message's
  "Please ring back" are courtesy: no outage, no money back;
- counts given first and a question for their total ("8 in Roma, 23 in Milano and 17 in Torino. How
  many are we in total?", "each roof takes 16 panels ... how many panels is that?") are arithmetic;
- the end of a time range split off as a clause ("between 09:00 and | 11:00 UTC") is when it
  happened, not a question to the clock;
- "when does the subscription renew, and ..." asks, though no question mark follows the clause;
- what follows the colon after "I'd like to open a ticket:" is the ticket's subject, not a question
  to the documents, even when the documents scored it best;
- "..., where my co-author lives" is a relative clause: no need of its own;
- a prepositional phrase the punctuation cut off ("... (the second of two charges) | to the original
  payment method", "the reversal, in full, | of charge CH-2003") says where the money goes or which
  charge is meant: no need of its own.

New sentences, not copies of the development rows; the real registry and its scorer (no mocks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from capabilities.calculator import evaluate, recognised_expression
from graph.classifier.build import build_scorer, prepare_before_turn
from graph.classifier.clauses import courtesy, named_subject, sets_the_scene
from graph.classifier.scorer import FewShotScorer
from graph.config.registry import Registry
from graph.config.settings import Settings
from nodes.classifier import checked_first, continues, no_need_of_its_own, other_product, relative_clause
from tests.support_desk.test_support import shipped_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_file(Path(__file__).resolve().parents[2] / "registry.yaml")


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path
) -> tuple[Registry, FewShotScorer]:
    base = tmp_path_factory.mktemp("round14-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    return registry, build_scorer(registry, settings)


def route(desk: tuple[Registry, FewShotScorer], text: str) -> set[str]:
    registry, scorer = desk
    from nodes.classifier import classify

    out = asyncio.run(classify(text, registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    return {c["name"] for c in out if c["selected"] and c["source"] != "always"}


# --- the text rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Have a look at INV-3107 and, if it was paid twice, refund the second payment.", {"billing"}),
        ("Verify whether c1007 was billed two times; if it was, send the extra one back.", {"billing"}),
        ("see if the renewal went through twice and if so give the difference back", {"billing"}),
        # no check asked first, or the action turned down
        ("Refund the duplicate on INV-3107, if that is possible.", set()),
        ("Check if I was charged twice, and if so don't refund anything yet, just tell me.", set()),
        ("check if the refund went through", set()),
    ],
)
def test_checked_first(registry: Registry, text: str, want: set[str]) -> None:
    ranked = [("refund", 0.99), ("billing", 0.01), ("account", 0.001)]
    assert checked_first(text, registry, {"refund"}, ranked) == want


def test_while_you_were_out_names_no_service() -> None:
    assert named_subject("While you were out: Tom rang") == []
    assert named_subject("While AWS is down") == ["AWS"]  # the name after the conjunction still counts


def test_an_organisations_possessive_is_a_customer(registry: Registry) -> None:
    assert other_product("whether Whitaker Legal's subscription is still live", registry) == []
    assert other_product("our Microsoft 365 renewal went through twice", registry) != []


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Please ring back.", True),
        ("call me back when you can", True),
        ("if it's not too much trouble for your lovely system.", True),
        ("if you don't mind", True),
        ("please send it back", False),
        ("ring back the customer about the refund", False),
    ],
)
def test_more_courtesy(text: str, want: bool) -> None:
    assert courtesy(text) is want


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("We are 6 in Leeds, 11 in York and 9 in Hull. How many are we in total?", 26),
        ("Each van carries 14 crates and 9 vans go out today. How many crates is that?", 126),
        ("We have three offices with 7, 9 and 14 people. How many seats is that altogether?", 30),
        # one count, money, ids: no total of counts
        ("We run three properties, maybe 14 staff logging in altogether. What would that cost?", None),
        ("We paid $30 and $45, how many in total", None),
        ("How many seats does customer 1004 have in total?", None),
    ],
)
def test_counted_total(text: str, value: int | None) -> None:
    expression = recognised_expression(text)
    assert (None if expression is None else evaluate(expression)) == value


def test_the_end_of_a_time_range_is_no_need() -> None:
    task = "Please log a ticket: the exports failed between 07:00 and 08:30 UTC."
    assert no_need_of_its_own(task, "between 07:00")
    assert no_need_of_its_own(task, "08:30 UTC.")
    assert not no_need_of_its_own("Is the API down and what time is it in Oslo", "what time is it in Oslo")


def test_when_before_an_auxiliary_asks() -> None:
    assert not sets_the_scene("when does the trial end", ", and what did the last invoice come to?")
    assert sets_the_scene("when I checked the card there were two payments", ". Refund one.")


def test_where_opens_a_relative_clause() -> None:
    assert relative_clause("where our designer lives", "the time in Auckland, ")
    assert not relative_clause("where can I download invoices", "thanks, ", "?")


@pytest.mark.parametrize(
    ("piece", "before", "want"),
    [
        ("to the original card.", "Please pay back the $45 (the second of two renewals) ", True),
        ("of charge CH-2051", "We ask for the reversal, in full, ", True),
        ("to the card on file.", "Kindly refund the duplicate renewal for Kola Works, ", True),
        # a verb or a subject of its own, a question, or no cut before it
        ("to Team, is that possible", "We want to move, ", False),
        ("to whom do we send the form", "one more thing, ", False),
        ("to the card on file", "Refund it ", False),
    ],
)
def test_continues(piece: str, before: str, want: bool) -> None:
    assert continues(piece, before) is want


# --- the real scorer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # the check before a conditional action
        (
            "Have a look at INV-3107 for Nimbus Labs and, if it was paid twice, refund the second payment.",
            {"billing", "refund"},
        ),
        # courtesy, not an outage or money back
        (
            "Please send back the $30 duplicate for Lantern HQ, if it's not too much trouble for your wonderful app.",
            {"refund"},
        ),
        (
            "Voicemail from a man at a bakery: what does Enterprise cost per seat? Please call him back.",
            {"sales"},
        ),
        # a message slip about a customer's own subscription
        (
            "While you were out: Ben Okafor rang. He wants to know if Okafor Studio's plan renews this month.",
            {"account"},
        ),
        # a word problem's total
        (
            "Each van carries 14 crates and there are 9 vans going out. How many crates is that?",
            {"calculator"},
        ),
        # when it happened, not the clock
        ("Please raise a ticket: the exports were failing between 7:00 and 8:30 UTC.", {"incidents"}),
        (
            "We logged slow responses on the webhooks between 8:15 and 9:40 this morning, please raise a ticket.",
            {"incidents"},
        ),
        # two questions, the first without its question mark
        (
            "For lukas@fjordsoft.de: when does the trial end, and what did the last invoice come to?",
            {"account", "billing"},
        ),
        # the ticket's subject after the colon
        ("Can you open a ticket: the API sends our booking tool a 401 on every sync.", {"incidents"}),
        # a relative clause after the place
        (
            "Two things: the price of 15 Team seats, and the current time in Auckland, where our designer lives.",
            {"clock", "sales"},
        ),
        # where the money goes, cut off by a bracket or a comma
        (
            "Please pay back the $45 taken in error (the second of two renewals on INV-3044) to the original card.",
            {"refund"},
        ),
        ("Kindly refund the duplicate renewal for Kola Works, to the card on file.", {"refund"}),
    ],
)
def test_routes(desk: tuple[Registry, FewShotScorer], text: str, want: set[str]) -> None:
    assert route(desk, text) == want, text
