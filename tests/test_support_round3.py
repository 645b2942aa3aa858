"""Support routing, round 3 (issue 19 item 5): the selection rules of the classifier node that read
clauses, each with a case where it must fire and one where it must not.

The rules are pure functions of calibrated clause confidences (numpy rows, columns in the scorer's
label order), so most tests give those rows directly; `who_only` scores with a real lexical
scorer and the shipped registry's `provides`/`requires`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.classifier.clauses import clause_spans, courtesy, need_words, reads_as_request, without_courtesy
from graph.classifier.encoders import LexicalEncoder
from graph.classifier.guides import LabelGuide
from graph.classifier.scorer import FewShotScorer
from graph.config.registry import Registry
from nodes.classifier import (
    _courtesy_alone,
    clause_needs,
    clear_request,
    courteous,
    courtesy_winners,
    who_only,
)

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["account", "billing", "incidents", "knowledge_search", "sales"]


def row(**conf: float) -> np.ndarray:
    """A clause's calibrated confidences: the named ones, 1e-4 for the rest."""
    return np.array([conf.get(n, 1e-4) for n in LABELS])


def spans_of(text: str) -> list[str]:
    return [text[a:b] for a, b in clause_spans(text)]


# -- clause splitting: a dash, "+" or "&" between spaces, discourse markers --------------------


def test_a_plus_or_ampersand_between_spaces_splits() -> None:
    assert spans_of("can u check the charges on c-1002 + how do i add a second card") == [
        "can u check the charges on c-1002",
        "how do i add a second card",
    ]
    assert spans_of("our R&D team pays by card & wants the invoices") == [
        "our R&D team pays by card",
        "wants the invoices",
    ]


def test_a_dash_between_spaces_splits_and_a_hyphen_does_not() -> None:
    assert spans_of("sofia@vialattea.it here - the dashboard wont load") == [
        "sofia@vialattea.it here",
        "the dashboard wont load",
    ]
    assert spans_of("what plan is C-1004 on, the e-mail is on file") == [
        "what plan is C-1004 on",
        "the e-mail is on file",
    ]


@pytest.mark.parametrize("marker", ["btw", "by the way,", "separately,", "while you're at it,", "PS:"])
def test_a_discourse_marker_is_not_part_of_the_need(marker: str) -> None:
    text = f"which plan are we on? {marker} how do I rotate an API key"
    assert spans_of(text)[-1] == "how do I rotate an API key"
    assert reads_as_request(f"{marker} how do I rotate an API key")


def test_a_word_that_only_starts_like_a_marker_stays() -> None:
    # "psst", "besides" inside a clause, "butter": not markers at the start of the need.
    assert spans_of("which plan are we on? psst the webhooks look slow")[-1] == "psst the webhooks look slow"
    assert not reads_as_request("butterfly effect in our invoices")


def test_need_words_leave_out_follow_up_and_introduction_words() -> None:
    assert need_words("and ?") == [] and need_words("what about the same for me") == []
    assert need_words("here - the dashboard wont load") == ["dashboard", "wont", "load"]


# -- courtesy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "Hope your week is going well",
        "I hope all is well with you",
        "I am sorry to trouble you with this",
        "apologies for bothering you again",
        "Many thanks in advance",
        "Thank you, Lukas",
        "Kind regards",
        "Dear support team",
        "Good morning, I hope you are well",
    ],
)
def test_courtesy_clauses(piece: str) -> None:
    assert courtesy(piece)


@pytest.mark.parametrize(
    "piece",
    [
        "hope this gets fixed soon",
        "sorry but the app is broken",
        "thanks for nothing, the API is down",
        "dear god the api is down again",
        "Hello, I need help",
        "I'm sorry, which plan are we on",
    ],
)
def test_a_need_with_courtesy_words_is_not_courtesy(piece: str) -> None:
    assert not courtesy(piece)


def test_without_courtesy_keeps_the_need_and_refusals() -> None:
    text = "Hi! Hope you're well. I don't want a refund, just explain the second charge. Thanks so much."
    core = without_courtesy(text)
    assert "Hope" not in core and "Thanks" not in core
    assert "I don't want a refund" in core and "explain the second charge" in core
    assert without_courtesy("good evening, nice to meet you") == ""


def test_courtesy_winners_are_the_capabilities_courtesy_clauses_resemble() -> None:
    rows = [
        ("hope all is well", row(incidents=1.0)),
        ("my gym charged me twice this month", row(billing=0.001)),
        ("what should I do", row(incidents=1e-3)),
    ]
    assert courtesy_winners(rows, LABELS, LABELS, courteous=set()) == {"incidents"}
    # A capability made for courtesy (a `greet` intent) is not suspect, nor one no courtesy names.
    assert courtesy_winners(rows, LABELS, LABELS, courteous={"incidents"}) == set()
    assert courtesy_winners(rows[1:], LABELS, LABELS, courteous=set()) == set()


def test_courtesy_alone_drops_what_the_request_without_courtesy_does_not_reach(
    lexical: tuple[Registry, FewShotScorer, list[str]],
) -> None:
    _, scorer, names = lexical
    default = 0.1
    # Without "Hope all is well" the request is about charges: incidents came from the courtesy.
    text = "Good morning, hope all is well. list the charges please. Thanks, Tom"
    assert _courtesy_alone(text, scorer, names, default, {"incidents"}) == {"incidents"}
    # The request without courtesy still names an incident: it stays.
    text = "Good morning, hope all is well. the dashboard will not load. Thanks, Tom"
    assert _courtesy_alone(text, scorer, names, default, {"incidents"}) == set()
    # Nothing but courtesy: the request's own score decides.
    assert _courtesy_alone("Hi, hope all is well. Thanks!", scorer, names, default, {"incidents"}) == set()


def test_courteous_reads_the_guides() -> None:
    from types import SimpleNamespace

    from graph.capability.guides import ClassifierGuide, GuideExample

    def cap(name: str, *queries: str) -> SimpleNamespace:
        return SimpleNamespace(
            name=name,
            classifier_guide=ClassifierGuide(examples=tuple(GuideExample(query=q) for q in queries)),
        )

    registry = SimpleNamespace(
        routable=[cap("greet", "hello there", "good morning"), cap("clock", "what time is it in Tokyo")]
    )
    assert courteous(registry) == {"greet"}  # type: ignore[arg-type]


# -- secondary needs of request clauses ----------------------------------------------------------

BILLING_AND_HOWTO = "show me last months charges and explain which payment methods you accept"


def test_a_request_clause_leads_the_capabilities_not_selected_yet() -> None:
    # billing, already selected, resembles the how-to clause: the lead is over sales.
    rows = [("explain which payment methods you accept", row(knowledge_search=0.006, billing=0.004))]
    assert clause_needs(BILLING_AND_HOWTO, rows, LABELS, LABELS, {"billing"}) == ["knowledge_search"]
    # Without billing selected, billing is a close runner-up: no clear second need.
    assert clause_needs(BILLING_AND_HOWTO, rows, LABELS, LABELS, {"account"}) == []


def test_a_request_clause_close_to_a_selected_need_is_read_as_the_other() -> None:
    text = "list the invoices for C-1003, and explain how I can pay by bank transfer"
    close = [("explain how I can pay by bank transfer", row(billing=0.042, knowledge_search=0.020))]
    assert clause_needs(text, close, LABELS, LABELS, {"billing"}) == ["knowledge_search"]
    # The selected need well ahead (e^2 and more): the clause restates it.
    text = "show my invoices and explain the second charge on it"
    ahead = [("explain the second charge on it", row(billing=0.2, knowledge_search=0.02))]
    assert clause_needs(text, ahead, LABELS, LABELS, {"billing"}) == []


def test_a_statement_must_lead_every_capability() -> None:
    text = "show me last months charges, the payment methods you accept are confusing"
    rows = [("the payment methods you accept are confusing", row(knowledge_search=0.006, billing=0.004))]
    assert clause_needs(text, rows, LABELS, LABELS, {"billing"}) == []


def test_no_secondary_need_from_courtesy_ids_or_below_the_floor() -> None:
    text = "List my charges. I am sorry to trouble you with this. jane@acme.io. how do I log in"
    rows = [
        ("I am sorry to trouble you with this", row(incidents=0.03)),
        ("jane@acme.io", row(account=0.3)),
        ("how do I log in", row(knowledge_search=0.001)),  # leads, but under SECONDARY_FLOOR
    ]
    assert clause_needs(text, rows, LABELS, LABELS, {"billing"}) == []


# -- the fallback for requests no threshold took -------------------------------------------------


def test_clear_request_takes_the_clause_that_asks_clearly() -> None:
    text = "what plan is Kola Works on? and btw how do I reset my two-factor codes"
    rows = [
        ("what plan is Kola Works on", row(account=0.0045)),
        ("how do I reset my two-factor codes", row(knowledge_search=0.0004, billing=0.0002)),
    ]
    assert clear_request(text, rows, LABELS, LABELS) == "account"


def test_clear_request_needs_several_clauses_a_request_and_a_lead() -> None:
    # One clause: its score is the whole evidence.
    assert clear_request("Is Slack down?", [("Is Slack down", row(incidents=0.002))], LABELS, LABELS) is None
    # The clear clause is a statement, the request is vague.
    text = "the courier never delivered my IKEA order, who do I call"
    rows = [
        ("the courier never delivered my IKEA order", row(incidents=0.01)),
        ("who do I call", row(account=0.0003)),
    ]
    assert clear_request(text, rows, LABELS, LABELS) is None
    # Besides the request, only courtesy: no second clause to go on.
    rows = [("Hope you are well", row()), ("is the API down", row(incidents=0.005))]
    assert clear_request("Hope you are well. is the API down", rows, LABELS, LABELS) is None


# -- identifiers that only chose the lookup ------------------------------------------------------


@pytest.fixture(scope="module")
def lexical() -> tuple[Registry, FewShotScorer, list[str]]:
    registry = Registry.from_file(ROOT / "registry.yaml")
    scorer = FewShotScorer(
        [
            LabelGuide(
                "account", ("look up jane@acme.io", "account of omar@brightpath.co", "which plan am I on")
            ),
            LabelGuide("billing", ("list the charges", "show my payments", "what was I charged")),
            LabelGuide(
                "incidents", ("the dashboard will not load", "is the api down", "webhooks are delayed")
            ),
        ],
        LexicalEncoder(),
    )
    return registry, scorer, ["account", "billing", "incidents"]


def test_who_only_gives_way_to_what_the_rest_needs(
    lexical: tuple[Registry, FewShotScorer, list[str]],
) -> None:
    registry, scorer, names = lexical
    text = "jane@acme.io here - the dashboard will not load"
    assert who_only(text, registry, scorer, names, {"account"}) == ({"account"}, {"incidents"})
    assert who_only(text, registry, scorer, names, {"account", "incidents"}) == ({"account"}, set())
    # The clause that gives the address goes with it ("my address is" alone is account-like).
    text = "the dashboard will not load. my address is jane@acme.io"
    assert who_only(text, registry, scorer, names, {"account", "incidents"}) == ({"account"}, set())


def test_who_only_keeps_a_lookup_the_rest_asks_for_or_that_stands_alone(
    lexical: tuple[Registry, FewShotScorer, list[str]],
) -> None:
    registry, scorer, names = lexical
    assert who_only("which plan am I on? jane@acme.io", registry, scorer, names, {"account"}) == (
        set(),
        set(),
    )
    assert who_only("look up jane@acme.io", registry, scorer, names, {"account"}) == (set(), set())
    # The identifier is in a clause that asks for something: the lookup is asked for.
    text = "the dashboard will not load, and which plan is C-1009 on?"
    assert who_only(text, registry, scorer, names, {"account", "incidents"}) == (set(), set())
    # A follow-up that gives only an id: the rest names no need ("and", "what about").
    for follow_up in ("and C-1009?", "what about C-1003", "same for jane@acme.io please"):
        assert who_only(follow_up, registry, scorer, names, {"account"}) == (set(), set()), follow_up
    # No identifier, or the identifiers point to a capability that provides for none (billing's
    # output is for refund, which is not what an address points to): nothing changes.
    assert who_only("the dashboard will not load", registry, scorer, names, {"account"}) == (set(), set())
    assert who_only(
        "Hi, I'm Sofia Rossi. the dashboard will not load", registry, scorer, names, {"account"}
    ) == (
        set(),
        set(),
    )
    assert who_only("list the charges, jane@acme.io", registry, scorer, names, {"billing"}) == (set(), set())
