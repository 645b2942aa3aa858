"""Follow-ups, round 10 (session 18, issue 22): quantities and values across turns.

- a head count in any words is a seat count in a price question ("our 6 carpenters", "the 40 of us",
  "a choir of 25", "we're 8"); a plan name in a follow-up replaces the plan and keeps the count, a
  number replaces the count and keeps the plan, both together replace both;
- a capability may recognise a request by its shape (`Capability.recognises`): arithmetic the scorer
  cannot see ("2150 - 380 - 95?") goes to the calculator, ids, dates, times, phone numbers, versions,
  "24/7", ranges and per-seat prices do not;
- "N not M" puts N wherever the clause had M; a new operand replaces the one of its size; a turn
  that first says which need it is about ("for the quote, ...") continues that need;
- "n" is "and", thanks before a cue are not a name, a country of one time zone is a place; a bare
  number after a lookup by id is another id; everyday wordings of an ownership transfer find it.

The real graph with the shipped registry on a test database (no mocks), and new sentences, not copies
of the development rows. Each conversation has its own thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capabilities.calculator import recognised_expression
from capabilities.clock import find_zone
from capabilities.support_desk.sales import seats_named
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context.followups import resolve
from graph.context.turns import routed_capabilities
from tests.conftest import answer
from tests.support_desk.test_support import Desk, shipped_registry
from tests.test_followups_round8 import context, reads, topic


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("round10-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


def converse(desk: Desk, thread: str, *texts: str) -> list[tuple[list[str], str]]:
    """Each turn's routed capabilities and answer."""
    out = []
    for text in texts:
        state = desk.ask(text, thread)
        out.append((routed_capabilities(state, desk.registry), answer(state)))
    return out


# --- seat counts in any words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seats"),
    [
        ("what would Starter cost for our 6 carpenters?", 6),
        ("How much is Enterprise for the 40 of us?", 40),
        ("a choir of 25 - Team pricing?", 25),
        ("we're 8, what's Team per month", 8),
        ("Team for 11 full-time nurses, how much?", 11),
        ("price for a 15-person studio on Team", 15),
        ("what would Team cost for 14?", 14),
        ("quote us 30 Team seats", 30),
        ("the five of us on Team, how much?", 5),
        ("Enterprise for twenty-two sound engineers", 22),
        ("a dozen people on Starter", 12),
    ],
)
def test_a_head_count_in_any_words_is_the_seat_count(text: str, seats: int) -> None:
    assert seats_named(text) == seats, text


@pytest.mark.parametrize(
    "text",
    [
        "what is Team for 12 months",
        "Enterprise pricing for 2 years",
        "Team at $25 per seat",
        "does Team cover 3 projects",
        "is there a 20% discount on Team",
        "Team for one year",
    ],
)
def test_time_money_and_things_are_not_seats(text: str) -> None:
    assert seats_named(text) is None, text


def test_a_quote_for_people_keeps_its_count_and_plan_across_turns(desk: Desk) -> None:
    turns = converse(
        desk,
        "r10-quote",
        "what would Starter cost for our 6 carpenters?",
        "and on Team instead?",
        "same for 12",
        "ok and do the 24 again but on Enterprise",
    )
    assert all(routed == ["sales"] for routed, _ in turns), turns
    assert "$60.00 a month" in turns[0][1]  # 6 x $10
    assert "Team plan, 6 seats" in turns[1][1] and "$150.00" in turns[1][1]
    assert "Team plan, 12 seats" in turns[2][1] and "$270.00" in turns[2][1]  # 300 less 10%
    assert "Enterprise plan, 24 seats" in turns[3][1] and "$1,080.00" in turns[3][1]


def test_a_turn_that_names_its_need_replaces_count_and_plan(desk: Desk) -> None:
    turns = converse(
        desk,
        "r10-about",
        "Who is customer C-1008, and what would 30 Enterprise seats cost?",
        "about the quote - what if it's 50 seats of Team instead",
    )
    assert turns[1][0] == ["sales"], turns
    assert "Team plan, 50 seats" in turns[1][1] and "$1,000.00" in turns[1][1]  # 1250 less 20%


# --- arithmetic recognised by its shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2150 - 380 - 95?", "1675"),
        ("6.5 * 28 for the scaffolding weeks", "182"),
        ("1240 / 8 between the crew", "155"),
    ],
)
def test_a_bare_expression_goes_to_the_calculator(desk: Desk, text: str, value: str) -> None:
    [(routed, said)] = converse(desk, f"r10-bare-{value}", text)
    assert routed == ["calculator"] and f"= {value}" in said, (routed, said)


@pytest.mark.parametrize(
    "text",
    [
        "is CH-2034 a duplicate of INV-3002?",
        "the renewal on 2026-12-01",
        "the call is at 09:10",
        "ring me on 555-123-4567",
        "we run version 2.4.1",
        "is support 24/7",
        "Team allows 3-10 seats",
        "we are 3 - 4 people",
        "Enterprise x 100 seats @ $45",
        "Team is $25/seat",
    ],
)
def test_numbers_that_name_things_are_not_arithmetic(text: str) -> None:
    assert recognised_expression(text) is None, text


def test_a_recognised_expression_is_read_beside_another_need(desk: Desk) -> None:
    [(routed, said)] = converse(desk, "r10-beside", "what time is it in Oslo, and 2150 - 380 - 95?")
    assert set(routed) == {"clock", "calculator"} and "= 1675" in said, (routed, said)


# --- numbers in place of numbers -------------------------------------------------------------------


def test_n_not_m_puts_n_wherever_the_clause_had_m(desk: Desk) -> None:
    turns = converse(
        desk,
        "r10-not",
        "Florist wants 35 per bouquet for 12 bouquets - what's 35 * 12?",
        "and the time in Porto?",
        "the florist says 14 bouquets not 12, redo it",
    )
    assert turns[2][0] == ["calculator"] and "35 * 14 = 490" in turns[2][1], turns[2]


def test_a_correction_that_names_the_old_operand(desk: Desk) -> None:
    turns = converse(desk, "r10-oops", "6.5 * 28 for the scaffolding weeks", "hmm no its 7.5 not 6.5")
    assert turns[1][0] == ["calculator"] and "7.5 * 28 = 210" in turns[1][1], turns[1]


def test_a_new_operand_replaces_the_one_of_its_size(desk: Desk) -> None:
    turns = converse(
        desk,
        "r10-size",
        "what's 1800 / 12? splitting the hall rental",
        "repeat that with 2400, the larger hall",
        "and with 15 people?",
    )
    assert "2400 / 12 = 200" in turns[1][1], turns[1]
    assert "2400 / 15 = 160" in turns[2][1], turns[2]


def test_back_to_a_bare_expression_after_another_need(desk: Desk) -> None:
    turns = converse(
        desk, "r10-back", "2150 - 380 - 95?", "what time is it in Perth", "ok back to the sums, 900 / 4"
    )
    assert turns[2][0] == ["calculator"] and "= 225" in turns[2][1], turns[2]


# --- places, ids, wordings -------------------------------------------------------------------------


def test_n_is_and_and_thanks_are_not_a_name(desk: Desk) -> None:
    turns = converse(
        desk,
        "r10-clock",
        "whats the time in boise rn",
        "n denver",
        "Lovely. And the Bahamas?",
    )
    assert turns[1][0] == ["clock"] and "America/Denver" in turns[1][1], turns[1]
    assert turns[2][0] == ["clock"] and "America/Nassau" in turns[2][1], turns[2]


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("time in iceland", "Atlantic/Reykjavik"),
        ("and the Faroe Islands", "Atlantic/Faroe"),
        ("in Georgia", None),
    ],
)
def test_a_country_of_one_zone_names_it(text: str, zone: str | None) -> None:
    assert find_zone(text) == zone


def test_a_bare_number_after_a_lookup_by_id_is_another_id(desk: Desk) -> None:
    turns = converse(desk, "r10-id", "look up customer C-1006", "now 1002")
    assert turns[1][0] == ["account"] and "Omar Haddad" in turns[1][1], turns[1]


def test_a_bare_number_after_a_count_is_a_count() -> None:
    quote = topic(("sales", "how much is Team for 120 seats"))
    follow = resolve("now 150", quote, turn=2, **context(standalone=reads()))
    assert follow.task == "how much is Team for 150 seats"


@pytest.mark.parametrize(
    "text",
    [
        "how can I pass the workspace on to my business partner?",
        "he's retiring - how would he hand the account over to me?",
        "can I make her the owner instead of me?",
    ],
)
def test_everyday_wordings_of_an_ownership_transfer(desk: Desk, text: str) -> None:
    state = desk.ask(text, f"r10-owner-{hash(text)}")
    assert "transfer ownership" in answer(state), answer(state)


def test_an_adverb_does_not_make_a_question_about_an_unanswered_request_new() -> None:
    follow = resolve(
        "what was that for, precisely?",
        [],
        turn=2,
        unanswered="our team is c1007 and there's a ch-2052 we can't place",
        **context(standalone=reads()),
    )
    assert follow.kind == "follow_up" and follow.task is not None and "ch-2052" in follow.task


def test_a_follow_up_quote_takes_what_its_words_do_not_say_from_the_earlier_request(desk: Desk) -> None:
    # The task a follow-up carries: the new words, then the request they continue.
    state = desk.ask("what about Enterprise? (follow-up to: price of 26 Team seats)", "r10-carried")
    assert "Enterprise plan, 26 seats" in answer(state) and "Team plan" not in answer(state), answer(state)


def test_a_turn_that_names_its_need_continues_it_unless_it_asks_how_to() -> None:
    needs = topic(("sales", "price of 30 Team seats"), ("clock", "what time is it in Oslo"), turn=1)
    follow = resolve("re the quote: 45 seats then", needs, turn=2, **context(standalone=reads("clock")))
    assert (follow.capabilities, follow.task) == (["sales"], "price of 45 Team seats")
    how = resolve(
        "about the seats, how do I add one myself?", needs, turn=2, **context(standalone=reads("sales"))
    )
    assert how.capabilities == ["knowledge_search"], how
