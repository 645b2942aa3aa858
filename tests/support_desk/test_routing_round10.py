"""Support routing, round 10 (issue 19; session 18): precision on requests nobody tuned on.

- a clause with no need of its own chooses nothing next to a real need (`classifier.borrowed`): a
  relative clause ("..., which we only noticed when ..."), an elliptical question ("and what's the
  status?", "how do we fix it"), the time something started ("since 07:45 UTC"), a pasted record line
  ("CH-2003 $125.00 Team plan");
- a polite request asks ("I would be grateful if you could confirm ...");
- a count question reads as the lookup whose guide has count questions, not as a quote;
- a hypothetical about a side effect asks its policy; advice ("what should we do?") is a how-to;
- a terse request about records goes to each id's owner, learnt from the guides;
- a how-to beside a pasted line ("... <- how do I ...") is the help centre's; another company's money
  back, without an id of ours, is no refund of ours.

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
    _ADVICE,
    _COUNT,
    asks_in,
    classify,
    elliptical,
    id_owners,
    our_how_to,
    quotes_a_record,
    record_kinds,
    relative_clause,
    side_effect_hypothetical,
)
from tests.support_desk.test_support import shipped_registry


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path
) -> tuple[Registry, FewShotScorer]:
    base = tmp_path_factory.mktemp("round10-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    return registry, build_scorer(registry, settings)


def route(desk: tuple[Registry, FewShotScorer], text: str) -> set[str]:
    registry, scorer = desk
    out = asyncio.run(classify(text, registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    return {c["name"] for c in out if c["selected"] and c["source"] != "always"}


# --- the text rules ---------------------------------------------------------------------------------


def test_a_relative_clause_after_a_comma_tells() -> None:
    text = "I added two seats by mistake, which we only saw when the statement came. Please refund them."
    piece = "which we only saw when the statement came"
    at = text.find(piece)
    assert relative_clause(piece, text[:at], text[at + len(piece) :])
    assert not asks_in(text, piece)
    # a question that starts a sentence, or ends in a question mark, asks
    assert asks_in("Which plan are we on?", "Which plan are we on")
    assert not relative_clause("which is cheaper", "Team or Enterprise, ", "?")


def test_a_polite_request_asks() -> None:
    text = "I'd be grateful if you could check our seat count."
    assert asks_in(text, text)
    assert asks_in(
        "It would be great if you could resend the invoice",
        "It would be great if you could resend the invoice",
    )


@pytest.mark.parametrize(
    ("piece", "want"),
    [
        ("and what's the status?", True),
        ("Status: ?", True),
        ("any update", True),
        ("how do we fix it", True),
        ("what does this mean", True),
        ("what is the status of the webhooks", False),
        ("check my account status", False),
        ("please refund it", False),
        ("and pricing?", False),
    ],
)
def test_elliptical_questions_name_no_subject(piece: str, want: bool) -> None:
    assert elliptical(piece) is want


@pytest.mark.parametrize(
    ("piece", "want"),
    [
        ("CH-7781   $60.00   Team plan", True),
        ("INV-5120 Payment failed", True),
        ("INV-5120 please confirm it was paid", False),
        ("we paid INV-5120 twice", False),
        ("the total of INV-5120", False),
        ("C-1004 plan and seats", False),  # a customer id says who asks
    ],
)
def test_a_pasted_record_line(piece: str, want: bool) -> None:
    assert quotes_a_record(piece) is want


def test_count_and_advice_forms() -> None:
    assert _COUNT.match("could you let me know how many seats we have")
    assert _COUNT.match("and how many users")
    assert not _COUNT.match("how much is Team")
    assert _ADVICE.match("What should we do?")
    assert _ADVICE.match("so what are my options")
    assert not _ADVICE.match("what should the invoice say")


def test_record_kinds_are_learnt_from_the_guides() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parents[2] / "registry.yaml")
    kinds = record_kinds(registry)
    assert kinds.get("INV") == "billing"
    assert kinds.get("CH") == "billing"  # not the refund: an id alone never asks for an action
    assert "C" not in kinds  # a customer id says who asks, not what
    assert id_owners("INV-8812 paid?", registry, None) == {"billing"}
    assert id_owners("INV-8812 and XQ-4410?", registry, None) == set()  # a kind nobody owns
    assert id_owners("INV-8812 for the Wexford Tigers account?", registry, None) == set()  # a name
    advice = "The reset link in the invite has expired. What should I do?"
    assert our_how_to(advice, registry, advice=True)
    assert not our_how_to(advice, registry)
    assert side_effect_hypothetical("if we cancel now, would we get money back?", registry, {"refund"}) == {
        "refund"
    }
    assert side_effect_hypothetical("we were charged twice, please refund it", registry, {"refund"}) == set()


# --- the real scorer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # elliptical status: the subscription's, not the status page's
        ("Could you tell me our renewal date and what the status is?", {"account"}),
        ("How many users are on our plan, and what's the status?", {"account"}),
        # "how do we fix it": the 403 the help centre explains
        ("What does a 403 from your webhooks endpoint mean, and how do we fix it?", {"knowledge_search"}),
        # when it started is no question about the time
        ("raise a ticket: webhook deliveries failing, since 07:45 UTC", {"incidents"}),
        # a relative clause tells what happened; the refund is the need
        (
            "Hello. Our spring fair went well, and I bought three extra seats for the helpers, which we only"
            " noticed when the statement arrived yesterday. Please refund that charge.",
            {"refund"},
        ),
        # a polite request asks for the plan too
        (
            "I would be grateful if you could confirm which plan we are on and send last month's invoice.",
            {"account", "billing"},
        ),
        # a count of seats paid for is on file, not a quote
        (
            "Would you tell me what plan we have and how many seats we're paying for? customer C-1002",
            {"account"},
        ),
        # a how-to in a note beside a pasted line
        (
            "CH-6610   Payment failed   <- how do I update the card on file, and is our account still active?",
            {"account", "knowledge_search"},
        ),
        # another company's money back is not our refund
        ("My Peloton membership charged me twice, and I'd like my money back, who handles that?", set()),
        # a how-to that resembles getting money back, without a word of refunding
        ("Our intern deleted his authenticator app. How do we get him back in?", {"knowledge_search"}),
        # terse requests about records
        ("INV-2291 ??", {"billing"}),
        ("INV-5521 paid?", {"billing"}),
        ("c1008 seats + renewal", {"account"}),
    ],
)
def test_routes(desk: tuple[Registry, FewShotScorer], text: str, want: set[str]) -> None:
    assert route(desk, text) == want, text


def test_a_hypothetical_refund_is_no_refund(desk: tuple[Registry, FewShotScorer]) -> None:
    assert "refund" not in route(
        desk, "Hypothetically, if we dropped to Starter mid-month, would we get some money back?"
    )
    assert route(desk, "We were charged twice for the same renewal, please refund the second one") == {
        "refund"
    }


def test_real_needs_stay(desk: tuple[Registry, FewShotScorer]) -> None:
    assert route(desk, "what time is it in Sydney right now?") == {"clock"}
    assert route(desk, "I think we paid INV-4410 twice. Also, how long are invoices kept for download?") == {
        "billing",
        "knowledge_search",
    }
