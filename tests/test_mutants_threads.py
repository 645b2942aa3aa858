"""`unfinished_turn`: whether a thread's last turn was cut off and must be finished before a new
message (a wrong yes re-runs a finished turn; a wrong no drops a user's message).

In-process and fast (tests/test_durability.py kills real processes for the same states): a small
LangGraph graph on a real checkpointer, cut off the way a killed process leaves it. A kill is the
checkpointer failing at the moment the process would have died; a stream closed after the first
node is a turn stopped mid-plan."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from graph.persistence.threads import unfinished_turn


class Turn(TypedDict):
    log: Annotated[list[str], operator.add]


class Killed(Exception):
    """The process died here."""


class KilledSaver(InMemorySaver):
    """Saves what a process saved before it was killed: `input_write` keeps the input's pending
    write and dies before the first step's checkpoint; `input_checkpoint` dies before the write."""

    def __init__(self, kill_after: str | None = None) -> None:
        super().__init__()
        self.kill_after = kill_after

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if self.kill_after and metadata.get("step") == 0:
            raise Killed("killed before the first step's checkpoint")
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        if self.kill_after == "input_checkpoint" and any(channel == "log" for channel, _ in writes):
            raise Killed("killed before the input's write")
        super().put_writes(config, writes, task_id, task_path)


def compiled(saver: InMemorySaver) -> Any:
    def step(name: str) -> Any:
        return lambda state: {"log": [name]}

    def approve(state: Turn) -> dict[str, list[str]]:
        return {"log": [f"approved={interrupt('refund $40?')}"]}

    builder = StateGraph(Turn)
    builder.add_node("lookup", step("lookup"))
    builder.add_node("act", step("act"))
    builder.add_node("approve", approve)
    builder.add_edge(START, "lookup")
    builder.add_edge("lookup", "act")
    builder.add_edge("act", "approve")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=saver)


def config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


def test_a_new_thread_has_no_unfinished_turn() -> None:
    assert unfinished_turn(compiled(InMemorySaver()), config("new")) is False


def test_a_turn_stopped_mid_plan_is_unfinished_and_finishing_it_runs_only_what_is_left() -> None:
    graph = compiled(InMemorySaver())
    for _ in graph.stream({"log": ["hi"]}, config("cut"), stream_mode="updates"):
        break  # the process died after the first node's checkpoint
    assert graph.get_state(config("cut")).next == ("act",)
    assert unfinished_turn(graph, config("cut")) is True
    graph.invoke(None, config("cut"))  # finished: it now waits for the human
    assert graph.get_state(config("cut")).values["log"] == ["hi", "lookup", "act"]
    assert unfinished_turn(graph, config("cut")) is False


def test_a_turn_waiting_for_a_human_is_not_unfinished() -> None:
    graph = compiled(InMemorySaver())
    graph.invoke({"log": ["hi"]}, config("waiting"))
    state = graph.get_state(config("waiting"))
    assert state.next == ("approve",) and any(task.interrupts for task in state.tasks)
    assert unfinished_turn(graph, config("waiting")) is False
    graph.invoke(Command(resume=True), config("waiting"))
    assert graph.get_state(config("waiting")).values["log"][-1] == "approved=True"
    assert unfinished_turn(graph, config("waiting")) is False  # a finished turn


@pytest.mark.parametrize(("kill_after", "unfinished"), [("input_write", True), ("input_checkpoint", False)])
def test_a_turn_killed_before_its_first_step(kill_after: str, unfinished: bool) -> None:
    """After the input's write, the thread looks finished to `get_state` (the write is applied, no
    next node) and yet the turn must be finished; before it, there is nothing of the turn."""
    graph = compiled(KilledSaver(kill_after))
    with pytest.raises(Killed):
        graph.invoke({"log": ["hi"]}, config(kill_after), durability="sync")
    shown = graph.get_state(config(kill_after))
    if kill_after == "input_write":
        assert shown.next == () and shown.values["log"] == ["hi"]  # looks finished
    assert unfinished_turn(graph, config(kill_after)) is unfinished
