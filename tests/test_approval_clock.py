"""The approval clock: waiting for a human is not work, and an answer after `timeout_seconds` resolves
as `on_timeout`. Driven with the injectable clock (`build_graph(clock=...)`): no real waiting."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.router import Router, paused_seconds, turn_elapsed
from tests.conftest import answer, guide, registry_with
from tests.testcaps import make_db


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shop(db: Path, *, approval: dict[str, Any], side_effects: bool = False, max_seconds: float = 120) -> Any:
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": str(db)},
        "classifier_guide": guide("find the account of alice", "look up customer bob"),
    }
    payout: dict[str, Any] = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "classifier_guide": guide(
            "pay alice 20 dollars", "send a payout of 50 to bob", "can I pay alice 20 dollars?"
        ),
        "approval": approval,
    }
    if side_effects:
        payout |= {"side_effects": True, "action_verbs": ["pay", "payout", "send money"]}
    return registry_with(lookup, payout, limits={"max_seconds": max_seconds})


class Run:
    def __init__(self, graph: Any, thread: str = "clock") -> None:
        self.graph = graph
        self.config = {"configurable": {"thread_id": thread}}

    def ask(self, text: str) -> dict[str, Any]:
        return dict(self.graph.invoke({"messages": [HumanMessage(content=text)]}, self.config))

    def resume(self, value: Any) -> dict[str, Any]:
        return dict(self.graph.invoke(Command(resume=value), self.config))

    def pending(self) -> list[dict[str, Any]]:
        snapshot = self.graph.get_state(self.config)
        return [i.value for task in snapshot.tasks for i in task.interrupts]


def payouts(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM payouts").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "shop.sqlite")


def test_approving_after_125_s_of_a_120_s_turn_still_pays(make_graph: Any, db: Path) -> None:
    """The issue's report: the human's 125 s ended the run `max_seconds` with nothing done."""
    clock = FakeClock()
    run = Run(make_graph(shop(db, approval={"mode": "above", "threshold": 100}), clock=clock))
    run.ask("pay alice 500 dollars")
    (payload,) = run.pending()
    assert payload["steps"][0]["kind"] == "approve" and payouts(db) == 0
    clock.now += 125
    state = run.resume(True)
    assert state["control_stop_reason"] == "success", answer(state)
    assert payouts(db) == 1 and "paid 500" in answer(state)
    assert state["control_paused_seconds"] == pytest.approx(125)
    assert state["control_paused_turn"] == state["task_turn"]
    assert state["approval_asked_at"] is None, "nothing is pending any more"


def test_work_still_counts_against_max_seconds(make_graph: Any, db: Path) -> None:
    """Only the wait is left out: a turn whose own work takes longer still stops."""
    clock = FakeClock()
    registry = shop(db, approval={"mode": "above", "threshold": 100}, max_seconds=120)
    run = Run(make_graph(registry, clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 125
    state = run.graph.get_state(run.config).values
    # The router at this point (a question pending since approval_asked_at): no work yet.
    assert turn_elapsed(state, clock()) == pytest.approx(0, abs=1e-6)
    # Work before the question counts: as if the turn had started 121 s before asking.
    earlier = {**state, "control_started_at": state["approval_asked_at"] - 121}
    assert Router(registry, clock=clock).decide(earlier).stop_reason == "max_seconds"


def test_a_pause_of_another_turn_counts_nothing() -> None:
    state: dict[str, Any] = {
        "task_turn": 2,
        "control_started_at": 1000.0,
        "control_paused_seconds": 500.0,
        "control_paused_turn": 1,
    }
    assert paused_seconds(state) == 0.0  # type: ignore[arg-type]
    assert turn_elapsed(state, 1200.0) == 200.0  # type: ignore[arg-type]
    assert turn_elapsed({**state, "control_paused_turn": 2}, 1200.0) == -300.0  # type: ignore[arg-type]
    stale = {**state, "approval_asked_at": 900.0}  # asked in an earlier turn: not a wait of this one
    assert turn_elapsed(stale, 1200.0) == 200.0  # type: ignore[arg-type]
    waiting = {**state, "approval_asked_at": 1100.0}
    assert turn_elapsed(waiting, 1200.0) == 100.0  # type: ignore[arg-type]


def test_a_yes_after_the_timeout_is_a_no(make_graph: Any, db: Path) -> None:
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60}
    run = Run(make_graph(shop(db, approval=approval), clock=clock))
    run.ask("pay alice 500 dollars")
    (payload,) = run.pending()
    assert payload["steps"][0]["timeout_seconds"] == 60
    clock.now += 61
    state = run.resume(True)
    assert payouts(db) == 0
    assert state["control_stop_reason"] == "success"
    (result,) = [r for r in state["execution_results"].values() if r["capability"] == "payout"]
    assert result["status"] == "denied"
    assert "within 60 s" in answer(state) and "nothing was changed" in answer(state)
    (note,) = [n for n in state["planning_notes"] if n.startswith("approval_timeout:")]
    assert "on_timeout" in note and "denied" in note


def test_a_yes_within_the_timeout_pays(make_graph: Any, db: Path) -> None:
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60}
    run = Run(make_graph(shop(db, approval=approval), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 59
    state = run.resume("yes")
    assert payouts(db) == 1 and not [n for n in state["planning_notes"] if "approval_timeout" in n]


def test_on_timeout_approve_runs_an_explicit_request_after_the_timeout(make_graph: Any, db: Path) -> None:
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60, "on_timeout": "approve"}
    run = Run(make_graph(shop(db, approval=approval, side_effects=True), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 3600
    state = run.resume("timeout")  # a scheduler resuming with anything: the policy decides
    assert payouts(db) == 1, answer(state)
    assert any(n.startswith("approval_timeout:") and "approved" in n for n in state["planning_notes"])


def test_a_confirmation_that_times_out_is_denied_whatever_on_timeout_says(make_graph: Any, db: Path) -> None:
    """The user only asked: waiting can never turn a question into a side effect."""
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60, "on_timeout": "approve"}
    run = Run(make_graph(shop(db, approval=approval, side_effects=True), clock=clock))
    run.ask("can I pay alice 20 dollars?")
    (payload,) = run.pending()
    assert payload["steps"][0]["kind"] == "confirm"
    clock.now += 61
    state = run.resume(True)
    assert payouts(db) == 0
    assert any(n.startswith("approval_timeout:") and "denied" in n for n in state["planning_notes"])


def test_unclear_answers_then_yes_count_the_whole_wait(make_graph: Any, db: Path) -> None:
    clock = FakeClock()
    run = Run(make_graph(shop(db, approval={"mode": "above", "threshold": 100}), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 100
    run.resume("hmm, what?")
    assert run.pending() and run.pending()[0]["not_understood"]
    clock.now += 100
    state = run.resume("yes")
    assert payouts(db) == 1 and state["control_stop_reason"] == "success"
    assert state["control_paused_seconds"] == pytest.approx(200)


def test_the_pause_does_not_carry_into_the_next_turn(make_graph: Any, db: Path) -> None:
    clock = FakeClock()
    run = Run(make_graph(shop(db, approval={"mode": "above", "threshold": 100}), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 1000
    first = run.resume(True)
    assert paused_seconds(first) == pytest.approx(1000)  # type: ignore[arg-type]
    second = run.ask("pay bob 20 dollars")
    assert second["control_stop_reason"] == "success" and payouts(db) == 2
    assert paused_seconds(second) == 0.0  # type: ignore[arg-type]


def test_an_abandoned_question_is_asked_afresh_in_the_next_turn(make_graph: Any, db: Path) -> None:
    """A new message while a question is pending: its wait and its timeout belong to the old turn."""
    clock = FakeClock()
    approval = {"mode": "above", "threshold": 100, "timeout_seconds": 60}
    run = Run(make_graph(shop(db, approval=approval), clock=clock))
    run.ask("pay alice 500 dollars")
    clock.now += 5000
    run.ask("pay bob 300 dollars")
    (payload,) = run.pending()
    assert "300" in payload["steps"][0]["question"]
    clock.now += 10
    state = run.resume(True)
    assert payouts(db) == 1 and "paid 300" in answer(state), answer(state)
    assert state["control_paused_seconds"] == pytest.approx(10)
