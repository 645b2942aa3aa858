"""Follow-ups, round 13 (session 20, issue 22): the ways a later turn says no, not yet or yes to an
offered action, and slots a follow-up replaces.

- a no said more strongly or more casually than "no" ("absolutely not", "of course not", "yeah, no",
  "yeah nah, leave it", "skip the refund", "I'll pass") withdraws the offer and runs nothing; a stack
  of yes and no words is answered by its last word ("yeah nah yeah, go for it" is a yes);
- "give me a minute", "gimme a sec", "bear with me" put the offer off like "one sec" (a short
  acknowledgment, not the menu of capabilities);
- a go-ahead followed by a question about the action once done ("go for it - how soon will she see
  it?") takes the offer (once); a question that weighs the action ("go ahead - or should we wait?")
  does not;
- "refund the one that went through, not the failed one": the "not" leaves a charge out, it does not
  turn the refund down.

The real graph with the shipped registry on a test database (no mocks), and new sentences written for
these tests, not copies of the development rows. Each conversation uses its own customer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capabilities.support_desk.account import resolve_customer
from capabilities.support_desk.billing import charge_selector
from capabilities.support_desk.db import SupportDB
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context import offers
from graph.context.followups import count_askers, resolve, slots
from graph.context.turns import routed_capabilities
from graph.intent import REFUND_VERBS, side_effect_intent, turns_down
from tests.conftest import answer
from tests.support_desk.test_support import Desk, rows, shipped_registry

VERBS = list(REFUND_VERBS)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("round13-desk")
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


def settle(desk: Desk, thread: str, state: dict[str, Any], decision: bool) -> dict[str, Any]:
    """Answer every question the turn asks (a confirmation, the approval policy's threshold)."""
    for _ in range(3):
        if not desk.pending(thread):
            break
        state = desk.resume(decision, thread)
    return state


OFFER: dict[str, Any] = {
    "turn": 1,
    "task": "was ingrid's renewal this month refundable?",
    "capabilities": ["refund"],
    "question": "I can refund $64.00 to Ingrid Holm (C-9301) for charge CH-9310 of 01 Dec 2026.",
    "accepted_turn": None,
    "source": "suggested",
}


# --- a no in other words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "absolutely not",
        "definitely not, she's staying",
        "of course not",
        "not at all",
        "yeah, no",
        "yeah nah, leave it",
        "yep no, she changed her mind",
        "skip the refund",
        "skip it",
        "drop it",
        "I'll pass",
        "we'll pass on that",
    ],
)
def test_a_no_in_other_words_withdraws(text: str) -> None:
    assert offers.declined(text, VERBS) == "withdraw", text
    assert not offers.accepts(OFFER, text, VERBS, asked=True), text


@pytest.mark.parametrize(
    "text",
    [
        "give me a minute",
        "gimme a sec",
        "just a moment",
        "bear with me",
        "hold that thought",
        "ok, half a sec",
    ],
)
def test_asking_for_a_moment_is_a_delay(text: str) -> None:
    assert offers.declined(text, VERBS) == "hold", text
    assert not offers.accepts(OFFER, text, VERBS, asked=True), text


@pytest.mark.parametrize(
    "text",
    [
        "give me the invoices",  # a request of its own
        "wait, show me last month's charges",
        "yeah, no, the other charge",  # a correction
        "nah yeah, go for it",  # the last word is a yes
        "yes",
    ],
)
def test_a_request_a_correction_or_a_yes_is_no_decline(text: str) -> None:
    assert offers.declined(text, VERBS) is None, text


def test_a_stack_of_yes_and_no_words_is_answered_by_its_last_word() -> None:
    assert offers.stacked("yeah, no") is False
    assert offers.stacked("nah yeah, do it") is True
    assert offers.stacked("no") is None and offers.stacked("ok yes") is None
    assert offers.accepts(OFFER, "yeah nah yeah, go for it", VERBS)
    assert offers.accepts(OFFER, "nah yeah, do it", VERBS)
    # ending in a yes is not enough without a go-ahead after it
    assert not offers.accepts(OFFER, "no, ok", VERBS, asked=True)
    assert not offers.accepts(OFFER, "yeah, no", VERBS, asked=True)


def test_skipping_the_action_turns_it_down() -> None:
    for text in ("skip the refund", "let's drop the refund, just show the plan", "scrap the refund"):
        assert turns_down(text, VERBS), text
        assert side_effect_intent(text, VERBS).kind == "refuse", text


def test_a_casual_no_on_the_graph_runs_nothing_and_ends_the_offer(desk: Desk) -> None:
    t = "r13-aisha"
    first = desk.ask("aisha@kolaworks.ng is closing her account, is this month's charge still refundable?", t)
    assert "CH-2063" in answer(first) and offer_of(desk, t) is not None, answer(first)
    no = settle(desk, t, desk.ask("yeah, no - leave it", t), True)
    assert routed_capabilities(no, desk.registry) == ["clarify"], answer(no)
    assert "I won't go ahead" in answer(no) and "I did not refund $80.00" in answer(no), answer(no)
    assert refunds(desk, "CH-2063") == 0 and offer_of(desk, t) is None
    # the offer is gone: a later yes takes nothing
    later = settle(desk, t, desk.ask("go ahead", t), True)
    assert refunds(desk, "CH-2063") == 0, answer(later)


def test_a_moment_on_the_graph_keeps_the_offer_for_a_later_yes(desk: Desk) -> None:
    t = "r13-mei"
    desk.ask("mei@lanternhq.com stopped using it - could her charge from this month be refunded?", t)
    assert offer_of(desk, t) is not None
    wait = settle(desk, t, desk.ask("give me a minute", t), True)
    assert answer(wait).startswith("OK, I'll wait"), answer(wait)
    assert "I can help with" not in answer(wait)
    assert refunds(desk, "CH-2043") == 0 and offer_of(desk, t) is not None
    done = settle(desk, t, desk.ask("ok, go ahead", t), True)
    assert refunds(desk, "CH-2043") == 1, answer(done)


# --- a yes with a question about the action once done ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "go for it - how soon will she see the money?",
        "yep, do it. when does it land on the card?",
        "sure, go ahead, how long until it shows up?",
        "yeah nah yeah, do it - will she get an email?",
    ],
)
def test_a_yes_then_a_question_about_the_action_takes_the_offer(text: str) -> None:
    assert offers.accepts(OFFER, text, VERBS), text


@pytest.mark.parametrize(
    "text",
    [
        "go ahead - or should we wait for her?",
        "do it, unless she's already been credited?",
        "go for it - is that the right charge though?",
        "go on then - what about the other charge?",
        "yes - would she lose access?",
        "ok - how long does it take?",  # an acknowledgment, then a question: no go-ahead
        "go ahead?",
        "do it - and refund CH-9311 too?",
        "go for it, and when does her plan renew?",  # a question of its own
        "yes please - what time is it in Lisbon?",
    ],
)
def test_a_question_that_weighs_the_action_is_no_yes(text: str) -> None:
    assert not offers.accepts(OFFER, text, VERBS), text


def test_a_yes_with_a_question_on_the_graph_refunds_once_and_says_when(desk: Desk) -> None:
    t = "r13-lukas"
    first = desk.ask("Lukas Becker (C-1004) paid $36 for extra seats a few days ago, is that refundable?", t)
    assert "CH-2034" in answer(first) and offer_of(desk, t) is not None, answer(first)
    done = settle(desk, t, desk.ask("right, go for it - how soon will he see the money?", t), True)
    assert "refund" in routed_capabilities(done, desk.registry), answer(done)
    assert refunds(desk, "CH-2034") == 1, answer(done)
    assert "5 to 10 business days" in answer(done), answer(done)
    again = settle(desk, t, desk.ask("go ahead", t), True)
    assert refunds(desk, "CH-2034") == 1, answer(again)


def test_a_weighing_question_on_the_graph_refunds_nothing(desk: Desk) -> None:
    t = "r13-sofia"
    desk.ask("sofia.rossi@vialattea.it is downsizing, is her renewal this month refundable?", t)
    assert offer_of(desk, t) is not None
    asked = settle(desk, t, desk.ask("go ahead - or should we wait for her boss?", t), True)
    assert refunds(desk, "CH-2083") == 0, answer(asked)


# --- a yes that leaves a charge out ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "refund the one that went through, not the failed one",
        "refund the retry only, not the declined one",
        "please refund the successful payment - not the bounced one",
    ],
)
def test_not_before_what_is_left_out_is_no_refusal(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind == "act", text
    assert not turns_down(text, VERBS), text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("refund it, not now", "refuse"),
        ("refund it, not the refund you did before", "confirm"),  # the verb itself negated: asked
        ("don't refund it, not the failed one either", "refuse"),
    ],
)
def test_a_not_that_is_about_the_action_still_counts(text: str, kind: str) -> None:
    assert side_effect_intent(text, VERBS).kind == kind, text


def test_refunding_the_charge_that_went_through_on_the_graph(desk: Desk) -> None:
    t = "r13-diego"
    first = desk.ask("diego@solmarket.mx says he was billed twice this month, was he?", t)
    assert "CH-2054" in answer(first), answer(first)
    done = settle(desk, t, desk.ask("ok, refund the one that went through, not the failed one", t), True)
    assert routed_capabilities(done, desk.registry)[-1] == "refund", answer(done)
    assert refunds(desk, "CH-2054") == 1 and refunds(desk, "CH-2053") == 0, answer(done)


# --- a count question about the customer after a charges turn ----------------------------------------


def test_a_count_about_the_customer_after_a_charges_turn_asks_the_account(desk: Desk) -> None:
    t = "r13-omar-count"
    first = desk.ask("omar haddad paid his renewal on the 1st, can he still get it back?", t)
    assert "billing" in routed_capabilities(first, desk.registry), answer(first)
    second = desk.ask("hang on, how many users is he paying for", t)
    assert routed_capabilities(second, desk.registry) == ["account"], answer(second)
    assert "3 seats" in answer(second) and "refunded" not in answer(second).lower()


def test_a_count_of_the_topics_own_things_stays_with_the_topic(desk: Desk) -> None:
    t = "r13-priya-count"
    desk.ask("priya@nimbuslabs.dev was charged on the 1st, is that one refundable?", t)
    second = desk.ask("how many invoices does she have?", t)
    assert routed_capabilities(second, desk.registry) == ["billing"], answer(second)


def test_count_askers_are_the_capabilities_whose_guides_ask_counts() -> None:
    guides = {
        "seats": ["how many seats do we have", "who is on our plan"],
        "money": ["what was I charged", "show the invoices"],
        "help": ["so how many days is the trial?"],
    }
    assert count_askers(guides) == frozenset({"seats", "help"})


# --- a company in place of the company the conversation named ----------------------------------------


def test_another_company_after_a_customer_found_by_company_is_a_switch(desk: Desk) -> None:
    t = "r13-companies"
    first = desk.ask("which plan is Whitaker Legal on?", t)
    assert "Tom Whitaker" in answer(first), answer(first)
    second = desk.ask("oops, I meant Lantern HQ", t)
    assert "Mei Chen" in answer(second) and "Tom Whitaker" not in answer(second), answer(second)
    third = desk.ask("and Sol Market?", t)
    assert "Diego Alvarez" in answer(third) and "Mei Chen" not in answer(third), answer(third)


def test_charges_of_another_company_after_charges_found_by_company(desk: Desk) -> None:
    t = "r13-company-charges"
    first = desk.ask("list the recent charges for Kola Works", t)
    assert "CH-2063" in answer(first), answer(first)
    second = desk.ask("same for Whitaker Legal", t)
    assert "CH-2071" in answer(second) and "CH-2063" not in answer(second), answer(second)


def test_a_company_mentioned_about_a_customer_named_by_email_is_no_switch(desk: Desk) -> None:
    with SupportDB(desk.db).connect() as conn:
        # the conversation named its customer by email: a company in passing leaves them
        stays = resolve_customer(
            conn,
            "does Acme Inc have more seats than them?",
            "C-1005",
            {"customer": {"id": "C-1005", "identified_by": "email"}},
        )
        assert stays.customer and stays.customer["id"] == "C-1005" and stays.via == "context"
        # found by company: another company is another customer
        moved = resolve_customer(
            conn,
            "what about Acme Inc?",
            "C-1005",
            {"customer": {"id": "C-1005", "identified_by": "company Lantern HQ"}},
        )
        assert moved.customer and moved.customer["id"] == "C-1001"
        # a context customer other than the one the step was given says nothing about it
        other = resolve_customer(
            conn,
            "what about Acme Inc?",
            "C-1005",
            {"customer": {"id": "C-1002", "identified_by": "company BrightPath"}},
        )
        assert other.customer and other.customer["id"] == "C-1005"


# --- a yes with a question about what follows, after a word of its own ----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Mint. go for it",
        "Lovely! do it - and will she keep her seats afterwards?",
        "go ahead, will the account still work after?",
        "do it. does he keep access once it's done?",
    ],
)
def test_a_yes_after_a_word_of_its_own_or_before_a_question_what_follows(text: str) -> None:
    assert offers.accepts(OFFER, text, VERBS), text


@pytest.mark.parametrize(
    "text",
    [
        "Nope. go for it",
        "Wait. do it",
        "do it, what happens to the account after the renewal?",  # after another event: its own question
        "go ahead - or is it better to hold?",
    ],
)
def test_a_no_or_a_delay_as_its_own_word_or_a_question_about_something_else(text: str) -> None:
    assert not offers.accepts(OFFER, text, VERBS), text


# --- the charge a reason mentions, the same value said twice, names of several words, how-to ------------


def test_a_word_in_a_reason_does_not_describe_the_charge() -> None:
    said = "mei@lanternhq.com here. Can this month's $10 charge still be refunded? She hardly used the seats."
    assert "desc" not in charge_selector(said)
    # a sentence that speaks of the charge still describes it
    assert "desc:seats" in charge_selector("We added two seats last week. Can that charge come back?")
    assert "desc:seats" in charge_selector("Can the seats charge from Monday be refunded?")


def test_an_offer_is_made_when_the_reason_mentions_seats(desk: Desk) -> None:
    t = "r13-mei-seats"
    first = desk.ask(
        "omar@brightpath.co here. Is this month's $30 charge refundable? Nobody uses the seats now.", t
    )
    assert "CH-2014" in answer(first) and offer_of(desk, t) is not None, answer(first)


def test_a_value_said_twice_is_replaced_wherever_it_is_said(desk: Desk) -> None:
    t = "r13-twice"
    first = desk.ask("What time is it in Lima? Our Lima warehouse closes soon.", t)
    assert "America/Lima" in answer(first), answer(first)
    second = desk.ask("Bogota.", t)
    assert "America/Bogota" in answer(second) and "Lima" not in answer(second), answer(second)


def test_a_name_of_several_words_keeps_its_small_words() -> None:
    assert [s.text for s in slots("and for Frankfurt am Main?")] == ["Frankfurt am Main"]
    assert [s.text for s in slots("same for Rio de Janeiro please")] == ["Rio de Janeiro"]
    assert [s.text for s in slots("Paris or Rome")] == ["Paris", "Rome"]  # "or" joins two names
    assert [s.text for s in slots("Jane Cooper of Acme Inc")] == ["Jane Cooper", "Acme Inc"]


def test_a_how_to_question_without_its_do(desk: Desk) -> None:
    t = "r13-howto"
    desk.ask("show me the invoices of omar@brightpath.co", t)
    second = desk.ask("Ok. how I get one of them as PDF myself?", t)
    assert routed_capabilities(second, desk.registry) == ["knowledge_search"], answer(second)
    assert "PDF" in answer(second), answer(second)


@pytest.mark.parametrize("text", ["Choice. And in Helsinki?", "Choice. Helsinki?", "Sweet as. And Helsinki?"])
def test_a_word_said_as_its_own_sentence_first_is_no_slot(text: str) -> None:
    topic = [{"capability": "clock", "task": "What time is it in Oslo? We open at nine.", "turn": 1}]
    found = resolve(text, topic, turn=2, standalone=lambda _: [])
    assert found.task == "What time is it in Helsinki? We open at nine.", found


def test_a_place_said_as_its_own_sentence_first_is_still_one() -> None:
    topic = [{"capability": "clock", "task": "What time is it in Oslo?", "turn": 1}]
    found = resolve("Helsinki. What time is it there?", topic, turn=2, standalone=lambda _: [])
    assert found.task is not None and "Helsinki" in found.task, found
