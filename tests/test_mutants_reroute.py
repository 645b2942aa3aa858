"""A specialist's "not mine" (`needs_reroute`) at its edges: which failures carry a suggestion the
classifier takes, which suggestions it refuses (ruled out this turn, outside the allowlist, not a
capability it routes to), and how a taken one enters the scores. The state is what the runner and
the join leave (a failed step's result with `output["reroute"]`, an error record of its severity);
the graph-level path and the bound (`max_reclassifications`) are in tests/test_reroute_fallback.py.

Written for the mutation check (scripts/mutants reroute): each test pins a branch that a flipped
condition would move."""

from __future__ import annotations

from typing import Any

from graph.state import ScoredCapability
from nodes.planning import apply_reroutes, reroutes
from tests.conftest import guide, registry_with

TRANSLATE = guide("translate this into French", "how do you say hello in Spanish")


def state(*failures: tuple[str, str, Any]) -> Any:
    """Failed steps: (step id, severity, the step's `reroute` output or None)."""
    results, errors = {}, []
    for step_id, severity, reroute in failures:
        output = {} if reroute is None else {"reroute": reroute}
        results[step_id] = {
            "step_id": step_id,
            "capability": step_id.split(":")[0],
            "status": "failed",
            "output": output,
            "error": "not mine",
            "severity": severity,
            "stop_reason": None,
            "attempts": 1,
            "duration_ms": 1.0,
        }
        errors.append(
            {
                "node": "execute",
                "severity": severity,
                "message": "not mine",
                "step_id": step_id,
                "capability": step_id.split(":")[0],
                "attempt": 1,
            }
        )
    return {"execution_results": results, "control_errors": errors}


def scored(*names: str) -> list[ScoredCapability]:
    return [ScoredCapability(name=n, score=0.4, selected=False, source="scorer") for n in names]


def registry(**sections: Any) -> Any:
    translator = {"name": "translator", "class": "capabilities.clock:Clock", "classifier_guide": TRANSLATE}
    return registry_with(translator, **sections)


def suggestion(to: str | None, frm: str = "translator") -> dict[str, Any]:
    return {"from": frm, "to": to, "reason": f"{frm} only translates"}


def test_only_a_reclassification_failure_carries_a_suggestion() -> None:
    taken = state(("translator:1", "reclassification", suggestion("clock")))
    assert reroutes(taken) == [suggestion("clock")]
    retried = state(("translator:1", "retriable", suggestion("clock")))
    assert reroutes(retried) == []
    assert reroutes(state(("translator:1", "reclassification", "clock"))) == []  # not a suggestion
    assert reroutes(state(("translator:1", "reclassification", None))) == []
    no_step = state(("translator:1", "reclassification", suggestion("clock")))
    no_step["control_errors"][0]["step_id"] = None  # a node's failure, not a step's
    assert reroutes(no_step) == []
    assert reroutes({}) == []


def test_a_taken_suggestion_is_selected_and_the_rest_keep_their_scores() -> None:
    reg = registry()
    before = scored("calculator", "clock", "translator")
    out, notes = apply_reroutes(
        reg, before, state(("translator:1", "reclassification", suggestion("clock"))), []
    )
    assert out == [
        {"name": "calculator", "score": 0.4, "selected": False, "source": "scorer"},
        {"name": "clock", "score": 0.4, "selected": True, "source": "scorer"},
        {"name": "translator", "score": 0.4, "selected": False, "source": "scorer"},
    ]
    assert notes == ["reroute: translator handed the request to clock (translator only translates)"]


def test_a_suggestion_the_classifier_did_not_score_is_added_selected() -> None:
    out, _ = apply_reroutes(
        registry(), scored("translator"), state(("translator:1", "reclassification", suggestion("clock"))), []
    )
    assert out == [
        {"name": "translator", "score": 0.4, "selected": False, "source": "scorer"},
        {"name": "clock", "score": 1.0, "selected": True, "source": "scorer"},
    ]


def test_refused_suggestions_leave_the_scores_as_they_were() -> None:
    reg = registry(policy={"allowed_capabilities": ["respond", "clarify", "clock", "translator"]})
    before = scored("clock", "translator")
    cases = {
        "clock": "already ruled out this turn",  # excluded below
        "calculator": "not a capability the router can pick",  # registered, not allowed
        "respond": "not a capability the router can pick",  # terminal
        "ghost": "not a capability the router can pick",  # not registered
    }
    for to, why in cases.items():
        out, notes = apply_reroutes(
            reg, before, state(("translator:1", "reclassification", suggestion(to))), ["clock"]
        )
        assert out is before, to
        assert notes == [f"reroute: translator suggested {to} (translator only translates); not taken: {why}"]
    out, notes = apply_reroutes(
        reg, before, state(("translator:1", "reclassification", suggestion(None))), []
    )
    assert out is before
    assert notes == [
        "reroute: translator said the request is not its own (translator only translates), with no suggestion"
    ]


def test_with_two_suggestions_each_is_judged_on_its_own() -> None:
    reg = registry()
    failures = state(
        ("translator:1", "reclassification", suggestion("ghost")),
        ("calculator:2", "reclassification", suggestion("clock", "calculator")),
    )
    out, notes = apply_reroutes(reg, scored("translator"), failures, [])
    assert [(c["name"], c["selected"]) for c in out] == [("translator", False), ("clock", True)]
    assert len(notes) == 2 and "not taken" in notes[0] and "handed the request to clock" in notes[1]
