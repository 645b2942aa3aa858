"""The shipped capabilities against their real components: the AST evaluator and the system clock."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import datetime, timedelta

import pytest

from capabilities.calculator import Calculator, CalculatorInputs, evaluate, extract_expression
from capabilities.clock import Clock, ClockInputs, find_zone
from graph.capability import NotApplicable, RunContext


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("what is 12*7", 84),
        ("what is 12 times 7", 84),
        ("how much is 15% of 240", 36),
        ("what's 2 to the power of 10", 1024),
        ("add 345 and 1289", 1634),
        ("subtract 5 from 20", 15),
        ("square root of 144", 12),
        ("compute (3 + 4) * 5", 35),
        ("1,200 / 4", 300),
        ("sqrt(16) + 2", 6),
        ("-3 * -3", 9),
    ],
)
def test_calculator_understands_requests(text: str, value: float) -> None:
    out = asyncio.run(Calculator().execute(CalculatorInputs(query=text), RunContext(task=text)))
    assert out["calculation"] == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "(1).__class__",
        "[1, 2]",
        "a + 1",
        "9 ** 9 ** 9",
        "1/0",
        "True + 1",
    ],
)
def test_evaluator_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ValueError):
        evaluate(expression)


def test_request_without_arithmetic_asks_for_reclassification() -> None:
    assert extract_expression("tell me a joke") is None
    with pytest.raises(NotApplicable):
        asyncio.run(Calculator().execute(CalculatorInputs(query="tell me a joke"), RunContext(task="")))


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("what time is it in Tokyo?", "Asia/Tokyo"),
        ("current time in New York", "America/New_York"),
        ("time in Europe/Berlin", "Europe/Berlin"),
        ("is it morning in London right now", "Europe/London"),
        ("what day is it in sao paulo", "America/Sao_Paulo"),
        ("and in Paris? (follow-up to: time in Tokyo)", "Europe/Paris"),
        ("what time is it", None),
    ],
)
def test_time_zone_is_found_in_the_request(text: str, zone: str | None) -> None:
    assert find_zone(text) == zone


def test_clock_reads_the_real_clock() -> None:
    out = asyncio.run(Clock().execute(ClockInputs(query="time in Tokyo"), RunContext(task="")))
    reported = datetime.fromisoformat(out["current_time"])
    now = datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert abs(reported - now) < timedelta(seconds=5)
    assert out["utc_offset"] == "+09:00" and out["timezone"] == "Asia/Tokyo"


def test_clock_uses_the_timezone_input_from_a_plan() -> None:
    out = asyncio.run(
        Clock().execute(
            ClockInputs(query="what time is it", timezone="Australia/Sydney"), RunContext(task="")
        )
    )
    assert out["timezone"] == "Australia/Sydney"
