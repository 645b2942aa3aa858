"""Follow-ups, round 8 (session 16): the structure a turn shows (what the user says it is back to, a
statement that supplies a value, an amount only a capability the topic feeds reads, a slip word, a
do-it-yourself question, a yes in the user's first language) and how a new slot goes into the old
clause (an identifier before a name, an addition to the count, a rate for a rate). Pure: `resolve`
with stand-in scorer readings and the shipped registry's guides. New wordings, not copies of the
development rows."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from graph.config.registry import Registry
from graph.context import followups
from graph.context.followups import resolve
from nodes.task_extraction import asks_about_action, asks_action, feeds, guide_texts, has_side_effects

REGISTRY = Path(__file__).resolve().parent.parent / "registry.yaml"


@cache
def registry() -> Registry:
    return Registry.from_file(REGISTRY)


def nothing(_: str) -> list[str]:
    return []


def reads(*names: str):  # the scorer's selection for any words, as a stand-in
    return lambda _text, *_: list(names)


def context(**overrides: object) -> dict[str, object]:
    reg = registry()
    texts = guide_texts(reg)
    out: dict[str, object] = {
        "standalone": nothing,
        "acts": lambda t, name: asks_action(reg, t, name),
        "side_effects": lambda name: has_side_effects(reg, name),
        "plausible": lambda _t, _names: [],
        "lexicon": followups.guide_lexicon(texts),
        "known": followups.vocabulary(guide_texts(reg, labelled=True)),
        "routable": list(texts),
        "feeds": lambda a, b: feeds(reg, a, b),
        "asks_about": lambda t, name: asks_about_action(reg, t, name),
        "how_to": followups.how_to_owner(texts),
        "kinds": followups.slot_kinds(texts),
        "known_names": followups.guide_names(texts),
    }
    out.update(overrides)
    return out


def topic(*entries: tuple[str, str], turn: int = 1) -> list[dict[str, object]]:
    return [{"capability": c, "task": t, "turn": turn} for c, t in entries]


# --- corrections ----------------------------------------------------------------------------------


def test_a_slip_word_makes_a_correction() -> None:
    quote = topic(("sales", "quote for 14 seats on Team"))
    follow = resolve("typo, 41", quote, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "correction",
        ["sales"],
        "quote for 41 seats on Team",
    )
    follow = resolve("misspoke - 41", quote, turn=2, **context())
    assert (follow.kind, follow.task) == ("correction", "quote for 41 seats on Team")


def test_a_correction_that_repeats_the_old_value_means_what_follows_i_meant() -> None:
    clock = topic(("clock", "time in vienna please"))
    follow = resolve("sorry I said vienna but I meant vilnius", clock, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "correction",
        ["clock"],
        "time in vilnius please",
    )


# --- slots that go into the old clause --------------------------------------------------------------


def test_a_lower_case_city_after_a_cue_replaces_the_city_among_other_words() -> None:
    clock = topic(("clock", "what time is it in Lima"))
    follow = resolve("and in nairobi at the moment", clock, turn=2, **context())
    assert (follow.capabilities, follow.task) == (["clock"], "what time is it in nairobi")
    # Without a cue, a question that names a city in lower case is not read as a new slot.
    assert resolve("is lagos far from here?", clock, turn=2, **context()).kind == "new"


def test_an_identifier_goes_into_the_clause_before_a_name_beside_it() -> None:
    account = topic(("account", "details for c-1002 please, Omar called"))
    follow = resolve("same for the Acme person, jane@acme.io", account, turn=2, **context())
    assert follow.capabilities == ["account"]
    assert "jane@acme.io" in (follow.task or "") and "c-1002" not in (follow.task or "")


def test_a_count_said_as_an_addition_is_the_count_asked_for() -> None:
    sales = topic(("sales", "Team plan for 10 people monthly"))
    follow = resolve("and for 10 seats plus 4 more", sales, turn=2, **context())
    assert (follow.capabilities, follow.task) == (["sales"], "Team plan for 14 people monthly")


def test_a_rate_replaces_a_rate_and_an_amount_an_amount() -> None:
    calc = topic(("calculator", "what's 240 * 0.15"))
    assert resolve("and for 95?", calc, turn=2, **context()).task == "what's 95 * 0.15"
    assert resolve("and 0.2?", calc, turn=2, **context()).task == "what's 240 * 0.2"
    # Operands on the same side of 1: the last one, as before.
    assert (
        resolve("and 9?", topic(("calculator", "what's 12 * 7")), turn=2, **context()).task == "what's 12 * 9"
    )


def test_a_cue_and_a_slot_the_other_reading_does_not_read_stay_with_the_topic() -> None:
    calc = topic(("calculator", "tip: 60 * 0.2"))
    # "bill" reads as billing, which reads amounts and ids, not a bare number; the cue and the number
    # that fits the expression keep the turn on the calculator.
    follow = resolve("also for the 45 bill", calc, turn=2, **context(standalone=reads("billing")))
    assert (follow.kind, follow.capabilities, follow.task) == ("follow_up", ["calculator"], "tip: 45 * 0.2")


# --- which need the turn is about ---------------------------------------------------------------------


def test_back_to_names_the_earlier_need_the_turn_continues() -> None:
    both = [
        {"capability": "incidents", "task": "is the API down?", "turn": 2},
        {"capability": "sales", "task": "Enterprise for 30 seats", "turn": 1},
    ]
    follow = resolve(
        "ok back to the quote, what if it's 45", both, turn=3, **context(standalone=reads("incidents"))
    )
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["sales"],
        "Enterprise for 45 seats",
    )
    # A word no entry has names nothing: read as usual.
    assert resolve("back to the weather, is it raining", both, turn=3, **context()).capabilities != ["sales"]


def test_a_statement_that_supplies_a_value_continues_the_last_request() -> None:
    clock = topic(("clock", "what's the time in Lima for our rep"))
    follow = resolve("our second rep works from Denver", clock, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["clock"],
        "what's the time in Denver for our rep",
    )
    # A question, or words the classifier reads as another need, are not a value supplied.
    assert resolve("what's the weather like in Denver", clock, turn=2, **context()).kind == "new"
    assert resolve(
        "our second rep works from Denver", clock, turn=2, **context(standalone=reads("sales"))
    ).kind != ("follow_up")


def test_an_amount_only_a_fed_capability_reads_goes_to_it_with_the_customer() -> None:
    account = topic(("account", "who is lukas.becker@fjordsoft.de"))
    follow = resolve("and the 270 dollars on their card, what's that?", account, turn=2, **context())
    assert follow.kind == "follow_up" and follow.capabilities == ["billing"]
    assert "lukas.becker@fjordsoft.de" in (follow.task or "")


def test_a_question_about_it_is_not_a_request_for_the_action() -> None:
    billing = topic(("billing", "what was the 36 dollar charge on C-1004?"))
    asked = "is it possible for the customer to get this back this month?"
    follow = resolve(asked, billing, turn=2, **context(standalone=reads("refund")))
    assert (follow.kind, follow.capabilities) == ("follow_up", ["billing"])
    # Words that ask for the action still go to it.
    follow = resolve("please refund that", billing, turn=2, **context(standalone=reads("refund")))
    assert follow.capabilities == ["refund"]


def test_a_do_it_yourself_question_goes_to_the_instructions() -> None:
    account = topic(("account", "is jane@acme.io on a trial?"))
    follow = resolve("once it ends, could she upgrade it herself?", account, turn=2, **context())
    assert follow.capabilities == ["knowledge_search"]
    follow = resolve("can they change the card on their own?", account, turn=2, **context())
    assert follow.capabilities == ["knowledge_search"]


# --- confirmations --------------------------------------------------------------------------------


def test_a_yes_in_the_users_first_language_before_an_english_yes() -> None:
    follow = resolve("oui, go ahead", [], turn=2, offer=["refund"], **context())
    assert (follow.kind, follow.capabilities) == ("confirmation", ["refund"])
    assert followups.is_yes("sí, claro, go ahead") and not followups.is_yes("sí, but don't do it yet")
    # Without an offer or a topic, a yes has nothing to continue.
    assert resolve("oui, go ahead", [], turn=2, **context()).capabilities == []


def test_a_how_to_question_after_instructions_stays_with_the_instructions() -> None:
    help_center = topic(("knowledge_search", "how can I download my invoices?"))
    follow = resolve(
        "and how do I close the account?", help_center, turn=2, **context(standalone=reads("account"))
    )
    assert follow.capabilities == ["knowledge_search"]
    # An id names a customer: the account's lookup, not instructions.
    follow = resolve(
        "and how do I see what plan C-1003 is on?",
        help_center,
        turn=2,
        **context(standalone=reads("account")),
    )
    assert follow.capabilities != ["knowledge_search"]


def test_a_count_without_its_noun_takes_the_last_clause_to_the_instructions() -> None:
    account = topic(("account", "c-1006, how many seats do they have now"))
    follow = resolve("how would they add three more on their own?", account, turn=2, **context())
    assert follow.capabilities == ["knowledge_search"]
    assert "(follow-up to: c-1006, seats do they have now)" in (follow.task or "")
    # The count gets the noun the last request counted: what the instructions are about (round 12: how
    # many is not, nor the words that asked the last request for a figure).
    assert (follow.task or "").startswith("how would they add more seats on their own?")


def test_a_how_to_question_the_topics_capability_would_read_again_goes_to_the_instructions() -> None:
    quote = topic(("sales", "what would 8 seats on Team cost us"))
    asked = "we're taking on 2 more people, how do we add seats to the workspace?"
    follow = resolve(asked, quote, turn=2, **context(standalone=reads("sales")))
    assert follow.capabilities == ["knowledge_search"]
    # Another capability's reading of the words is another need.
    follow = resolve(asked, quote, turn=2, **context(standalone=reads("billing")))
    assert follow.capabilities != ["knowledge_search"]


def test_a_slot_for_a_last_request_its_capability_does_not_read_goes_to_the_one_that_reads_it() -> None:
    # The last request holds a count, yet it was run by a capability that reads no numbers (the
    # classifier misread it); the new count takes the old one's place and goes to the capability, of
    # those that read numbers, the classifier ranks highest on the old request.
    misread = topic(("account", "Enterprise pricing for 40 seats please"))

    def ranks_sales(_text: str, names: list[str]) -> dict[str, float]:
        return {n: (0.03 if n == "sales" else 0.0) for n in names}

    follow = resolve("what about 65", misread, turn=2, **context(affinity=ranks_sales))
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["sales"],
        "Enterprise pricing for 65 seats please",
    )
    # No capability leads on the old request: nothing to go on, the words are read on their own.
    follow = resolve(
        "what about 65", misread, turn=2, **context(affinity=lambda _t, names: dict.fromkeys(names, 0.0))
    )
    assert (follow.kind, follow.capabilities) == ("switch", [])
    # A request with no slot of that kind is a topic switch as before.
    follow = resolve(
        "what about 65", topic(("account", "who is C-1002?")), turn=2, **context(affinity=ranks_sales)
    )
    assert follow.capabilities != ["sales"]


def test_k_is_an_ok_before_a_cue() -> None:
    quote = topic(("sales", "Enterprise for 120 seats"))
    follow = resolve("k, and 90", quote, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["sales"],
        "Enterprise for 90 seats",
    )
    assert followups.continuation("kk, times 3") == "* 3"


def test_a_new_count_replaces_the_count_of_the_same_thing_and_its_operand() -> None:
    calc = topic(("calculator", "5 crates of 24 bottles, so 5*24 in all?"))
    follow = resolve("sorry, it's 7 crates", calc, turn=2, **context())
    assert follow.task == "7 crates of 24 bottles, so 7*24 in all?"
    follow = resolve("and with 30 bottles?", calc, turn=2, **context())
    assert follow.task == "5 crates of 30 bottles, so 5*30 in all?"


def test_a_slot_for_a_request_that_was_not_understood_goes_to_the_reader_that_leads_on_it() -> None:
    def ranks(first: str):
        def scores(_text: str, names: list[str]) -> dict[str, float]:
            return {n: (0.004 if n == first else 0.0001) for n in names}

        return scores

    asked = "starter plan for 6 ppl"
    follow = resolve("and 9?", [], turn=2, unanswered=asked, **context(affinity=ranks("sales")))
    assert (follow.capabilities, follow.task) == (["sales"], "starter plan for 9 ppl")
    # No clear lead: the classifier reads the request again.
    even = context(affinity=lambda _t, names: dict.fromkeys(names, 0.01))
    assert resolve("and 9?", [], turn=2, unanswered=asked, **even).capabilities == []
    # Never an action: a capability with side effects that leads is not chosen.
    follow = resolve(
        "sorry, C-1006",
        [],
        turn=2,
        unanswered="take back what C-1002 paid",
        **context(affinity=ranks("refund")),
    )
    assert "refund" not in follow.capabilities


def test_a_new_operand_for_an_expression_only_the_calculator_reads() -> None:
    # The clock alone answered "time in Oslo + 900/30"; the new divisor goes to the calculator.
    clock = topic(("clock", "time in Oslo + 900/30"))
    follow = resolve("for the division, use 45 instead", clock, turn=2, **context())
    assert (follow.capabilities, follow.task) == (["calculator"], "900/45")
    # A clause without an expression: nothing for the calculator.
    follow = resolve(
        "for the division, use 45 instead", topic(("clock", "time in Oslo")), turn=2, **context()
    )
    assert follow.capabilities != ["calculator"]


def test_words_that_ask_for_no_action_go_to_what_fed_the_action() -> None:
    # The refund ran on a clause that only names the customer (the account's lookup folds into it);
    # a question about the customer goes to the account that fed it, never to the refund alone.
    ran = [
        {"capability": "refund", "task": "check who c-1003 is", "turn": 1},
        {"capability": "account", "task": "check who c-1003 is", "turn": 1},
        {"capability": "clock", "task": "the time in Paris", "turn": 1},
    ]
    follow = resolve("so is her subscription still running?", ran, turn=2, **context())
    assert follow.capabilities == ["account"]
    # Words that ask for the action still go to it.
    follow = resolve("ok refund her last charge", ran, turn=2, **context())
    assert follow.capabilities == ["refund"]


def test_a_yes_or_a_no_after_an_action_is_still_the_actions_to_answer() -> None:
    ran = [
        {"capability": "refund", "task": "check who c-1003 is", "turn": 1},
        {"capability": "account", "task": "check who c-1003 is", "turn": 1},
    ]
    assert resolve("nah, leave it for now", ran, turn=2, **context()).capabilities == ["refund"]
