"""Requests recognised by their shape (session 20).

- Everyday arithmetic without an operator sign: a count at a price each, a sum split between
  people, an amount taken off another, "less", "over", fractions and multiples, and what a number
  counts standing between it and an operator word; "365" is an operand unless it names a product or
  the calendar ("Microsoft 365", "24/7/365"); trailing dots are not part of the expression.
- The clock recognises a question for the current time or date that names a place, not one for
  when something happens; a pick that recognises the request does not keep another recogniser out
  ("365 / 4 ... and the time in Tashkent": both).

New sentences written for these tests, not copies of any data set's rows. The last tests run the
real graph on the shipped registry (no mocks): such a request is routed to the calculator and
answered with the right figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capabilities.calculator import evaluate, extract_expression, recognised_expression
from capabilities.clock import asks_the_time
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from graph.context.turns import routed_capabilities
from tests.conftest import answer
from tests.support_desk.test_support import Desk, shipped_registry


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("64 chairs at 3.25 each, what does that come to?", 208),
        ("how much for 15 mugs @ 4 apiece", 60),
        ("9 rolls at $12.50 per roll?", 112.5),
        ("we owe 840 split between 6 of us", 140),
        ("the 96 split evenly among the 8 volunteers", 12),
        ("2400 split 3 ways", 800),
        ("60 shared by 4", 15),
        ("take 7.25 off 50", 42.75),
        ("what's 300 less 45", 255),
        ("6 less than 20", 14),
        ("144 over 12", 12),
        ("half of 86", 43),
        ("a third of 51", 17),
        ("a quarter of 36", 9),
        ("double 37", 74),
        ("twice 21", 42),
        ("triple 14", 42),
        ("11 vans times 4 runs times 2 drivers", 88),
        ("40 tables plus 15 benches", 55),
        ("365 / 5", 73),
        ("365 times 3", 1095),
        ("so... 144 / 6 ... right?", 24),
    ],
)
def test_everyday_arithmetic_is_recognised_and_evaluates(text: str, value: float) -> None:
    expression = recognised_expression(text)
    assert expression is not None, text
    assert evaluate(expression) == pytest.approx(value)
    assert extract_expression(text) == expression


@pytest.mark.parametrize(
    "text",
    [
        "our Microsoft 365 bill went up this month",
        "the Office 365 licences are renewed yearly",
        "support is staffed 24/7/365",
        "the cost was split between two cards",
        "we split the seats between the teams",
        "half of the team cannot log in",
        "we have 12 staff over two sites",
        "double charged again on CH-2031",
        "12 staff and 3 sites",
    ],
)
def test_numbers_that_are_not_operands_stay_unrecognised(text: str) -> None:
    assert recognised_expression(text) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "What's the time right now for our supplier in Montevideo?",
        "could you tell me the local time in Reykjavik",
        "is it still evening in Honolulu",
        "what day is it over in Apia",
        "and the time in Nairobi, please",
        "whats the date today in Santiago",
    ],
)
def test_questions_for_the_time_somewhere_are_recognised(text: str) -> None:
    assert asks_the_time(text), text


@pytest.mark.parametrize(
    "text",
    [
        "what time does the Lisbon office open?",
        "what time did the outage start in Dublin",
        "what time is the call with our Berlin team",
        "what is the time difference between Oslo and Lima",
        "what time zone is Denver in",
        "at the time in Madrid we had no invoice",
        "what time is it",  # no place: the clock's guide and the scorer decide
    ],
)
def test_other_questions_about_time_are_not(text: str) -> None:
    assert not asks_the_time(text), text


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("calculator-words-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("27 planters at 8.5 each - total?", "229.5"),
        ("can you work out 630 split between 7 of us", "90"),
        ("what's 365 / 4", "91.25"),
    ],
)
def test_the_desk_routes_everyday_arithmetic_to_the_calculator(desk: Desk, text: str, figure: str) -> None:
    state = desk.ask(text, thread=f"calc-{sum(map(ord, text))}")
    assert routed_capabilities(state, desk.registry) == ["calculator"]
    assert figure in answer(state)


def test_the_desk_routes_a_time_question_the_scorer_doubts_to_the_clock(desk: Desk) -> None:
    state = desk.ask("What is the time now for our volunteer coordinator in Thimphu?", thread="clock-thimphu")
    assert routed_capabilities(state, desk.registry) == ["clock"]
    assert "Asia/Thimphu" in answer(state)


def test_arithmetic_beside_a_time_question_gets_both(desk: Desk) -> None:
    state = desk.ask("hmm... two things... 729 / 9 ... and the time in Tashkent...", thread="clock-calc")
    assert sorted(routed_capabilities(state, desk.registry)) == ["calculator", "clock"]
    assert "81" in answer(state) and "Asia/Tashkent" in answer(state)
