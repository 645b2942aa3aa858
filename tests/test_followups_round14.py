"""Follow-ups, round 14 (session 21, heldout17's classes): how a new writer refers back and answers.

- a yes to the action that turns down another thing in a clause of its own ("do the refund, but no
  need for a ticket") acts; a no with no thing named ("refund it, but no need") still refuses;
- a word said on its own before the no ("Eish, no. Leave it") is no request: the no is read;
- "that last one", "this small one": a demonstrative and a description pick an item the topic listed;
- a person after a customer named by company ("check the account for Lantern HQ", then "did her last
  payment go through?") is that customer, asked of the capability the account feeds (billing);
- a correction "not Lisbon, Porto" replaces the old value with the one not ruled out; one whose
  identifier fits the last request and whose other words only say how the slip happened stays there;
- a plan's name ("Enterprise") is no place for the clock; a cue and a topic capability's own word
  ("and the API?" after a service's status) stay with the topic;
- "add 12 miles to that" continues the last expression ("9 x 14" is one); a saying before a colon
  ("Early bird catches the worm: and Lima?") does not hide the cue;
- "do the same for <company>" after a clause that also gave the old customer's address does not keep
  the address.

The real graph with the shipped registry on a test database (no mocks), and new sentences written for
these tests, not copies of the development rows. Each conversation uses its own thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context.followups import continuation, declines, expression_of, resolve
from graph.context.offers import declined
from graph.context.turns import routed_capabilities
from graph.intent import REFUND_VERBS, side_effect_intent, turns_down
from tests.conftest import answer
from tests.support_desk.test_support import Desk, rows, shipped_registry

VERBS = list(REFUND_VERBS)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("round14-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


def refunds(desk: Desk, charge: str) -> int:
    return len(rows(desk.db, "SELECT id FROM refunds WHERE charge_id = ?", charge))


# --- a yes that turns down another thing ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "sure, go ahead and refund it - but no need for an email to her",
        "fine, do the refund, though no confirmation note needed",
        "ok refund that one, but no need for a support ticket",
    ],
)
def test_a_yes_that_turns_down_another_thing_acts(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind == "act", side_effect_intent(text, VERBS)
    assert not turns_down(text, VERBS)
    assert declined(text, VERBS) is None


@pytest.mark.parametrize(
    "text",
    [
        "refund it, but no need",
        "refund it but no need for that",
        "no need for a refund, just check",
        "do the refund, but no, wait",
        "refund CH-2013, no ticket needed",  # one clause: its no is read with the verb, refused
    ],
)
def test_a_no_without_another_thing_still_refuses(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind != "act", side_effect_intent(text, VERBS)


@pytest.mark.parametrize(
    "text",
    [
        "ok, no need for the reversal",
        "no chargeback needed",
        "fine, no need for any money back",
        "ok, no credit note needed",
        "no need for a repayment",
        "ok no need for the compensation",
    ],
)
def test_a_no_to_the_action_under_another_name_still_turns_it_down(text: str) -> None:
    """The thing turned down may be the refund itself under a name its verbs do not list: the
    other-thing reading must not make that no a yes (a false refund costs money)."""
    assert turns_down(text, VERBS), text
    assert side_effect_intent(text, VERBS).kind != "act", side_effect_intent(text, VERBS)


def test_a_yes_that_turns_down_a_ticket_refunds_on_the_graph(desk: Desk) -> None:
    t = "r14-omar-ticket"
    first = desk.ask("was omar@brightpath.co billed twice back in November?", t)
    assert "CH-2013" in answer(first), answer(first)
    state = desk.ask("right, do the refund please, but no need for a ticket", t)
    for _ in range(3):
        if not desk.pending(t):
            break
        state = desk.resume(True, t)
    assert "refund" in routed_capabilities(state, desk.registry), answer(state)
    assert refunds(desk, "CH-2013") == 1, answer(state)


# --- a word before the no ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Eish, no. Leave it", "Honestly, no, leave it for now", "Nein. No thanks"])
def test_a_word_before_a_plain_no_is_still_a_no(text: str) -> None:
    assert declines(text), text


def test_a_word_before_a_no_with_its_reason_runs_nothing() -> None:
    topic = [
        {"capability": "knowledge_search", "task": "can a renewal be paid back if they close?", "turn": 1}
    ]
    found = resolve("Eish, no. Leave it, she is staying on.", topic, turn=2, standalone=lambda _: [])
    assert found.kind == "switch" and found.capabilities == [], found


@pytest.mark.parametrize("text", ["Sorry, no, the Porto one", "Oops, no - Porto"])
def test_a_correction_is_no_decline(text: str) -> None:
    assert not declines(text), text


# --- a demonstrative and a description pick an item -----------------------------------------------


@pytest.mark.parametrize(
    "text", ["That big one, could it still be paid back?", "this small one, can it come back?"]
)
def test_a_demonstrative_with_a_description_is_an_item_of_the_list(text: str) -> None:
    topic = [{"capability": "billing", "task": "what has C-1009 been charged lately?", "turn": 1}]
    found = resolve(
        text,
        topic,
        turn=2,
        standalone=lambda _: ["knowledge_search"],
        side_effects=lambda n: n == "refund",
        acts=lambda _t, _n: False,
        routable=["billing", "refund", "knowledge_search"],
    )
    assert found.capabilities == ["billing"], found


# --- a person after a customer named by company ---------------------------------------------------


def test_a_person_after_a_customer_found_by_company_asks_billing(desk: Desk) -> None:
    t = "r14-lantern"
    first = desk.ask("could you look at the account for Lantern HQ?", t)
    assert "Mei Chen" in answer(first), answer(first)
    second = desk.ask("So she's still active, right? And did her last payment actually go through?", t)
    assert routed_capabilities(second, desk.registry) == ["billing"], answer(second)
    assert "CH-2043" in answer(second), answer(second)


# --- corrections ---------------------------------------------------------------------------------


def test_a_correction_that_rules_out_the_old_value_takes_the_other() -> None:
    topic = [{"capability": "clock", "task": "what's the time in Lisbon right now?", "turn": 1}]
    found = resolve(
        "Apologies, not Lisbon, Porto. Mixed up my notes.", topic, turn=2, standalone=lambda _: ["clock"]
    )
    assert found.task is not None and "Porto" in found.task and "Lisbon" not in found.task, found


def test_a_correction_with_a_fitting_id_and_how_the_slip_happened() -> None:
    # the classifier reads the words alone as billing's ("sheet"); none of them is billing's own
    topic = [{"capability": "account", "task": "who is customer C-1002?", "turn": 1}]
    found = resolve(
        "Sorry, misread the signup sheet, it's C-1004.",
        topic,
        turn=2,
        standalone=lambda _: ["billing"],
        lexicon={"billing": frozenset({"charg", "invoice"}), "account": frozenset({"plan"})},
        kinds={
            "account": frozenset({"ident", "email", "name"}),
            "billing": frozenset({"ident", "email", "amount"}),
        },
        routable=["account", "billing"],
    )
    assert found.capabilities == ["account"] and found.task == "who is customer C-1004?", found


# --- a plan's name is no place; a cue and the topic's own word --------------------------------------


def test_a_plan_name_after_a_time_and_prices_is_no_place() -> None:
    topic = [
        {"capability": "sales", "task": "what do your plans cost", "turn": 1},
        {"capability": "clock", "task": "the time in Lisbon", "turn": 1},
    ]
    found = resolve(
        "and Enterprise for 30?",
        topic,
        turn=2,
        standalone=lambda _: ["clock", "sales"],
        kinds={"clock": frozenset({"place", "name"}), "sales": frozenset({"name", "number"})},
        known_names={"clock": frozenset({"lisbon"}), "sales": frozenset({"enterprise", "team", "starter"})},
        routable=["sales", "clock"],
    )
    assert found.capabilities == ["sales"], found


def test_a_cue_and_a_service_after_a_status_stays_with_the_status(desk: Desk) -> None:
    t = "r14-service"
    first = desk.ask("are the charts on the dashboard behaving today?", t)
    assert routed_capabilities(first, desk.registry) == ["incidents"], answer(first)
    second = desk.ask("What about the API then?", t)
    assert routed_capabilities(second, desk.registry) == ["incidents"], answer(second)


# --- arithmetic and a saying before the cue ---------------------------------------------------------


def test_an_operand_with_its_unit_continues_the_expression() -> None:
    assert continuation("add 12 miles to that") == "+ 12"
    assert continuation("subtract 3 boxes from the total") == "- 3"
    assert continuation("plus 5 seats") is None  # no place it goes: a count, not an operand
    assert expression_of("what's 9 x 14?") == "9*14"
    topic = [
        {"capability": "clock", "task": "time in Accra", "turn": 2},
        {"capability": "calculator", "task": "what's 9 x 14", "turn": 1},
    ]
    found = resolve("Add 12 miles to that.", topic, turn=3, standalone=lambda _: ["calculator"])
    assert found.capabilities == ["calculator"] and found.task == "(9*14) + 12", found


def test_a_saying_before_a_colon_does_not_hide_the_cue() -> None:
    topic = [{"capability": "clock", "task": "what's the time in Cairo", "turn": 1}]
    found = resolve("Early bird catches the worm: and Lima?", topic, turn=2, standalone=lambda _: [])
    assert found.capabilities == ["clock"] and found.task == "what's the time in Lima", found


# --- the same for another company ------------------------------------------------------------------


def test_the_same_for_another_company_drops_the_old_address() -> None:
    topic = [
        {
            "capability": "account",
            "task": "Pull up Kola Works' account? The email is aisha@kolaworks.ng.",
            "turn": 1,
        }
    ]
    found = resolve("Same again for Lantern HQ.", topic, turn=2, standalone=lambda _: ["account"])
    assert found.task is not None and "Lantern HQ" in found.task and "aisha@" not in found.task, found
