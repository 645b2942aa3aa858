"""Support routing, round 4 (issue 19 item 5; session 14): customer ids in the forms people write
them, how-to clauses as the help centre's secondary need, and someone else's service named as what
is down or charging. Each mechanism with a case where it fires and one where it must not.

The clause and id rules are pure text functions; the node's rules take calibrated clause rows
(numpy, columns in `LABELS` order) or the shipped registry (its guides' words, its how-to guide).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.classifier.clauses import (
    another_need,
    asks_how_to,
    clause_spans,
    introduces_only,
    mentions_identifier,
    named_subject,
    names_a_need,
    reads_as_request,
    sets_the_scene,
    without_identifiers,
)
from graph.config.registry import Registry
from nodes.classifier import (
    _COUNT,
    _of_foreign,
    clause_needs,
    context_of_how_to,
    foreign_clauses,
    form_users,
    grounds_of_ask,
    how_to_owner,
    known_word,
    names_other,
    our_how_to,
    plainly_ours,
    vocabulary,
)

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["account", "billing", "incidents", "knowledge_search", "refund", "sales"]


def row(**conf: float) -> np.ndarray:
    """A clause's calibrated confidences: the named ones, 1e-4 for the rest."""
    return np.array([conf.get(n, 1e-4) for n in LABELS])


def spans_of(text: str) -> list[str]:
    return [text[a:b] for a, b in clause_spans(text)]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_file(ROOT / "registry.yaml")


# -- customer ids in every form ------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "customer 1007",
        "Customer no. 2210",
        "acct #3305",
        "customer id 4402",
        "Account number 1999",
        "our customer number is 7781",
        "client 5520",
        "Customer number: 6104",
        "account #1006",
    ],
)
def test_a_customer_number_in_words_is_an_identifier_that_only_says_who_asks(piece: str) -> None:
    assert mentions_identifier(piece)
    assert introduces_only(piece)


@pytest.mark.parametrize(
    "piece",
    ["refund charge CH-2034", "invoice INV-3033 is wrong", "we have 1200 customers", "account settings page"],
)
def test_an_invoice_charge_or_plain_number_is_no_identifier(piece: str) -> None:
    assert not mentions_identifier(piece)


def test_without_identifiers_keeps_the_word_that_introduced_the_number() -> None:
    # "when account renews": the account is still what is asked about.
    assert (
        without_identifiers("I need to know when account #4410 renews")
        == "I need to know when account renews"
    )
    assert without_identifiers("charges for omar@brightpath.co please") == "charges for please"
    assert without_identifiers("charges for INV-3033 please") == "charges for INV-3033 please"


def test_a_lone_address_after_a_question_is_a_clause_of_its_own() -> None:
    text = "WHY is the invoice so high?? tom@whitakerlegal.co.uk"
    assert spans_of(text) == ["WHY is the invoice so high", "tom@whitakerlegal.co.uk"]
    assert names_a_need(text, clause_spans(text)) == [True, False]
    # A comma before an address splits too; a comma before one lone ordinary word does not.
    assert spans_of("send the last receipt, ben@okafor.dev") == ["send the last receipt", "ben@okafor.dev"]
    assert spans_of("please send the last receipt, thanks") == []


def test_a_lone_word_that_is_no_identifier_still_joins_its_clause() -> None:
    assert spans_of("cancel my order and refund") == []
    assert spans_of("check the invoices - urgent") == []


def test_also_after_its_subject_is_no_clause_boundary() -> None:
    # "I'd also like ...": the clause keeps its subject and reads as a request.
    text = "the dashboard is flaky, and I'd also like to know which plan we're on"
    assert spans_of(text) == ["the dashboard is flaky", "I'd also like to know which plan we're on"]
    assert reads_as_request("I'd also like to know which plan we're on")
    assert reads_as_request("we also need last month's invoice")
    # Between two requests "also" still splits.
    assert spans_of("check the charges also how do I add a card") == [
        "check the charges",
        "how do I add a card",
    ]


@pytest.mark.parametrize(
    "piece", ["I simply need to know when we renew", "we just want the invoice", "I really need help"]
)
def test_an_adverb_between_the_asker_and_the_want_still_asks(piece: str) -> None:
    assert reads_as_request(piece)


def test_a_statement_with_an_adverb_does_not_ask() -> None:
    assert not reads_as_request("I simply forgot to cancel in time")


# -- how-to clauses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "how can we re-send an invoice to a new address",
        "also, how do I switch the language of the app",
        "tell me how to rotate the signing secret",
        "is there a guide on importing contacts",
        "point me to the docs about audit logs",
        "where in the admin panel do I set the timezone",
        "what's your policy on unused seats",
        "what are the steps to close our workspace",
        "our accountant wants to know how to export the invoices",
        "how long does a refund take to reach the card",
    ],
)
def test_a_how_to_clause_is_read_by_its_form(piece: str) -> None:
    assert asks_how_to(piece)


@pytest.mark.parametrize(
    "piece",
    [
        "how much is Team for 30 users",
        "how many seats do we have",
        "how long has the API been down",
        "we need to know the status",
        "how does that even happen",
        "why did the invoice go up",
    ],
)
def test_a_price_a_count_or_a_complaint_is_no_how_to(piece: str) -> None:
    assert not asks_how_to(piece)


def test_the_how_to_owner_is_the_guide_made_of_how_to_questions(registry: Registry) -> None:
    assert how_to_owner(registry) == "knowledge_search"


def test_a_registry_without_a_how_to_guide_has_no_owner() -> None:
    reg = Registry.from_dict(
        {
            "version": 1,
            "classifier": {"encoder": "lexical"},
            "capabilities": [
                {"name": "respond", "class": "capabilities.respond:Respond"},
                {"name": "clarify", "class": "capabilities.clarify:Clarify"},
                {"name": "calculator", "class": "capabilities.calculator:Calculator"},
                {"name": "clock", "class": "capabilities.clock:Clock"},
            ],
        }
    )
    assert how_to_owner(reg) is None


def test_a_how_to_clause_names_the_help_centre_at_any_confidence() -> None:
    # "are payments failing? also how do we re-run last night's exports": 0.0002, below every floor.
    rows = [
        ("are payments failing", row(incidents=0.99)),
        ("how do we re-run last night's exports", row(knowledge_search=2e-4, refund=1e-4)),
    ]
    got = clause_needs("...", rows, LABELS, LABELS, {"incidents"}, how_to="knowledge_search")
    assert got == ["knowledge_search"]
    # Without the owner the old rule decides: below the floor, nothing.
    assert clause_needs("...", rows, LABELS, LABELS, {"incidents"}) == []


def test_a_how_to_clause_that_another_need_leads_by_far_stays_that_need() -> None:
    # "how do I get my money back for the outage": the refund's, the help centre far behind.
    rows = [
        ("the dashboard is down", row(incidents=0.99)),
        ("how do I get my money back for the outage", row(refund=0.9, knowledge_search=1e-5)),
    ]
    got = clause_needs("...", rows, LABELS, LABELS, {"incidents"}, how_to="knowledge_search")
    assert "knowledge_search" not in got
    assert got == ["refund"]


def test_a_statement_is_no_how_to_need() -> None:
    rows = [
        ("the dashboard is down", row(incidents=0.99)),
        ("we exported the data", row(knowledge_search=2e-4)),
    ]
    assert clause_needs("...", rows, LABELS, LABELS, {"incidents"}, how_to="knowledge_search") == []


def test_a_statement_before_a_lone_how_to_is_its_situation(registry: Registry) -> None:
    # "The tax number on our receipts is wrong; where in the settings do I edit it?"
    rows = [
        ("The tax number on our receipts is wrong", row(billing=0.2)),
        ("where in the settings do I edit it", row(knowledge_search=0.01)),
    ]
    chosen = {"billing", "knowledge_search"}
    assert context_of_how_to("... ?", rows, registry, chosen, {"billing"}) == {"billing"}


def test_a_statement_next_to_another_question_is_kept(registry: Registry) -> None:
    # A second question that is no how-to ("is it down?") makes the statement's need a need.
    rows = [
        ("the exports page errors out", row(incidents=0.9)),
        ("is it down for everyone", row(incidents=0.5)),
        ("how do I export by hand", row(knowledge_search=0.9)),
    ]
    chosen = {"incidents", "knowledge_search"}
    assert context_of_how_to("...", rows, registry, chosen, {"incidents"}) == set()
    # An asked need is never dropped. (Given the clause rows' columns, the whole request's best that
    # wins only statements is no longer asked: tests/test_support_precision.py, session 16.)
    assert context_of_how_to("...", rows[::2], registry, chosen, set()) == set()


@pytest.mark.parametrize(
    "piece", ["Refund my duplicate charge", "open a ticket for the failing exports", "cancel the extra seats"]
)
def test_an_imperative_of_the_desk_asks(piece: str) -> None:
    assert reads_as_request(piece)


def test_a_how_to_joined_by_a_marker_is_another_need(registry: Registry) -> None:
    text = "We paid INV-4410 twice, I think. Separately, how long do receipts stay downloadable?"
    piece = "how long do receipts stay downloadable"
    assert another_need(text, piece)
    rows = [("We paid INV-4410 twice, I think", row(billing=0.3)), (piece, row(knowledge_search=0.01))]
    assert context_of_how_to(text, rows, registry, {"billing", "knowledge_search"}, {"billing"}) == set()
    assert not another_need("The tax number is wrong; where do I edit it?", "where do I edit it")


def test_a_numbered_item_still_asks() -> None:
    assert reads_as_request("1) is the exports service down")
    assert reads_as_request("2. how do I export everything")
    assert not reads_as_request("3) we exported everything yesterday")


@pytest.mark.parametrize(
    "text",
    [
        "how can an admin rename our workspace",
        "where do I see which invoices are unpaid",
        "what are the steps to turn on two-factor for the team",
    ],
)
def test_a_how_to_about_what_the_guides_talk_of_is_ours(registry: Registry, text: str) -> None:
    assert our_how_to(text, registry)


@pytest.mark.parametrize(
    "text",
    [
        "how do I knit a woollen scarf",  # no word of the guides
        "how do I cancel my Peloton membership",  # a name the guides do not use
        "how do I change the email I log in with? thanks Spotify",
        "which plan is Acme on",  # no how-to
    ],
)
def test_a_how_to_about_something_else_or_no_how_to_is_not(registry: Registry, text: str) -> None:
    assert not our_how_to(text, registry)


# -- a request no threshold took, plainly the best capability's --------------------------------


def test_a_request_in_the_guides_words_with_a_clear_best_is_taken(registry: Registry) -> None:
    ranked = [("billing", 0.004), ("refund", 0.0005), ("account", 0.0001)]
    assert plainly_ours("did last month's payment ever come through for our seats?", registry, ranked)


@pytest.mark.parametrize(
    ("text", "ranked"),
    [
        # the best only a little ahead
        (
            "did last month's payment ever come through for our seats?",
            [("billing", 0.004), ("refund", 0.003)],
        ),
        # below the floor
        (
            "did last month's payment ever come through for our seats?",
            [("billing", 0.0008), ("refund", 1e-6)],
        ),
        # words the guides do not use
        ("my grandmother's sourdough starter went mouldy overnight", [("refund", 0.004), ("billing", 1e-5)]),
        # a name the guides do not use
        ("can Deliveroo refund my payment for the seats", [("refund", 0.004), ("billing", 1e-5)]),
        # a how-to whose best is not the help centre
        ("how do I remove a user from our workspace", [("account", 0.07), ("knowledge_search", 0.001)]),
        # a hypothetical is a policy question
        (
            "if we cancelled our plan today, would the payment come back",
            [("refund", 0.004), ("billing", 1e-5)],
        ),
    ],
)
def test_a_close_unknown_named_how_to_or_hypothetical_request_is_not(
    registry: Registry, text: str, ranked: list[tuple[str, float]]
) -> None:
    assert not plainly_ours(text, registry, ranked)


# -- someone else's service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("piece", "name"),
    [
        ("is Dropbox having an outage", ["Dropbox"]),
        ("Hulu billed me twice", ["Hulu"]),
        ("gitlab keeps rejecting my pushes", ["gitlab"]),
        ("has Shopify had issues today", ["Shopify"]),
        ("Figma won't load for me", ["Figma"]),
        ("Paramount+ charged me twice", ["Paramount+"]),
    ],
)
def test_a_name_as_the_subject_of_trouble_or_a_charge(piece: str, name: list[str]) -> None:
    assert named_subject(piece) == name


@pytest.mark.parametrize(
    "piece",
    [
        "the API is down",
        "is it down on your side",
        "our exports keep failing",
        "you've charged us twice",
        "we were charged for seats nobody used",
        "Nimbus Labs is subscribed to Team",
        "which plan is Acme on",
    ],
)
def test_a_pronoun_a_determined_noun_or_no_trouble_is_no_named_subject(piece: str) -> None:
    assert named_subject(piece) == []


def test_a_name_no_guide_uses_is_foreign(registry: Registry) -> None:
    assert foreign_clauses("Hulu billed me twice this month, can you refund it?", registry)
    assert foreign_clauses("is Dropbox having an outage", registry)


def test_a_name_the_guides_use_or_a_typo_of_one_is_ours(registry: Registry) -> None:
    words = vocabulary(registry)
    assert {"tandem", "webhooks", "okta"} <= words
    assert not foreign_clauses("is Tandem down right now", registry)
    assert not foreign_clauses("webhooks keep failing since noon", registry)
    assert not foreign_clauses("dashbord is down for everyone", registry)  # a typo of "dashboard"
    assert known_word("dashbord", words)
    assert not known_word("aws", words)  # three letters: not a typo of "as"


def test_a_foreign_request_of_two_clauses_loses_all_it_selected() -> None:
    rows = [("Hulu billed me twice this month", row(billing=0.01)), ("can you refund it", row(refund=0.99))]
    ranked = [("refund", 0.99), ("billing", 0.01)]
    foreign = ["Hulu billed me twice this month"]
    assert _of_foreign("...", foreign, rows, LABELS, LABELS, ranked) == {"refund", "billing"}


def test_a_foreign_clause_in_a_longer_request_loses_only_its_own_need() -> None:
    rows = [
        ("Figma won't load for me", row(incidents=0.9)),
        ("which plan are we on", row(account=0.99)),
        ("how do I add a seat", row(knowledge_search=0.9)),
    ]
    ranked = [("account", 0.99), ("incidents", 0.9), ("knowledge_search", 0.9)]
    got = _of_foreign("...", ["Figma won't load for me"], rows, LABELS, LABELS, ranked)
    assert got == {"incidents"}


def test_a_request_naming_what_no_guide_names_is_no_fallbacks(registry: Registry) -> None:
    assert names_other("I want my money back for the ferry from Naples to Capri", registry)
    # A capitalised first word, a name the guides use, or lower case is no such name.
    assert not names_other("Refund the duplicate charge on our Team plan", registry)
    assert not names_other("is Tandem down for Sol Market too", registry)


def test_a_customer_organisation_as_the_subject_is_not_foreign(registry: Registry) -> None:
    # "Labs", "Legal", "Inc": a customer saying what fails for them.
    assert not foreign_clauses("Quarry Labs cannot connect to the API since noon", registry)
    assert not foreign_clauses("Marlow Legal keeps getting logged out", registry)
    assert foreign_clauses("Marlow keeps getting logged out", registry)


def test_a_count_clause_is_read_among_the_guides_that_ask_counts(registry: Registry) -> None:
    # "which plan is Kola Works on and how many seats": sales resembles "seats", but no sales example
    # asks "how many"; the account's do ("how many seats do we have right now").
    counters = form_users(registry, _COUNT)
    assert counters is not None and "account" in counters and "sales" not in counters
    rows = [
        ("which plan is Kola Works on", row(account=0.99)),
        ("how many seats", row(sales=0.003, account=2e-4)),
    ]
    assert clause_needs("...", rows, LABELS, LABELS, {"account"}, counters=counters) == []
    assert clause_needs("...", rows, LABELS, LABELS, {"account"}) == ["sales"]


def test_a_price_clause_is_not_a_count(registry: Registry) -> None:
    counters = form_users(registry, _COUNT)
    rows = [
        ("which plan is Kola Works on", row(account=0.99)),
        ("how much would 30 seats cost", row(sales=0.3)),
    ]
    assert clause_needs("...", rows, LABELS, LABELS, {"account"}, counters=counters) == ["sales"]


# Round 5 (session 14): the context before the ask. A charge stated before the refund it grounds is
# not a billing need of its own; the planner runs billing for the refund's input anyway.


def test_a_statement_or_a_when_clause_sets_the_scene() -> None:
    assert sets_the_scene("Our plan renewed on the 3rd although we had already downgraded")
    assert sets_the_scene("When we looked at the statement there were two payments", ". Please reverse one.")
    assert not sets_the_scene("when does our plan renew", "?")
    assert not sets_the_scene("Please put that payment back on our card")


def test_a_charge_stated_before_the_refund_it_grounds_is_not_selected(registry: Registry) -> None:
    task = "Two identical charges of $45 showed up in October; kindly reverse the extra one."
    rows = [
        ("Two identical charges of $45 showed up in October", row(billing=0.99, refund=0.01)),
        ("kindly reverse the extra one", row(refund=0.99)),
    ]
    assert grounds_of_ask(task, rows, LABELS, LABELS, registry, {"billing", "refund"}) == {"billing"}


def test_a_charge_asked_about_stays_next_to_the_refund(registry: Registry) -> None:
    # the billing clause asks ("Was I charged twice?"), or follows the refund's: two needs
    asked = "Was I charged twice in October? If so, reverse the extra one."
    rows = [
        ("Was I charged twice in October", row(billing=0.99)),
        ("If so, reverse the extra one", row(refund=0.99)),
    ]
    assert grounds_of_ask(asked, rows, LABELS, LABELS, registry, {"billing", "refund"}) == set()
    after = "Reverse the duplicate charge, and the invoices from last year still show our old address."
    rows = [
        ("Reverse the duplicate charge", row(refund=0.99)),
        ("the invoices from last year still show our old address", row(billing=0.99)),
    ]
    assert grounds_of_ask(after, rows, LABELS, LABELS, registry, {"billing", "refund"}) == set()


def test_an_id_alone_is_no_scene_and_no_provider_without_a_consumer(registry: Registry) -> None:
    # "omar here, c-1002: ..." the lookup's only clause gives the id: who asks, not what happened
    task = "omar here, c-1002: did last month's payment go through?"
    rows = [
        ("omar here, c-1002", row(account=0.02)),
        ("did last month's payment go through", row(billing=0.9)),
    ]
    assert grounds_of_ask(task, rows, LABELS, LABELS, registry, {"account", "billing"}) == set()
    # incidents provides nothing the refund requires: a reported outage stays a need
    task = "The dashboard has been down all morning. Please refund this month's fee."
    rows = [
        ("The dashboard has been down all morning", row(incidents=0.99)),
        ("Please refund this month's fee", row(refund=0.99)),
    ]
    assert grounds_of_ask(task, rows, LABELS, LABELS, registry, {"incidents", "refund"}) == set()
