"""Persisted threads, read from the checkpointer: what `routegraph threads list|show` prints."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver


def list_threads(saver: BaseCheckpointSaver[Any], *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recently updated threads first: id, last update, turns, last task and stop reason.

    Any saver works (every checkpoint is read); one with `latest_threads(limit)`, like the Postgres
    checkpointer, is asked for just the newest checkpoint of the newest threads.
    """
    latest: dict[str, Any] = {}
    newest = getattr(saver, "latest_threads", None)
    items = newest(limit) if callable(newest) else saver.list(None)
    for item in items:
        thread_id = item.config["configurable"]["thread_id"]
        if item.config["configurable"].get("checkpoint_ns"):
            continue
        ts = item.checkpoint["ts"]
        if thread_id not in latest or ts > latest[thread_id].checkpoint["ts"]:
            latest[thread_id] = item
    rows = []
    for thread_id, item in latest.items():
        values = item.checkpoint.get("channel_values", {})
        rows.append(
            {
                "thread_id": thread_id,
                "updated": item.checkpoint["ts"],
                "turns": values.get("task_turn", 0),
                "task": values.get("task_current"),
                "stop_reason": values.get("control_stop_reason"),
            }
        )
    rows.sort(key=lambda r: r["updated"], reverse=True)
    return rows[:limit]


def show_thread(graph: Any, thread_id: str) -> dict[str, Any] | None:
    """The thread's messages, last plan and steps, pending approvals, and checkpoint count."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    snapshot = graph.get_state(config)
    if not snapshot.values:
        return None
    values = snapshot.values
    pending = [i.value for task in snapshot.tasks for i in task.interrupts]
    return {
        "thread_id": thread_id,
        "messages": [{"role": m.type, "content": m.content} for m in values.get("messages", [])],
        "task": values.get("task_current"),
        "stop_reason": values.get("control_stop_reason"),
        "plan": values.get("planning_plan"),
        "steps": list((values.get("execution_results") or {}).values()),
        "context": values.get("execution_context") or {},
        "pending_approvals": pending,
        "next": list(snapshot.next),
        "checkpoints": sum(1 for _ in graph.get_state_history(config)),
    }


def unfinished_turn(graph: Any, config: RunnableConfig | dict[str, Any]) -> bool:
    """True when the thread's latest turn was cut off before it ended (its process was killed),
    not waiting for a human.

    `graph.get_state(config)` applies the latest checkpoint's pending writes: a turn killed right
    after its input was saved then shows its message with no next node, as if it had finished. The
    same checkpoint read by id shows what is really left to run. Finish such a turn with
    `graph.invoke(None, config)` before sending a new message: a new input would start over and
    drop the cut-off message.
    """
    latest = graph.get_state(config)
    if not latest.config or any(task.interrupts for task in latest.tasks):
        return False
    raw = graph.get_state(latest.config)  # by checkpoint id: pending writes not applied
    if not raw.next or any(task.interrupts for task in raw.tasks):
        return False
    # Killed before its input was written: there is nothing of that turn to finish.
    return not all(task.name == "__start__" and task.result is None for task in raw.tasks)
