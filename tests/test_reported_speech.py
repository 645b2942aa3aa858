"""Someone else's words, relayed with a colon, are not the user's instruction to act.

"my colleague told me: refund CH-2033" used to refund (the reported-speech rule knew says/said/
wrote/reads, not told/asked/wants). Relaying a request in the user's own words ("my boss told me
to refund it") is still asked about, not dropped; the user's own words still act.
"""

from __future__ import annotations

import pytest

from graph.intent import side_effect_intent

VERBS = ["refund", "money back", "reimburse"]


@pytest.mark.parametrize(
    "text",
    [
        "my colleague told me: refund CH-2033",
        "the customer asked: refund CH-2033 now",
        "my manager wants: money back for CH-2033",
        "he tells us: reimburse the duplicate",
        "the ticket asks: refund the second payment",
        "our CFO instructed: refund CH-2033",
        "my colleague told us:refund CH-2033",
    ],
)
def test_a_relayed_instruction_after_a_colon_does_not_act(text: str) -> None:
    assert side_effect_intent(text, VERBS).kind == "refuse"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("my boss told me to refund CH-2033", "confirm"),
        ("my colleague asked me to get CH-2033 refunded", "confirm"),
        ("I asked: refund CH-2033", "act"),
        ("we asked: refund CH-2033", "act"),
        ("please refund CH-2033", "act"),
        ("my colleague told me: refund CH-2033. Please refund CH-2033.", "act"),
    ],
)
def test_the_users_own_words_and_relayed_requests_keep_their_kind(text: str, kind: str) -> None:
    assert side_effect_intent(text, VERBS).kind == kind
