"""Follow-ups, round 12 (session 19, issue 22): what a later turn asks while an offer is open, informal
yeses, subjects a turn inherits, and how-to questions about what the last turn answered.

- a question how the offered action goes ("how many days before it shows on her card?", "would the
  money land back on the card she used?") is the help centre's, searched with the action's word; it
  neither takes the offer, withdraws it nor runs the lookup that made it again: a later yes still
  takes it, a later no still withdraws it;
- informal yeses ("ya", "yup", "yea", "k", "yh", "go on then") and "this months one" typed without
  its apostrophe;
- "it" in the words of the capability that fed the topic (the account, which gave billing its
  customer) is a thing that capability answered; a turn that repeats a word of the part of the last
  request no capability answered goes on with that part;
- a how-to question about what the last turn answered carries that turn's subject, not the words
  that asked it for a figure, nor the count ("add a couple more"), and "them" is the things the
  last request listed.

The real graph with the shipped registry on a test database (no mocks), and new sentences written for
these tests, not copies of the development rows. Each conversation uses its own customer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capabilities.support_desk.billing import charge_selector
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context import offers
from graph.context.followups import asks_how_it_goes, resolve
from graph.context.turns import routed_capabilities
from graph.intent import REFUND_VERBS, side_effect_intent
from tests.conftest import answer
from tests.support_desk.test_support import Desk, rows, shipped_registry
from tests.test_followups_round8 import context, topic


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("round12-desk")
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


def deny_all(desk: Desk, thread: str, state: dict[str, Any]) -> dict[str, Any]:
    for _ in range(3):
        if not desk.pending(thread):
            break
        state = desk.resume(False, thread)
    return state


# --- a question how the offered action goes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "standalone"),
    [
        ("how many days before it shows on her company card?", "how long a refund takes"),
        ("how soon would he actually see the money?", "how long a refund takes"),
        ("when will they get it back, roughly?", "how long a refund takes"),
        ("would the money land back on the card she used?", "how a refund is paid back"),
        ("does it go back to the same bank account?", "how a refund is paid back"),
        ("will he get some kind of confirmation email?", "is an email sent for a refund"),
        ("is the customer notified when that happens?", "is an email sent for a refund"),
        ("who has to approve a big one like this?", "the refund"),
        ("how does that part work exactly?", "the refund"),
    ],
)
def test_a_question_how_the_action_goes(text: str, standalone: str) -> None:
    assert asks_how_it_goes(text, "refund") == standalone, text


@pytest.mark.parametrize(
    "text",
    [
        "how long ago was she charged?",  # the records
        "how long has he been with us?",
        "how long is the free trial?",
        "how many seats does she pay for?",
        "when does his plan renew?",
        "how long ago was CH-2004 taken?",
        "would $80 go back to her?",  # an amount: about the records
        "ok go ahead",  # no question
        "when will the dashboard be back up?",  # another matter's status
    ],
)
def test_other_questions_are_not_about_how_the_action_goes(text: str) -> None:
    assert asks_how_it_goes(text, "refund") is None, text


def test_a_question_how_the_refund_goes_keeps_the_offer_for_a_later_yes(desk: Desk) -> None:
    t = "r12-sofia"
    first = desk.ask(
        "sofia.rossi@vialattea.it is cutting back, is this month's renewal charge still refundable?", t
    )
    assert "CH-2083" in answer(first) and (offer_of(desk, t) or {}).get("source") == "suggested", answer(
        first
    )
    asked = deny_all(desk, t, desk.ask("how many days before it shows on her company card?", t))
    assert routed_capabilities(asked, desk.registry) == ["knowledge_search"], answer(asked)
    assert "5 to 10 business days" in answer(asked), answer(asked)
    assert refunds(desk, "CH-2083") == 0 and (offer_of(desk, t) or {}).get("turn") == 1
    done = approve_all(desk, t, desk.ask("right, go ahead", t))
    assert routed_capabilities(done, desk.registry)[-1] == "refund", answer(done)
    assert refunds(desk, "CH-2083") == 1, answer(done)


def test_a_question_how_the_refund_goes_runs_nothing_and_a_no_still_withdraws(desk: Desk) -> None:
    t = "r12-mei"
    desk.ask("mei@lanternhq.com shut her shop - is this month's charge still refundable?", t)
    assert (offer_of(desk, t) or {}).get("source") == "suggested"
    asked = deny_all(desk, t, desk.ask("would the money land back on the card she used?", t))
    assert routed_capabilities(asked, desk.registry) == ["knowledge_search"], answer(asked)
    assert "original payment method" in answer(asked), answer(asked)
    assert refunds(desk, "CH-2043") == 0 and offer_of(desk, t) is not None
    no = deny_all(desk, t, desk.ask("no, leave it then", t))
    assert refunds(desk, "CH-2043") == 0 and offer_of(desk, t) is None, answer(no)


# --- informal yeses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["ya refund the one from this month", "yup, refund it", "yea refund that", "k refund it", "yh refund it"],
)
def test_an_informal_yes_before_the_action_is_an_instruction(text: str) -> None:
    assert side_effect_intent(text, REFUND_VERBS).kind == "act", text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ya but don't refund it yet", "refuse"),
        ("yea, is it refundable?", "confirm"),
        ("yup, refund it next week", "confirm"),
    ],
)
def test_an_informal_yes_does_not_make_a_question_or_a_no_act(text: str, kind: str) -> None:
    assert side_effect_intent(text, REFUND_VERBS).kind == kind, text


OFFER = {
    "turn": 1,
    "task": "is ana's renewal refundable?",
    "capabilities": ["refund"],
    "question": "I can refund $45.00 to Ana Lima (C-9001) for charge CH-9100 of 01 Dec 2026.",
    "accepted_turn": None,
    "source": "suggested",
}


@pytest.mark.parametrize(
    "text",
    [
        "go on then",
        "yesss",
        "yh go ahead",
        "ya thats fine go ahead",
        "sure thing",
        "lovely, go ahead with it",
    ],
)
def test_informal_yeses_take_an_offer(text: str) -> None:
    assert offers.accepts(OFFER, text, REFUND_VERBS), text


@pytest.mark.parametrize(
    "text",
    [
        "go on with the invoices",
        "ya, how long would it take?",
        "yea but not yet",
        "ya refund last months one",
    ],
)
def test_an_informal_yes_with_more_takes_no_offer(text: str) -> None:
    assert not offers.accepts(OFFER, text, REFUND_VERBS), text


def test_this_months_without_its_apostrophe_picks_this_months_charge() -> None:
    assert charge_selector("ya refund this months one") == "months_ago:0"
    assert charge_selector("this months payment please") == "months_ago:0"
    assert charge_selector("the last months charge") == "months_ago:1"
    assert charge_selector("things changed over the last months") == "auto"


def test_an_informal_yes_that_names_this_months_charge_refunds_it_after_a_question(desk: Desk) -> None:
    t = "r12-lukas"
    desk.ask(
        "is this month's renewal charge for lukas.becker@fjordsoft.de refundable? he's moving to another tool",
        t,
    )
    seats = desk.ask("hang on, how many people is he paying for", t)
    assert "12 seats" in answer(seats) and refunds(desk, "CH-2033") == 0, answer(seats)
    done = approve_all(desk, t, desk.ask("ok ya refund this months renewal", t))
    assert "refund" in routed_capabilities(done, desk.registry), answer(done)
    assert refunds(desk, "CH-2033") == 1 and refunds(desk, "CH-2034") == 0, answer(done)


# --- inherited subjects ------------------------------------------------------------------------------


def test_it_in_the_words_of_the_capability_that_fed_the_topic_goes_there() -> None:
    billing = topic(("billing", "is dana@example.org paying us yet or still on the free period"))
    follow = resolve("when does it run out?", billing, turn=2, **context())
    assert follow.capabilities == ["account"], follow.reason
    assert (follow.task or "").endswith(
        "(follow-up to: is dana@example.org paying us yet or still on the free period)"
    )
    # Words of the topic's own capability stay with it.
    charged = resolve("when was it charged?", billing, turn=2, **context())
    assert charged.capabilities == ["billing"], charged.reason


def test_a_turn_that_goes_on_with_the_unanswered_part_of_the_last_request() -> None:
    account = topic(("account", "who is c-1008, also are webhooks delivering"))

    def incidents_with_the_part(text: str) -> list[str]:  # the scorer reads the pair, not the words alone
        return ["incidents"] if "(follow-up to:" in text and "webhooks" in text else []

    follow = resolve(
        "any eta for the webhooks fix", account, turn=2, **context(standalone=incidents_with_the_part)
    )
    assert (follow.capabilities, follow.task) == (
        ["incidents"],
        "any eta for the webhooks fix (follow-up to: are webhooks delivering)",
    ), follow.reason
    # A turn that repeats no word of the unanswered part is read on its own.
    other = resolve(
        "any eta for the dashboard fix", account, turn=2, **context(standalone=incidents_with_the_part)
    )
    assert other.kind == "new"


def test_the_api_half_of_a_two_need_request_answered_on_the_next_turn(desk: Desk) -> None:
    t = "r12-api"
    desk.ask("who is c-1008, also are webhooks delivering", t)
    later = desk.ask("any eta for the webhooks fix", t)
    assert routed_capabilities(later, desk.registry) == ["incidents"], answer(later)
    assert "INC-302" in answer(later), answer(later)


# --- how-to questions about what the last turn answered ---------------------------------------------


def test_a_how_to_carries_the_subject_not_the_words_that_asked_for_a_figure() -> None:
    seats = topic(("account", "how many seats has c-1005 got these days"))
    follow = resolve("how can she add a couple more herself?", seats, turn=2, **context())
    assert follow.capabilities == ["knowledge_search"]
    assert (
        follow.task == "how can she add more seats herself? (follow-up to: seats has c-1005 got these days)"
    )


def test_them_after_a_list_of_things_is_the_things() -> None:
    invoices = topic(("billing", "show me the invoices for c-1002"))
    follow = resolve("how can I grab a copy of them on my own?", invoices, turn=2, **context())
    assert (follow.capabilities, follow.task) == (
        ["knowledge_search"],
        "how can I grab a copy of them on my own? (follow-up to: show me the invoices for c-1002)",
    )
    # "they" doing it, and people, are no things: the instructions are read on their own words.
    people = topic(("account", "who are the admins at c-1002"))
    assert resolve("how do I remove them myself?", people, turn=2, **context()).task is None
    doers = topic(("account", "how many seats does c-1002 have"))
    assert resolve("how do they add seats?", doers, turn=2, **context()).task is None


@pytest.mark.parametrize(
    ("first", "then", "article"),
    [
        ("list c-1006's invoices", "how do I download them myself?", "PDF"),
        (
            "how many seats has tom@whitakerlegal.co.uk got?",
            "how could he add two more on his own?",
            "prorated",
        ),
        (
            "are webhook deliveries still running late?",
            "how do we resend the missed ones ourselves?",
            "resent",
        ),
    ],
)
def test_a_how_to_follow_up_finds_the_article_of_the_last_turns_subject(
    desk: Desk, first: str, then: str, article: str
) -> None:
    t = "r12-howto-" + "-".join(then.split()[:6])
    desk.ask(first, t)
    state = desk.ask(then, t)
    assert routed_capabilities(state, desk.registry) == ["knowledge_search"], answer(state)
    assert article in answer(state), answer(state)


# --- heldout13's kinds, in new words -----------------------------------------------------------------


def test_ditto_typed_with_one_t_is_a_cue() -> None:
    invoices = topic(("billing", "invoices for mei@lanternhq.com please"))
    follow = resolve(
        "dito for tom@whitakerlegal.co.uk", invoices, turn=2, **context(standalone=lambda t: ["account"])
    )
    assert (follow.capabilities, follow.task) == (["billing"], "invoices for tom@whitakerlegal.co.uk please")


@pytest.mark.parametrize(
    "text",
    ["apologies, Hanoi", "pardon - Hanoi", "My apologies - she meant Hanoi.", "excuse me, Hanoi please"],
)
def test_an_apology_or_someone_elses_meant_makes_a_correction(text: str) -> None:
    clock = topic(("clock", "what time is it in Quito now"))
    follow = resolve(text, clock, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "correction",
        ["clock"],
        "what time is it in Hanoi now",
    )


def test_someones_ones_beside_a_new_address_are_the_topics_things() -> None:
    charges = topic(("billing", "show the charges on jane@acme.io"))
    follow = resolve(
        "oops, I mean tom@whitakerlegal.co.uk's ones",
        charges,
        turn=2,
        **context(standalone=lambda t: ["account"]),
    )
    assert (follow.capabilities, follow.task) == (["billing"], "show the charges on tom@whitakerlegal.co.uk")


@pytest.mark.parametrize(
    "text",
    ["any more news?", "when will you tell us more?", "can you share any more details", "more info please"],
)
def test_asking_for_more_of_it_follows_the_topic(text: str) -> None:
    outage = topic(("incidents", "are webhooks slow for anyone right now"))
    follow = resolve(text, outage, turn=2, **context())
    assert follow.capabilities == ["incidents"], (text, follow.reason)
    assert (follow.task or "").endswith("(follow-up to: are webhooks slow for anyone right now)")


def test_more_of_a_thing_is_no_request_for_more_of_it() -> None:
    outage = topic(("incidents", "are webhooks slow for anyone right now"))
    assert resolve("what would 10 more seats on Team cost?", outage, turn=2, **context()).kind != "follow_up"


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Next stop: Suva.", "current time in Suva?"),
        ("Time: Montevideo instead of Nairobi.", "current time in Montevideo?"),
    ],
)
def test_a_sentences_first_word_is_no_name(text: str, task: str) -> None:
    clock = topic(("clock", "current time in Nairobi?"))
    follow = resolve(text, clock, turn=2, **context())
    assert (follow.capabilities, follow.task) == (["clock"], task), follow.reason


def test_a_number_that_completes_a_cut_off_id_is_that_id() -> None:
    lookup = topic(("account", "please pull up customer C-100"))
    follow = resolve("argh it got cut off, 1008", lookup, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "correction",
        ["account"],
        "please pull up customer C-1008",
    )
    # A number shorter than the id, or of other digits, is no completion of it.
    other = resolve("argh it got cut off, 2008", lookup, turn=2, **context())
    assert other.task != "please pull up customer C-1008"


def test_a_cut_off_id_completed_on_the_next_turn_finds_the_customer(desk: Desk) -> None:
    t = "r12-cutoff"
    desk.ask("can you look up customer C-100", t)
    state = desk.ask("oops my message got cut, 1005", t)
    assert routed_capabilities(state, desk.registry) == ["account"] and "Mei Chen" in answer(state), answer(
        state
    )


def test_a_name_the_guides_write_with_a_capital_opens_a_sentence_and_stays_a_name() -> None:
    quote = topic(("sales", "what would 9 seats on Team cost"))
    follow = resolve("update: Enterprise, not Team", quote, turn=2, **context())
    assert follow.task == "what would 9 seats on Enterprise cost", follow.reason


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("same sum again with 45 over 9", "what's 45 / 9?"),
        ("and 7 over 2?", "what's 7 / 2?"),
    ],
)
def test_a_fraction_said_over_replaces_the_expression(text: str, task: str) -> None:
    sums = topic(("clock", "Time in Lagos"), ("calculator", "what's 96 / 8?"))
    follow = resolve(text, sums, turn=2, **context())
    assert (follow.capabilities, follow.task) == (["calculator"], task), follow.reason
    # "over" before a count is no division.
    quote = topic(("sales", "Team for 12 seats"))
    assert resolve("what about over 20 seats", quote, turn=2, **context()).task == "Team for 20 seats"


def test_a_fraction_in_a_follow_up_is_computed(desk: Desk) -> None:
    t = "r12-over"
    desk.ask("what's 84 / 4?", t)
    state = desk.ask("the same again with 90 over 4", t)
    assert routed_capabilities(state, desk.registry) == ["calculator"] and "22.5" in answer(state), answer(
        state
    )
