"""Mutation-check cases for declines (`./scripts/mutants declines declined_offer clarify`, session 19):
a no or a delay to a side effect on offer (graph/context/offers.py `declined`), the orchestrator's
reading of it against the open offer or the action the previous request asked about
(`declined_offer`, `_asked_about`), the yes that takes an offer (`accepted_offer`), and the answer
that says what was not done (`_not_done`, `acknowledgment`, the clarify node).

Pure and fast on purpose: mutmut runs every test that reaches a mutated function for every mutant, so
these call the functions with small state dicts and the shipped registry (read for its capabilities'
side effects and action verbs; nothing runs). The graph-level behaviour is in
tests/test_confirmations_round10.py. Every sentence is written for these tests.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from graph.config.registry import Registry, default_registry
from graph.context import offers
from graph.intent import REFUND_VERBS
from nodes.base import NodeCall
from nodes.clarify import clarify
from nodes.orchestrator import (
    DECLINED_NOTE,
    Declined,
    _asked_about,
    _not_done,
    accepted_offer,
    acknowledgment,
    declined_offer,
)

VERBS = list(REFUND_VERBS)
QUESTION = "I can refund $61.20 to Tomas Berg (C-1212) for duplicate charge CH-7734 of 03 Dec 2026."
ASKED_QUESTION = (
    "This needs your approval. Refund $61.20 to Tomas Berg (C-1212) for charge CH-7734 of 03 Dec 2026? "
    "Policy: refunds over $50 need approval."
)
OFFER: dict[str, Any] = {
    "turn": 1,
    "task": "tomas@fjord.example: the december plan was billed twice",
    "capabilities": ["refund"],
    "question": QUESTION,
    "accepted_turn": None,
    "source": "suggested",
}
ASKED = {**OFFER, "source": "confirm", "question": ASKED_QUESTION}


@pytest.fixture(scope="module")
def shipped() -> Registry:
    return Registry.from_file(default_registry())


@pytest.fixture(scope="module")
def with_credit() -> Registry:
    """The shipped registry with a second action that has side effects (a credit note), and billing
    declaring an action word of its own although it has none."""
    import yaml

    data = yaml.safe_load(default_registry().read_text(encoding="utf-8"))
    data["capabilities"].append(
        {
            "name": "store_credit",
            "class": "capabilities.support_desk.refund:Refund",
            "side_effects": True,
            "action_verbs": ["credit note"],
            "provides": ["store_credit"],
            "options": {"db": None},
        }
    )
    for cap in data["capabilities"]:
        if cap["name"] == "billing":
            cap["action_verbs"] = ["look into"]
    return Registry.from_dict(data, source=str(default_registry()))


# --- the words of a no and of a delay -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # each cue of a no (_NO), in a sentence of its own
        "no",
        "nope, she's fine as is",
        "nah",
        "never mind, we sorted it",
        "nevermind",
        "forget it",
        "forget that, thanks",
        "forget about it",
        "scratch that",
        "cancel",
        "cancel it",
        "cancel that",
        "leave it as it is",
        "keep it",
        "keep them",
        "keep the money on the account",
        "not now",
        "not needed anymore",
        "not necessary",
        "call it off",
        "she changed her mind",
        "he changed his mind",
        "they changed their mind",
        "I changed my mind",
        "we changed our mind",
        "they decided to keep the plan",
        "she decided to keep her plan",
        "she decided against it",
        # a "don't" with no delay
        "please don't",
        "don't bother",
        # words only confirmation() or turns_down() read as a no
        "we won't be needing that",
        "she'd rather it wasn't refunded",
    ],
)
def test_a_no_withdraws(text: str) -> None:
    assert offers.declined(text, VERBS) == "withdraw", text


LONG = "she talked it over with her accountant this morning and they are happy with the subscription as it stands"


@pytest.mark.parametrize(
    "cue",
    [
        "nope",
        "nah",
        "never mind",
        "nevermind",
        "forget it",
        "forget that",
        "forget about it",
        "scratch that",
        "not now",
        "not needed",
        "not necessary",
    ],
)
def test_a_long_no_withdraws_whatever_the_action_s_words(cue: str) -> None:
    # longer than confirmation() reads (80 characters), and without the action's words turns_down()
    # has nothing to read: the cue alone says no
    text = f"{cue}, {LONG}"
    assert offers.declined(text, ()) == "withdraw", text
    assert offers.declined(text, VERBS) == "withdraw", text


@pytest.mark.parametrize(
    "text",
    [
        # each cue of a delay (_HOLD), with and without a sound before it
        "hold on",
        "hold off for a day",
        "hold it for now",
        "hold up",
        "hold fire",
        "hang on",
        "not yet",
        "not just yet",
        "not for now",
        "wait",
        "hmm give me a sec",
        "hmm give me a second",
        "uh give me a minute",
        "um give me a moment",
        "so give me a bit",
        "well give me a day",
        "one sec",
        "one second",
        "one moment",
        "one minute",
        "let me check with her",
        "let me ask the owner",
        "let me confirm with finance",
        "let me talk to my manager",
        "let me speak to the account owner",
        "let me double-check the invoice",
        "let me double check the invoice",
        "let me think",
        "let me get back to you",
        "I'll wait",
        "I will check with the owner",
        "we'll ask finance",
        "we will confirm tomorrow",
        "I'll get back to you",
        "we'll come back to this",
        "I'll let you know",
        # the sounds and fillers before a delay
        "ok hold on",
        "okay hold on",
        "k hold on",
        "so hold on",
        "well hold on",
        "hmmm hold on",
        "ummm hold on",
        "uhh hold on",
        "right hold on",
        "alright hold on",
        "actually hold on",
        "sorry hold on",
        "oh hold on",
        # a "don't" with a delay (_DONT with _NOT_YET)
        "don't do it yet",
        "do not do that until friday",
        "don't do it till she signs",
        "don't do anything before the audit",
        "don't touch it, I'm asking her first",
    ],
)
def test_a_delay_holds(text: str) -> None:
    assert offers.declined(text, VERBS) == "hold", text


@pytest.mark.parametrize(
    "text",
    [
        "no refund?",  # a question
        "",  # nothing said
        "   ",
        "no, not CH-7734",  # an identifier: a request of its own
        "no, the $61.20 one",  # an amount
        "no, the 61.20 one",  # a number
        "no, use tomas@fjord.example",  # an e-mail address
        "no, only 3 of them",
        "no, 12*4",  # an expression
        "no, just tell me the plan",  # a clause that asks for something
        "no, I meant the other one",  # a correction
        "yes, and keep the seats",  # opens with a yes
        "ok, yes, leave the seats",
        "sure, keep them",
        "alright go ahead, keep the receipt",
        "refund it, but keep the seats",  # instructs the action
        "thanks, that was quick the first time",  # no sign of a no
        "wait, how many seats is he paying for",  # a question after "wait"
        "ok, right, hold on",  # a delay only in the third clause
    ],
)
def test_a_question_a_request_or_a_yes_is_no_decline(text: str) -> None:
    assert offers.declined(text, VERBS) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "wait what was the total",
        "wait how much was it",
        "wait why was she charged twice",
        "wait who approved that",
        "wait when did that go through",
        "wait where did that charge come from",
        "wait which card was it",
        "wait is that the duplicate",
        "wait are those the same charge",
        "wait was that the march one",
        "wait were both of them paid",
        "wait does she still have access",
        "wait do they lose the seats",
        "wait did that go out already",
        "wait can she still log in",
        "wait could that be a trial charge",
    ],
)
def test_a_question_after_a_word_of_delay_is_no_decline(text: str) -> None:
    assert offers.declined(text, VERBS) is None, text


def test_a_message_of_up_to_240_characters_is_read() -> None:
    text = "no, leave it" + "!" * 228
    assert len(text) == 240 and offers.declined(text, VERBS) == "withdraw"
    assert offers.declined(text + "!", VERBS) is None, "longer: a message of its own"
    spaced = "no,   leave it" + "!" * 228  # runs of spaces count once
    assert offers.declined(spaced, VERBS) == "withdraw"


def test_an_instruction_is_a_yes_only_with_the_action_s_words() -> None:
    assert offers.declined("refund it, but keep the seats", VERBS) is None
    assert offers.declined("refund it, but keep the seats", ()) == "withdraw"


def test_the_clauses_are_split_at_every_separator() -> None:
    for sep in (",", ";", ":", ".", "!", " -", " --", " —", " but"):
        assert offers.declined(f"no{sep} just tell me the plan", VERBS) is None, sep
        assert offers.declined(f"ok{sep} not yet", VERBS) == "hold", sep


def test_a_delay_in_the_first_two_clauses_holds_and_a_no_wins_over_it() -> None:
    assert offers.declined("ok then, not yet", VERBS) == "hold"  # the second clause
    assert offers.declined("no, hold off on that", VERBS) == "withdraw"
    assert offers.declined("cool, hang on", VERBS) == "hold"
    assert offers.declined("cool, got it, hang on", VERBS) is None, "a delay in the third clause"


def test_a_don_t_without_a_delay_withdraws_and_a_delay_word_alone_is_no_decline() -> None:
    assert offers.declined("please don't do it", VERBS) == "withdraw"
    assert offers.declined("do not do it", VERBS) == "withdraw"
    assert offers.declined("the first one was fine", VERBS) is None
    assert offers.declined("great timing before the weekend", VERBS) is None


def test_a_no_only_the_action_s_words_tell_needs_the_verbs() -> None:
    # turns_down() reads it as turning the action down; confirmation() does not read it as a no
    text = "she's not after a refund anymore"
    assert offers.declined(text, VERBS) == "withdraw"


# --- the orchestrator: a decline of the open offer or of the action asked about ----------------


def state_of(*said: str, turn: int = 2, **extra: Any) -> dict[str, Any]:
    """A conversation whose human messages are `said`, each answered."""
    messages: list[Any] = []
    for text in said:
        messages += [HumanMessage(text), AIMessage("...")]
    return {"messages": messages[:-1], "task_turn": turn, **extra}


def test_a_no_to_the_open_offer(shipped: Registry) -> None:
    state = state_of("tomas@fjord.example: billed twice?", "nope, leave it", approval_offer=OFFER)
    assert declined_offer(state, shipped) == Declined("withdraw", OFFER, VERBS)
    state = state_of("tomas@fjord.example: billed twice?", "hang on", approval_offer=OFFER)
    assert declined_offer(state, shipped) == Declined("hold", OFFER, VERBS)


def test_no_decline_without_a_registry_or_a_no(shipped: Registry) -> None:
    state = state_of("tomas@fjord.example: billed twice?", "nope, leave it", approval_offer=OFFER)
    assert declined_offer(state, None) is None
    assert declined_offer(state_of("billed twice?", "go ahead", approval_offer=OFFER), shipped) is None


def test_the_offer_s_action_words_tell_an_instruction_from_a_no(shipped: Registry) -> None:
    said = "refund it, but keep the seats"  # the action, then what stays: not a no
    assert declined_offer(state_of("billed twice?", said, approval_offer=OFFER), shipped) is None
    assert declined_offer(state_of("could the march charge be refunded?", said), shipped) is None
    # only the action's words make it a no (turns_down), past what confirmation() reads
    long = f"she's not after a refund anymore, {LONG}"
    found = declined_offer(state_of("billed twice?", long, approval_offer=OFFER), shipped)
    assert found == Declined("withdraw", OFFER, VERBS)


def test_an_offer_that_is_no_longer_open_is_not_declined(shipped: Registry) -> None:
    old = state_of("what did I pay?", "no, leave it", turn=5, approval_offer=OFFER)  # 4 turns later
    assert declined_offer(old, shipped) is None
    assert declined_offer({**old, "messages": []}, shipped) is None


def test_a_no_to_the_action_the_previous_request_asked_about(shipped: Registry) -> None:
    state = state_of("could the march charge be refunded?", "no, leave it")
    assert declined_offer(state, shipped) == Declined("withdraw", None, VERBS)
    state = state_of("could the march charge be refunded?", "let me ask her first")
    assert declined_offer(state, shipped) == Declined("hold", None, VERBS)
    # the previous request asked about something else: nothing to decline
    assert declined_offer(state_of("what plan is she on?", "no, leave it"), shipped) is None


def test_what_the_previous_request_asked_about(shipped: Registry) -> None:
    # the intent check says it asks about the action (no question mark needed)
    assert _asked_about(state_of("is this month's renewal refundable", "no"), shipped) == VERBS
    # a question with the action in any form
    assert _asked_about(state_of("could the march charge be refunded?", "no"), shipped) == VERBS
    assert _asked_about(state_of("could it be reimbursed?", "no"), shipped) == VERBS
    assert _asked_about(state_of("Could it be REFUNDED?", "no"), shipped) == VERBS
    # the action's words without a question, or a question that turns the action down
    assert _asked_about(state_of("refunded twice already, weird", "no"), shipped) == []
    assert _asked_about(state_of("I don't want it refunded, is the invoice paid?", "no"), shipped) == []
    # no previous request
    assert _asked_about(state_of("could it be refunded?"), shipped) == []
    assert _asked_about({"messages": [AIMessage("hi"), HumanMessage("no")]}, shipped) == []


def test_an_action_the_previous_turn_ran_was_not_only_asked_about(shipped: Registry) -> None:
    asked = ("could the march charge be refunded?", "no")
    ran = [{"capability": "refund", "turn": 2}]
    assert _asked_about(state_of(*asked, turn=3, context_topic=ran), shipped) == []
    assert _asked_about(state_of(*asked, turn=4, context_topic=ran), shipped) == VERBS  # an older turn
    assert _asked_about(state_of(*asked, turn=2, context_topic=ran), shipped) == VERBS  # this turn's
    other = [{"capability": "billing", "turn": 2}]
    assert _asked_about(state_of(*asked, turn=3, context_topic=other), shipped) == VERBS
    # no turn numbers: turn 0, and a topic entry without a turn is of turn 0
    unnumbered = state_of(*asked, context_topic=[{"capability": "refund"}])
    assert _asked_about({**unnumbered, "task_turn": 1}, shipped) == []
    assert _asked_about({**unnumbered, "task_turn": 2}, shipped) == VERBS
    assert _asked_about({**unnumbered, "task_turn": None}, shipped) == VERBS
    zero = state_of(*asked, context_topic=[{"capability": "refund", "turn": 0}])
    assert _asked_about({**zero, "task_turn": None}, shipped) == VERBS


def test_only_actions_with_side_effects_and_words_are_asked_about(with_credit: Registry) -> None:
    both = state_of("could it be refunded, or could she get a credit note?", "no")
    assert _asked_about(both, with_credit) == [*VERBS, "credit note"]
    # billing has an action word but no side effects
    assert _asked_about(state_of("could you look into it?", "no"), with_credit) == []


def test_a_previous_request_in_blocks_is_read_as_nothing(shipped: Registry) -> None:
    blocks = [{"type": "text", "text": "could the march charge be refunded?"}]
    state = {"messages": [HumanMessage(content=blocks), AIMessage("..."), HumanMessage("no")], "task_turn": 2}  # type: ignore[arg-type]
    assert _asked_about(state, shipped) == []
    # blocks of plain text, one of them a question mark: still nothing, and nothing raises
    parts: list[str | dict[str, Any]] = ["could the march charge be refunded", "?"]
    state = {"messages": [HumanMessage(content=parts), AIMessage("..."), HumanMessage("no")], "task_turn": 2}
    assert _asked_about(state, shipped) == []


# --- the yes that takes an offer ------------------------------------------------------------------


def test_a_plain_assent_takes_only_the_question_the_last_turn_asked(shipped: Registry) -> None:
    for text in ("ok", "sure thing, please proceed"):
        assert accepted_offer(state_of("billed twice?", text, approval_offer=ASKED), shipped) is ASKED, text
        assert accepted_offer(state_of("billed twice?", text, approval_offer=ASKED), None) is ASKED, text
    # the approval node's words alone ("lgtm", "accept"), or an assent with the offer's own object
    for text in ("lgtm", "accept", "ok, CH-7734"):
        assert accepted_offer(state_of("billed twice?", text, approval_offer=ASKED), shipped) is ASKED, text
        assert accepted_offer(state_of("billed twice?", text, approval_offer=OFFER), shipped) is None, text
    # "ok thanks" acknowledges a suggestion: nothing runs
    assert accepted_offer(state_of("billed twice?", "ok thanks", approval_offer=OFFER), shipped) is None
    assert accepted_offer(state_of("billed twice?", "ok", approval_offer=OFFER), shipped) is None
    # an older question wants a go-ahead
    older = state_of("billed twice?", "and?", "ok", turn=3, approval_offer=ASKED)
    assert accepted_offer(older, shipped) is None
    assert (
        accepted_offer({**older, "messages": [*older["messages"][:-1], HumanMessage("go ahead")]}, shipped)
        is ASKED
    )


def test_a_go_ahead_takes_a_suggestion_with_its_words(shipped: Registry) -> None:
    said = "yes, refund CH-7734"
    assert accepted_offer(state_of("billed twice?", said, approval_offer=OFFER), shipped) is OFFER
    # an instruction in the action's words is a go-ahead only with the offer's verbs (the registry's)
    assert accepted_offer(state_of("billed twice?", "ok, refund it", approval_offer=OFFER), shipped) is OFFER
    assert accepted_offer(state_of("billed twice?", "ok, refund it", approval_offer=OFFER), None) is None
    assert accepted_offer(state_of("billed twice?", "no, leave it", approval_offer=ASKED), shipped) is None
    assert (
        accepted_offer(state_of("billed twice?", "go ahead", turn=1, approval_offer=OFFER), shipped) is None
    )


# --- what the answer says was not done ----------------------------------------------------------


def test_what_a_suggestion_or_a_question_would_have_done() -> None:
    done = "I did not refund $61.20 to Tomas Berg (C-1212) for duplicate charge CH-7734 of 03 Dec 2026"
    assert _not_done(QUESTION, VERBS) == done
    asked = "I did not refund $61.20 to Tomas Berg (C-1212) for charge CH-7734 of 03 Dec 2026"
    assert _not_done(ASKED_QUESTION, VERBS) == asked
    # the verb at the start of the question; a word of the action inside its reason is not it
    assert _not_done("Refund $9.00 for CH-1? Policy: the refund window is 30 days.", VERBS) == (
        "I did not refund $9.00 for CH-1"
    )
    assert _not_done("Outside the refund window.", VERBS) is None
    assert _not_done("I can refund.", VERBS) is None  # nothing after the verb
    assert _not_done("Refund? Sure.", VERBS) is None
    # the longest form first: "pay me back", not "pay back"
    assert (
        _not_done("I can pay me back $5 now.", ["pay back", "pay me back"]) == "I did not pay me back $5 now"
    )
    assert (
        _not_done("I can issue a credit note of $5.", ["refund", "issue"])
        == "I did not issue a credit note of $5"
    )
    assert (
        _not_done("I can Credit Back $5 to C-9.", ["credit", "credit back"])
        == "I did not credit back $5 to C-9"
    )
    assert _not_done("I can refund .", VERBS) is None  # only a space after the verb
    assert _not_done("Refund $3 to C-9 ?", VERBS) == "I did not refund $3 to C-9"
    assert _not_done("", VERBS) is None
    assert _not_done(QUESTION, []) is None
    assert _not_done("Note: reimburse $3 to C-9.", VERBS) == "I did not reimburse $3 to C-9"
    assert _not_done("Done. refund $3 to C-9. Policy: ok", VERBS) == "I did not refund $3 to C-9"
    assert _not_done("I can REFUND $3 to C-9", VERBS) == "I did not refund $3 to C-9"
    assert _not_done("I can refund $3.50 to C-9", VERBS) == "I did not refund $3.50 to C-9"


def test_the_answer_to_a_no_and_to_a_delay() -> None:
    not_done = "I did not refund $61.20 to Tomas Berg (C-1212) for duplicate charge CH-7734 of 03 Dec 2026"
    no = acknowledgment(Declined("withdraw", cast(Any, OFFER), VERBS))
    assert no == f"OK, I won't go ahead: {not_done}, and nothing was changed."
    hold = acknowledgment(Declined("hold", cast(Any, OFFER), VERBS))
    assert hold == (
        f"OK, I'll wait: {not_done}, and nothing was changed."
        " When you are ready, say “go ahead” and I will do it."
    )
    # no offer: what the previous request asked about, in the action's word; no later go-ahead
    assert (
        acknowledgment(Declined("hold", None, VERBS))
        == "OK, I'll wait: I did not refund anything, and nothing was changed."
    )
    assert acknowledgment(Declined("withdraw", None, [])) == (
        "OK, I won't go ahead: I did not do anything, and nothing was changed."
    )
    # an offer whose question names no action
    plain = {**OFFER, "question": "Shall I?"}
    assert acknowledgment(Declined("withdraw", cast(Any, plain), VERBS)) == (
        "OK, I won't go ahead: I did not refund anything, and nothing was changed."
    )
    unasked = {k: v for k, v in OFFER.items() if k != "question"}
    assert acknowledgment(Declined("withdraw", cast(Any, unasked), VERBS)) == (
        "OK, I won't go ahead: I did not refund anything, and nothing was changed."
    )


def _clarify(state: dict[str, Any], registry: Registry) -> dict[str, Any]:
    call = cast(NodeCall, SimpleNamespace(deps=SimpleNamespace(registry=registry)))
    return dict(asyncio.run(clarify(cast(Any, state), call)))


def test_the_clarify_node_answers_a_decline_with_what_was_not_done(shipped: Registry) -> None:
    state = state_of("billed twice?", "nope, leave it", approval_offer=OFFER)
    noted = {**state, "planning_notes": ["other note", f"{DECLINED_NOTE} (withdraw): the user said no"]}
    update = _clarify(noted, shipped)
    assert update["control_stop_reason"] == "clarify"
    (message,) = update["messages"]
    assert message.name == "clarify"
    assert message.content == acknowledgment(Declined("withdraw", cast(Any, OFFER), VERBS))
    # without the orchestrator's note, or when the message is no decline: the usual question back
    for other in (state, {**noted, "messages": [HumanMessage("what plan am I on")]}):
        update = _clarify(other, shipped)
        assert update["control_stop_reason"] == "clarify"
        assert "I'm not sure what you need" in update["messages"][0].content
        assert "I did not" not in update["messages"][0].content


@pytest.fixture(scope="module")
def narrow() -> Registry:
    """The shipped registry with a policy that allows only some capabilities (no refund)."""
    import yaml

    data = yaml.safe_load(default_registry().read_text(encoding="utf-8"))
    data["policy"] = {**(data.get("policy") or {}), "allowed_capabilities": list(PERMITTED)}
    return Registry.from_dict(data, source=str(default_registry()))


PERMITTED = ("respond", "clarify", "account", "billing", "clock")


def test_otherwise_the_clarify_node_asks_back_with_the_closest_match_and_what_is_allowed(
    narrow: Registry,
) -> None:
    menu = "\n".join(f"- {c.name}: {c.description}" for c in narrow.routable if c.name in PERMITTED)
    assert "- account:" in menu and "- refund:" not in menu
    scores = [
        {"name": "respond", "score": 0.99, "source": "always", "selected": True},
        {"name": "account", "score": 0.3, "source": "scorer", "selected": False},
        {"name": "billing", "score": 0.35, "source": "scorer", "selected": False},
    ]
    state = {
        "messages": [HumanMessage("the thing")],
        "task_current": "the thing",
        "planning_capabilities": scores,
    }
    update = _clarify(state, narrow)
    assert update["control_stop_reason"] == "clarify"
    (message,) = update["messages"]
    assert message.name == "clarify"
    assert message.content == (
        "I'm not sure what you need with 'the thing'. The closest match was billing (confidence 0.35),"
        f" not enough to act on.\nI can help with:\n{menu}\nCould you say a bit more about what you want?"
    )
    # a closest match at 0.2 or below is no hint
    low = [scores[0], {**scores[1], "score": 0.2}]
    answer = _clarify({**state, "planning_capabilities": low}, narrow)["messages"][0].content
    assert answer == (
        f"I'm not sure what you need with 'the thing'.\nI can help with:\n{menu}\n"
        "Could you say a bit more about what you want?"
    )
