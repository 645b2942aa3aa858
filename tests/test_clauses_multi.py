"""Multi-intent selection: secondary needs named by a clause, statements that only give a reason,
and capabilities that only stand for another's input (issue 19 item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.classifier import FewShotScorer, LabelGuide
from graph.classifier.clauses import clause_spans, mentions_identifier, reads_as_request
from graph.classifier.encoders import LexicalEncoder
from graph.classifier.thresholds import SECONDARY_FLOOR, secondary_need
from graph.config.registry import Registry
from nodes.classifier import implied

ROOT = Path(__file__).resolve().parents[1]


# -- secondary_need ----------------------------------------------------------------------------


def test_a_clause_that_names_one_capability_clearly_is_a_secondary_need() -> None:
    # "how do I update the card on file": 0.035 for the help centre, far below a request's
    # threshold, but about 400 times its runner-up.
    row = np.array([0.0002, 0.035, 0.00008, 0.0001])
    assert secondary_need(row) == 1


def test_a_clause_without_a_clear_lead_or_matching_nothing_is_not() -> None:
    # "I was charged for a seat I never used" style ties between two capabilities
    assert secondary_need(np.array([0.00247, 0.00113, 0.0001])) is None
    # a clear lead, but a confidence no capability's examples come near
    weak = SECONDARY_FLOOR / 2
    assert secondary_need(np.array([weak, weak / 1000, weak / 1000])) is None
    assert secondary_need(np.array([0.9])) is None  # one capability: nothing to lead


# -- reads_as_request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "Check whether I was charged twice",
        "Was I double charged",
        "please refund it",
        "and show me my invoices",
        "I want my money back for last month",
        "how do I invite them",
        "Also, could you explain the late fee",
    ],
)
def test_questions_imperatives_and_wishes_read_as_requests(piece: str) -> None:
    assert reads_as_request(piece)


@pytest.mark.parametrize(
    "piece",
    [
        "I was charged for a seat I never used",
        "we cancelled the day after renewal",
        "the exports fail",
        "This is ridiculous",
    ],
)
def test_statements_of_what_happened_do_not(piece: str) -> None:
    assert not reads_as_request(piece)


def test_a_question_mark_after_a_statement_makes_it_a_question() -> None:
    text = "the exports fail? also I want my money back"
    a, b = clause_spans(text)[0]
    assert text[a:b] == "the exports fail"
    assert reads_as_request(text[a:b], text[b:])
    assert not reads_as_request(text[a:b], " also")


def test_identifiers_are_recognised_in_a_clause() -> None:
    assert mentions_identifier("can you explain it? diego@solmarket.mx")
    assert mentions_identifier("refund the charge on C-1004")
    assert not mentions_identifier("refund charge CH-2034")  # a charge id names what is asked about


# -- implied: requires/provides ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Registry:
    return Registry.from_file(ROOT / "registry.yaml")


def test_a_provider_that_wins_only_a_statement_is_implied_by_what_requires_it(shipped: Registry) -> None:
    # "I was charged for a seat I never used, please refund it": refund requires refund_candidate,
    # which billing provides; billing wins only the statement.
    assert implied(shipped, {"billing", "refund"}, unasked={"billing"}) == {"billing"}
    # account provides the customer_id that billing requires
    assert implied(shipped, {"account", "billing"}, unasked={"account"}) == {"account"}


def test_an_asked_provider_or_one_nothing_requires_stays(shipped: Registry) -> None:
    # "Check whether I was charged twice, then refund the duplicate": both are asked for
    assert implied(shipped, {"billing", "refund"}, unasked=set()) == set()
    # sales requires nothing account provides
    assert implied(shipped, {"account", "sales"}, unasked={"account"}) == set()
    # the requirer is itself unasked: nothing asked requires the provider
    assert implied(shipped, {"billing", "refund"}, unasked={"billing", "refund"}) == set()


# -- the scorer reports both readings ---------------------------------------------------------------

GUIDES = [
    LabelGuide("billing", ("list my charges", "show my invoices", "what did you charge me", "my charges")),
    LabelGuide("help", ("how do I update my card", "how do I invite a teammate", "how do I export data")),
    LabelGuide("weather", ("what's the weather today", "will it rain tomorrow", "forecast for the weekend")),
]


@pytest.fixture(scope="module")
def scorer() -> FewShotScorer:
    return FewShotScorer(GUIDES, LexicalEncoder()).compile()


def test_the_scorer_marks_secondary_and_asked_capabilities(scorer: FewShotScorer) -> None:
    scores = {s.name: s for s in scorer.score("list my charges. Also how do I update my card?")}
    assert scores["help"].secondary and scores["help"].asked
    assert not scores["weather"].secondary


def test_a_single_clause_request_has_no_secondary_need(scorer: FewShotScorer) -> None:
    scores = scorer.score("how do I update my card")
    assert not any(s.secondary for s in scores)
    assert scores[0].name == "help" and scores[0].asked
