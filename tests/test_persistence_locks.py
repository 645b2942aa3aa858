"""Concurrent turns on one thread (graph/persistence/locks.py): serialised, never silently lost.

Two `routegraph ask` processes on one thread both keep their turns (SQLite and PostgreSQL); a
killed lock holder does not block the thread; a turn that cannot get the thread within `--wait`
exits 3 with one line; in one process, a graph wrapped by `serialise_threads` keeps every turn of
concurrent `invoke`s and `ainvoke`s.

PostgreSQL tests use tests/test_postgres.py's server (or skip, saying why, as it does).
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage

from capabilities.calculator import Calculator, CalculatorInputs
from graph.builder import build_graph
from graph.capability.base import RunContext
from graph.config.settings import Settings
from graph.errors import InvalidThreadId, ThreadBusy
from graph.persistence import check_thread_id, serialise_threads, thread_lock
from graph.persistence.locks import lock_for
from tests.conftest import BASE, registry_with
from tests.test_postgres import pg_url, postgres_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent


class SlowCalculator(Calculator):
    """The calculator, after `seconds` of thought: long enough for two turns to overlap."""

    async def execute(self, inputs: CalculatorInputs, ctx: RunContext) -> dict[str, Any]:
        await asyncio.sleep(float(str(self.options.get("seconds", 1.0))))
        return await super().execute(inputs, ctx)


def slow_registry(tmp_path: Path, seconds: float = 1.5) -> Path:
    data = copy.deepcopy(BASE)
    for entry in data["capabilities"]:
        if entry["name"] == "calculator":
            entry["class"] = "tests.test_persistence_locks:SlowCalculator"
            entry["options"] = {"seconds": seconds}
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    env.update(
        PYTHONPATH=str(ROOT),
        ROUTEGRAPH_DATA_DIR=str(data_dir),
        ROUTEGRAPH_LLM="off",
        LANGSMITH_TRACING="false",
        ROUTEGRAPH_CACHE_DIR=os.environ.get("ROUTEGRAPH_CACHE_DIR", str(data_dir / "cache")),
        **extra,
    )
    return env


def ask(env: dict[str, str], registry: Path, text: str, thread: str, *more: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "graph.cli", "ask", text, "--thread", thread, "--quiet"]
    command += ["--registry", str(registry), *more]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def messages(settings: Settings, registry: Path, thread: str) -> list[str]:
    graph = build_graph(registry=registry, settings=settings)
    values = graph.get_state({"configurable": {"thread_id": thread}}).values
    if hasattr(graph.checkpointer, "close"):
        graph.checkpointer.close()
    return [str(m.content) for m in values.get("messages", [])]


def both_turns_kept(settings: Settings, env: dict[str, str], tmp_path: Path) -> None:
    registry = slow_registry(tmp_path)
    procs = [ask(env, registry, f"what is 1*{n}", "C") for n in (3, 5)]
    results = [finish(p) for p in procs]
    for code, _out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    kept = messages(settings, registry, "C")
    assert sorted(kept) == sorted(["what is 1*3", "1*3 = 3.", "what is 1*5", "1*5 = 5."]), kept
    # Turn by turn: each answer follows its own question (one turn ran after the other).
    pairs = dict(zip(kept[::2], kept[1::2], strict=True))
    assert pairs == {"what is 1*3": "1*3 = 3.", "what is 1*5": "1*5 = 5."}


def test_two_processes_on_one_sqlite_thread_keep_both_turns(tmp_path: Path) -> None:
    both_turns_kept(Settings.offline(tmp_path / "data"), environment(tmp_path / "data"), tmp_path)


def test_two_processes_on_one_postgres_thread_keep_both_turns(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings.offline(tmp_path / "data", postgres_url=pg_url)
    env = environment(tmp_path / "data", ROUTEGRAPH_POSTGRES_URL=pg_url)
    both_turns_kept(settings, env, tmp_path)


HOLDER = """
import sys, time
from pathlib import Path
from graph.config.settings import Settings
from graph.persistence import thread_lock
settings = Settings.offline(Path(sys.argv[1]), postgres_url=sys.argv[2] or None)
with thread_lock(settings, "K", wait=5):
    print("held", flush=True)
    time.sleep(600)
"""


def killed_holder_does_not_block(env: dict[str, str], data_dir: Path, url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), url], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        settings = Settings.offline(data_dir, postgres_url=url or None)
        with pytest.raises(ThreadBusy, match="held by"), thread_lock(settings, "K", wait=0.2):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        code, out, err = finish(ask(env, slow_registry(tmp_path, 0.0), "what is 2*3", "K", "--wait", "20"))
        assert code == 0, err
        assert out.strip() == "2*3 = 6."
        assert time.monotonic() - started < 20  # did not sit out the wait
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_killed_lock_holder_does_not_block_the_sqlite_thread(tmp_path: Path) -> None:
    data = tmp_path / "data"
    killed_holder_does_not_block(environment(data), data, "", tmp_path)
    assert not list((data / "checkpoints.sqlite.locks").glob("*.lock"))  # released files are removed


def test_a_killed_lock_holder_does_not_block_the_postgres_thread(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    killed_holder_does_not_block(environment(data, ROUTEGRAPH_POSTGRES_URL=pg_url), data, pg_url, tmp_path)


def test_a_thread_held_longer_than_the_wait_is_refused_with_exit_3(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings.offline(data)
    registry = slow_registry(tmp_path, 0.0)
    with thread_lock(settings, "busy", wait=0):
        started = time.monotonic()
        code, out, err = finish(ask(environment(data), registry, "what is 2*3", "busy", "--wait", "0.5"))
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "routegraph ask: thread 'busy' is busy: another turn on it did not finish within 0.5 s"
    )
    assert "nothing was done" in err
    assert time.monotonic() - started < 30
    assert messages(settings, registry, "busy") == []  # the refused turn left nothing behind


def elsewhere(target: Any, thread: str, wait: float) -> str:
    """Try the lock from another thread (in this one, a held lock is re-entered): what happened."""
    outcome: list[str] = []

    def attempt() -> None:
        try:
            with thread_lock(target, thread, wait=wait):
                outcome.append("got it")
        except ThreadBusy as exc:
            outcome.append(f"busy: {exc}")

    worker = threading.Thread(target=attempt)
    worker.start()
    worker.join()
    return outcome[0]


def test_postgres_refuses_a_held_thread_after_the_wait(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings.offline(tmp_path, postgres_url=pg_url)
    with thread_lock(settings, "P", wait=1):
        started = time.monotonic()
        refused = elsewhere(settings, "P", 0.3)
        assert refused.startswith("busy: thread 'P' is busy: another turn on it did not finish within 0.3 s")
        assert "(held by routegraph turn lock (process" in refused
        assert 0.25 < time.monotonic() - started < 5
        assert elsewhere(settings, "other thread", 0) == "got it"  # other threads are not held
    assert elsewhere(settings, "P", 0) == "got it"  # released


@pytest.mark.parametrize("checkpointer", ["sqlite", "memory"])
def test_a_serialised_graph_keeps_every_turn_of_concurrent_invokes(tmp_path: Path, checkpointer: str) -> None:
    registry = registry_with()
    graph = serialise_threads(
        build_graph(registry=registry, settings=Settings.offline(tmp_path), checkpointer=checkpointer),
        wait=60,
    )
    config = {"configurable": {"thread_id": "T"}}

    def turn(n: int) -> None:
        graph.invoke({"messages": [HumanMessage(f"what is 1*{n}")]}, config)

    workers = [threading.Thread(target=turn, args=(n,)) for n in (3, 5, 7)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    kept = [str(m.content) for m in graph.get_state(config).values["messages"]]
    assert sorted(kept) == sorted(f"{s}" for n in (3, 5, 7) for s in (f"what is 1*{n}", f"1*{n} = {n}."))
    assert graph.get_state(config).values["task_turn"] == 3


async def test_a_serialised_graph_keeps_every_turn_of_concurrent_ainvokes(tmp_path: Path) -> None:
    graph = serialise_threads(
        build_graph(registry=registry_with(), settings=Settings.offline(tmp_path), checkpointer="sqlite"),
        wait=60,
    )
    config = {"configurable": {"thread_id": "A"}}
    await asyncio.gather(
        *(graph.ainvoke({"messages": [HumanMessage(f"what is 2*{n}")]}, config) for n in (3, 4, 5))
    )
    state = await graph.aget_state(config)
    assert state.values["task_turn"] == 3
    assert sorted(str(m.content) for m in state.values["messages"] if m.type == "ai") == [
        "2*3 = 6.",
        "2*4 = 8.",
        "2*5 = 10.",
    ]


def test_the_lock_is_reentrant_in_its_context_and_exclusive_across_threads(tmp_path: Path) -> None:
    settings = Settings.offline(tmp_path)
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="sqlite")
    with thread_lock(graph.checkpointer, "R", wait=0), thread_lock(settings, "R", wait=0):
        # The same file, so the same lock, already held here; another thread cannot have it.
        assert elsewhere(settings, "R", 0.1).startswith("busy: thread 'R' is busy")
    assert elsewhere(settings, "R", 0) == "got it"
    assert lock_for(settings, "R").key == lock_for(graph.checkpointer, "R").key


@pytest.mark.parametrize("good", ["demo", "a b", "x" * 128, "Zürich-1", "🙂", 42])
def test_thread_ids_in_the_pattern_are_accepted(good: object) -> None:
    assert check_thread_id(good) == str(good)


@pytest.mark.parametrize("bad", ["", "x" * 129, "a\nb", "tab\there", "\udcff", "\x1b[31m", "nul\x00"])
def test_thread_ids_outside_the_pattern_are_refused(bad: str) -> None:
    with pytest.raises(InvalidThreadId, match="1 to 128 printable characters"):
        check_thread_id(bad)
