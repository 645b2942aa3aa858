"""Safe arithmetic: the expression is parsed into an AST and evaluated node by node, never `eval`."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    NotApplicable,
    RunContext,
)

_WORDS = [
    (r"\bmultiplied by\b|\btimes\b|\bx\b|×", "*"),
    (r"\bdivided by\b|÷", "/"),
    (r"\bplus\b|\badded to\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bto the power of\b|\^", "**"),
    (r"\bsquared\b", "**2"),
    (r"\bmod(?:ulo)?\b", "%"),
]
_NUM = r"(-?\d+(?:\.\d+)?)"
_VERBS = [
    (re.compile(rf"\b(?:add|sum of)\s+{_NUM}\s+(?:and|to)\s+{_NUM}", re.I), "({0} + {1})"),
    (re.compile(rf"\bsubtract\s+{_NUM}\s+from\s+{_NUM}", re.I), "({1} - {0})"),
    (re.compile(rf"\bmultiply\s+{_NUM}\s+(?:by|and|with)\s+{_NUM}", re.I), "({0} * {1})"),
    (re.compile(rf"\bdivide\s+{_NUM}\s+by\s+{_NUM}", re.I), "({0} / {1})"),
]
_OPERATOR_WORD = r"(?:times|x|×|multiplied|plus|minus|divided|over|less|at|@|split|shared|off|and|by|of|each)"
_UNITS = rf"(?:(?!{_OPERATOR_WORD}\b)[A-Za-z][\w'-]*\s+){{1,2}}"
"""One or two words naming what a number counts ("38 boxes", "17 crates", "4.5 kg"), not an operator."""
_MONEY = r"[$€£]?"
_WORD_PROBLEMS = [
    # "38 boxes at 4.5 kg each", "48 jars @ 7.50 apiece", "12 tickets at £9 per ticket"
    (
        re.compile(
            rf"{_NUM}\s+(?:{_UNITS})?(?:at|@)\s*{_MONEY}{_NUM}\s*(?:[A-Za-z]+\s+)?(?:each|apiece|a piece|per\s+[a-z]+)\b",
            re.I,
        ),
        "({0} * {1})",
    ),
    # "540 split between 4 of us", "90 shared among 3", "1200 split 4 ways"
    (
        re.compile(
            rf"{_MONEY}{_NUM}\s+(?:{_UNITS})?(?:split|shared|divided)\s+(?:evenly\s+|equally\s+)?"
            rf"(?:between|among(?:st)?|across|by)\s+(?:the\s+)?{_NUM}",
            re.I,
        ),
        "({0} / {1})",
    ),
    (re.compile(rf"{_MONEY}{_NUM}\s+(?:{_UNITS})?split\s+{_NUM}\s+ways\b", re.I), "({0} / {1})"),
    # "take 12.50 off 40", "take 15% off 80" is a percentage (below)
    (re.compile(rf"\btake\s+{_MONEY}{_NUM}\s+off\s+(?:of\s+)?{_MONEY}{_NUM}(?!\s*%)", re.I), "({1} - {0})"),
    (re.compile(rf"{_MONEY}{_NUM}\s+less\s+than\s+{_MONEY}{_NUM}", re.I), "({1} - {0})"),
    (re.compile(rf"{_MONEY}{_NUM}\s+less\s+{_MONEY}{_NUM}", re.I), "({0} - {1})"),
    (re.compile(rf"(?<![\d.]){_NUM}\s+over\s+{_NUM}(?![\d.])", re.I), "({0} / {1})"),
    # "half of 90", "a third of 300", "double 45", "twice 16"
    (re.compile(rf"\bhalf\s+(?:of\s+)?{_MONEY}{_NUM}", re.I), "({0} / 2)"),
    (re.compile(rf"\ba\s+third\s+of\s+{_MONEY}{_NUM}", re.I), "({0} / 3)"),
    (re.compile(rf"\ba\s+quarter\s+of\s+{_MONEY}{_NUM}", re.I), "({0} / 4)"),
    (re.compile(rf"\b(?:double|twice)\s+{_MONEY}{_NUM}", re.I), "(2 * {0})"),
    (re.compile(rf"\btriple\s+{_MONEY}{_NUM}", re.I), "(3 * {0})"),
]
"""Everyday arithmetic that names no operator sign or word: a count at a price each, a sum split
between people, an amount taken off another, fractions and multiples."""
_TOTAL_ASKED = re.compile(
    r"\bhow\s+many\b[^.?!]*?\b(?:in\s+total|altogether|all\s+together|combined|in\s+all|all\s+told)\b"
    r"|\bhow\s+many\s+[a-z]+\s+(?:is|does)\s+that\b",
    re.I,
)
"""A question for the total of counts the request gave before it ("How many are we in total?", "how
many seats is that altogether", "How many panels is that?")."""
_EACH = re.compile(rf"\beach\s+(?:[a-z]+\s+){{1,2}}?[a-z]+\s+{_NUM}\s+[a-z]", re.I)
"""What each of the counted things takes ("Each roof takes 16 panels", "each van carries 14 crates"):
a factor, not a summand."""
_COUNT = re.compile(r"(?<![\w.,$\u20ac\u00a3%:/-])\d+(?:\.\d+)?(?![\w%:/-]|[.,]\d)")
"""A plain count ("8 in Roma", "23 roofs"): not an amount of money, a percentage, a time or part of an id."""


def _counted_total(text: str) -> str | None:
    """The arithmetic of a word problem that writes no operator: counts given first, then a question
    for their total (`_TOTAL_ASKED`). "We are 8 in Roma, 23 in Milano and 17 in Torino. How many are
    we in total?" adds them (8 + 23 + 17); "Each roof takes 16 panels and we've got 23 roofs booked.
    How many panels is that?" multiplies what each takes by the one other count (16 * 23). At least
    two counts; None otherwise."""
    asked = _TOTAL_ASKED.search(text)
    if asked is None:
        return None
    given = text[: asked.start()]
    counts = [m.group() for m in _COUNT.finditer(given)]
    each = _EACH.search(given)
    if each is not None:
        others = [m.group() for m in _COUNT.finditer(given) if not each.start(1) <= m.start() < each.end(1)]
        return f"({each.group(1)} * {others[0]})" if len(others) == 1 else None
    return "(" + " + ".join(counts) + ")" if len(counts) >= 2 else None


_UNITS_BEFORE_OPERATOR = re.compile(
    rf"(\d)\s+{_UNITS}(?=(?:times|multiplied by|x|×|plus|minus|divided by)\b)", re.I
)
"""What a number counts, between it and an operator word ("17 crates times 3 trips times 2"):
dropped, so the numbers and operators stand together."""
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\s+(\d+(?:\.\d+)?)", re.I)
_SQRT = re.compile(r"(?:square root of|sqrt)\s*\(?\s*(\d+(?:\.\d+)?)\s*\)?", re.I)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[[float], float]] = {"sqrt": math.sqrt}


class CalculatorInputs(CapabilityInputs):
    expression: str | None = None
    """Arithmetic to evaluate; found in the query when the plan does not give it."""


def _formatter(template: str) -> Callable[[re.Match[str]], str]:
    return lambda m: template.format(*m.groups())


_CONTEXT = re.compile(r"\s*\(follow-up to:\s*(?P<clause>.*)\)\s*$", re.I | re.S)
"""The earlier request a follow-up task carries after the user's words ("and 10 / 4 (follow-up to:
what's 144 / 12)", graph/context/followups.py `appended`): context, not part of the new expression."""


def extract_expression(text: str) -> str | None:
    """The arithmetic of a request, with number words turned into operators: the user's own words
    first; the earlier request a follow-up carries only when they hold none ("how about 60?")."""
    context = _CONTEXT.search(text)
    if context is None:
        return _first_expression(text)
    return _first_expression(text[: context.start()]) or _first_expression(context.group("clause"))


def _balanced(candidate: str) -> str:
    """Without a bracket the sentence opened or closed around the expression ("6*7 (", "5*12)")."""
    while candidate.count("(") > candidate.count(")") and (
        candidate.startswith("(") or candidate.endswith("(")
    ):
        candidate = (candidate[1:] if candidate.startswith("(") else candidate[:-1]).strip().rstrip("+-*/% ")
    while candidate.count(")") > candidate.count("(") and (
        candidate.endswith(")") or candidate.startswith(")")
    ):
        candidate = (candidate[:-1] if candidate.endswith(")") else candidate[1:]).strip()
    return candidate


def _first_expression(text: str) -> str | None:
    original = text
    for verb, template in _VERBS:
        text = verb.sub(_formatter(template), text)
    for problem, template in _WORD_PROBLEMS:
        text = problem.sub(_formatter(template), text)
    text = _UNITS_BEFORE_OPERATOR.sub(r"\1 ", text)
    text = _PERCENT_OF.sub(lambda m: f"({m.group(1)}/100*{m.group(2)})", text)
    text = _SQRT.sub(lambda m: f"sqrt({m.group(1)})", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    for pattern, symbol in _WORDS:
        text = re.sub(pattern, f" {symbol} ", text, flags=re.I)
    for m in re.finditer(
        r"(?:sqrt\(\d+(?:\.\d+)?\)|-?[\d(])(?:sqrt\(\d+(?:\.\d+)?\)|[\d\s.+\-*/%()])*", text
    ):
        candidate = _balanced(m.group(0).strip().rstrip("+-*/%. "))  # "365 / 4 ...": no trailing dots
        if re.search(r"[+\-*/%]|sqrt", candidate):
            return " ".join(candidate.split())
    return _counted_total(original)


_NOT_ARITHMETIC = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b"  # a date: 2026-12-01
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"  # 01/12/2026, 1.12.2026
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"  # a time: 09:10
    r"|\bv?\d+(?:\.\d+){2,}\b"  # a version: 2.4.1
    r"|\b24\s*/\s*7(?:\s*/\s*365)?\b"  # around the clock
    r"|(?<![-+*/x×÷^%(]\s)(?<![-+*/x×÷^%(])\b365\b(?!\s*(?:[-+*/x×÷^%)]|(?:times|plus|minus|divided|multiplied|over)\b))"  # Microsoft 365, not 365 / 4
    r"|\+?\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,}"  # a phone number: (555) 123 4567, +44 20 7946 0958
    r"|\b[A-Za-z]+-?\d[\w-]*|\b\d+[A-Za-z][\w-]*"  # an id or a code: CH-2034, INV-3002, c1004, 2fa
    r"|(?<![\d.])\d+(?:\.\d+)?-\d+(?:\.\d+)?(?![\d.]*\s*[-+*/x×^%(]\s*\d)"  # a range: 1-10 seats
    r"|(?<![\d.\s*/+x×-])(?<![\d.][\s*/+x×-])\s\d+(?:\.\d+)?\s+(?:-|–|to)\s+\d+(?:\.\d+)?(?=\s+(?:[a-z]+s|people|staff|ppl)\b)"  # 3 - 4 people
    r"|[$€£]\s?\d[\d,]*(?:\.\d+)?\s*(?:/|per|a|an|each)\s*(?:seat|user|month|year|mo|yr)s?\b",  # a price
    re.I,
)
"""Numbers that are not operands: dates, times, versions, phone numbers, ids, ranges, prices per seat."""


_ONLY_ARITHMETIC = re.compile(
    r"^\W*(?:(?:what(?:'s|s| is)|whats|calc(?:ulate)?|compute|work out|how much is|solve)\s+)?"
    r"[\d\s.,+\-*/x×÷^%()]*\d[\d\s.,+\-*/x×÷^%()]*[\s?=!.]*$",
    re.I,
)
"""A message that is nothing but arithmetic ("12-5", "what is 1380-275?"): its numbers are operands."""


def recognised_expression(text: str) -> str | None:
    """The arithmetic a request holds, when it holds any: two numbers joined by an operator, a
    square root, a percentage of a number (`extract_expression`), that evaluates; None when its
    numbers are ids, dates, times, versions, phone numbers, "24/7" or a range ("1-10 seats")."""
    masked = text if _ONLY_ARITHMETIC.match(text) else _NOT_ARITHMETIC.sub(" ¤ ", text)
    expression = extract_expression(masked)
    if expression is None:
        return None
    try:
        evaluate(expression)
    except (ValueError, ArithmeticError, RecursionError):
        return None
    return expression


def evaluate(expression: str) -> float | int:
    """Evaluate arithmetic safely; raises ValueError on anything that is not plain arithmetic."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    return _eval(tree.body)


def _eval(node: ast.AST) -> Any:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 100 or abs(left) > 1e6):
            raise ValueError("exponent too large")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ValueError("division by zero") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and len(node.args) == 1
    ):
        return _FUNCTIONS[node.func.id](_eval(node.args[0]))
    raise ValueError(f"unsupported element in expression: {ast.dump(node)[:60]}")


def _tidy(value: float | int) -> float | int:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return round(value, 10) if isinstance(value, float) else value


class Calculator(Capability):
    name = "calculator"
    description = "Evaluate arithmetic: + - * / %, powers, square roots, percentages."
    provides = ("calculation",)
    Inputs = CalculatorInputs
    classifier_guide = ClassifierGuide(
        instructions="Requests to compute a number from arithmetic.",
        examples=(
            GuideExample(query="what is 12 times 7", reason="multiplication"),
            GuideExample(query="what's 340 times 15", reason="multiplication"),
            GuideExample(query="multiply 48 by 9", reason="multiplication"),
            GuideExample(query="how much is 1200 divided by 12", reason="division"),
            GuideExample(query="calculate 1540 / 11", reason="division"),
            GuideExample(query="what's 2250 / 15", reason="division"),
            GuideExample(query="what is 960 / 8", reason="division"),
            GuideExample(query="how much is 15% of 240", reason="percentage"),
            GuideExample(query="what's 2 to the power of 10", reason="power"),
            GuideExample(query="add 345 and 1289", reason="addition"),
            GuideExample(query="square root of 144", reason="square root"),
            GuideExample(query="compute (3 + 4) * 5", reason="expression"),
            GuideExample(query="what is 99 minus 42", reason="subtraction"),
            GuideExample(query="what's 5 plus 3", reason="addition"),
            GuideExample(query="how much is 7 * 8", reason="multiplication"),
            GuideExample(query="divide 100 by 8", reason="division"),
            GuideExample(query="17*23", reason="a bare expression"),
            GuideExample(query="what is 4+5", reason="a bare expression"),
            GuideExample(query="what time is it in Tokyo", result=False, reason="a clock question"),
            GuideExample(query="tell me a joke", result=False, reason="no arithmetic"),
        ),
    )

    def recognises(self, text: str) -> bool:
        """Arithmetic that evaluates ("1380 - 275 - 415?", "3.5 * 42 for the skip hire days",
        "sqrt 729", "12% of 480"), not numbers that name things (`recognised_expression`)."""
        return recognised_expression(text) is not None

    async def execute(self, inputs: CalculatorInputs, ctx: RunContext) -> dict[str, Any]:
        expression = inputs.expression or extract_expression(inputs.query)
        if not expression:
            raise NotApplicable(f"no arithmetic expression in {inputs.query!r}")
        try:
            value = _tidy(evaluate(expression))
        except ValueError as exc:
            raise NotApplicable(str(exc)) from exc
        shown = expression.replace("**", "^")
        return {"calculation": value, "expression": expression, "summary": f"{shown} = {value}"}

    def summarize(self, output: Any) -> str:
        return f"{output['expression'].replace('**', '^')} = {output['calculation']}."
