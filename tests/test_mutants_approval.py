"""Mutation-check cases for the approval node (nodes/approval.py `approval`): decisions a mutant
flipped with no test failing (`./scripts/mutants approval`, session 14). The real graph, driven by
the injectable clock as in tests/test_approval_clock.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import nodes.approval as approval_module
from graph.errors import ApprovalUnanswered
from graph.router import Gate
from tests.test_approval_clock import FakeClock, Run, db, payouts, shop

__all__ = ["db"]  # the fixture, used by name


def test_a_yes_at_exactly_the_timeout_still_pays(make_graph: Any, db: Path) -> None:
    """`timeout_seconds` is how long the answer may take: one given at exactly 60 s of 60 is in
    time (kills `waited > timeout` -> `>=`, which turned it into a no)."""
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60}
    run = Run(make_graph(shop(db, approval=approval), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 60
    state = run.resume("yes")
    assert payouts(db) == 1
    assert not [n for n in state["planning_notes"] if "approval_timeout" in n]


# --- the node's bookkeeping, one pass at a time (session 15) -------------------------------------
# The node driven directly with scripted gates, answers and clock: every update is compared whole,
# so a mutant that changes a note, a reason, the wait or the offer fails here.

ASKED = 1_000_000.0


def step(sid: str, capability: str = "payout") -> Any:
    return {"id": sid, "capability": capability, "inputs": {"amount": 500}, "depends_on": []}


class Gates:
    """A router whose gates are given; a decided step is not gated again (as Router.gates)."""

    def __init__(self, gates: list[Gate]) -> None:
        self.gates_ = gates

    def ready_steps(self, state: Any) -> list[Any]:
        return [g.step for g in self.gates_]

    def gates(self, state: Any, ready: Any) -> list[Gate]:
        assert ready == [g.step for g in self.gates_]
        decided = state.get("approval_decisions") or {}
        return [g for g in self.gates_ if g.step["id"] not in decided]


def gate(
    sid: str,
    kind: str = "approve",
    *,
    timeout: float | None = None,
    on_timeout: str = "deny",
    capability: str = "payout",
    intent: str = "the request asks about it",
) -> Gate:
    return Gate(step(sid, capability), kind, f"Q {sid}?", intent, timeout, on_timeout)  # type: ignore[arg-type]


def node(
    gates: list[Gate],
    answers: list[Any],
    *,
    now: float = ASKED,
    max_steps: int = 10,
    verbs: tuple[str, ...] = ("pay",),
) -> tuple[Any, list[dict[str, Any]], SimpleNamespace]:
    asked: list[dict[str, Any]] = []
    replies = iter(answers)

    def ask(payload: dict[str, Any]) -> Any:
        asked.append(payload)
        return next(replies)

    deps = SimpleNamespace(
        router=Gates(gates),
        limits=SimpleNamespace(max_steps=max_steps),
        clock=lambda: now,
        registry={"payout": SimpleNamespace(action_verbs=verbs), "refund": SimpleNamespace(action_verbs=())},
    )
    call = SimpleNamespace(deps=deps, keep={})

    def run(state: dict[str, Any]) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(approval_module, "_ask", ask)
            return dict(asyncio.run(approval_module.approval(state, call)))  # type: ignore[arg-type]

    return run, asked, call


def denied(sid: str, why: str, capability: str = "payout", status: str = "denied") -> dict[str, Any]:
    return {
        "step_id": sid,
        "capability": capability,
        "status": status,
        "output": {"summary": why},
        "error": why,
        "severity": None,
        "stop_reason": None,
        "attempts": 0,
        "duration_ms": 0.0,
    }


def test_no_gates_no_update() -> None:
    run, asked, _ = node([], [])
    assert run({}) == {} and asked == []


def test_skipped_steps_are_recorded_and_noted_without_asking() -> None:
    skip = Gate(step("s1"), "skip", "You asked to see it, not to pay.", "", None, "deny")
    run, asked, _ = node([skip], [])
    update = run({"planning_notes": ["earlier"]})
    assert asked == []
    assert update == {
        "execution_results": {"s1": denied("s1", "You asked to see it, not to pay.", status="skipped")},
        "planning_notes": ["earlier", "side_effect_not_requested: s1"],
    }


def test_a_skip_beside_a_question_first_pass() -> None:
    skip = Gate(step("s1"), "skip", "Not asked.", "", None, "deny")
    run, asked, _ = node([skip, gate("s2")], [], now=ASKED + 5)
    update = run({"control_started_at": ASKED - 10})
    assert asked == []
    assert update == {
        "execution_results": {"s1": denied("s1", "Not asked.", status="skipped")},
        "planning_notes": ["side_effect_not_requested: s1"],
        "approval_asked_at": ASKED + 5,
    }


@pytest.mark.parametrize(
    ("asked_at", "started", "first"),
    [
        (None, ASKED, True),
        (ASKED - 1, ASKED, True),  # asked in an earlier turn: ask afresh
        (ASKED, ASKED, False),  # asked at the very start of this turn: this turn's question
        (ASKED + 1, ASKED, False),
        (ASKED, None, False),  # no start recorded: any time counts as this turn's
        (0.5, None, False),  # a clock that starts at 0 (monotonic, a test's): still this turn's
    ],
)
def test_the_first_pass_only_notes_when_the_question_is_put(
    asked_at: float | None, started: float | None, first: bool
) -> None:
    now = (asked_at or ASKED) + 30
    run, asked, _ = node([gate("s1")], ["yes"], now=now)
    state: dict[str, Any] = {"approval_asked_at": asked_at, "control_started_at": started, "task_turn": 1}
    update = run(state)
    if first:
        assert update == {"approval_asked_at": now} and asked == []
    else:
        assert len(asked) == 1 and update["approval_decisions"] == {"s1": True}


def test_the_first_pass_offers_the_confirmations_only() -> None:
    gates = [gate("s1", "confirm"), gate("s2"), gate("s3", "confirm", capability="refund")]
    run, _, _ = node(gates, [], now=ASKED)
    update = run({"task_turn": 4, "task_current": "pay alice"})
    assert update == {
        "approval_asked_at": ASKED,
        "approval_offer": {
            "turn": 4,
            "task": "pay alice",
            "capabilities": ["payout", "refund"],
            "question": "Q s1? Q s3?",
            "accepted_turn": None,
        },
    }
    run, _, _ = node([gate("s1", "confirm")], [], now=ASKED)
    assert run({})["approval_offer"] == {
        "turn": 0,
        "task": "",
        "capabilities": ["payout"],
        "question": "Q s1?",
        "accepted_turn": None,
    }


def test_the_wait_is_added_to_this_turns_pause() -> None:
    run, _, call = node([gate("s1")], ["yes"], now=ASKED + 40)
    state = {
        "approval_asked_at": ASKED,
        "task_turn": 3,
        "control_paused_seconds": 7.0,
        "control_paused_turn": 3,
    }
    update = run(state)
    assert update == {
        "control_paused_seconds": 47.0,
        "control_paused_turn": 3,
        "approval_asked_at": None,
        "approval_decisions": {"s1": True},
        "execution_results": {},
        "approval_offer": None,
    }
    assert call.keep == {"control_paused_seconds": 47.0, "control_paused_turn": 3, "approval_asked_at": None}


def test_another_turns_pause_is_not_carried_and_a_clock_behind_counts_no_wait() -> None:
    run, _, _ = node([gate("s1")], ["no"], now=ASKED + 40)
    state = {
        "approval_asked_at": ASKED,
        "task_turn": 3,
        "control_paused_seconds": 7.0,
        "control_paused_turn": 2,
    }
    update = run(state)
    assert update["control_paused_seconds"] == 40.0 and update["control_paused_turn"] == 3
    run, _, _ = node([gate("s1")], ["no"], now=ASKED - 40)
    update = run({"approval_asked_at": ASKED, "control_paused_seconds": 7.0, "control_paused_turn": 0})
    assert update["control_paused_seconds"] == 7.0 and update["control_paused_turn"] == 0


def test_a_denied_approval_and_an_unconfirmed_question_say_what_was_not_done() -> None:
    gates = [
        gate("s1"),
        gate("s2", "confirm", intent="only asks"),
        gate("s3", "confirm", capability="refund"),
    ]
    run, _, _ = node(gates, ["no"], now=ASKED + 1)
    update = run({"approval_asked_at": ASKED, "task_turn": 2, "task_current": "t", "planning_notes": ["n"]})
    assert update["approval_decisions"] == {"s1": False, "s2": False, "s3": False}
    assert update["execution_results"] == {
        "s1": denied("s1", "I did not run payout: the action was denied, so nothing was changed."),
        "s2": denied(
            "s2",
            "I did not pay anything: the request only asks about it (only asks), and it was not confirmed. "
            "Reply “yes” to go ahead.",
        ),
        "s3": denied(
            "s3",
            "I did not run refund: the request only asks about it (the request asks about it), and it was "
            "not confirmed. Reply “yes” to go ahead.",
            capability="refund",
        ),
    }
    assert update["approval_offer"] == {
        "turn": 2,
        "task": "t",
        "capabilities": ["payout", "refund"],
        "question": "Q s2? Q s3?",
        "accepted_turn": None,
    }
    assert "planning_notes" not in update, "no note added: the notes are not rewritten"


def test_a_confirmed_question_clears_the_offer_and_an_approval_keeps_an_older_one() -> None:
    older = {"turn": 1, "task": "x", "capabilities": ["refund"], "question": "?", "accepted_turn": None}
    run, _, _ = node([gate("s1", "confirm")], ["yes"], now=ASKED)
    update = run({"approval_asked_at": ASKED, "approval_offer": older})
    assert update["approval_offer"] is None and update["execution_results"] == {}
    run, _, _ = node([gate("s1")], ["yes"], now=ASKED)
    assert run({"approval_asked_at": ASKED, "approval_offer": older})["approval_offer"] == older
    run, _, _ = node([gate("s1"), gate("s2", "confirm")], [{"s1": "no", "s2": "yes"}], now=ASKED)
    update = run({"approval_asked_at": ASKED, "approval_offer": older})
    assert update["approval_offer"] is None and list(update["execution_results"]) == ["s1"]


def test_a_late_answer_resolves_by_on_timeout_with_a_note_and_a_reason() -> None:
    gates = [
        gate("s1", timeout=60),
        gate("s2", timeout=60, on_timeout="approve"),
        gate("s3", "confirm", timeout=60, on_timeout="approve"),
        gate("s4", timeout=90.5),
    ]
    run, asked, _ = node(gates, ["yes"], now=ASKED + 75.4)
    update = run({"approval_asked_at": ASKED, "planning_notes": ["n"]})
    assert len(asked) == 1
    assert update["approval_decisions"] == {"s1": False, "s2": True, "s3": False, "s4": True}
    late = (
        "I did not run payout: the approval question had no answer within 60 s (the answer came after 75 s), "
    )
    assert update["execution_results"] == {
        "s1": denied("s1", late + "so it counts as a no (approval.on_timeout), and nothing was changed."),
        "s3": denied("s3", late + "so it counts as a no (approval.on_timeout), and nothing was changed."),
    }
    assert update["planning_notes"] == [
        "n",
        "approval_timeout: s1 answered after 75 s, past approval.timeout_seconds=60; denied by approval.on_timeout",
        "approval_timeout: s2 answered after 75 s, past approval.timeout_seconds=60; approved by approval.on_timeout",
        "approval_timeout: s3 answered after 75 s, past approval.timeout_seconds=60; denied by approval.on_timeout",
    ]


def test_a_late_answer_decides_even_when_it_is_unclear() -> None:
    run, asked, _ = node([gate("s1", timeout=10)], ["hmm"], now=ASKED + 11)
    update = run({"approval_asked_at": ASKED})
    assert len(asked) == 1 and update["approval_decisions"] == {"s1": False}


def test_an_unclear_answer_asks_again_for_the_steps_left_with_the_reason() -> None:
    run, asked, _ = node([gate("s1"), gate("s2")], [{"s1": "yes"}, "no"], now=ASKED)
    update = run({"approval_asked_at": ASKED, "task_current": "t"})
    assert [len(q["steps"]) for q in asked] == [2, 1]
    assert "not_understood" not in asked[0]
    assert asked[1]["not_understood"] == "\"{'s1': 'yes'}\" is not a clear yes or no"
    assert asked[1]["steps"][0]["step_id"] == "s2" and asked[1]["task"] == "t"
    assert update["approval_decisions"] == {"s1": True, "s2": False}


def test_the_unanswered_error_counts_the_answers() -> None:
    run, asked, _ = node([gate("s1")], ["hmm", "hmm", "hmm"], now=ASKED, max_steps=3)
    with pytest.raises(ApprovalUnanswered) as err:
        run({"approval_asked_at": ASKED, "control_steps": 0})
    assert len(asked) == 3
    assert str(err.value) == (
        "no clear yes or no to the approval question after 3 answers ('hmm' is not a clear yes or no); "
        "each unclear answer uses a step of max_steps=3; nothing was done"
    )
