"""The live tier: every LLM role, a whole `ask` through the compiled graph and through the CLI, against
a real OpenAI-compatible server (docs/live-llm.md).

    ROUTEGRAPH_LIVE_BASE_URL=http://127.0.0.1:8765/v1 .venv/bin/pytest -m live tests/test_live.py -s

Optional: ROUTEGRAPH_LIVE_MODEL (default: the first model the server lists), ROUTEGRAPH_LIVE_API_KEY,
ROUTEGRAPH_LIVE_STRUCTURED_OUTPUT (default json_schema: a server without it exercises the fallback),
ROUTEGRAPH_LIVE_MAX_TOKENS (256), ROUTEGRAPH_LIVE_TIMEOUT (seconds per request, 600),
ROUTEGRAPH_LIVE_ATTEMPTS (3: attempts per role test, and `offline_after` in the graph),
ROUTEGRAPH_LIVE_REPORT (JSON report; default .routegraph/live-report.json).

The tests assert the protocol, never the model's judgement: requests reach the server and are
answered, structured answers parse into the pydantic models (or, after bounded attempts, are
recorded as a ModelOutputError), calls and tokens are counted and agree with what the server
reported, and the graph always finishes with a stop_reason. Seconds per call are printed (-s) and
written to the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

BASE_URL = os.environ.get("ROUTEGRAPH_LIVE_BASE_URL", "").rstrip("/")
if not BASE_URL:
    pytest.skip(
        "live tier: set ROUTEGRAPH_LIVE_BASE_URL to an OpenAI-compatible endpoint "
        "(e.g. `scripts/local-llm start` prints one); see docs/live-llm.md",
        allow_module_level=True,
    )

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402
from langchain_core.outputs import LLMResult  # noqa: E402

from graph.builder import build_graph  # noqa: E402
from graph.config.registry import Registry  # noqa: E402
from graph.config.settings import Settings  # noqa: E402
from graph.errors import ModelOutputError  # noqa: E402
from graph.models import LLMGateway, ModelProvider, make_chat_model  # noqa: E402
from graph.state import StopReason  # noqa: E402
from nodes import orchestrator as orchestrator_node  # noqa: E402
from nodes import respond as respond_node  # noqa: E402
from nodes import task_extraction as extraction_node  # noqa: E402
from nodes.classifier import Classification, judge  # noqa: E402
from nodes.planning import Plan  # noqa: E402
from nodes.task_extraction import ExtractedTask  # noqa: E402
from tests.conftest import BASE, registry_with  # noqa: E402

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
API_KEY_ENV = "ROUTEGRAPH_LIVE_API_KEY"
ATTEMPTS = int(os.environ.get("ROUTEGRAPH_LIVE_ATTEMPTS", "3"))
"""Attempts per role test when the answer does not validate (the model is judged by nobody); also
the graph's `offline_after`."""
STOP_REASONS = set(StopReason.__args__)  # type: ignore[attr-defined]
TASK = "What is 12*7 and what time is it in Tokyo?"


def _first_model() -> str:
    request = urllib.request.Request(f"{BASE_URL}/models")
    if key := os.environ.get(API_KEY_ENV):
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["data"][0]["id"])


MODEL = os.environ.get("ROUTEGRAPH_LIVE_MODEL") or _first_model()
MODELS_SECTION: dict[str, Any] = {
    "enabled": "always",
    "default": {
        "model": MODEL,
        "base_url": BASE_URL,
        "api_key_env": API_KEY_ENV,
        "max_tokens": int(os.environ.get("ROUTEGRAPH_LIVE_MAX_TOKENS", "256")),
        "timeout": float(os.environ.get("ROUTEGRAPH_LIVE_TIMEOUT", "600")),
        "client_retries": 0,
        "structured_output": os.environ.get("ROUTEGRAPH_LIVE_STRUCTURED_OUTPUT", "json_schema"),
        "offline_after": ATTEMPTS,
    },
}
LIMITS = {"max_llm_calls": 30, "max_seconds": 1800.0, "max_steps": 60}


class CallRecorder(BaseCallbackHandler):
    """Every chat-model request: seconds, tokens the server reported, error if any."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._started: dict[UUID, float] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._started[run_id] = time.perf_counter()

    def _done(self, run_id: UUID, **record: Any) -> None:
        seconds = time.perf_counter() - self._started.pop(run_id, time.perf_counter())
        with self._lock:
            self.calls.append({"seconds": round(seconds, 3), **record})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        message = getattr(response.generations[0][0], "message", None)
        usage = getattr(message, "usage_metadata", None) or {}
        self._done(run_id, tokens=int(usage.get("total_tokens", 0)), error=None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._done(run_id, tokens=0, error=f"{type(error).__name__}: {str(error)[:200]}")

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.calls[mark:]


REPORT: list[dict[str, Any]] = []


def live_settings(data_dir: Path) -> Settings:
    env = {API_KEY_ENV: os.environ[API_KEY_ENV]} if os.environ.get(API_KEY_ENV) else {}
    return Settings.from_env(env, data_dir=data_dir, llm="on")


@pytest.fixture(scope="module")
def recorder() -> Iterator[CallRecorder]:
    recorder = CallRecorder()
    yield recorder
    path = Path(os.environ.get("ROUTEGRAPH_LIVE_REPORT") or ROOT / ".routegraph" / "live-report.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"base_url": BASE_URL, "model": MODEL, "tests": REPORT}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"\nlive report: {path}")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return registry_with(
        models=MODELS_SECTION,
        classifier={"mode": "llm", "encoder": "lexical"},
        orchestrator={"mode": "llm"},
        limits=LIMITS,
    )


@pytest.fixture(scope="module")
def provider(
    registry: Registry, recorder: CallRecorder, tmp_path_factory: pytest.TempPathFactory
) -> ModelProvider:
    """One provider for the role tests: what it learns (a rejected method) is learned once."""
    settings = live_settings(tmp_path_factory.mktemp("live"))
    config = registry.spec.models.default
    model = make_chat_model(config, settings)
    model.callbacks = [recorder]
    configs = {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()}
    return ModelProvider(configs, settings, enabled=True, overrides={"default": model})


def record(name: str, outcome: str, calls: list[dict[str, Any]], **extra: Any) -> None:
    seconds = [c["seconds"] for c in calls]
    entry = {
        "test": name,
        "outcome": outcome,
        "calls": extra.pop("count", len(calls)),
        "tokens": sum(c["tokens"] for c in calls),
        "seconds_per_call": seconds,
        "errors": [c["error"] for c in calls if c["error"]],
        **extra,
    }
    REPORT.append(entry)
    if "state_tokens" in entry:
        entry["tokens"] = entry["state_tokens"]
    print(
        f"\n[live] {name}: {outcome}; {entry['calls']} call(s), {entry['tokens']} tokens, seconds {seconds}"
    )


async def run_role(
    name: str, provider: ModelProvider, recorder: CallRecorder, ask: Any
) -> tuple[Any, LLMGateway, list[dict[str, Any]]]:
    """Ask up to ATTEMPTS times; the result, or the last ModelOutputError, and the calls made."""
    mark = len(recorder.calls)
    llm = LLMGateway(provider, used=0, budget=20)
    result: Any = None
    for _ in range(ATTEMPTS):
        try:
            result = await ask(llm)
            break
        except ModelOutputError as exc:
            result = exc
    calls = recorder.since(mark)
    outcome = "parsed" if not isinstance(result, Exception) else f"ModelOutputError: {result}"[:300]
    record(name, outcome, calls, gateway_calls=llm.calls, gateway_tokens=llm.tokens)
    assert_exchanged(llm, calls)
    return result, llm, calls


def assert_exchanged(llm: LLMGateway, calls: list[dict[str, Any]]) -> None:
    """Requests went out and were answered, and the gateway counted what the server reported."""
    assert calls, "no request reached the chat model"
    assert llm.calls == len(calls), "the gateway's call count disagrees with the requests made"
    answered = [c for c in calls if c["error"] is None]
    assert answered, f"the server answered no request: {[c['error'] for c in calls]}"
    assert all(c["tokens"] > 0 for c in answered), "an answer came without token usage"
    assert llm.tokens == sum(c["tokens"] for c in answered) > 0


def conversation(text: str) -> list[Any]:
    return [HumanMessage(content=text)]


async def test_task_extraction(provider: ModelProvider, recorder: CallRecorder) -> None:
    messages = [SystemMessage(content=extraction_node.SYSTEM), *conversation(TASK)]
    result, _, _ = await run_role(
        "task_extraction",
        provider,
        recorder,
        lambda llm: llm.structured("task_extraction", messages, ExtractedTask),
    )
    if not isinstance(result, ModelOutputError):
        assert isinstance(result, ExtractedTask) and result.task.strip()
        assert ExtractedTask.model_validate(result.model_dump()) == result


async def test_classification(provider: ModelProvider, recorder: CallRecorder, registry: Registry) -> None:
    candidates = list(registry.routable)
    scores: dict[str, float] = {}

    async def ask(llm: LLMGateway) -> dict[str, float]:
        scores.update(await judge(llm, TASK, candidates, ""))
        return scores

    result, _, _ = await run_role("classifier", provider, recorder, ask)
    if not isinstance(result, ModelOutputError):
        assert set(result) == {c.name for c in candidates}
        assert all(0.0 <= s <= 1.0 for s in result.values())
    # The schema the classifier validates against is the one sent to the server.
    assert Classification.model_json_schema()["properties"]["judgements"]


async def test_planning(provider: ModelProvider, recorder: CallRecorder, registry: Registry) -> None:
    names = ["calculator", "clock"]
    prompt = (
        f"Task: {TASK}\nKnown context keys: []\nCapabilities:\n"
        f"{orchestrator_node.describe(registry, names)}\n- respond: answers the user (always last)"
    )
    messages = [SystemMessage(content=orchestrator_node.SYSTEM), HumanMessage(content=prompt)]
    result, _, _ = await run_role(
        "planning", provider, recorder, lambda llm: llm.structured("orchestrator", messages, Plan)
    )
    if not isinstance(result, ModelOutputError):
        assert isinstance(result, Plan) and 1 <= len(result.steps) <= 20
        assert Plan.model_validate(result.model_dump()) == result


async def test_respond(provider: ModelProvider, recorder: CallRecorder) -> None:
    data = [
        {"capability": "calculator", "status": "ok", "output": {"calculation": 84, "expression": "12*7"}},
        {"capability": "clock", "status": "ok", "output": {"timezone": "Asia/Tokyo", "time": "21:30"}},
    ]
    prompt = f"Task: {TASK}\nResults (JSON):\n{json.dumps(data)}"
    messages = [SystemMessage(content=respond_node.SYSTEM), HumanMessage(content=prompt)]
    result, _, _ = await run_role("respond", provider, recorder, lambda llm: llm.text("respond", messages))
    if not isinstance(result, ModelOutputError):
        assert isinstance(result, str) and result.strip()


def assert_finished(state: dict[str, Any]) -> None:
    assert state.get("control_stop_reason") in STOP_REASONS, f"no stop_reason: {state.get('control_errors')}"
    assert state["messages"][-1].type == "ai" and str(state["messages"][-1].content).strip()


def test_ask_through_the_compiled_graph(registry: Registry, recorder: CallRecorder, tmp_path: Path) -> None:
    settings = live_settings(tmp_path)
    model = make_chat_model(registry.spec.models.default, settings)
    model.callbacks = [recorder]
    graph = build_graph(
        registry=registry, settings=settings, checkpointer="memory", models={"default": model}
    )
    mark = len(recorder.calls)
    started = time.perf_counter()
    state = dict(graph.invoke({"messages": [HumanMessage(TASK)]}, {"configurable": {"thread_id": "live"}}))
    calls = recorder.since(mark)
    record(
        "ask (graph)",
        str(state.get("control_stop_reason")),
        calls,
        seconds_total=round(time.perf_counter() - started, 3),
        llm_calls=state.get("control_llm_calls"),
        state_tokens=state.get("control_tokens"),
        notes=state.get("planning_notes"),
        answer=str(state["messages"][-1].content)[:300],
    )
    assert_finished(state)
    assert state["control_llm_calls"] == len(calls) >= 1
    answered = [c for c in calls if c["error"] is None]
    assert answered and state["control_tokens"] == sum(c["tokens"] for c in answered) > 0
    assert state["task_current"], "task extraction produced no task"
    assert state["planning_capabilities"] is not None, "the classifier did not run"


def test_ask_through_the_cli(tmp_path: Path, recorder: CallRecorder) -> None:
    import yaml

    spec = json.loads(json.dumps(BASE))
    spec["models"] = MODELS_SECTION
    spec["classifier"] = {"mode": "llm", "encoder": "lexical"}
    spec["orchestrator"] = {"mode": "llm"}
    spec["limits"] = {**spec["limits"], **LIMITS}
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    env = {
        **os.environ,
        "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"),
        "ROUTEGRAPH_LLM": "on",
        API_KEY_ENV: os.environ.get(API_KEY_ENV, ""),
    }
    command = [sys.executable, "-m", "graph.cli", "ask", TASK]
    command += ["--json", "--quiet", "--registry", str(path), "--thread", "live-cli"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    assert done.returncode in (0, 1), done.stderr[-2000:]
    out = json.loads(done.stdout)
    calls = out["llm_calls"]
    record(
        "ask (CLI)",
        str(out["stop_reason"]),
        [],
        count=calls,
        seconds_total=round(seconds, 3),
        llm_calls=calls,
        state_tokens=out["tokens"],
        seconds_per_call_avg=round(seconds / max(calls, 1), 3),
        timings_ms=out["timings_ms"],
        notes=out["notes"],
        answer=str(out["answer"])[:300],
    )
    assert out["stop_reason"] in STOP_REASONS
    assert out["answer"] and out["task"]
    assert calls >= 1 and out["tokens"] > 0
    assert (done.returncode == 0) == (out["stop_reason"] in {"success", "clarify"})
