"""Confirmations, round 10 (session 18): a no, a delay and a polite yes to a side effect on offer.

- a no to an offer ("nope, she's keeping it") or to the action the last request asked about runs
  nothing, withdraws the offer and answers with what was not done (never the generic "I'm not sure
  what you need" menu); the turn routes to `clarify`;
- a delay ("hang on, I'm checking with her first", "not just yet") runs nothing either, but keeps the
  offer open: a later explicit go-ahead takes it, once;
- a go-ahead that opens with a courtesy and narrows the offer ("please go ahead, but only the
  duplicate") is asked about once more, then done once.

The real graph with the shipped registry on a test database (no mocks), and new sentences written for
these tests, not copies of the development rows. Each conversation uses its own customer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context import offers
from graph.context.turns import routed_capabilities
from graph.intent import REFUND_VERBS
from nodes.orchestrator import Declined, acknowledgment
from tests.conftest import answer
from tests.support_desk.test_support import Desk, rows, shipped_registry


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("confirm10-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


def refunds(desk: Desk, charge: str) -> int:
    return len(rows(desk.db, "SELECT id FROM refunds WHERE charge_id = ?", charge))


def offer_of(desk: Desk, thread: str) -> dict[str, Any] | None:
    values = desk.graph.get_state({"configurable": {"thread_id": thread}}).values
    return values.get("approval_offer")


def approve_all(desk: Desk, thread: str, state: dict[str, Any]) -> dict[str, Any]:
    """Say yes to every question the turn asks (a confirmation, the approval policy's threshold)."""
    for _ in range(3):
        if not desk.pending(thread):
            break
        state = desk.resume(True, thread)
    return state


# --- the words of a no or a delay (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "nope - he wants to keep the seats after all",
        "no thanks, we'll leave it as it is",
        "forget it, the club is staying on the plan",
        "no, don't bother",
        "she changed her mind, keep the charge",
        "nah. no refund needed.",
    ],
)
def test_a_no_withdraws(text: str) -> None:
    assert offers.declined(text, REFUND_VERBS) == "withdraw", text


@pytest.mark.parametrize(
    "text",
    [
        "hang on, I need to confirm with the treasurer",
        "not just yet, let me ask the owner first",
        "hold on a sec. double-checking with him",
        "let me double-check with her and come back to you",
        "don't do it until she signs off",
        "ok wait until monday",
    ],
)
def test_a_delay_holds(text: str) -> None:
    assert offers.declined(text, REFUND_VERBS) == "hold", text


@pytest.mark.parametrize(
    "text",
    [
        "no, the november one instead",  # a correction
        "hold on, what would that come to in euros?",  # a question
        "wait, which card was it charged to",  # a question without its mark
        "nah, just show me the invoices",  # a request of its own
        "no refund needed, but can you list her charges",
        "no, refund CH-2061",  # an identifier: a request of its own
        "yes please",
        "great, thanks",
        "alright, go ahead",
        "yes, refund it and keep the seats as they are",  # a yes that keeps something else
        "refund it, but keep the seats",  # an instruction
    ],
)
def test_a_question_a_correction_or_a_yes_is_no_decline(text: str) -> None:
    assert offers.declined(text, REFUND_VERBS) is None, text


def test_the_acknowledgment_names_what_was_not_done_without_saying_refunded() -> None:
    offer = {
        "turn": 1,
        "task": "is the renewal refundable?",
        "capabilities": ["refund"],
        "question": "I can refund $45.00 to Ana Lima (C-9001) for charge CH-9100 of 01 Dec 2026.",
        "accepted_turn": None,
        "source": "suggested",
    }
    no = acknowledgment(Declined("withdraw", offer, list(REFUND_VERBS)))  # type: ignore[arg-type]
    assert "I did not refund $45.00 to Ana Lima (C-9001) for charge CH-9100" in no
    assert "nothing was changed" in no and "refunded" not in no.lower()
    confirm = {
        **offer,
        "source": "confirm",
        "question": "Confirm first: the request only asks about this (a question, in “is it inside the "
        "refund window?”); nothing is done unless you approve. Refund $45.00 to Ana Lima (C-9001) for "
        "charge CH-9100 of 01 Dec 2026? Policy: eligible.",
    }
    wait = acknowledgment(Declined("hold", confirm, list(REFUND_VERBS)))  # type: ignore[arg-type]
    assert "I did not refund $45.00 to Ana Lima (C-9001) for charge CH-9100" in wait, wait
    assert "go ahead" in wait and "refunded" not in wait.lower()
    bare = acknowledgment(Declined("withdraw", None, list(REFUND_VERBS)))
    assert bare.startswith("OK") and "did not refund anything" in bare


def test_a_courteous_go_ahead_that_narrows_is_asked_again() -> None:
    offer = {
        "turn": 1,
        "task": "ana@lima.example says the renewal went through twice",
        "capabilities": ["refund"],
        "question": "I can refund $45.00 to Ana Lima (C-9001) for duplicate charge CH-9101 of 01 Nov 2026.",
        "accepted_turn": None,
        "source": "suggested",
    }
    for text in (
        "please go ahead, but just the second charge",
        "kindly proceed, only the duplicate one",
        "that's fine, go ahead with the newer of the two only",
    ):
        found = offers.narrowed(offer, text, REFUND_VERBS)
        assert found is not None and found.ask_again and found.capabilities == ["refund"], text
    assert offers.narrowed(offer, "please proceed, but not yet", REFUND_VERBS) is None
    assert offers.narrowed(offer, "that's wrong, go ahead with the older one", REFUND_VERBS) is None
    assert offers.narrowed(offer, "please tell me more, yes", REFUND_VERBS) is None, "the yes must lead"


# --- the graph -------------------------------------------------------------------------------------


def test_a_delay_refunds_nothing_and_a_later_go_ahead_refunds_once(desk: Desk) -> None:
    t = "r10-aisha"
    first = desk.ask(
        "aisha@kolaworks.ng stopped using the workspace - can this month's renewal be refunded?", t
    )
    assert "CH-2063" in answer(first) and (offer_of(desk, t) or {}).get("source") == "suggested"
    held = desk.ask("hang on, I'm double-checking with her first", t)
    assert refunds(desk, "CH-2063") == 0 and not desk.pending(t), answer(held)
    assert routed_capabilities(held, desk.registry) == ["clarify"]
    assert "CH-2063" in answer(held) and "nothing was changed" in answer(held), answer(held)
    assert "refunded" not in answer(held).lower() and "not sure what you need" not in answer(held)
    assert offer_of(desk, t) is not None, "a delay keeps the offer"
    done = approve_all(desk, t, desk.ask("ok, go ahead with it", t))
    assert refunds(desk, "CH-2063") == 1, answer(done)
    again = approve_all(desk, t, desk.ask("yes, do it", t))
    assert refunds(desk, "CH-2063") == 1, "a side effect happens once: " + answer(again)


def test_a_no_to_a_suggestion_withdraws_it(desk: Desk) -> None:
    t = "r10-mei"
    desk.ask("mei@lanternhq.com is winding down her shop - is her December charge refundable?", t)
    assert (offer_of(desk, t) or {}).get("source") == "suggested"
    no = desk.ask("nope - she's decided to keep the workspace after all", t)
    assert refunds(desk, "CH-2043") == 0 and not desk.pending(t)
    assert routed_capabilities(no, desk.registry) == ["clarify"], answer(no)
    assert "I did not refund" in answer(no) and "CH-2043" in answer(no), answer(no)
    assert offer_of(desk, t) is None, "a no withdraws the offer"
    later = desk.ask("ok fine, go ahead then", t)
    if desk.pending(t):  # the most a yes to nothing on offer may do is ask
        later = desk.resume(False, t)
    assert refunds(desk, "CH-2043") == 0, answer(later)


def test_a_no_after_a_declined_confirmation_names_the_charge(desk: Desk) -> None:
    t = "r10-omar"
    desk.ask("can you refund omar@brightpath.co's duplicate November payment?", t)
    assert [s["kind"] for p in desk.pending(t) for s in p["steps"]] == ["confirm"]
    desk.resume(False, t)
    assert refunds(desk, "CH-2013") == 0 and (offer_of(desk, t) or {}).get("source") != "suggested"
    no = desk.ask("no, leave it, he sorted it out with his bank", t)
    assert refunds(desk, "CH-2013") == 0 and not desk.pending(t)
    assert routed_capabilities(no, desk.registry) == ["clarify"], answer(no)
    assert "CH-2013" in answer(no) and "refunded" not in answer(no).lower(), answer(no)
    later = desk.ask("yes go ahead", t)
    if desk.pending(t):
        later = desk.resume(False, t)
    assert refunds(desk, "CH-2013") == 0, answer(later)


def test_a_courteous_narrowing_yes_refunds_the_duplicate_once(desk: Desk) -> None:
    t = "r10-jane"
    desk.ask("could you look at jane@acme.io's November charges? the renewal seems to be on there twice", t)
    assert (offer_of(desk, t) or {}).get("source") == "suggested"
    asked = desk.ask("please go ahead, but only the second one; the first is fine", t)
    assert refunds(desk, "CH-2003") == 0, "asked again before anything is done"
    assert desk.pending(t), answer(asked)
    done = approve_all(desk, t, asked)
    assert refunds(desk, "CH-2003") == 1 and refunds(desk, "CH-2002") == 0, answer(done)
