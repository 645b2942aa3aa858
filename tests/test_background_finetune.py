"""A first `routegraph ask` without a cached fine-tune (issue 19 item 3): it answers with the base
encoder and a detached process fine-tunes for the next run. Real processes throughout: the CLI,
the background worker, MiniLM's fine-tune and ONNX export, on a two-capability registry so the
fine-tune takes seconds. Each test adds an out-of-scope request of its own, so its guides have a
fine-tune key of their own while the base export is shared through the session's cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from graph.classifier.build import build_scorer
from graph.classifier.deferred import Pending
from graph.classifier.encoders import trainable
from graph.classifier.finetune import finetune_key
from graph.config.registry import Registry
from graph.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BASE_NOTE = "using base weights"

TINY = """\
version: 1
classifier:
  encoder: minilm
  finetune: true
  out_of_scope_examples: [{own!r}]
capabilities:
  - {{name: respond, class: "capabilities.respond:Respond", always_active: true}}
  - {{name: clarify, class: "capabilities.clarify:Clarify", always_active: true}}
  - {{name: calculator, class: "capabilities.calculator:Calculator"}}
  - {{name: clock, class: "capabilities.clock:Clock"}}
"""


def tiny_registry(tmp_path: Path, own: str) -> tuple[Path, Pending]:
    """The registry file and the background fine-tune its guides get under the session's cache."""
    path = tmp_path / "registry.yaml"
    path.write_text(TINY.format(own=own))
    cache = Path(os.environ["ROUTEGRAPH_CACHE_DIR"])
    scorer = build_scorer(Registry.from_file(path), Settings.offline(tmp_path, cache_dir=cache))
    model = trainable(scorer.encoder)
    assert model is not None and scorer.finetune is not None
    return path, Pending(cache, finetune_key(model, scorer.guides, scorer.finetune, scorer.out_of_scope))


def cli_env(tmp_path: Path, registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    return env | {
        "PYTHONPATH": str(ROOT),
        "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"),
        "ROUTEGRAPH_CACHE_DIR": os.environ[
            "ROUTEGRAPH_CACHE_DIR"
        ],  # the session's: the base export is shared
        "ROUTEGRAPH_REGISTRY": str(registry),
        "ROUTEGRAPH_LLM": "off",
        "LANGSMITH_TRACING": "false",
    }  # ROUTEGRAPH_FINETUNE unset: `ask` runs the fine-tune in the background, as for a user


def ask(env: dict[str, str], text: str) -> subprocess.Popen[str]:
    """`routegraph ask` in a process of its own, its output going to files, not pipes: a test that
    watches the worker while the ask runs reads nothing until the ask ends, and an ask blocked on
    a full pipe (64 KiB of INFO lines) would never reach the point where it starts the worker."""
    folder = Path(tempfile.mkdtemp(prefix="routegraph-ask-"))
    with (folder / "out").open("w") as out, (folder / "err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "graph.cli", "--log-level", "INFO", "ask", text],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
            cwd=ROOT,
        )
    _OUTPUT[process.pid] = folder
    return process


_OUTPUT: dict[int, Path] = {}


def finished(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.wait(timeout=600)
    folder = _OUTPUT.pop(process.pid)
    out, err = ((folder / name).read_text() for name in ("out", "err"))
    shutil.rmtree(folder, ignore_errors=True)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out, err


def wait_for(
    pending: Pending,
    *states: str,
    timeout: float = 600,
    every: float = 0.5,
    asking: subprocess.Popen[str] | None = None,
) -> dict[str, object]:
    """The worker's state once it is one of `states` and its lock is free (or it holds `running`).
    `asking`: the ask that is to start the worker; once it has ended, a worker that has still
    written nothing 60 s later was not started (the ask's output says why) and the wait stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = pending.state()
        if state.get("state") in states and (state["state"] == "running" or not pending.running()):
            return state
        if asking is not None and asking.poll() is not None and not state:
            deadline = min(deadline, time.monotonic() + 60)
            if not pending.running() and time.monotonic() + every >= deadline:
                out, err = finished(asking)
                raise AssertionError(f"the ask started no worker for {pending.key}: {out}\n{err}")
        time.sleep(every)
    raise AssertionError(
        f"the background fine-tune never reached {states}: {pending.state()}, log: {log(pending)}"
    )


def log(pending: Pending) -> str:
    return pending.log.read_text() if pending.log.exists() else ""


def test_first_asks_answer_at_once_and_one_background_fine_tune_serves_the_next(tmp_path: Path) -> None:
    registry, pending = tiny_registry(tmp_path, "background test: what is the airspeed of a swallow")
    env = cli_env(tmp_path, registry)
    # Two first asks at the same time: both answer on the base weights, one fine-tune runs.
    first = [ask(env, "What is 12*7?"), ask(env, "what is 6 * 7?")]
    (out1, err1), (out2, err2) = (finished(p) for p in first)
    assert "84" in out1 and "42" in out2
    for err in (err1, err2):
        assert f"· classifier: {BASE_NOTE}; fine-tuning for the next run in the background" in err, err
        assert str(pending.log) in err and "compiled on the base weights" in err
    # What happens before the answer is said first (one of them may load what the other compiled).
    assert any(
        "· classifier: first run on these guides: compiling on the base weights" in e for e in (err1, err2)
    )

    # `prepare` now (foreground) waits for the worker, if it still runs, instead of training too.
    prepared = subprocess.run(
        [sys.executable, "-m", "graph.cli", "prepare"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    assert prepared.returncode == 0 and "Traceback" not in prepared.stderr, prepared.stderr
    assert "fine-tuning: pass" not in prepared.stderr, prepared.stderr

    state = wait_for(pending, "done", "failed")
    assert state["state"] == "done", log(pending)
    assert pending.weights.exists()
    assert log(pending).count("background fine-tune started") == 1, log(pending)

    out3, err3 = finished(ask(env, "What time is it in Tokyo?"))
    assert "Tokyo" in out3
    assert BASE_NOTE not in err3 and "fine-tuning" not in err3 and "exporting" not in err3
    assert "compiled on the fine-tuned weights" in err3, err3


def test_a_failed_background_fine_tune_is_reported_and_asks_still_answer(tmp_path: Path) -> None:
    registry, pending = tiny_registry(tmp_path, "background test: tell me about the roman empire")
    env = cli_env(tmp_path, registry)
    # The trained weights cannot be written: where they are saved first is taken by a directory.
    pending.weights.with_suffix(".tmp").mkdir(parents=True)
    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out and BASE_NOTE in err
    state = wait_for(pending, "done", "failed")
    assert state["state"] == "failed" and "Is a directory" in str(state["error"]), state
    assert "background fine-tune failed" in log(pending)

    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out
    assert f"{BASE_NOTE}; the last background fine-tune failed (" in err and "Is a directory" in err, err
    wait_for(pending, "done", "failed")  # the retry fails the same way
    assert json.loads(pending.state_file.read_text())["attempts"] == 2
    pending.write_state(attempts=3)  # the third failure: not started again, and the line says so
    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out
    assert "not started again after 3 attempts: `routegraph prepare` fine-tunes in the foreground" in err, err
    assert not pending.running()


def _killed_at(pending: Pending, point: str, first: subprocess.Popen[str]) -> int:
    """Stop the worker the ask `first` started at one point of its life; its pid. `fine-tuning`:
    SIGKILL once its state says running; `terminated`: SIGTERM there (what a test run's clean-up,
    a service manager or a shutdown sends); `exporting`: SIGKILL once the trained weights are saved
    (the ONNX export and the compile follow); `compiled`: everything is cached but `done` not yet
    written (a window too short to hit by polling, so the worker runs to `done` and its state is
    put back to what a kill there leaves: `running`, with the pid of a worker no longer alive)."""
    state = wait_for(pending, "running", "done", "failed", every=0.02, asking=first)
    assert state["state"] == "running", log(pending)
    pid = int(str(state["pid"]))
    if point == "exporting":
        deadline = time.monotonic() + 600
        while not pending.weights.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pending.weights.exists(), log(pending)
    if point == "compiled":
        done = wait_for(pending, "done", "failed")
        assert done["state"] == "done", log(pending)
        pending.write_state(state="running", finished=None, attempts=state["attempts"])
    elif point == "terminated":
        os.kill(pid, signal.SIGTERM)
        stopped = wait_for(pending, "failed", "done")
        assert stopped["state"] == "failed", log(pending)
        assert stopped["error"] == "Terminated: stopped by SIGTERM", stopped
        assert "background fine-tune failed: Terminated: stopped by SIGTERM" in log(pending)
    else:
        os.kill(pid, signal.SIGKILL)
        assert pending.state()["state"] == "running", (point, log(pending))  # killed before `done`
    out, err = finished(first)
    assert "84" in out and BASE_NOTE in err
    deadline = time.monotonic() + 60
    while pending.running() and time.monotonic() < deadline:
        time.sleep(0.2)
    return pid


@pytest.mark.parametrize("point", ["fine-tuning", "terminated", "exporting", "compiled"])
def test_a_killed_background_fine_tune_is_started_again(tmp_path: Path, point: str) -> None:
    """Wherever the worker is stopped before it records `done`, the next ask starts it again (a
    killed worker's `running` state with its lock free is a stopped one; a terminated one records
    `failed` and why). Before: weights saved before the kill counted as ready, so no worker was
    started again, the ask exported in the foreground and the state stayed `running` for good; and
    a SIGTERM ended the worker with nothing in its log and its state `running`."""
    registry, pending = tiny_registry(tmp_path, f"background test: sing me a song ({point})")
    env = cli_env(tmp_path, registry)
    # Watched while the ask still runs, and polled often: on a quiet machine the tiny fine-tune can
    # be done before the ask's process has ended (a fresh clone's CI saw it finished, not running).
    _killed_at(pending, point, ask(env, "What is 12*7?"))
    assert not pending.ready()

    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out
    before = (
        "the last background fine-tune failed (Terminated: stopped by SIGTERM); "
        if point == "terminated"
        else "the last background fine-tune stopped before it finished; "
    )
    assert f"{BASE_NOTE}; {before}fine-tuning for the next run in the background" in err, err
    state = wait_for(pending, "done", "failed")
    assert state["state"] == "done", log(pending)
    assert log(pending).count("background fine-tune started") == 2, log(pending)
    assert state["attempts"] == 0 and pending.ready()

    out, err = finished(ask(env, "What time is it in Tokyo?"))
    assert "Tokyo" in out and BASE_NOTE not in err
    assert "compiled on the fine-tuned weights" in err, err


def test_a_test_runs_clean_up_stops_only_its_own_workers(tmp_path: Path) -> None:
    """What made the killed-worker test time out when another test run (another checkout, mutmut's
    stages) ended next to it: each run's clean-up sent SIGTERM to every fine-tune worker of the
    user that had started meanwhile, so the worker this run waited for died with nothing logged.
    Real processes named as workers are: one of another run (its token, another cache), one of
    this run's token, one whose job file is in this run's cache."""
    from tests.conftest import _RUN_MARK, _background_workers

    cache = Path(os.environ["ROUTEGRAPH_CACHE_DIR"])
    token = os.environ[_RUN_MARK]
    other_cache = tmp_path / "other-cache"

    def worker(job: Path, run: str) -> subprocess.Popen[bytes]:
        # argv as the real worker's: python -c ... graph.classifier.deferred_worker JOB
        code = "import time; time.sleep(120)"
        env = {**os.environ, _RUN_MARK: run}
        return subprocess.Popen(
            [sys.executable, "-c", code, "-m", "graph.classifier.deferred_worker", str(job)], env=env
        )

    others = worker(other_cache / "finetune-x.job.json", "another-run")
    ours = worker(other_cache / "finetune-y.job.json", token)  # a cache of a test of its own
    in_cache = worker(cache / "finetune-z.job.json", "another-run")  # started by a tool, no token
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = _background_workers(cache, token)
            if {ours.pid, in_cache.pid} <= found:
                break
            time.sleep(0.1)
        assert {ours.pid, in_cache.pid} <= found
        assert others.pid not in found
    finally:
        for process in (others, ours, in_cache):
            process.kill()
            process.wait()


def _scores(state: dict[str, object]) -> dict[str, float]:
    rows = state.get("planning_capabilities") or []
    assert isinstance(rows, list)
    return {r["name"]: r["score"] for r in rows if r["source"] == "scorer"}


def test_a_running_graph_swaps_to_the_fine_tuned_scorer_once_the_background_one_is_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A long-lived process (a server, a Python caller keeping its compiled graph) answers on the
    base weights, then, once its background fine-tune is done, classifies with the fine-tuned
    scorer without a restart: the same scores as a new process's fine-tuned scorer."""
    from langchain_core.messages import HumanMessage

    from graph.builder import build_graph
    from graph.classifier.scorer import FewShotScorer

    registry, pending = tiny_registry(tmp_path, "background test: what rhymes with orange")
    cache = Path(os.environ["ROUTEGRAPH_CACHE_DIR"])
    settings = Settings.offline(tmp_path / "data", cache_dir=cache, finetune="background")
    graph = build_graph(registry=Registry.from_file(registry), settings=settings, checkpointer="memory")
    texts = ("what is 12*7?", "how late is it over there", "work this out for me", "is it morning yet")
    turns = iter(range(1000))

    def classify() -> dict[str, dict[str, float]]:
        """Each text through the graph: the task it classified and the scores it gave."""
        out = {}
        for text in texts:
            state = graph.invoke(
                {"messages": [HumanMessage(content=text)]}, {"configurable": {"thread_id": f"t{next(turns)}"}}
            )
            assert state.get("control_stop_reason") in ("success", "clarify"), state.get(
                "control_stop_reason"
            )
            out[str(state.get("task_current") or text)] = _scores(dict(state))
        return out

    def scored_by(scorer: FewShotScorer, tasks: Iterable[str]) -> dict[str, dict[str, float]]:
        return {t: {s.name: round(s.confidence, 4) for s in scorer.score(t)} for t in tasks}

    caplog.set_level(logging.INFO, logger="routegraph.classifier")
    on_base = classify()  # compiles on the base weights and starts the worker
    assert "compiled on the base weights" in caplog.text
    base = build_scorer(
        Registry.from_file(registry), Settings.offline(tmp_path / "data", cache_dir=cache, finetune="off")
    )
    assert on_base == scored_by(base, on_base)

    state = wait_for(pending, "done", "failed")
    assert state["state"] == "done", log(pending)
    swapped = "now classifying with the fine-tuned weights"
    deadline = time.monotonic() + 120
    while swapped not in caplog.text and time.monotonic() < deadline:
        classify()  # the first classification after `done` starts the swap, in a thread
        time.sleep(0.2)
    assert swapped in caplog.text, caplog.text
    after = classify()

    fresh = build_scorer(Registry.from_file(registry), settings)  # what a new process would load
    fresh.compile()
    assert getattr(fresh, "weights", "") == "fine-tuned"
    assert after == scored_by(fresh, after)
    # The fine-tune moved the scores. Confidences to 4 places can be 1.0 and 0.0 either way on
    # these plain requests (balanced guides: a clear request is certain on the base weights too),
    # so compare the raw similarities the graph's scorer now gives with the base scorer's.
    texts = list(after)
    assert not np.allclose(fresh.raw_scores(texts), base.raw_scores(texts), atol=1e-4)
    assert log(pending).count("background fine-tune started") == 1, log(pending)


def test_a_fine_tuned_scorer_that_cannot_be_loaded_keeps_the_old_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The state file says `done` but the fine-tuned model cannot be opened (its int8 file is
    damaged): the live scorer stays and the log says why; once the file is whole again (and the
    state file changes), the swap happens."""
    from graph.classifier.encoders import MiniLMEncoder
    from graph.classifier.live import LiveScorer
    from graph.classifier.onnx_runtime import recipe

    registry, pending = tiny_registry(tmp_path, "background test: teach me a magic trick")
    cache = Path(os.environ["ROUTEGRAPH_CACHE_DIR"])
    settings = Settings.offline(tmp_path / "data", cache_dir=cache, finetune="background")
    live = LiveScorer(lambda: build_scorer(Registry.from_file(registry), settings))
    first = live.current()
    first.score("what is 12*7?")
    assert getattr(first, "pending", None) == pending
    state = wait_for(pending, "done", "failed")
    assert state["state"] == "done", log(pending)

    tuned = MiniLMEncoder(onnx_dir=cache)
    tuned.use_finetuned(pending.key, pending.weights)
    folder = tuned.onnx_folder()
    assert folder is not None
    model = folder / f"model.{recipe('int8')}.onnx"
    assert model.exists(), sorted(p.name for p in folder.iterdir())
    whole = model.with_name(model.name + ".whole")
    model.rename(whole)
    model.write_bytes(b"not an ONNX model")
    try:
        caplog.set_level(logging.WARNING, logger="graph.classifier.live")
        assert live.current() is first  # sees `done`, starts the swap, answers with `first`
        live.wait(120)
        assert live.current() is first and live.swaps == 0
        assert "the fine-tuned scorer could not be loaded" in caplog.text, caplog.text
        assert first.score("what is 12*7?")[0].name == "calculator"  # and it still classifies
    finally:
        whole.replace(model)
    pending.write_state(state="done")  # a new modification time: looked at again
    live.current()
    live.wait(120)
    assert live.current() is not first and live.swaps == 1
    assert getattr(live.current(), "weights", "") == "fine-tuned"


def test_a_foreground_fine_tune_runs_before_the_turn_and_does_not_count_against_max_seconds(
    tmp_path: Path,
) -> None:
    """`ROUTEGRAPH_FINETUNE=foreground`: the first ask fine-tunes before its turn starts (progress
    lines meanwhile), so a turn limit shorter than the fine-tune still answers; on a loaded machine
    the shipped registry's fine-tune alone passed its 120 s `max_seconds`."""
    registry, pending = tiny_registry(tmp_path, "foreground test: how tall is the eiffel tower")
    registry.write_text(registry.read_text() + "limits: {max_seconds: 2}\n")
    env = cli_env(tmp_path, registry) | {"ROUTEGRAPH_FINETUNE": "foreground"}
    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out, (out, err)
    assert "· classifier: fine-tuning: pass 1/" in err
    assert "max_seconds" not in out + err
    assert not pending.running() and pending.state().get("state") is None  # no background worker
