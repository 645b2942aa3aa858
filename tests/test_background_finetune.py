"""A first `routegraph ask` without a cached fine-tune (issue 19 item 3): it answers with the base
encoder and a detached process fine-tunes for the next run. Real processes throughout: the CLI,
the background worker, MiniLM's fine-tune and ONNX export, on a two-capability registry so the
fine-tune takes seconds. Each test adds an out-of-scope request of its own, so its guides have a
fine-tune key of their own while the base export is shared through the session's cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    return subprocess.Popen(
        [sys.executable, "-m", "graph.cli", "--log-level", "INFO", "ask", text],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def finished(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out, err


def wait_for(pending: Pending, *states: str, timeout: float = 600) -> dict[str, object]:
    """The worker's state once it is one of `states` and its lock is free (or it holds `running`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = pending.state()
        if state.get("state") in states and (state["state"] == "running" or not pending.running()):
            return state
        time.sleep(0.5)
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


def test_a_killed_background_fine_tune_is_started_again(tmp_path: Path) -> None:
    registry, pending = tiny_registry(tmp_path, "background test: sing me a song")
    env = cli_env(tmp_path, registry)
    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out and BASE_NOTE in err
    state = wait_for(pending, "running", "done", "failed")
    assert state["state"] == "running", log(pending)
    os.kill(int(str(state["pid"])), signal.SIGKILL)  # the worker this test's ask started
    deadline = time.monotonic() + 60
    while pending.running() and time.monotonic() < deadline:
        time.sleep(0.2)

    out, err = finished(ask(env, "What is 12*7?"))
    assert "84" in out
    assert f"{BASE_NOTE}; the last background fine-tune stopped before it finished; fine-tuning" in err, err
    state = wait_for(pending, "done", "failed")
    assert state["state"] == "done", log(pending)
    assert log(pending).count("background fine-tune started") == 2
