"""Confirmations, round 9 (session 17): the yes that takes an offer.

- a billing finding that a charge is refundable is an offer (`Capability.suggested_action`, billing's
  `suggests`): a go-ahead next turn refunds that charge for that customer, once; an acknowledgement
  ("great, thanks") or a no does nothing;
- an offer survives turns that only ask or look things up, for `offers.MAX_AGE` turns; a no, another
  customer, or age withdraws it;
- a yes may name the offer's object ("ok, go ahead with the refund"); a go-ahead with a condition is
  asked about once more;
- a refund request that names our customer is in scope, whatever other companies' refunds the
  out-of-scope examples hold.

The real graph with the shipped registry on a test database (no mocks), and new sentences, not copies
of the development rows. Each conversation uses its own customer, so the tests share one database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from graph.builder import build_graph
from graph.classifier.build import build_scorer, prepare_before_turn
from graph.config.settings import Settings
from graph.context import offers
from graph.intent import REFUND_VERBS, turns_down
from nodes.classifier import classify
from tests.conftest import answer
from tests.support_desk.test_support import Desk, rows, shipped_registry


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("confirm-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


def refunds(desk: Desk, charge: str) -> int:
    return len(rows(desk.db, "SELECT id FROM refunds WHERE charge_id = ?", charge))


def all_refunds(desk: Desk) -> int:
    return len(rows(desk.db, "SELECT id FROM refunds"))


# --- the words of a yes (pure) ---------------------------------------------------------------------

SUGGESTED = {
    "turn": 1,
    "task": "omar@brightpath.co: we got billed twice for the same renewal, can you check?",
    "capabilities": ["refund"],
    "question": "I can refund $30.00 to Omar Haddad (C-1002) for duplicate charge CH-2013 of 01 Nov 2026.",
    "accepted_turn": None,
    "source": "suggested",
}


@pytest.mark.parametrize(
    "text",
    [
        "yes please",
        "sure, go for it",
        "ok then, refund it",
        "yep, go ahead with CH-2013",
        "alright, do the refund",
        "sí, hazlo",
        "go on then, refund the extra one",
    ],
)
def test_a_go_ahead_takes_a_suggestion(text: str) -> None:
    assert offers.accepts(SUGGESTED, text, REFUND_VERBS), text


@pytest.mark.parametrize(
    "text",
    [
        "ok",
        "great, thanks",
        "yep, thanks a lot",
        "sounds good",
        "no, leave it",
        "yes but not yet",
        "sure, if it's under $20",
        "yes, go ahead with CH-2014",  # another charge than the one offered
        "yes, and what time is it in Oslo?",
        "hold off for now",
    ],
)
def test_an_acknowledgement_a_no_or_another_object_does_not(text: str) -> None:
    assert not offers.accepts(SUGGESTED, text, REFUND_VERBS), text


def test_a_question_the_last_turn_asked_takes_a_plain_assent() -> None:
    asked = {**SUGGESTED, "source": "confirm"}
    assert offers.accepts(asked, "ok", REFUND_VERBS, asked=True)
    assert not offers.accepts(asked, "ok", REFUND_VERBS, asked=False), "an older offer wants a go-ahead"


def test_a_go_ahead_with_a_condition_is_asked_again() -> None:
    found = offers.narrowed(SUGGESTED, "go ahead, but only the one from November", REFUND_VERBS)
    assert found is not None and found.ask_again and found.capabilities == ["refund"]
    assert found.task is not None and SUGGESTED["task"] in found.task
    assert offers.narrowed(SUGGESTED, "go ahead, but wait until friday", REFUND_VERBS) is None
    assert offers.narrowed(SUGGESTED, "yes", REFUND_VERBS) is None, "nothing narrows a plain yes"


def test_turning_the_action_down_is_told_from_asking_about_it() -> None:
    assert turns_down("no need for a refund, I only wanted the dates", REFUND_VERBS)
    assert turns_down("please don't refund anything yet", REFUND_VERBS)
    assert not turns_down("could CH-2033 still be refunded?", REFUND_VERBS)
    assert not turns_down("was it ever refunded?", REFUND_VERBS)


# --- the graph -------------------------------------------------------------------------------------


def test_a_go_ahead_after_a_billing_finding_refunds_that_charge_once(desk: Desk) -> None:
    t = "r9-omar"
    first = desk.ask("omar@brightpath.co: we got billed twice for the same renewal, can you check?", t)
    assert refunds(desk, "CH-2013") == 0 and not desk.pending(t), "a finding does nothing by itself"
    assert "Reply “yes” to go ahead" in answer(first) and "CH-2013" in answer(first)
    assert (first["approval_offer"] or {}).get("source") == "suggested"
    second = desk.ask("great, please go ahead and do it", t)
    assert "Refunded $30.00" in answer(second) and "CH-2013" in answer(second)
    assert refunds(desk, "CH-2013") == 1
    third = desk.ask("yes, do it", t)
    assert refunds(desk, "CH-2013") == 1, "the offer is spent: no second refund"
    assert "Refunded $" not in answer(third)


def test_an_acknowledgement_or_a_no_refunds_nothing(desk: Desk) -> None:
    t = "r9-lukas"
    desk.ask("is the $36 charge on customer C-1004 from three days ago refundable?", t)
    assert (desk.graph.get_state({"configurable": {"thread_id": t}}).values["approval_offer"] or {}).get(
        "source"
    ) == "suggested"
    state = desk.ask("great, thanks", t)
    assert refunds(desk, "CH-2034") == 0 and not desk.pending(t), answer(state)
    state = desk.ask("no, hold off on that", t)
    assert refunds(desk, "CH-2034") == 0 and not desk.pending(t), answer(state)
    state = desk.ask("actually yes, go ahead", t)
    assert refunds(desk, "CH-2034") == 0 and not desk.pending(t), "the no withdrew the offer"


def test_the_offer_survives_a_question_turn(desk: Desk) -> None:
    t = "r9-mei"
    desk.ask(
        "mei@lanternhq.com cancelled right after renewing, can her $10 charge from this month be refunded?", t
    )
    asked = desk.ask("would she keep access until the end of the month if we refund it?", t)
    assert refunds(desk, "CH-2043") == 0, answer(asked)
    done = desk.ask("alright, go ahead with the refund", t)
    assert "Refunded $10.00" in answer(done) and refunds(desk, "CH-2043") == 1, answer(done)
    assert any(n.startswith("side_effect_confirmed:") for n in done["planning_notes"])


def test_a_stale_offer_is_not_accepted(desk: Desk) -> None:
    t = "r9-aisha"
    desk.ask("could the $80 renewal of customer 1007 from this month be refunded?", t)
    for text in ("what time is it in Lagos?", "and in Nairobi?", "what's 80 * 12?"):
        desk.ask(text, t)
    state = desk.ask("yes, do it", t)
    assert refunds(desk, "CH-2063") == 0 and not desk.pending(t), answer(state)


def test_another_customer_withdraws_the_offer(desk: Desk) -> None:
    t = "r9-diego"
    desk.ask("can diego@solmarket.mx's retry charge CH-2054 be refunded?", t)
    desk.ask("which plan is mei@lanternhq.com on?", t)
    state = desk.ask("yes please, go ahead", t)
    assert refunds(desk, "CH-2054") == 0 and not desk.pending(t), answer(state)


def test_a_yes_after_a_plain_question_does_nothing(desk: Desk) -> None:
    t = "r9-plain"
    before = all_refunds(desk)
    desk.ask("what time is it in Tokyo right now?", t)
    state = desk.ask("yes, do it", t)
    assert all_refunds(desk) == before and not desk.pending(t), answer(state)
    assert "Refunded" not in answer(state)


def test_a_confirmation_question_survives_a_question_turn(desk: Desk) -> None:
    t = "r9-jane"
    desk.ask("could you refund the double charge? I'm jane@acme.io", t)
    kinds = [s["kind"] for p in desk.pending(t) for s in p["steps"]]
    assert kinds == ["confirm"], kinds
    desk.resume(False, t)
    desk.ask("what does your policy say about refunds of duplicates?", t)
    desk.ask("ok, go ahead with the refund", t)
    asked = [s["kind"] for p in desk.pending(t) for s in p["steps"]]
    assert asked == ["approve"], "above the threshold the approval policy still asks"
    assert refunds(desk, "CH-2003") == 0
    done = desk.resume(True, t)
    assert "Refunded $125.00" in answer(done) and refunds(desk, "CH-2003") == 1


def test_a_go_ahead_with_a_condition_asks_before_anything(desk: Desk) -> None:
    t = "r9-priya"
    desk.ask("is c1003's latest charge refundable?", t)
    desk.ask("go ahead, but only this month's one", t)
    kinds = [s["kind"] for p in desk.pending(t) for s in p["steps"]]
    assert kinds == ["confirm"], kinds
    desk.resume(False, t)
    assert all(refunds(desk, c) == 0 for c in ("CH-2021", "CH-2022", "CH-2023"))


# --- the first turn: a refund request that names our customer is in scope -------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("could I get a refund on my double payment? my email is priya@nimbuslabs.dev", "refund"),
        ("can I get a refund for my duplicate charge? I'm mei@lanternhq.com", "refund"),
        ("can my duplicate charge be refunded? I'm omar@brightpath.co", "billing"),
        ("is my double payment refundable? customer 1004", "billing"),
    ],
)
def test_a_refund_request_naming_our_customer_is_ours(desk: Desk, text: str, want: str) -> None:
    scorer = build_scorer(desk.registry, desk.settings)
    out = asyncio.run(classify(text, desk.registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    chosen = {c["name"] for c in out if c["selected"] and c["source"] != "always"}
    assert want in chosen, (text, chosen)


@pytest.mark.parametrize(
    "text",
    [
        "can I get a refund for my Netflix charge? jane@acme.io",
        "my Deliveroo order was charged twice, please refund it, I'm omar@brightpath.co",
    ],
)
def test_another_companys_refund_stays_out_of_scope(desk: Desk, text: str) -> None:
    scorer = build_scorer(desk.registry, desk.settings)
    out: list[Any] = asyncio.run(classify(text, desk.registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    assert not [c["name"] for c in out if c["selected"] and c["source"] != "always"], text
