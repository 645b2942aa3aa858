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
