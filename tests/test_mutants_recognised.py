"""Mutation-check cases for requests recognised by their shape (graph/classifier/recognised.py,
`./scripts/mutants recognised`, session 19): which capabilities recognise a task's own words, the
guide's last word over a recogniser (`_guide_agrees`), and how a recognising capability joins the
scorer's picks (`with_recognised`).

Pure and fast: small registries of the base capabilities (the calculator recognises arithmetic),
nothing runs. Every sentence is written for these tests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graph.capability import Capability, RunContext
from graph.classifier.recognised import _guide_agrees, recognising, with_recognised
from graph.config.registry import Registry
from tests.conftest import BASE, guide


class Broken(Capability):
    """A recogniser that fails: it recognises nothing, and the next capability is still asked."""

    name = "broken"
    description = "Fails to tell what it recognises."

    def recognises(self, text: str) -> bool:
        raise RuntimeError("no shape today")

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {"summary": ""}


def registry(
    *, calculator_guide: dict[str, Any] | None = None, extra: tuple[dict[str, Any], ...] = ()
) -> Registry:
    data = copy.deepcopy(BASE)
    if calculator_guide is not None:
        for cap in data["capabilities"]:
            if cap["name"] == "calculator":
                cap["classifier_guide"] = calculator_guide
    data["capabilities"] += list(extra)
    return Registry.from_dict(data, source="<recognised test>")


BROKEN = {"name": "broken", "class": "tests.test_mutants_recognised:Broken", "classifier_guide": guide("x")}
SECOND = {"name": "adder", "class": "capabilities.calculator:Calculator"}


@pytest.fixture(scope="module")
def base() -> Registry:
    return registry(extra=(BROKEN, SECOND))


def test_the_task_s_own_words_are_recognised(base: Registry) -> None:
    assert recognising(base, "1380 - 275 - 415?", ["clock", "calculator"]) == ["calculator"]
    assert recognising(base, "1380 - 275 - 415?", ["calculator", "adder"]) == ["calculator", "adder"]
    assert recognising(base, "what time is it in Lima", ["clock", "calculator"]) == ["clock"]  # session 20
    assert recognising(base, "what time does the Lima office open", ["clock", "calculator"]) == []
    # the earlier request a follow-up carries is not the user's words, in any case, over lines
    assert recognising(base, "and in Lima? (follow-up to: what is 17*3)", ["calculator"]) == []
    assert recognising(base, "and in Lima? (FOLLOW-UP TO: what is\n17*3)", ["calculator"]) == []
    assert recognising(base, "17*3 (follow-up to: and in Lima?)", ["calculator"]) == ["calculator"]


def test_a_failing_recogniser_or_an_unknown_name_recognises_nothing(base: Registry) -> None:
    assert recognising(base, "17*3", ["broken", "calculator"]) == ["calculator"]
    assert recognising(base, "17*3", ["no_such_capability", "calculator"]) == ["calculator"]


def test_a_negative_example_of_the_recognised_shape_turns_the_recogniser_off() -> None:
    strict = registry(calculator_guide=guide("add up my expenses", negatives=["what is 12*7?"]))
    assert not _guide_agrees(strict["calculator"])
    assert recognising(strict, "1380 - 275 - 415?", ["calculator"]) == []
    # a negative example of another shape, or a positive one of this shape, leaves it on
    other = registry(calculator_guide=guide("add up my expenses", negatives=["what time is it in Lima"]))
    assert _guide_agrees(other["calculator"])
    assert recognising(other, "1380 - 275 - 415?", ["calculator"]) == ["calculator"]
    positive = registry(calculator_guide=guide("what is 12*7?"))
    assert _guide_agrees(positive["calculator"])


def test_a_recogniser_joins_the_scorer_s_picks_when_none_of_them_recognises(base: Registry) -> None:
    names = ["clock", "calculator", "adder"]
    assert with_recognised(base, "1380 - 275 - 415?", names, set(), 3) == {"calculator", "adder"}
    assert with_recognised(base, "1380 - 275 - 415?", names, set(), 1) == {"calculator"}
    assert with_recognised(base, "1380 - 275 - 415?", names, {"clock"}, 3) == {"clock", "calculator", "adder"}
    assert with_recognised(base, "1380 - 275 - 415?", names, {"clock"}, 2) == {"clock", "calculator"}
    assert with_recognised(base, "1380 - 275 - 415?", names, {"clock"}, 1) == {"clock"}
    assert with_recognised(base, "1380 - 275 - 415?", names, {"clock", "respond"}, 1) == {"clock", "respond"}
    # a pick that recognises it already: nothing added; nothing recognised: the picks stand
    assert with_recognised(base, "1380 - 275 - 415?", names, {"adder"}, 3) == {"adder"}
    assert with_recognised(base, "what time is it in Lima", names, {"clock"}, 3) == {"clock"}
    assert with_recognised(base, "what time is it in Lima", names, set(), 3) == {"clock"}
    assert with_recognised(base, "what time does the Lima office open", names, set(), 3) == set()
    # a pick that recognises one clause does not explain another ("... and the time in Lima")
    both = "ok... two things... 365 / 4 ... and the time in Lima..."
    assert with_recognised(base, both, names, {"clock"}, 2) == {"clock", "calculator"}
