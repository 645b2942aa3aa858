"""The calculator reads the expression from the user's words, not from the earlier request a
follow-up task carries after them ("... (follow-up to: ...)", graph/context/followups.py)."""

from __future__ import annotations

import pytest

from capabilities.calculator import evaluate, extract_expression
from graph.context.followups import appended


@pytest.mark.parametrize(
    ("words", "earlier", "expected", "value"),
    [
        ("likewise for 6 * 8 * 9", "what's 2*3", "6 * 8 * 9", 432),
        ("and 10 / 4", "what's 144 / 12", "10 / 4", 2.5),
        ("what is 6*7", "what is 3 + 4", "6*7", 42),
        ("now 15 percent of 80", "what is 10% of 50", "(15/100*80)", 12),
    ],
)
def test_the_users_expression_comes_before_the_context(
    words: str, earlier: str, expected: str, value: float
) -> None:
    task = appended(words, earlier)
    found = extract_expression(task)
    assert found == expected
    assert evaluate(found) == value


def test_the_context_answers_when_the_users_words_hold_no_arithmetic() -> None:
    assert extract_expression(appended("can you show that again?", "what is 5*12")) == "5*12"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("compute (3 + 4) * 5", "(3 + 4) * 5"), ("(2+3)*(4-1)", "(2+3)*(4-1)"), ("((1+2)", "(1+2)")],
)
def test_brackets_of_the_sentence_are_not_part_of_the_expression(text: str, expected: str) -> None:
    assert extract_expression(text) == expected


def test_no_arithmetic_anywhere_is_none() -> None:
    assert extract_expression(appended("thanks!", "what time is it in Oslo")) is None
