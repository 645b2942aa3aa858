"""The compiled graph end to end, offline: routing, planning, parallel steps, recovery, budgets."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.builder import build_graph
from tests.conftest import SleepRecorder, answer, ask, guide, registry_with
from tests.testcaps import make_db

FLAKY_GUIDE = guide("echo this back to me", "please echo my words", "repeat after me")


def flaky(fail_times: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "flaky",
        "class": "tests.testcaps:Flaky",
        "options": {"fail_times": fail_times},
        "classifier_guide": FLAKY_GUIDE,
        **extra,
    }


def test_two_capabilities_are_planned_as_two_parallel_steps(make_graph: Any) -> None:
    state = ask(make_graph(), "What is 12*7 and what time is it in Tokyo?")
    assert state["control_stop_reason"] == "success"
    plan = state["planning_plan"]
    assert {s["capability"] for s in plan[:-1]} == {"calculator", "clock"}
    assert all(s["depends_on"] == [] for s in plan[:-1])
    assert plan[-1]["capability"] == "respond"
    text = answer(state)
    assert "12*7 = 84" in text and "Asia/Tokyo" in text
    results = state["execution_results"]
    assert {r["status"] for r in results.values()} == {"ok"}


def test_sync_and_async_invocation_give_the_same_routing(make_graph: Any) -> None:
    graph = make_graph()
    sync_state = ask(graph, "what is 2 to the power of 10", thread="s")
    async_state = asyncio.run(
        graph.ainvoke(
            {"messages": [HumanMessage("what is 2 to the power of 10")]}, {"configurable": {"thread_id": "a"}}
        )
    )
    assert "= 1024" in answer(sync_state) and "= 1024" in answer(async_state)


def test_out_of_scope_request_asks_for_clarification_instead_of_guessing(make_graph: Any) -> None:
    state = ask(make_graph(), "write me a poem about autumn leaves")
    assert state["control_stop_reason"] == "clarify"
    assert state["planning_plan"][-1]["capability"] == "clarify"
    assert not any(c["selected"] for c in state["planning_capabilities"] if c["source"] != "always")
    assert "calculator" in answer(state)  # says what it can do


def test_two_turn_conversation_on_one_thread(make_graph: Any) -> None:
    graph = make_graph()
    first = ask(graph, "what time is it in Tokyo?", thread="conv")
    assert "Asia/Tokyo" in answer(first)
    second = ask(graph, "and in Paris?", thread="conv")
    assert second["task_depends_on_history"] is True
    assert "Europe/Paris" in answer(second)
    assert len(second["messages"]) == 4
    assert second["task_turn"] == 2
    # Per-turn state was reset: only this turn's step ran.
    assert [r["capability"] for r in second["execution_results"].values()] == ["clock"]


def test_retriable_failure_is_retried_with_growing_backoff(make_graph: Any) -> None:
    sleeps = SleepRecorder()
    reg = registry_with(
        flaky(2), limits={"max_retries": 3, "retry_initial_delay": 0.1, "retry_max_delay": 10}
    )
    state = ask(make_graph(reg, sleep=sleeps), "please echo my words")
    assert state["control_stop_reason"] == "success"
    (result,) = state["execution_results"].values()
    assert result["attempts"] == 3
    assert "PLEASE ECHO MY WORDS" in answer(state)
    assert len(sleeps.delays) == 2 and 0.05 <= sleeps.delays[0] <= 0.1 and 0.1 <= sleeps.delays[1] <= 0.2


def test_capability_that_always_fails_stops_with_max_retries(make_graph: Any) -> None:
    reg = registry_with(flaky(99), limits={"max_retries": 2, "retry_initial_delay": 0.0})
    state = ask(make_graph(reg, sleep=SleepRecorder()), "please echo my words")
    assert state["control_stop_reason"] == "max_retries"
    (result,) = state["execution_results"].values()
    assert result["attempts"] == 3 and result["status"] == "failed"
    assert "max_retries" in answer(state) and "upstream unavailable" in answer(state)


def test_retry_policy_per_capability_overrides_the_limits(make_graph: Any) -> None:
    reg = registry_with(flaky(99, retry={"max_attempts": 1}), limits={"max_retries": 5})
    state = ask(make_graph(reg, sleep=SleepRecorder()), "please echo my words")
    assert state["control_stop_reason"] == "max_retries"
    assert next(iter(state["execution_results"].values()))["attempts"] == 1


def test_unknown_exception_is_critical_and_explained(make_graph: Any) -> None:
    reg = registry_with(
        {
            "name": "broken",
            "class": "tests.testcaps:Broken",
            "classifier_guide": guide("parse my spreadsheet", "read this excel file"),
        }
    )
    state = ask(make_graph(reg), "parse my spreadsheet")
    assert state["control_stop_reason"] == "error"
    assert "spreadsheet parser crashed" in answer(state)
    assert state["control_errors"][0]["severity"] == "critical"


def test_reclassification_excludes_the_failing_capability_and_is_bounded(make_graph: Any) -> None:
    wrong = {
        "name": "wrong_route",
        "class": "tests.testcaps:WrongRoute",
        "classifier_guide": guide("translate hello to french", "say hello in french"),
    }
    state = ask(make_graph(registry_with(wrong)), "say hello in french")
    # The capability said "not for me": the classifier runs again without it and, with nothing left, clarifies.
    assert state["control_reclassifications"] == 1
    assert "wrong_route" in state["planning_excluded"]
    assert state["control_stop_reason"] == "clarify"

    strict = registry_with(wrong, limits={"max_reclassifications": 0})
    state = ask(make_graph(strict), "say hello in french")
    assert state["control_stop_reason"] == "max_reclassifications"


def test_a_step_that_times_out_is_retried_then_stops(make_graph: Any) -> None:
    slow = {
        "name": "slow",
        "class": "tests.testcaps:Slow",
        "options": {"seconds": 5},
        "timeout": 0.05,
        "classifier_guide": guide("think about the meaning of life", "ponder deeply"),
    }
    reg = registry_with(slow, limits={"max_retries": 1})
    state = ask(make_graph(reg, sleep=SleepRecorder()), "ponder deeply")
    assert state["control_stop_reason"] == "max_retries"
    (result,) = state["execution_results"].values()
    assert "TimeoutError" in result["error"] and result["attempts"] == 2


def test_max_steps_budget_is_enforced(make_graph: Any) -> None:
    state = ask(
        make_graph(registry_with(limits={"max_steps": 3})), "What is 12*7 and what time is it in Tokyo?"
    )
    assert state["control_stop_reason"] == "max_steps"
    assert state["control_steps"] <= 4  # three counted nodes, then the error node


def test_max_seconds_budget_is_enforced(make_graph: Any) -> None:
    now = [1000.0]

    def clock() -> float:
        now[0] += 30.0  # every look at the clock is 30 s later
        return now[0]

    state = ask(make_graph(registry_with(limits={"max_seconds": 60}), clock=clock), "what is 2+2")
    assert state["control_stop_reason"] == "max_seconds"


def test_dependencies_run_in_order_and_feed_the_context(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
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
    }
    state = ask(make_graph(registry_with(lookup, payout)), "pay alice 20 dollars")
    assert state["control_stop_reason"] == "success", answer(state)
    plan = state["planning_plan"]
    assert [s["capability"] for s in plan] == ["lookup", "payout", "respond"]
    assert plan[1]["depends_on"] == [plan[0]["id"]]
    assert state["execution_context"]["customer_id"] == 7
    rows = sqlite3.connect(db).execute("SELECT customer_id, amount FROM payouts").fetchall()
    assert rows == [(7, 20.0)]


def approval_graph(make_graph: Any, db: Path) -> Any:
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
    return make_graph(registry_with(lookup, payout))


@pytest.mark.parametrize("decision", [True, False])
def test_approval_interrupts_before_the_side_effect(make_graph: Any, tmp_path: Path, decision: bool) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    graph = approval_graph(make_graph, db)
    config = {"configurable": {"thread_id": "hitl"}}
    graph.invoke({"messages": [HumanMessage("pay alice 500 dollars")]}, config)
    snapshot = graph.get_state(config)
    (pending,) = [i for t in snapshot.tasks for i in t.interrupts]
    assert pending.value["type"] == "approval"
    assert "amount=500" in pending.value["steps"][0]["question"]
    assert sqlite3.connect(db).execute("SELECT count(*) FROM payouts").fetchone() == (
        0,
    )  # nothing before approval

    state = graph.invoke(Command(resume=decision), config)
    count = sqlite3.connect(db).execute("SELECT count(*) FROM payouts").fetchone()[0]
    assert state["control_stop_reason"] == "success"
    if decision:
        assert count == 1 and "paid 500" in answer(state)
    else:
        assert count == 0 and "denied" in answer(state)


def test_small_amounts_need_no_approval(make_graph: Any, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.sqlite")
    state = ask(approval_graph(make_graph, db), "pay alice 20 dollars")
    assert state["control_stop_reason"] == "success"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM payouts").fetchone() == (1,)


def test_allowlist_keeps_capabilities_out_of_routing(make_graph: Any) -> None:
    state = ask(
        make_graph(registry_with(policy={"allowed_capabilities": ["respond", "clarify", "clock"]})),
        "what is 12*7",
    )
    assert state["control_stop_reason"] == "clarify"
    assert "calculator" not in {c["name"] for c in state["planning_capabilities"]}


def test_sqlite_checkpoints_continue_a_thread_across_graph_instances(tmp_path: Path) -> None:
    from graph.config.settings import Settings

    settings = Settings.offline(tmp_path)
    first = build_graph(registry=registry_with(), settings=settings)
    ask(first, "what time is it in Tokyo?", thread="durable")
    assert (tmp_path / "checkpoints.sqlite").exists()
    second = build_graph(registry=registry_with(), settings=settings)  # a new process would do the same
    state = ask(second, "and in Paris?", thread="durable")
    assert len(state["messages"]) == 4 and "Europe/Paris" in answer(state)
    async_state = asyncio.run(
        second.ainvoke(
            {"messages": [HumanMessage("what is 3*3")]}, {"configurable": {"thread_id": "durable"}}
        )
    )
    assert len(async_state["messages"]) == 6


def test_two_graphs_with_different_registries_in_one_process(make_graph: Any) -> None:
    only_clock = registry_with(policy={"allowed_capabilities": ["respond", "clarify", "clock"]})
    a, b = make_graph(), make_graph(only_clock)
    assert ask(a, "what is 12*7")["control_stop_reason"] == "success"
    assert ask(b, "what is 12*7")["control_stop_reason"] == "clarify"
    assert ask(a, "what is 12*7", thread="again")["control_stop_reason"] == "success"


def test_a_finished_turn_without_a_new_message_is_not_rerun(make_graph: Any) -> None:
    graph = make_graph()
    ask(graph, "what is 1+1", thread="x")
    state = graph.invoke({"messages": []}, {"configurable": {"thread_id": "x"}})
    assert state["control_stop_reason"] == "error"
    assert "no new user message" in answer(state)


def test_parallel_steps_overlap_in_time(make_graph: Any) -> None:
    import time

    def slow(name: str, words: str) -> dict[str, Any]:
        return {
            "name": name,
            "class": "tests.testcaps:Slow",
            "options": {"seconds": 0.4},
            "classifier_guide": guide(words),
        }

    reg = registry_with(slow("slow_a", "think about apples"), slow("slow_b", "think about bananas"))
    graph = make_graph(reg)
    ask(graph, "think about apples", thread="warm-up")  # compiles the scorer: not what is timed
    for mode in ("sync", "async"):
        started = time.perf_counter()
        if mode == "sync":
            state = ask(graph, "think about apples and think about bananas", thread=mode)
        else:
            state = asyncio.run(
                graph.ainvoke(
                    {"messages": [HumanMessage("think about apples and think about bananas")]},
                    {"configurable": {"thread_id": mode}},
                )
            )
        elapsed = time.perf_counter() - started
        results = list(state["execution_results"].values())
        assert {r["capability"] for r in results} == {"slow_a", "slow_b"}
        # Each step's own start and end (a loaded machine stretches the wall time, not the order):
        # the second starts before the first ends.
        spans = sorted((r["output"]["started"], r["output"]["ended"]) for r in results)
        assert spans[1][0] < spans[0][1], f"{mode}: steps ran one after the other ({elapsed:.2f} s)"


def test_the_studio_graph_module_serves_a_compiled_graph_without_checkpointer() -> None:
    import json

    from graph import app

    config = json.loads((Path(__file__).resolve().parent.parent / "langgraph.json").read_text())
    assert config["graphs"]["routegraph"] == "./graph/app.py:graph"
    assert app.graph.checkpointer is None
    state = app.graph.invoke({"messages": [HumanMessage("what is 6*7")]})
    assert "42" in answer(state)


def test_progress_events_stream_on_the_custom_mode(make_graph: Any) -> None:
    reg = registry_with(flaky(1), limits={"max_retries": 2})
    graph = make_graph(reg, sleep=SleepRecorder())
    events = [
        chunk
        for mode, chunk in graph.stream(
            {"messages": [HumanMessage("please echo my words")]},
            {"configurable": {"thread_id": "p"}},
            stream_mode=["custom", "values"],
        )
        if mode == "custom"
    ]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["node", "node", "node"]  # task_extraction, classifier, orchestrator
    assert kinds.count("capability_started") == 2 and "retry" in kinds
    finished = [e for e in events if e["event"] == "capability_finished"]
    assert [e["status"] for e in finished] == ["failed", "ok"]


def test_each_router_edge_declares_the_nodes_it_can_reach(make_graph: Any) -> None:
    from graph.router import ROUTES

    drawn = make_graph().get_graph()
    dashed: dict[str, set[str]] = {}
    for edge in drawn.edges:
        if edge.conditional:
            dashed.setdefault(edge.source, set()).add(edge.target)
    assert dashed == {source: set(targets) for source, targets in ROUTES.items()}
    solid = {(e.source, e.target) for e in drawn.edges if not e.conditional}
    assert solid == {
        ("__start__", "intake"),
        ("execute", "join"),
        ("respond", "profile"),  # the profile node ends every turn (issue 22)
        ("clarify", "profile"),
        ("error", "profile"),
        ("profile", "__end__"),
    }


def test_the_compiled_graph_does_not_carry_the_registry(make_graph: Any) -> None:
    # Who needs the registry loads it (`Registry.from_file`) and passes it to `build_graph`.
    assert not hasattr(make_graph(), "registry")


# --- the picture ----------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def shipped_graph() -> Any:
    from graph.config.settings import Settings

    return build_graph(settings=Settings.from_env(llm="off"), checkpointer="none").get_graph()


def test_the_layout_keeps_nodes_apart_and_draws_every_edge() -> None:
    from graph.drawing import layout

    drawn = shipped_graph()
    picture = layout(drawn)  # no matplotlib needed
    boxes = {box.id: box for box in picture.boxes}
    assert set(boxes) == set(drawn.nodes)
    for a in picture.boxes:
        assert a.x - a.width / 2 > 0 and a.x + a.width / 2 < picture.width
        for b in picture.boxes:
            apart = abs(a.x - b.x) >= (a.width + b.width) / 2 or abs(a.y - b.y) >= (a.height + b.height) / 2
            assert a is b or apart, (a.id, b.id)
    assert boxes["__start__"].y > boxes["intake"].y > boxes["join"].y > boxes["error"].y > boxes["__end__"].y
    # Six fixed edges, solid; the rest dashed (four of them self-loops); an arrowhead at every target.
    assert sum(not curve.dashed for curve in picture.curves) == 6
    for target in {e.target for e in drawn.edges}:
        box = boxes[target]
        assert any(
            abs(a.tip[0] - box.x) <= box.width / 2 and abs(abs(a.tip[1] - box.y) - box.height / 2) < 1e-9
            for a in picture.arrows
        ), target


def test_the_committed_picture_is_the_compiled_graph() -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from graph.drawing import describe

    path = ROOT / "docs" / "graph.png"
    assert path.stat().st_size < 200_000
    with Image.open(path) as image:
        recorded = image.text.get("Description")
    assert recorded == describe(shipped_graph()), "run: routegraph graph --png docs/graph.png"


def test_graph_command_draws_png_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from graph.cli import main
    from graph.drawing import describe

    png, svg = tmp_path / "g.png", tmp_path / "pictures" / "g.svg"
    assert main(["graph", "--png", str(png), "--svg", str(svg)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"drew {png}" in captured.err
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size < 200_000
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert describe(shipped_graph()).replace(">", "&gt;") in text
    assert main(["graph"]) == 0
    assert capsys.readouterr().out.startswith("---\nconfig:")  # mermaid stays the default


def test_graph_command_without_matplotlib_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from graph.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["graph", "--png", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "pip install matplotlib" in err
    assert not (tmp_path / "g.png").exists()
