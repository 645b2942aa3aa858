"""A crash in the middle of a plan loses nothing: kill -9, start again, resume the thread."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from graph.builder import build_graph
from graph.config.settings import Settings
from tests.conftest import answer, guide, registry_with

ROOT = Path(__file__).resolve().parent.parent


def registry(tmp: Path) -> dict[str, object]:
    return {
        "extra": [
            {
                "name": "recorder",
                "class": "tests.testcaps:Recorder",
                "options": {"db": str(tmp / "runs.sqlite")},
                "classifier_guide": guide("open a case file and file it with the court"),
            },
            {
                "name": "waiter",
                "class": "tests.testcaps:Waiter",
                "options": {"marker": str(tmp / "marker")},
                "timeout": 60,
                "classifier_guide": guide(
                    "file the case with the court", "open a case file and file it with the court"
                ),
            },
        ]
    }


def crash_mid_plan_and_resume(tmp_path: Path, **settings: Any) -> None:
    """Kill -9 a process in the middle of a two-step plan, resume the thread in this one.

    `settings` are `Settings.offline` overrides for both processes (e.g. `postgres_url`): the
    checkpointer is whatever the default ("auto") picks for them.
    """
    (tmp_path / "marker").touch()  # the second step waits while this exists
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from langchain_core.messages import HumanMessage
        from graph.builder import build_graph
        from graph.config.settings import Settings
        from tests.conftest import registry_with
        from tests.test_durability import registry
        from pathlib import Path
        tmp = Path({str(tmp_path)!r})
        settings = Settings.offline(tmp, **json.loads({json.dumps(settings)!r}))
        graph = build_graph(registry=registry_with(*registry(tmp)["extra"]), settings=settings)
        graph.invoke({{"messages": [HumanMessage("open a case file and file it with the court")]}},
                     {{"configurable": {{"thread_id": "crash"}}}})
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    runs = tmp_path / "runs.sqlite"
    deadline = time.monotonic() + 60
    while True:  # wait until the first step has run (and its result is checkpointed)
        if runs.exists():
            try:
                if sqlite3.connect(runs).execute("SELECT count(*) FROM runs").fetchone()[0] == 1:
                    break
            except sqlite3.OperationalError:
                pass
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the first step never ran"
        time.sleep(0.05)
    time.sleep(0.5)  # let the superstep's checkpoint be written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    (tmp_path / "marker").unlink()  # after the restart, the second step can finish
    graph = build_graph(
        registry=registry_with(*registry(tmp_path)["extra"]),
        settings=Settings.offline(tmp_path, **settings),
    )
    config = {"configurable": {"thread_id": "crash"}}
    assert graph.get_state(config).next  # the thread stopped mid-plan
    state = graph.invoke(None, config)  # resume from the last checkpoint
    assert state["control_stop_reason"] == "success", answer(state)
    assert "filed" in answer(state) and "opened" in answer(state)
    assert sqlite3.connect(runs).execute("SELECT count(*) FROM runs").fetchone()[0] == 1  # not re-run


def test_killed_mid_plan_resumes_without_rerunning_completed_steps(tmp_path: Path) -> None:
    crash_mid_plan_and_resume(tmp_path)  # SQLite checkpoints; tests/test_postgres.py: the same on Postgres
    assert (tmp_path / "checkpoints.sqlite").exists()


@pytest.mark.parametrize("kill_after", ["input_write", "input_checkpoint"])
def test_a_turn_killed_before_its_first_step_is_never_lost_silently(
    kill_after: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed between saving its input and its first step, a turn looks finished to `get_state`
    (LangGraph applies the pending input write and shows no next node). The next `ask` on the
    thread finishes it before answering its own message: neither message is lost. Killed before
    the input itself was written, nothing of the turn exists and the next `ask` simply runs."""
    from graph.cli import main
    from graph.config.registry import Registry, default_registry
    from graph.persistence.threads import unfinished_turn

    data = yaml.safe_load(default_registry().read_text(encoding="utf-8"))
    data["classifier"] = {**data["classifier"], "encoder": "lexical", "finetune": False}
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data")}
    env["ROUTEGRAPH_LLM"] = "off"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from langchain_core.messages import HumanMessage
        from graph.builder import build_graph
        from graph.config.registry import Registry
        from graph.config.settings import Settings
        graph = build_graph(registry=Registry.from_file({str(path)!r}), settings=Settings.from_env())
        saver = type(graph.checkpointer)
        put, put_writes = saver.put, saver.put_writes
        def held_put(self, config, checkpoint, metadata, new_versions):
            if metadata.get("step") == 0:
                time.sleep(60)  # the first step's checkpoint is not saved before the kill
            return put(self, config, checkpoint, metadata, new_versions)
        def killing_put_writes(self, config, writes, *args, **kwargs):
            if not any(c == "messages" for c, _ in writes):
                return put_writes(self, config, writes, *args, **kwargs)
            if {kill_after!r} == "input_write":
                put_writes(self, config, writes, *args, **kwargs)  # the input's write is saved
                time.sleep(1.0)  # and the input checkpoint, written by another thread
            os.kill(os.getpid(), signal.SIGKILL)
        saver.put, saver.put_writes = held_put, killing_put_writes
        graph.invoke({{"messages": [HumanMessage("what is 12*7", id="first")]}},
                     {{"configurable": {{"thread_id": "cut"}}}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL

    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    graph = build_graph(registry=Registry.from_file(path), settings=Settings.from_env())
    config: Any = {"configurable": {"thread_id": "cut"}}
    shown = graph.get_state(config)
    if kill_after == "input_write":
        assert not shown.next and [m.id for m in shown.values["messages"]] == ["first"]  # looks finished
        assert unfinished_turn(graph, config)
    else:
        assert shown.values.get("messages", []) == [] and not unfinished_turn(graph, config)

    code = main(["ask", "what time is it in Tokyo?", "--thread", "cut", "--registry", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Asia/Tokyo" in json.loads(out)["answer"]
    messages = graph.get_state(config).values["messages"]
    assert not unfinished_turn(graph, config)
    if kill_after == "input_write":
        assert "finishing it first" in err and "84" in err
        assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
        assert "84" in str(messages[1].content)
    else:
        assert "finishing it first" not in err
        assert [m.type for m in messages] == ["human", "ai"]
