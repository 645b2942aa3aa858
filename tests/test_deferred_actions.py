"""A deferred or hedged action is asked about, not done: one case per word of the rule.

Found by session 14's mutation check (strict xfails in tests/test_mutants_intent.py): "refund
CH-2033 eventually", "... on monday", "... in two days", "... after the return arrives", "...
possibly" and "... i guess" acted, as "... next week" and "... maybe" did before session 13.
"""

from __future__ import annotations

import pytest

from graph.intent import side_effect_intent

VERBS = ["refund", "money back", "reimburse"]


@pytest.mark.parametrize(
    "text",
    [
        "refund CH-2033 eventually",
        "refund CH-2033 at some point",
        "refund CH-2033 some day",
        "refund CH-2033 someday",
        "refund CH-2033 next time",
        "refund CH-2033 possibly",
        "refund CH-2033 probably",
        "refund CH-2033 i guess",
        "refund CH-2033 i suppose",
        "refund CH-2033 next friday",
        "refund CH-2033 on monday",
        "refund CH-2033 on tuesday",
        "refund CH-2033 on wednesday",
        "refund CH-2033 on thursday",
        "refund CH-2033 on friday",
        "refund CH-2033 on saturday",
        "refund CH-2033 next monday",
        "refund CH-2033 on sunday",
        "refund CH-2033 in two days",
        "refund CH-2033 in a few weeks",
        "refund CH-2033 in a couple of hours",
        "refund CH-2033 in 3 months",
        "refund CH-2033 in an hour",
        "refund CH-2033 in one minute",
        "refund CH-2033 in five days",
        "refund CH-2033 after the return arrives",
        "refund CH-2033 after this quarter closes",
        "refund CH-2033 after that clears",
        "refund CH-2033 after it ships back",
    ],
)
def test_a_deferred_or_hedged_refund_is_asked_about(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind == "confirm"


@pytest.mark.parametrize(
    "text",
    [
        "please refund CH-2033",
        "refund CH-2033 now",
        "refund CH-2033 in full",
        "refund it within a day please",
        "refund the duplicate charge CH-2033, it was charged twice",
        "refund the charge from monday, CH-2033",
    ],
)
def test_an_instruction_for_now_still_acts(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind == "act"
