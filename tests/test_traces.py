"""A trace for every turn, written by the graph: its fields, approvals, redaction, a failed write
that does not fail the run, migrations, retention, PostgreSQL, and the structured log lines that
carry the same run id."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.builder import build_graph
from graph.cli import main
from graph.config.settings import Settings
from graph.ops.logs import formatter, node_context, set_level
from graph.ops.store import LATEST, MIGRATIONS_DIR, TraceStore, migrations, open_store, trace_file
from graph.redact import Redactor
from tests.conftest import BASE, registry_with
from tests.test_graph import approval_graph
from tests.test_postgres import pg_url, postgres_server  # noqa: F401 (fixtures: a server, a fresh database)
from tests.testcaps import make_db

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def run(graph: Any, text: str, thread: str, **configurable: Any) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread, **configurable}}
    return dict(graph.invoke({"messages": [HumanMessage(content=text)]}, config))


def test_a_turn_leaves_one_trace_with_what_the_router_saw_and_did(settings: Settings) -> None:
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory")
    state = run(graph, f"what is 12*7? my key is {SECRET}", "t1", user_id="u-42")
    assert state["control_stop_reason"] == "success"
    store = open_store(settings)
    assert Path(store.target) == trace_file(settings) == settings.data_dir / "traces.sqlite"
    [trace] = store.traces()
    assert trace["run_id"] == state["control_run_id"]
    assert (trace["thread_id"], trace["user_id"], trace["turn"]) == ("t1", "u-42", 1)
    assert SECRET not in json.dumps(trace) and trace["request"].startswith("what is 12*7? my key is ")
    assert trace["stop_reason"] == "success"
    assert trace["selected"] == ["calculator"] and trace["top_capability"] == "calculator"
    names = {c["name"]: c for c in trace["candidates"]}
    assert names["respond"]["source"] == "always" and names["calculator"]["source"] == "scorer"
    assert names["calculator"]["score"] == trace["top_score"] > names["clock"]["score"]
    assert [s["capability"] for s in trace["plan"]] == ["calculator", "respond"]
    [step] = trace["steps"]
    assert step["capability"] == "calculator" and step["status"] == "ok" and step["attempts"] == 1
    assert step["duration_ms"] > 0 and step["error_class"] is None
    assert trace["node_steps"] == state["control_steps"]
    assert trace["timings_ms"]["respond"] > 0 and trace["ended_at"] >= trace["started_at"]
    assert trace["llm_calls"] == 0 and trace["tokens"] == 0
    assert len(trace["registry_fingerprint"]) == 16
    assert trace["experiment"] is None and trace["variant"] is None and trace["feedback"] is None
    # A second turn on the thread is a second trace, with its own run id.
    state2 = run(graph, "what time is it in Tokyo?", "t1")
    assert state2["control_run_id"] != state["control_run_id"]
    assert [t["turn"] for t in store.traces()] == [1, 2]


def test_a_run_id_given_by_the_caller_is_the_trace_key(settings: Settings) -> None:
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory")
    state = run(graph, "poem about the sea", "t2", run_id="my-run-1")
    assert state["control_stop_reason"] == "clarify" and state["control_run_id"] == "my-run-1"
    trace = open_store(settings).get("my-run-1")
    assert trace is not None and trace["stop_reason"] == "clarify" and trace["selected"] == []


def test_an_approval_turn_is_traced_once_when_it_ends(
    make_graph: Any, settings: Settings, tmp_path: Path
) -> None:
    clock = [1000.0]
    db = make_db(tmp_path / "shop.sqlite")
    graph = approval_graph(lambda reg: make_graph(reg, clock=lambda: clock[0]), db)
    config = {"configurable": {"thread_id": "hitl"}}
    graph.invoke({"messages": [HumanMessage("pay alice 500 dollars")]}, config)
    store = open_store(settings)
    assert store.traces() == []  # waiting for a human: the turn has not ended
    clock[0] += 42.0
    state = graph.invoke(Command(resume=True), config)
    assert state["control_stop_reason"] == "success"
    [trace] = store.traces()
    payout = trace["steps"][-1]
    assert payout["capability"] == "payout" and payout["status"] == "ok"
    assert trace["approvals"] == [{"step_id": payout["id"], "approved": True}]
    assert trace["approval_wait_s"] == pytest.approx(42.0)


def test_an_error_turn_is_traced_with_its_stop_reason(settings: Settings) -> None:
    graph = build_graph(
        registry=registry_with(limits={"max_request_chars": 10}), settings=settings, checkpointer="memory"
    )
    state = run(graph, "what is 12*7 and then some more words", "t3")
    assert state["control_stop_reason"] == "input_too_long"
    [trace] = open_store(settings).traces()
    assert trace["stop_reason"] == "input_too_long" and trace["errors"][0]["node"] == "intake"


def test_a_failed_trace_write_never_fails_the_run(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = TraceStore.sqlite(blocker / "traces.sqlite")  # its directory cannot be made
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory", traces=store)
    with caplog.at_level(logging.WARNING, logger="routegraph"):
        state = run(graph, "what is 2+2?", "t4")
    assert state["control_stop_reason"] == "success" and "4" in state["messages"][-1].content
    assert any("could not write the trace of run" in r.getMessage() for r in caplog.records)
    assert state["control_run_id"] in caplog.text


def test_traces_can_be_switched_off(settings: Settings) -> None:
    graph = build_graph(
        registry=registry_with(traces={"enabled": False}), settings=settings, checkpointer="memory"
    )
    run(graph, "what is 2+2?", "t5")
    assert not trace_file(settings).exists()


def test_the_server_graph_without_a_checkpointer_traces_to_the_data_dir(settings: Settings) -> None:
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="none")
    state = graph.invoke({"messages": [HumanMessage("what is 3*3?")]})
    assert open_store(settings).get(state["control_run_id"]) is not None


def test_migrations_are_numbered_applied_once_and_upgrade_an_old_store(tmp_path: Path) -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1)) and len(found) == LATEST
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a store made by a version that knew only migration 1
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT, applied_at REAL)")
    conn.executescript((MIGRATIONS_DIR / "0001_traces.sql").read_text())
    conn.execute("INSERT INTO schema_version VALUES (1, 'traces', 0)")
    conn.commit()
    conn.close()
    store = TraceStore.sqlite(path)
    assert store.schema_version() == LATEST
    store.close()
    rows = sqlite3.connect(path).execute("SELECT version, name FROM schema_version ORDER BY 1").fetchall()
    assert rows == [(m.version, m.name) for m in found]
    again = TraceStore.sqlite(path)
    assert again.schema_version() == LATEST  # nothing applied twice (the primary key would refuse)


def _row(run_id: str, started: float) -> dict[str, Any]:
    return {
        "run_id": run_id, "thread_id": "t", "started_at": started, "ended_at": started + 1,
        "duration_ms": 1000.0, "stop_reason": "success", "selected": [], "candidates": [], "plan": [],
        "steps": [], "approvals": [], "approval_wait_s": 0.0, "errors": [], "notes": [], "llm_calls": 0,
        "tokens": 0, "node_steps": 5, "timings_ms": {}, "registry_fingerprint": "f",
    }  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    if request.param == "sqlite":
        made = TraceStore.sqlite(tmp_path / "traces.sqlite")
    else:
        made = TraceStore.postgres(request.getfixturevalue("pg_url"))
    yield made
    made.close()


def test_retention_bounds_the_table_by_age_and_rows(store: TraceStore) -> None:
    now = 100 * 86400.0
    for i in range(10):
        store.write(_row(f"r{i}", now - (9 - i) * 86400))  # one a day, r9 is today
    store.put_feedback("r0", verdict="good")
    store.put_feedback("r9", verdict="bad")
    assert store.prune(retention_days=4.5, max_rows=None, now=now) == 5  # r0..r4 are older
    assert [t["run_id"] for t in store.traces()] == ["r5", "r6", "r7", "r8", "r9"]
    assert store.prune(retention_days=None, max_rows=2, now=now) == 3
    traces = store.traces()
    assert [t["run_id"] for t in traces] == ["r8", "r9"]
    assert traces[1]["feedback"]["verdict"] == "bad"
    assert store.schema_version() == LATEST


def test_the_graph_writes_traces_to_postgres_when_a_url_is_set(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = Settings.offline(tmp_path, postgres_url=request.getfixturevalue("pg_url"))
    graph = build_graph(registry=registry_with(), settings=settings)  # auto: the PostgreSQL checkpointer
    state = run(graph, "what is 6*7?", "pg-1", user_id="u1")
    store = open_store(settings)
    assert store.dialect == "postgres"
    trace = store.get(state["control_run_id"])
    assert trace is not None and trace["user_id"] == "u1" and trace["selected"] == ["calculator"]
    assert not trace_file(settings).exists()
    store.close()


def test_log_lines_carry_run_thread_and_node_as_json(settings: Settings) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor().log_filter())
    handler.setFormatter(formatter("json", Redactor()))
    logger = logging.getLogger("routegraph")
    logger.addHandler(handler)
    previous = set_level("DEBUG")
    try:
        graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory")
        state = run(graph, "what is 5*5?", "log-1")
        with node_context("probe", state, {"configurable": {"thread_id": "log-1"}}):
            logging.getLogger("routegraph.test").warning("leaked %s", SECRET)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ended = [x for x in lines if x["event"].startswith("turn ended")]
    assert ended and ended[0]["run_id"] == state["control_run_id"]
    assert ended[0]["thread_id"] == "log-1" and ended[0]["node"] == "respond"
    assert ended[0]["stop_reason"] == "success" and ended[0]["level"] == "info"
    assert all({"run_id", "thread_id", "node", "timestamp", "logger"} <= x.keys() for x in lines)
    probe = lines[-1]
    assert probe["node"] == "probe" and SECRET not in probe["event"] and "leaked" in probe["event"]


def test_cli_log_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_LOG_FORMAT", "json")
    code = main(
        ["--log-level", "info", "ask", "what is 9*9?", "--registry", str(registry), "--json", "--quiet"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    run_id = json.loads(out)["run_id"]
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(x["run_id"] == run_id and x["event"].startswith("turn ended") for x in logged)
    with pytest.raises(SystemExit) as usage:
        main(["--log-level", "loud", "doctor"])
    assert usage.value.code == 2
    monkeypatch.setenv("ROUTEGRAPH_LOG_LEVEL", "chatty")
    assert main(["doctor"]) == 2
    assert "invalid setting log_level" in capsys.readouterr().err


def test_a_span_per_node_goes_to_the_otlp_endpoint(tmp_path: Path) -> None:
    """A real OTLP/HTTP receiver on 127.0.0.1 decodes what the exporter sends (protobuf)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pytest.importorskip("opentelemetry.sdk", reason="the `otel` extra is not installed")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans: list[tuple[str, dict[str, Any]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attrs = {a.key: a.value.string_value for a in span.attributes}
                        spans.append((span.name, attrs))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        settings = Settings.offline(tmp_path, otel_endpoint=endpoint)
        graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory")
        state = run(graph, "what is 7*6?", "otel-1")
        deadline = time.monotonic() + 20
        while not any(name == "routegraph.respond" for name, _ in spans) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
    names = [name for name, _ in spans]
    assert {"routegraph.task_extraction", "routegraph.classifier", "routegraph.respond"} <= set(names)
    respond = dict(spans)["routegraph.respond"]
    assert respond["routegraph.run_id"] == state["control_run_id"]
    assert respond["routegraph.thread_id"] == "otel-1" and respond["routegraph.stop_reason"] == "success"


def test_a_run_with_no_new_message_does_not_replace_the_last_turns_trace(settings: Settings) -> None:
    graph = build_graph(registry=registry_with(), settings=settings, checkpointer="memory")
    first = run(graph, "what is 2+2?", "t6")
    again = dict(graph.invoke({"messages": []}, {"configurable": {"thread_id": "t6"}}))
    assert again["control_stop_reason"] == "error" and again["control_run_id"] != first["control_run_id"]
    traces = {t["run_id"]: t for t in open_store(settings).traces()}
    assert traces[first["control_run_id"]]["stop_reason"] == "success"
    assert traces[again["control_run_id"]]["stop_reason"] == "error"


def test_text_log_lines_keep_the_cli_shape_and_add_the_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor().log_filter())
    handler.setFormatter(formatter("text", Redactor()))
    logger = logging.getLogger("routegraph.test.text")
    logger.addHandler(handler)
    try:
        with node_context("probe", {"control_run_id": "run-9"}, {"configurable": {"thread_id": "th-9"}}):
            try:
                raise RuntimeError(f"boom {SECRET}")
            except RuntimeError:
                logger.warning("failed with %s", SECRET, exc_info=True)
        logger.warning("outside a run")
    finally:
        logger.removeHandler(handler)
    first, *rest = stream.getvalue().splitlines()
    assert (
        first
        == "routegraph.test.text: WARNING: failed with sk-proj-*** run_id=run-9 thread_id=th-9 node=probe"
    )
    assert rest[0] == "Traceback (most recent call last):" and "RuntimeError: boom sk-proj-***" in rest
    assert rest[-1] == "routegraph.test.text: WARNING: outside a run"
    assert SECRET not in stream.getvalue()


def test_structlog_is_imported_with_the_first_log_line_not_before() -> None:
    """A `routegraph` call that logs nothing does not pay for structlog's import (it brings
    structlog.dev's tracebacks and the pieces of rich and pygments they use); the first line
    formatted imports it, and carries the node's context as before."""
    import subprocess
    import sys

    code = """
import io, logging, sys
from graph.ops.logs import formatter, node_context
from graph.redact import Redactor
stream = io.StringIO()
handler = logging.StreamHandler(stream)
handler.setFormatter(formatter("text", Redactor()))
logger = logging.getLogger("routegraph.test.deferred")
logger.addHandler(handler)
with node_context("probe", {"control_run_id": "run-1"}, {"configurable": {"thread_id": "th-1"}}):
    before = "structlog" in sys.modules
    logger.warning("hello")
print(before, "structlog" in sys.modules, stream.getvalue().strip())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        "False True routegraph.test.deferred: WARNING: hello run_id=run-1 thread_id=th-1 node=probe"
    )
