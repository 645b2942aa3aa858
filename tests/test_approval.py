"""Approval answers: yes/no words, mappings, Agent Inbox responses; unclear answers ask again, never guess."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from nodes.approval import parse_decision, parse_words, unclear_reason
from tests.conftest import answer, guide, registry_with
from tests.testcaps import make_db

YES = [
    True,
    "yes",
    "Yes!",
    "YES PLEASE!!!",
    "yes please",
    "  yes  ",
    "y",
    "Y",
    "ok",
    "OK.",
    "okay",
    "sure",
    "sure, thanks",
    "go ahead",
    "Go ahead!",
    "yes, go ahead",
    "approve",
    "approved",
    "Approve it please",
    "confirm",
    "confirmed",
    "do it",
    "Just do it",
    "true",
    "yep",
    "all right",
    "👍",
    "ok thanks",
]
NO = [
    False,
    "no",
    "No.",
    "NO!",
    "n",
    "no thanks",
    "No, thank you",
    "nope",
    "deny",
    "denied",
    "reject",
    "cancel",
    "stop",
    "don't",
    "Don't do it",
    "do not",
    "Do NOT approve",
    "not approved",
    "no, don't",
    "false",
    "decline",
    "never",
    "👎",
]
UNCLEAR = [
    "maybe",
    "not yes",
    "yes? no",
    "yes?",
    "yes no",
    "yes and no",
    "not sure",
    "I don't know",
    "hmm",
    "",
    "   ",
    "approve CH-2033",  # an id we do not check against the step: ask again
    "yesss",
    "go away",
    "not ok",
    "later",
    "1",
    None,
    0,
    1,
    3.5,
    [],
    {},
    {"something": True},
    "yes " * 30,
]


@pytest.mark.parametrize("value", YES)
def test_yes_answers_approve(value: Any) -> None:
    assert parse_decision(value, "s1") is True


@pytest.mark.parametrize("value", NO)
def test_no_answers_deny(value: Any) -> None:
    assert parse_decision(value, "s1") is False


@pytest.mark.parametrize("value", UNCLEAR)
def test_unclear_answers_are_none(value: Any) -> None:
    assert parse_decision(value, "s1") is None


def test_unclear_never_approves() -> None:
    """The fail-safe rule: if unclear answers were approved (or guessed at all), this fails."""
    for value in [*UNCLEAR, "yes?!", "si", "oui", "ja", "👍?", "not 👍", "yes... not", "never yes"]:
        decision = parse_decision(value, "s1")
        assert decision is not True, value
        assert decision is None, value


def test_mapping_by_step_id_and_named_keys() -> None:
    answer = {"refund:1": "yes please", "refund:2": False}
    assert parse_decision(answer, "refund:1") is True
    assert parse_decision(answer, "refund:2") is False
    assert parse_decision(answer, "refund:3") is None, "a step the mapping does not answer is asked again"
    assert parse_decision({"approved": True}, "s") is True
    assert parse_decision({"approved": "no"}, "s") is False
    assert parse_decision({"decision": "approve"}, "s") is True
    assert parse_decision({"decision": "maybe"}, "s") is None


def test_agent_inbox_human_responses() -> None:
    assert parse_decision([{"type": "accept", "args": None}], "s") is True
    assert parse_decision({"type": "accept", "args": None}, "s") is True
    assert parse_decision([{"type": "ignore", "args": None}], "s") is False
    assert parse_decision([{"type": "response", "args": "yes please"}], "s") is True
    assert parse_decision({"type": "response", "args": "No thanks."}, "s") is False
    assert parse_decision({"type": "response", "args": "what is this charge?"}, "s") is None
    assert parse_decision({"type": "response", "args": None}, "s") is None
    assert parse_decision({"type": "unknown", "args": None}, "s") is None


def test_an_edit_is_never_an_approval() -> None:
    edit = {"type": "edit", "args": {"action": "refund", "args": {"amount": 1}}}
    assert parse_decision(edit, "s") is None
    assert parse_decision([edit], "s") is None
    hitl_edit = {"decisions": [{"type": "edit", "edited_action": {"name": "refund", "args": {}}}]}
    assert parse_decision(hitl_edit, "s") is None
    assert "edits are not applied" in unclear_reason([edit])


def test_langchain_hitl_middleware_decisions() -> None:
    assert parse_decision({"decisions": [{"type": "approve"}]}, "s") is True
    assert parse_decision({"decisions": [{"type": "reject", "message": "too much"}]}, "s") is False
    both = {"decisions": [{"type": "approve"}, {"type": "reject"}]}
    assert parse_decision(both, "a", order=["a", "b"]) is True
    assert parse_decision(both, "b", order=["a", "b"]) is False
    assert parse_decision(both, "a") is None, "two answers without the step order: unclear"
    assert parse_decision(both, "c", order=["a", "b", "c"]) is None, "count does not match the steps"


def test_a_list_answers_by_position_or_as_one() -> None:
    assert parse_decision(["yes", "no"], "b", order=["a", "b"]) is False
    assert parse_decision(["yes"], "b", order=["a", "b"]) is True


def test_never_raises_on_odd_values() -> None:
    loop: dict[str, Any] = {}
    loop["approved"] = loop
    odd: list[Any] = [object(), b"yes", loop, [[[[[[[["yes"]]]]]]]], {"type": None}, {1: 2}]
    for value in odd:
        assert parse_decision(value, "s") is None
        assert isinstance(unclear_reason(value), str)


def test_the_unclear_reason_says_what_to_answer() -> None:
    assert "2 answers for 3 steps" in unclear_reason(["yes", "no"], 3)
    assert "'maybe'" in unclear_reason(["yes", "maybe"], 2)
    assert "edits are not applied" in unclear_reason({"decisions": [{"type": "edit"}]})


def test_the_unclear_reason_names_the_answer_without_secrets() -> None:
    assert "'maybe' is not a clear yes or no" in unclear_reason("maybe")
    assert "sk-***" in unclear_reason("sk-abcdefghijklmnopqrstuvwx")
    assert len(unclear_reason("x" * 500)) < 200


def test_parse_words_ignores_case_and_punctuation() -> None:
    assert parse_words("YeS, PlEaSe.") is True
    assert parse_words("N O") is None


# --- the node in a graph -------------------------------------------------------------------------


def payout_graph(make_graph: Any, db: Path, **limits: Any) -> Any:
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": str(db)},
        "classifier_guide": guide("find the account of alice", "look up customer bob"),
    }
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "classifier_guide": guide(
            "pay alice 20 dollars", "send a payout of 50 to bob", "transfer money to a customer"
        ),
        "approval": {"mode": "above", "field": "amount", "threshold": 100},
    }
    sections: dict[str, Any] = {"limits": {"retry_initial_delay": 0.0, "retry_max_delay": 0.0, **limits}}
    return make_graph(registry_with(lookup, payout, **sections))


def interrupts(graph: Any, config: dict[str, Any]) -> list[Any]:
    return [i.value for task in graph.get_state(config).tasks for i in task.interrupts]


def payouts(db: Path) -> int:
    return int(sqlite3.connect(db).execute("SELECT count(*) FROM payouts").fetchone()[0])


def start(graph: Any, thread: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread}}
    graph.invoke({"messages": [HumanMessage("pay alice 500 dollars")]}, config)
    return config


def test_yes_please_approves_and_maybe_asks_again(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = start(graph, "maybe")
    (first,) = interrupts(graph, config)
    assert first["type"] == "approval" and "not_understood" not in first
    assert {"type", "task", "steps", "question", "resume_with"} <= set(first)
    assert first["agent_inbox"][0]["config"]["allow_edit"] is False

    graph.invoke(Command(resume="maybe"), config)
    (again,) = interrupts(graph, config)
    assert again["type"] == "approval"
    assert "'maybe' is not a clear yes or no" in again["not_understood"]
    assert again["question"].startswith("I did not understand the answer")
    assert again["steps"] == first["steps"]
    assert payouts(db) == 0, "an unclear answer does nothing"

    state = graph.invoke(Command(resume="yes please"), config)
    assert interrupts(graph, config) == []
    assert state["control_stop_reason"] == "success"
    assert payouts(db) == 1 and "paid 500" in answer(state)


@pytest.mark.parametrize(
    ("resume", "paid"),
    [
        ([{"type": "accept", "args": None}], 1),
        ([{"type": "ignore", "args": None}], 0),
        ([{"type": "response", "args": "Yes, go ahead"}], 1),
        ({"decisions": [{"type": "reject", "message": "no"}]}, 0),
        ("No thanks", 0),
    ],
)
def test_agent_inbox_and_word_resumes_in_the_graph(
    make_graph: Any, tmp_path: Path, resume: Any, paid: int
) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = start(graph, "inbox")
    state = graph.invoke(Command(resume=resume), config)
    assert interrupts(graph, config) == []
    assert state["control_stop_reason"] == "success"
    assert payouts(db) == paid
    if not paid:
        assert "denied" in answer(state)


def test_an_edit_asks_again_and_runs_nothing(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = start(graph, "edit")
    graph.invoke(
        Command(resume=[{"type": "edit", "args": {"action": "payout", "args": {"amount": 5}}}]), config
    )
    (again,) = interrupts(graph, config)
    assert "edits are not applied" in again["not_understood"]
    assert payouts(db) == 0
    state = graph.invoke(Command(resume=False), config)
    assert state["control_stop_reason"] == "success" and payouts(db) == 0


def test_endless_unclear_answers_end_in_max_steps_not_a_crash(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db, max_steps=12)
    config = start(graph, "loop")
    rounds = 0
    state: dict[str, Any] = {}
    while interrupts(graph, config):
        rounds += 1
        assert rounds <= 12, "the re-asks are bounded by max_steps"
        state = graph.invoke(Command(resume="hmm"), config)
    assert rounds >= 2, "asked again at least once before giving up"
    assert state["control_stop_reason"] == "max_steps"
    assert "no clear yes or no" in answer(state)
    assert payouts(db) == 0, "unclear answers never approve"
