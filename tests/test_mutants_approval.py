"""Mutation-check cases for the approval node (nodes/approval.py `approval`): decisions a mutant
flipped with no test failing (`./scripts/mutants approval`, session 14). The real graph, driven by
the injectable clock as in tests/test_approval_clock.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
