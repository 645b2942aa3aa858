"""The capability contract: an `async def execute` that returns a JSON object, under its registry name.

Checked by `routegraph validate` where it can be (the import, `execute`), enforced by the runner
where it cannot (the output, what `execute` raises): each violation ends the run with
`stop_reason: error` and a message naming the capability, never a traceback. A capability's
exception is logged with its traceback at debug level, with the run's ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command, interrupt

from graph.capability import Capability, RunContext
from graph.capability.base import json_problem, to_json
from graph.cli import main
from graph.config.registry import Registry, RegistryError
from graph.faults import CONFIG_KEY, Fault, FaultKind, FaultPlan
from tests.conftest import ask, guide, registry_with

REQUEST = "ponder deeply"


class Misfit(Capability):
    """Breaks the contract the way its `mode` option says."""

    name = "misfit"
    description = "Think for a long time."

    async def execute(self, inputs: Any, ctx: RunContext) -> Any:
        mode = self.options["mode"]
        outputs: dict[str, Any] = {
            "none": None,
            "list": [1, 2],
            "text": "an answer",
            "object": {"value": object()},
            "nan": {"value": math.nan},
            "infinity": {"value": [math.inf]},
            "int key": {1: "one"},
            "huge int": {"value": [{"deep": 10**30}]},
        }
        if mode in outputs:
            return outputs[mode]
        raise {
            "cancelled": asyncio.CancelledError(),
            "system exit": SystemExit(3),
            "keyboard interrupt": KeyboardInterrupt(),
            "generator exit": GeneratorExit(),
            "value error": ValueError("spreadsheet parser crashed"),
        }[mode]


class Asker(Capability):
    """Asks a human itself, with LangGraph's `interrupt()`: the pause must not be swallowed."""

    name = "asker"
    description = "Think for a long time."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        answer = interrupt({"question": "how deep?"})
        return {"summary": f"pondered {answer}"}


class BadJudge(Misfit):
    def classify_error(self, exc: BaseException) -> Any:
        raise RuntimeError("no opinion")


class SyncExecute(Capability):
    name = "sync_execute"
    description = "Not async."

    def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:  # type: ignore[override]
        return {"summary": "done"}


class ExitsOnStart(Capability):
    name = "exits_on_start"
    description = "Exits from its constructor."

    def __init__(self, options: Any = None) -> None:
        raise SystemExit(3)

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {}


def entry(cls: str = "Misfit", name: str = "misfit", **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "class": f"tests.test_contract:{cls}",
        "options": options,
        "classifier_guide": guide("ponder deeply", "think about the meaning of life"),
    }


def run(graph: Any, entry_point: str, thread: str = "t") -> dict[str, Any]:
    inputs = {"messages": [HumanMessage(content=REQUEST)]}
    config = {"configurable": {"thread_id": thread}}
    if entry_point == "invoke":
        return dict(graph.invoke(inputs, config))
    return dict(asyncio.run(graph.ainvoke(inputs, config)))


# --- at run time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("none", "returned None"),
        ("list", "returned a list ([1, 2])"),
        ("text", "returned a str ('an answer')"),
        ("object", "returned a value that is not JSON: Object of type object is not JSON serializable"),
        ("nan", "returned a value that is not JSON: Out of range float values are not JSON compliant"),
        ("infinity", "returned a value that is not JSON: Out of range float values"),
        ("int key", "returned a dict with a int key 1"),
        ("huge int", "returned an integer a checkpoint cannot hold (more than 64 bits): 1000000000000000000"),
    ],
)
@pytest.mark.parametrize("entry_point", ["invoke", "ainvoke"])
def test_an_output_that_is_not_a_json_object_fails_the_step(
    make_graph: Any, entry_point: str, mode: str, said: str
) -> None:
    state = run(make_graph(registry_with(entry(mode=mode))), entry_point)
    assert state["control_stop_reason"] == "error"
    (result,) = state["execution_results"].values()
    assert result["status"] == "failed" and result["severity"] == "critical" and result["output"] == {}
    assert result["error"].startswith(f"ContractViolation: capability 'misfit' {said}")
    assert result["error"].endswith("(a JSON object is required)")
    assert "misfit" in state["messages"][-1].content


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("cancelled", "CancelledError"),
        ("system exit", "SystemExit: 3"),
        ("keyboard interrupt", "KeyboardInterrupt"),
        ("generator exit", "GeneratorExit"),
    ],
)
@pytest.mark.parametrize("entry_point", ["invoke", "ainvoke"])
def test_a_base_exception_from_execute_fails_the_step(
    make_graph: Any, entry_point: str, mode: str, error: str
) -> None:
    state = run(make_graph(registry_with(entry(mode=mode))), entry_point)
    assert state["control_stop_reason"] == "error"
    (result,) = state["execution_results"].values()
    assert (result["status"], result["error"], result["severity"]) == ("failed", error, "critical")


def test_a_sync_execute_that_slipped_past_validate_fails_the_step(make_graph: Any) -> None:
    registry = registry_with(entry())
    registry["misfit"].instance.execute = lambda inputs, ctx: {"summary": "sync"}  # type: ignore[method-assign]
    state = ask(make_graph(registry), REQUEST)
    (result,) = state["execution_results"].values()
    assert result["error"] == (
        "ContractViolation: capability 'misfit': execute is not async (it returned a dict "
        "({'summary': 'sync'})); declare it `async def`"
    )
    assert state["control_stop_reason"] == "error"


def test_a_classify_error_that_fails_makes_the_failure_critical(make_graph: Any) -> None:
    state = ask(make_graph(registry_with(entry("BadJudge", mode="value error"))), REQUEST)
    (result,) = state["execution_results"].values()
    assert result["severity"] == "critical" and state["control_stop_reason"] == "error"


def test_an_interrupt_inside_a_capability_pauses_the_run(make_graph: Any) -> None:
    graph = make_graph(registry_with(entry("Asker", name="asker")))
    config = {"configurable": {"thread_id": "asker"}}
    graph.invoke({"messages": [HumanMessage(content=REQUEST)]}, config)
    (task,) = [t for t in graph.get_state(config).tasks if t.interrupts]
    assert task.interrupts[0].value == {"question": "how deep?"}
    state = graph.invoke(Command(resume="very"), config)
    assert state["control_stop_reason"] == "success"
    assert "pondered very" in state["messages"][-1].content


def test_a_terminal_node_that_fails_still_answers_with_a_stop_reason(make_graph: Any) -> None:
    graph = make_graph(registry_with())
    plan = FaultPlan.of({"respond": Fault(FaultKind.RAISE_UNKNOWN)})
    config = {"configurable": {"thread_id": "respond", CONFIG_KEY: plan}}
    state = graph.invoke({"messages": [HumanMessage(content="what is 2+2")]}, config)
    assert state["control_stop_reason"] == "error"
    assert state["messages"][-1].content == (
        "I could not finish this request: the respond step failed "
        "(RuntimeError: injected fault raise_unknown in respond).\n(stop_reason: error)"
    )
    assert state["control_errors"][-1]["node"] == "respond"


# --- logged with the run's ids -----------------------------------------------------------------


def test_a_capability_s_exception_is_logged_with_its_traceback(
    make_graph: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="routegraph")
    state = ask(make_graph(registry_with(entry(mode="value error"))), REQUEST, thread="ops-42")
    (result,) = state["execution_results"].values()
    assert result["error"] == "ValueError: spreadsheet parser crashed"
    (record,) = [r for r in caplog.records if getattr(r, "capability", None) == "misfit"]
    assert record.levelno == logging.DEBUG and record.name == "routegraph"
    assert (
        "Traceback" in record.getMessage() and "ValueError: spreadsheet parser crashed" in record.getMessage()
    )
    assert "raise {" in caplog.text, "the traceback shows where it was raised"
    assert (record.step_id, record.thread_id, record.attempt) == (result["step_id"], "ops-42", 1)  # type: ignore[attr-defined]
    assert "ops-42" in record.getMessage() and result["step_id"] in record.getMessage()


def test_a_node_s_exception_is_logged_too(make_graph: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="routegraph")
    plan = FaultPlan.of({"classifier": Fault(FaultKind.RAISE_UNKNOWN)})
    config = {"configurable": {"thread_id": "ops-43", CONFIG_KEY: plan, "run_id": "run-7"}}
    make_graph(registry_with()).invoke({"messages": [HumanMessage(content="what is 2+2")]}, config)
    (record,) = [r for r in caplog.records if getattr(r, "node", None) == "classifier"]
    assert "Traceback" in record.getMessage() and "RuntimeError" in record.getMessage()
    assert (record.thread_id, record.run_id) == ("ops-43", "run-7")  # type: ignore[attr-defined]


# --- at load time (`routegraph validate`) --------------------------------------------------------


def write_registry(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    import yaml

    from tests.conftest import BASE

    data = {**BASE, "capabilities": [*BASE["capabilities"], *entries]}
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("import sys\nsys.exit(0)\n", "it called sys.exit(0)"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("raise SystemExit('bye')\n", "it called sys.exit('bye')"),
    ],
)
def test_a_module_that_exits_on_import_is_a_registry_problem(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    said: str,
) -> None:
    name = module(tmp_path, monkeypatch, f"exits_{abs(hash(body))}", body)
    path = write_registry(tmp_path, {**entry(), "class": f"{name}:Thing"})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"capabilities[4].class: cannot import {name}:Thing: importing module {name!r} failed: {said}" in err
    )
    assert f"{path}:" in err


def test_a_sync_execute_and_a_constructor_that_exits_are_registry_problems(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path, entry("SyncExecute", name="sync_execute"), entry("ExitsOnStart", name="x")
    )
    with pytest.raises(RegistryError) as caught:
        Registry.from_file(path)
    messages = [(p.field, p.message) for p in caught.value.problems]
    assert messages == [
        (
            "capabilities[4].class",
            "tests.test_contract:SyncExecute.execute is not a coroutine function: declare it "
            "`async def execute(self, inputs, ctx)`",
        ),
        (
            "capabilities[5].options",
            "tests.test_contract:ExitsOnStart failed to start: it called sys.exit(3)",
        ),
    ]
    assert all(p.line for p in caught.value.problems), "each problem has its line"


def test_a_class_registered_under_another_name_answers_to_it() -> None:
    """One class may serve two entries (another name, other options): the instance takes the entry's
    name, so what it says (errors, approval questions) names the step that runs."""
    registry = registry_with(entry(name="misfit"), entry(name="other_misfit"))
    assert registry["other_misfit"].instance.name == "other_misfit"
    assert registry["misfit"].instance.name == Misfit.name == "misfit"


# --- strict JSON --------------------------------------------------------------------------------


def test_to_json_writes_strict_json() -> None:
    def no_constants(token: str) -> Any:
        raise AssertionError(f"{token} is not JSON")

    value = {"nan": math.nan, "deep": [{"inf": -math.inf}], "ok": 1.5, "thing": object(), "text": "é"}
    parsed = json.loads(to_json(value), parse_constant=no_constants)
    assert parsed["nan"] is None and parsed["deep"] == [{"inf": None}] and parsed["ok"] == 1.5
    assert parsed["thing"].startswith("<object object") and parsed["text"] == "é"
    assert json_problem({"a": [1, "b", None, {"c": True}]}) is None
