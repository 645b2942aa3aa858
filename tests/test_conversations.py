"""The labelled multi-turn suite (tests/data/conversations.jsonl) on the real offline graph: follow-up
routing accuracy must not fall below the floor just under what was measured (README § Context and
profiles has the figures)."""

from __future__ import annotations

import asyncio

from evals.conversations import DEFAULT_DATA, evaluate, load

FLOOR = 0.95
"""All 177 follow-up turns: 0.983 measured (session 12, round 2); 0.961 once the hybrid head and the
secondary-need rules (issue 19) were merged, which move some first turns."""
SPLIT_FLOORS = {"dev": 0.94, "heldout": 0.94, "heldout2": 0.95}
"""Per split, just under what was measured (session 12): dev 0.979 (97 turns, 62 of them in the 51
conversations d01-d51 written for the miss classes: 0.726 before that session's changes), heldout
1.0 (19 turns; looked at three times, no longer clean), heldout2 1.0 (46 turns; 0.848 when measured
clean, 0.891 and 0.957 in later sessions; no longer clean either). Round 2 of session 12 added
d52-d66 (15 follow-up turns in heldout3's miss classes, other words): dev 0.973 over 112 turns; 0.938 after the scorer changes were merged (7 misses).
Session 13 (follow-ups round 3, heldout4's classes) added d67-d84 (18 turns): dev 0.954 over 130
turns (6 misses, 5 of them first turns the scorer misses and the follow-up inherits). Session 14
(round 5, heldout5's classes) added d94-d165 (75 turns): dev 0.953 over 214 turns. Round 6 (heldout6's
classes) added d166-d186 (21 turns, 4 passing before): dev 0.957 over 235 turns."""
HELDOUT3 = DEFAULT_DATA.with_name("conversations_heldout3.jsonl")
HELDOUT3_FLOOR = 0.95
HELDOUT4 = DEFAULT_DATA.with_name("conversations_heldout4.jsonl")
HELDOUT4_FLOOR = 0.94
"""heldout4 became a development set in session 13 after its first (blind) look: 0.807 then; 0.965
after follow-ups round 3 (57 turns, 2 misses: a first turn the scorer reads as nothing, and a
help-center answer that quotes the wrong article)."""
"""heldout3 became a development set in session 12 after its second measurement (0.818); 1.0 after
round 2 (44 turns)."""
HELDOUT5 = DEFAULT_DATA.with_name("conversations_heldout5.jsonl")
HELDOUT5_FLOOR = 0.89
"""heldout5 became a development set in session 14 (0.769 at its blind look): 0.923 after follow-ups
round 5 (65 turns, 5 misses: first turns the support scorer misreads and the follow-up inherits, a
help-center search that quotes another article, a billing answer without the decline reason).
0.892 since session 16 turned the labelled examples on (7 misses; h5-26's multi-intent first turn is
read differently and its follow-up inherits that), where the blind sets gained (CHANGELOG)."""


def test_the_suite_is_labelled_as_promised() -> None:
    rows = load(DEFAULT_DATA)
    assert len(rows) >= 48
    splits = [r["split"] for r in rows]
    assert splits.count("heldout") >= 16 and splits.count("heldout2") >= 24
    assert set(splits) == {"dev", "heldout", "heldout2"}
    assert splits.count("dev") >= 101
    assert all(2 <= len(r["turns"]) <= 4 and all(t["expect"] for t in r["turns"]) for r in rows)
    categories = {r["category"] for r in rows}
    assert {"followup_slot", "followup_anaphora", "topic_switch", "correction", "confirmation"} <= categories


def test_follow_up_routing_accuracy_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(DEFAULT_DATA))).summary()
    assert summary["followup_accuracy"] >= FLOOR, summary["failures"]
    for split, floor in SPLIT_FLOORS.items():
        assert summary["per_split"][split]["accuracy"] >= floor, (split, summary["failures"])
    assert summary["per_category"]["multi_then_followup"]["accuracy"] >= 0.8


def test_heldout3_now_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT3, "heldout3"))).summary()
    assert summary["followup_turns"] == 44
    assert summary["followup_accuracy"] >= HELDOUT3_FLOOR, summary["failures"]


def test_heldout4_now_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT4, "heldout4"))).summary()
    assert summary["followup_turns"] == 57
    assert summary["followup_accuracy"] >= HELDOUT4_FLOOR, summary["failures"]
    for category in ("confirmation", "followup_cue", "correction", "multi_then_followup"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])


def test_heldout5_now_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT5, "heldout5"))).summary()
    assert summary["followup_turns"] == 65
    assert summary["followup_accuracy"] >= HELDOUT5_FLOOR, summary["failures"]
    for category in ("confirmation", "correction"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])
    assert summary["per_category"]["multi_then_followup"]["accuracy"] >= 0.8, summary["failures"]


HELDOUT6 = DEFAULT_DATA.with_name("conversations_heldout6.jsonl")
HELDOUT6_FLOOR = 0.88
"""heldout6 became a development set in session 14 (0.740 at its blind look): 0.904 after follow-ups
round 6 (73 turns, 7 misses, each after a first turn the support scorer misreads)."""


def test_heldout6_now_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT6, "heldout6"))).summary()
    assert summary["followup_turns"] == 73
    assert summary["followup_accuracy"] >= HELDOUT6_FLOOR, summary["failures"]
    for category in ("correction", "multi_then_followup"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])


HELDOUT11 = DEFAULT_DATA.with_name("conversations_heldout11.jsonl")
HELDOUT11_FLOOR = 0.90
"""heldout11 was written as a development set in session 18, with a blind twin (heldout12): 0.684 with
the code as that session started, 0.924 after its follow-up, confirmation and support-routing rounds
(79 turns, 6 misses: first turns the support scorer misreads and the follow-up inherits, an outage
report read as another company's, a how-long question while a refund is on offer, and a customer
named only by full name)."""


def test_heldout11_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT11, "heldout11"))).summary()
    assert summary["followup_turns"] == 79
    assert summary["followup_accuracy"] >= HELDOUT11_FLOOR, summary["failures"]
    for category in ("followup_cue", "followup_slot", "correction", "howto_followup"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])


HELDOUT13 = DEFAULT_DATA.with_name("conversations_heldout13.jsonl")
HELDOUT13_FLOOR = 0.87
"""heldout13 was written as a development set in session 19, with a blind twin (heldout14): 0.8125 with
the code as that session started, 0.90 after its follow-up round 12 (80 turns, 8 misses: first turns
the support scorer misreads and the follow-up inherits, a how-to whose article loses to a heading on
"work", typos the capabilities do not read ("dashbored", "ref und"), and a company named in
a correction the account lookup does not take over the thread's customer)."""


def test_heldout13_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT13, "heldout13"))).summary()
    assert summary["followup_turns"] == 80
    assert summary["followup_accuracy"] >= HELDOUT13_FLOOR, summary["failures"]
    assert summary["per_category"]["followup_slot"]["accuracy"] == 1.0, summary["failures"]


HELDOUT15 = DEFAULT_DATA.with_name("conversations_heldout15.jsonl")
HELDOUT15_FLOOR = 0.80
"""heldout15 was written as a development set in session 20, with a blind twin (heldout16): 0.772 with
the code as it landed, 0.835 after follow-up round 13 (79 turns, 13 misses: first turns the scorer
misreads and the follow-up inherits, calculator follow-ups in words ("540 split between 4 of us"), a
place with a noun after it ("the Winnipeg depot?"), answers that miss the item asked for (the
invoice before INV-3023, a short answer's workaround) and a yes in radio words)."""


def test_heldout15_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT15, "heldout15"))).summary()
    assert summary["followup_turns"] == 79
    assert summary["followup_accuracy"] >= HELDOUT15_FLOOR, summary["failures"]
    for category in ("followup_cue", "correction"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])


HELDOUT17 = DEFAULT_DATA.with_name("conversations_heldout17.jsonl")
HELDOUT17_FLOOR = 0.89
"""heldout17 was written as a development set in session 21, with a blind twin (heldout18), weighted
to anaphora and confirmations: 0.785 with the code as it landed, 0.911 after follow-up round 14 (79
turns, 7 misses: a first turn the scorer misreads and the follow-up inherits, an account answer that
keeps the customer of the turn before ("do the same for Whitaker Legal"), "do the same but with 19"
taking the other operand, "refund the 531.25 one" when a failed charge has the same amount, a bare
"seats?" after a correction, a decline answered with the list of capabilities (which says "refunded"),
and a how-to read as a quote)."""


def test_heldout17_a_development_set_stays_above_its_floor() -> None:
    summary = asyncio.run(evaluate(load(HELDOUT17, "heldout17"))).summary()
    assert summary["followup_turns"] == 79
    assert summary["followup_accuracy"] >= HELDOUT17_FLOOR, summary["failures"]
    for category in ("followup_slot", "multi_then_followup"):
        assert summary["per_category"][category]["accuracy"] == 1.0, (category, summary["failures"])
