"""Support routing, round 13 (issue 19; session 20): requests nobody tuned on.

- a terse request that an e-mail address or customer id pulled below every threshold is routed by
  the rest of its words ("invoices for c-1008 thx");
- a request that says it has several needs ("two points: (1) ... (2) ...") keeps the customer lookup
  its first point asks for, though the second needs that lookup anyway;
- an HTTP status code belongs to the capability whose guide names codes of its class: a client error
  (4xx) is what the documents explain, a server error (5xx) an outage;
- a hypothetical question about money coming back, naming no one, asks the policy, not the charges;
- whether a named customer's charge "can still come back" is the charge's eligibility, not the policy;
- a noun phrase after a comma that names again what the refund is about ("..., the double payment
  from last month") is no need of its own;
- whether a payment "can be given back" asks about the charge of the customer named;
- a request pasted or forwarded as an e-mail is routed on the words that ask, without the subject's
  "Re:", the quote's introduction and marks, "Sent from my iPhone", a confidentiality notice or the
  signature (its e-mail address or customer id stays: who asks);
- the help centre that only a story chose, beside a need a question asked for, goes;
- a conditional instruction after a question about the action asks for it ("if so, just do it");
- "three q's", "a bundle of questions": each clause is a need;
- a supposition that asks what something would cost, naming no one, asks no one's charges;
- the calculator that only a clause without a digit chose, beside another need, goes;
- a question about ours before the customer's own app ("Is anything wrong with webhooks? Our
  rota app stopped getting updates.") is not someone else's service;
- "Can this charge be returned?" about a named customer's or record's charge asks its eligibility.

New sentences, not copies of the development rows; the real registry and its scorer (no mocks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from graph.classifier.build import build_scorer, prepare_before_turn
from graph.classifier.scorer import FewShotScorer
from graph.config.registry import Registry
from graph.config.settings import Settings
from nodes.classifier import (
    _SEVERAL,
    appositive,
    code_owners,
    conditional_actions,
    hypothetical_refund,
    status_classes,
    without_mail_furniture,
    would_hypothetically,
)
from tests.support_desk.test_support import shipped_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_file(Path(__file__).resolve().parents[2] / "registry.yaml")


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path
) -> tuple[Registry, FewShotScorer]:
    base = tmp_path_factory.mktemp("round13-desk")
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
    ("text", "classes"),
    [
        ("the export endpoint answers HTTP 404", {"4"}),
        ("a 401 response every time", {"4"}),
        ("error 503 since lunch", {"5"}),
        ("we see 504s on the webhooks", {"5"}),
        ("'400 Bad Request' on every upload", {"4"}),
        # numbers that are no status code
        ("a quote for 400 seats", set()),
        ("the $450 charge on INV-4031", set()),
        ("customer 4012 renews tomorrow", set()),
    ],
)
def test_status_classes(text: str, classes: set[str]) -> None:
    assert status_classes(text) == classes


def test_the_guides_say_who_owns_each_class_of_status_code(registry: Registry) -> None:
    assert code_owners(registry) == {"4": "knowledge_search", "5": "incidents"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("If we drop to Starter halfway through the month, do we get the difference back?", True),
        ("Suppose we cut four seats tomorrow - is the unused part refunded?", True),
        # a customer or a record named: their charges are there to check
        ("If we cut seats tomorrow, is c-1004's unused part refunded?", False),
        ("If INV-3120 was taken twice, do we get it back?", False),
        # no hypothetical, or no money back
        ("Do we get the difference back after dropping to Starter?", False),
        ("If we add five seats tomorrow, what will the next invoice say?", False),
    ],
)
def test_hypothetical_refund(registry: Registry, text: str, want: bool) -> None:
    assert hypothetical_refund(text, registry) is want


@pytest.mark.parametrize(
    ("task", "piece", "want"),
    [
        ("Send the 45 dollars back, the second renewal from March.", "the second renewal from March.", True),
        ("Refund it please, that duplicate on the card", "that duplicate on the card", True),
        # a sentence, not a noun phrase
        ("Refund it please, the card was charged twice", "the card was charged twice", False),
        ("Refund it please, the charge we never agreed to", "the charge we never agreed to", False),
        # no comma before it
        ("The second renewal from March. Send it back.", "The second renewal from March.", False),
    ],
)
def test_appositive(task: str, piece: str, want: bool) -> None:
    assert appositive(task, piece) is want


MAIL = (
    "Fwd: Re: seats\n\n"
    "On Mon, Ben Okafor wrote:\n"
    "> How many seats are we paying for at the moment?\n\n"
    "Could you answer the question below for me?\n\n"
    "Best regards\n"
    "Ben Okafor\n"
    "Director, Okafor Studio | ben@okafor.dev\n"
    "This message may contain confidential information intended only for the addressee.\n"
    "Sent from my iPad"
)


def test_mail_furniture_goes_and_who_asks_stays() -> None:
    body = without_mail_furniture(MAIL)
    assert body == (
        "seats\n\nHow many seats are we paying for at the moment?\n\n"
        "Could you answer the question below for me?\n\nben@okafor.dev"
    )
    signed = "Please check the invoice from May.\n\nLena Vogel\nFjordsoft GmbH | C-1005"
    assert without_mail_furniture(signed) == "Please check the invoice from May.\n\nC-1005"
    # one line, or a request whose last lines ask: as it is
    assert without_mail_furniture("thanks - is the API down?") == "thanks - is the API down?"
    two = "Thanks for the quick answer.\nCan you also check our renewal date?"
    assert without_mail_furniture(two) == two


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Tell me whether CH-4410 is still refundable and if so, refund it.", {"refund"}),
        ("Is INV-7702 a duplicate? If yes please send the extra one back", {"refund"}),
        ("check if the last renewal can be refunded and if it can, go ahead", {"refund"}),
        # "go ahead" with no refund named anywhere: not the refund's
        ("is the API down? if so go ahead and open a ticket", set()),
        ("Was I charged twice? If so, don't refund yet, just tell me", set()),
    ],
)
def test_a_conditional_instruction_asks_for_the_action(registry: Registry, text: str, want: set[str]) -> None:
    assert conditional_actions(text, registry, [("billing", 0.9), ("refund", 0.01)]) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("three q's: is sso down, when do we renew, what does Team cost", True),
        ("A bundle of questions, if I may: ...", True),
        ("I have 4 quick things to ask", True),
        ("two seats please", False),
        ("the questions page is down", False),
    ],
)
def test_several_needs_announced(text: str, want: bool) -> None:
    assert bool(_SEVERAL.search(text)) is want


def test_would_hypothetically(registry: Registry) -> None:
    assert would_hypothetically("If we were 30 people on Enterprise, what would we pay a month?", registry)
    assert not would_hypothetically("If we were 30 people on Enterprise, what do we pay?", registry)
    assert not would_hypothetically("If c-1004 went to 30 seats, what would they pay?", registry)


# --- the real scorer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # the identifier pulled a terse request below every threshold
        ("invoices for tom@whitakerlegal.co.uk thx", {"billing"}),
        ("payments of c-1006 pls", {"billing"}),
        # several needs announced: each point is one
        (
            "Following up on two questions: (1) when our plan renews and (2) whether the second charge "
            "from last month can be refunded. Whitaker Legal.",
            {"account", "billing"},
        ),
        # a client error is the documents', a server error an outage
        (
            "Our rota app keeps getting HTTP 401 from your API since we rotated keys. Why?",
            {"knowledge_search"},
        ),
        (
            "The booking sync gets a 429 response several times an hour. What is the limit on our plan?",
            {"knowledge_search"},
        ),
        ("Our rota app keeps getting HTTP 502 from your API since noon. Is something down?", {"incidents"}),
        # a hypothetical money-back question naming nobody: the policy
        # not ours: a refund from a shop is no question to the help centre
        ("If I send the sofa back to the shop, would I get a refund?", set()),
        ("If we downgrade in the middle of a cycle, is the unused part refunded?", {"knowledge_search"}),
        # a named customer's charge: its eligibility
        (
            "Mei Chen asked me to check whether the latest renewal was taken and whether it can still come back, "
            "they closed the project",
            {"billing"},
        ),
        (
            "Client ben@okafor.dev is asking if the charge from this month can be given back, they stopped using it.",
            {"billing"},
        ),
        # the noun phrase after the refund names the same charge
        (
            "Please put the 80 dollars back on the card, the duplicate renewal from this month. c-1007",
            {"refund"},
        ),
        # a forwarded e-mail: the quoted question, not the signature or the notice
        (MAIL, {"account"}),
        (
            "Re: charge\n\nOur bookkeeper asks whether INV-3061 went through twice. Can you confirm?\n\n"
            "Many thanks\nDiego Alvarez\nFinance, Alvarez Imports\n"
            "This e-mail is confidential. If you received this message in error, please delete it.",
            {"billing"},
        ),
        # the help centre for a story, beside a question for another need
        (
            "we run a bakery with two shops and the staff clock in through your app every morning. "
            "how many seats do we have right now? account is c1004",
            {"account"},
        ),
        # a condition on the action
        (
            "could you look at whether CH-2041 can still be refunded and if so just do it",
            {"billing", "refund"},
        ),
        # a supposition about a price, naming nobody
        (
            "We hire extra staff at Christmas. If we were 22 people on Team for December, what would that come to?",
            {"sales"},
        ),
        # the calculator for no arithmetic
        ("Give me, in round numbers if you can, what one seat costs on Enterprise.", {"sales"}),
        # our webhooks asked about first; their app after
        (
            "Are the webhooks having problems today? Our stock-count app has not received anything since 9.",
            {"incidents"},
        ),
        # a customer's dates on file, not the documents
        ("What plan is tom@whitakerlegal.co.uk on, and until when does it run?", {"account"}),
        # suppositions about money back, naming nobody: the policy alone
        (
            "Suppose we ordered three seats too many by mistake; would you usually refund that?",
            {"knowledge_search"},
        ),
        ("Say we stop halfway through the month: is the rest of the month paid back?", {"knowledge_search"}),
        # four needs announced, each clause one
        (
            "Four quick questions: is SSO down, which plan is c1005 on, what does Team cost for 9, and what time "
            "is it in Oslo?",
            {"account", "clock", "incidents", "sales"},
        ),
        # a charge's eligibility, asked directly
        ("Can this payment still be returned, INV-3013? It is from last month.", {"billing"}),
        (
            "For omar@brightpath.co, the renewal of this month, is it possible to return it? They are closing.",
            {"billing"},
        ),
    ],
)
def test_routes(desk: tuple[Registry, FewShotScorer], text: str, want: set[str]) -> None:
    assert route(desk, text) == want, text
