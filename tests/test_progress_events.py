"""Progress events on the custom stream: each is emitted once per thing that happened."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.progress import describe
from tests.conftest import guide, registry_with
from tests.testcaps import make_db


def payout_graph(make_graph: Any, db: Path, **kwargs: Any) -> Any:
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
    return make_graph(registry_with(lookup, payout), **kwargs)


def stream_events(graph: Any, inputs: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        chunk
        for mode, chunk in graph.stream(inputs, config, stream_mode=["custom", "values"])
        if mode == "custom"
    ]


def kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


@pytest.mark.parametrize("decision", [True, False])
def test_approval_waiting_is_emitted_once_per_pause(make_graph: Any, tmp_path: Path, decision: bool) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = {"configurable": {"thread_id": "progress"}}

    paused = stream_events(graph, {"messages": [HumanMessage("pay alice 500 dollars")]}, config)
    (waiting,) = kinds(paused, "approval_waiting")
    (step_id,) = waiting["steps"]
    assert step_id.startswith("payout:")
    assert describe(waiting) == f"⏸ waiting for approval: {step_id}"
    assert graph.get_state(config).next == ("approval",), "the run is paused at the approval node"

    # On resume LangGraph runs the approval node again from its start; interrupt() then returns the
    # decision instead of pausing, so nobody is waiting any more and nothing says so.
    resumed = stream_events(graph, Command(resume=decision), config)
    assert kinds(resumed, "approval_waiting") == []
    finished = [e["capability"] for e in kinds(resumed, "capability_finished")]
    assert finished == (["payout"] if decision else [])
    assert graph.get_state(config).values["control_stop_reason"] == "success"
    payouts = sqlite3.connect(db).execute("SELECT count(*) FROM payouts").fetchone()[0]
    assert payouts == (1 if decision else 0)


def test_a_new_pause_on_the_same_thread_is_announced_again(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = {"configurable": {"thread_id": "twice"}}
    for amount in (500, 700):
        paused = stream_events(graph, {"messages": [HumanMessage(f"pay alice {amount} dollars")]}, config)
        assert len(kinds(paused, "approval_waiting")) == 1
        resumed = stream_events(graph, Command(resume=True), config)
        assert kinds(resumed, "approval_waiting") == []
    rows = sqlite3.connect(db).execute("SELECT amount FROM payouts ORDER BY id").fetchall()
    assert rows == [(500.0,), (700.0,)]


def test_small_amounts_emit_no_approval_event(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    events = stream_events(
        graph, {"messages": [HumanMessage("pay alice 20 dollars")]}, {"configurable": {"thread_id": "small"}}
    )
    assert kinds(events, "approval_waiting") == []
    assert [e["capability"] for e in kinds(events, "capability_finished")] == ["lookup", "payout"]


async def test_async_stream_announces_the_pause_once(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = payout_graph(make_graph, db)
    config = {"configurable": {"thread_id": "async"}}

    async def events(inputs: Any) -> list[dict[str, Any]]:
        return [
            c
            async for mode, c in graph.astream(inputs, config, stream_mode=["custom", "values"])
            if mode == "custom"
        ]

    assert (
        len(kinds(await events({"messages": [HumanMessage("pay bob 300 dollars")]}), "approval_waiting")) == 1
    )
    resumed = await events(Command(resume="approve"))
    assert kinds(resumed, "approval_waiting") == []
    assert [e["capability"] for e in kinds(resumed, "capability_finished")] == ["payout"]
