"""Hostile-input and fault probes, round 2: what an attacker or a confused user sends to each entry
point (the command line, the HTTP app langgraph.json mounts, the pools' API), each answered with a
clear error and nothing lost, never a traceback, a 500, a hang or an out-of-memory kill.

Each test names the probe; the fix it checks is in the module the probe reached:

- the dashboard's `since` (graph/ops/analytics.py `parse_since`, graph/ops/dashboard.py
  `volume_series`): `99999999999d` built a bucket per day since 270 million years ago and the
  server was killed for memory; `0001-01-01` and a 60-digit span were 500s;
- `POST /feedback` (graph/ops/http.py `read_json`, graph/ops/feedback.py): JSON nested past the
  parser's recursion limit and a run id or capability with a lone surrogate (`"\\udcff"`) were
  500s; a body of any size was read whole;
- the pools' API (graph/pools/pool.py, graph/pools/http.py, graph/pools/command.py): a capacity
  or weight of the wrong type was accepted and broke the pool's later steps; `replicas: 100000`
  built them all on the server's event loop; `--url ::::` was an unexpected error;
- the data files of `eval`, `tune` and `demo traffic` (evals/datasets.py, graph/ops/traffic.py):
  a `"\\udcff"` escape or deep nesting was an unexpected error; `eval --registry` on a 2 MB row
  ran for minutes (evals/registry_eval.py: the graph answers it `input_too_long`);
- the checkpoint database (graph/persistence/sqlite.py, graph/cli.py): a file that is not SQLite,
  a SQLite file of another schema, a data directory that is a file were unexpected errors;
- user ids (graph/cli.py `check_user_id`): a control character or invalid UTF-8 lost the turn's
  trace and profile; a "." was an unexpected error in `routegraph profile`;
- SIGTERM / SIGHUP during `ask` (graph/cli.py `stop_on_termination`): the process died without a
  word; now one line, exit 143 / 129, and the next `ask` finishes the turn. With a step blocked in
  its thread, SIGTERM and Ctrl-C waited for the step (LangGraph's executor waits for every step
  under way): now the turn runs on a thread `ask` does not wait for (graph/cli.py `_detached`), and
  a side effect stopped mid-step is made once, by the next `ask` (session 21).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from graph.builder import build_graph
from graph.cli import main
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.analytics import parse_since
from graph.ops.dashboard import MAX_BUCKETS, volume_series
from graph.ops.http import BODY_LIMIT, create_app
from graph.pools import PoolError, Pools
from graph.pools.http import pools_app
from graph.pools.serving import Served
from tests.conftest import BASE, answer, guide

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0
NOW = 1_796_000_000.0
TEMPLATES = [{"name": "echo_fast", "capability": "echo", "options": {"label": "F"}, "capacity": 2}]


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and "unexpected error" not in text, text


def write_registry(path: Path, **sections: Any) -> Path:
    data = copy.deepcopy(BASE)
    data["capabilities"].append(
        {"name": "echo", "class": "tests.test_pools:Variant", "classifier_guide": guide("echo this back")}
    )
    data["templates"] = TEMPLATES
    data.update(sections)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline environment for `main([...])` in this process: a data directory of its own and
    the test registry (lexical encoder)."""
    for name in list(os.environ):
        if name.startswith(("OPENAI", "ROUTEGRAPH")) and name != "ROUTEGRAPH_CACHE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(write_registry(tmp_path / "registry.yaml")))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    no_traceback(out, err)
    return code, out, err


# -- the dashboard's `since` ----------------------------------------------------------------------


def test_a_since_before_1970_is_every_trace_not_a_date_nobody_can_hold() -> None:
    assert parse_since("99999999999d", now=NOW) == 0.0  # was -8.6e15: 10**11 daily buckets
    assert parse_since("9" * 60 + "d", now=NOW) == 0.0  # was about -8.6e64, then NaN buckets
    assert parse_since("9" * 400 + "w", now=NOW) == 0.0  # float("9" * 400) is infinity
    assert parse_since("0001-01-01") == 0.0  # was year 1: "year 0 is out of range" in the buckets
    assert parse_since("1970-01-02") == DAY
    assert parse_since("3d", now=NOW) == NOW - 3 * DAY


def test_the_volume_series_holds_at_most_ten_years_of_weeks() -> None:
    series = volume_series([NOW - 5 * DAY, NOW - 1], since=0.0, now=NOW)
    assert series["unit"] == "week" and len(series["buckets"]) <= MAX_BUCKETS + 1
    assert sum(b["turns"] for b in series["buckets"]) == 2
    assert len(volume_series([], since=NOW - 7 * DAY, now=NOW)["buckets"]) == 8  # unchanged below


@pytest.fixture
def ops_client(tmp_path: Path) -> Iterator[TestClient]:
    registry = write_registry(tmp_path / "registry.yaml")
    app = create_app(Settings.offline(tmp_path / "data", registry=registry))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("since", ["99999999999d", "9" * 60 + "d", "0001-01-01", "1969-12-31T23:59:59"])
def test_the_dashboard_answers_any_since_without_a_500(ops_client: TestClient, since: str) -> None:
    reply = ops_client.get("/dashboard/data", params={"since": since})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["volume"]["buckets"]) <= MAX_BUCKETS + 1


# -- POST /feedback -------------------------------------------------------------------------------


def test_feedback_refuses_what_it_cannot_read_with_a_4xx(ops_client: TestClient) -> None:
    deep = b"[" * 20_000 + b"]" * 20_000  # 40 kB, under the body limit
    assert ops_client.post("/feedback", content=deep).status_code == 400  # was a RecursionError, 500
    huge = b'{"run_id": "x", "verdict": "good", "note": "' + b"n" * BODY_LIMIT + b'"}'
    reply = ops_client.post("/feedback", content=huge)
    assert reply.status_code == 413 and "larger than" in reply.json()["error"]
    # A run id with a lone surrogate names no run (it cannot even be looked up): 404, not a 500.
    reply = ops_client.post("/feedback", content=b'{"run_id": "\\udcff", "verdict": "good"}')
    assert reply.status_code == 404 and reply.json()["error"].startswith("no trace of run '\ufffd'")
    reply = ops_client.post("/feedback", content=b'{"run_id": "' + b"r" * 5000 + b'", "verdict": "bad"}')
    assert reply.status_code == 404 and len(reply.json()["error"]) < 200  # the id is not echoed whole
    reply = ops_client.post("/feedback", content=b'{"run_id": "x", "correct": ["\\udcff"]}')
    assert reply.status_code == 400 and reply.json()["error"].startswith("unknown capability \ufffd")


def test_feedback_on_a_real_run_stores_a_note_with_a_lone_surrogate(tmp_path: Path) -> None:
    registry_path = write_registry(tmp_path / "registry.yaml")
    settings = Settings.offline(tmp_path / "data", registry=registry_path)
    graph = build_graph(registry=Registry.from_file(registry_path), settings=settings, checkpointer="memory")
    state = graph.invoke({"messages": [("user", "what is 2*3")]}, {"configurable": {"thread_id": "fb"}})
    run_id = state["control_run_id"]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = json.dumps({"run_id": run_id, "verdict": "good", "note": "odd \udcff byte"})
        reply = client.post("/feedback", content=body.encode("utf-8", "surrogatepass"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["note"] == "odd \ufffd byte"


# -- the pools' API -------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Served:
    registry = write_registry(tmp_path / "registry.yaml")
    settings = Settings.offline(tmp_path / "data", registry=registry)
    return Served(
        registry, lambda r, p: build_graph(registry=r, settings=settings, checkpointer="memory", pools=p)
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"capacity": "abc"},
        {"capacity": -3},
        {"capacity": 0},
        {"capacity": 1.5},
        {"capacity": True},
        {"weight": "heavy"},
        {"weight": -1},
        {"weight": 0},
        {"weight": None, "raw": b'{"template": "echo_fast", "weight": NaN}'},
        {"weight": None, "raw": b'{"template": "echo_fast", "weight": 1e999}'},
    ],
    ids=[
        "capacity str",
        "capacity negative",
        "capacity 0",
        "capacity float",
        "capacity bool",
        "weight str",
        "weight negative",
        "weight 0",
        "weight NaN",
        "weight inf",
    ],
)
def test_an_instance_with_a_bad_capacity_or_weight_is_refused_and_the_pool_still_serves(
    served: Served, extra: dict[str, Any]
) -> None:
    client = TestClient(pools_app(lambda: served), raise_server_exceptions=False)
    raw = extra.pop("raw", None)
    body = raw if raw is not None else json.dumps({"template": "echo_fast", **extra}).encode()
    reply = client.post("/pools/instances", content=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith(("capacity must be", "weight must be"))
    pool = next(p for p in client.get("/pools").json()["pools"] if p["capability"] == "echo")
    assert [i["name"] for i in pool["instances"]] == ["echo"]
    state = served.invoke({"messages": [("user", "echo this back")]}, {"configurable": {"thread_id": "p"}})
    assert state["control_stop_reason"] == "success"


def test_good_capacities_and_weights_are_still_taken(served: Served) -> None:
    client = TestClient(pools_app(lambda: served), raise_server_exceptions=False)
    made = client.post("/pools/instances", json={"template": "echo_fast", "capacity": 3, "weight": 2})
    assert made.status_code == 201 and made.json()["instance"]["capacity"] == 3
    assert made.json()["instance"]["weight"] == 2


def test_scaling_past_the_limit_is_refused_at_once(served: Served) -> None:
    client = TestClient(pools_app(lambda: served), raise_server_exceptions=False)
    started = time.monotonic()
    reply = client.post("/pools/scale", json={"name": "echo", "replicas": 100_000})
    assert reply.status_code == 400 and reply.json()["error"] == "replicas must be 0 to 100"
    assert time.monotonic() - started < 5
    assert len(client.post("/pools/scale", json={"name": "echo", "replicas": 100}).json()["instances"]) == 100
    reply = client.post("/pools/instances", json={"template": "echo_fast"})
    assert reply.status_code == 400 and "most live instances" in reply.json()["error"]


def test_the_pools_api_refuses_unreadable_bodies_with_a_4xx(served: Served) -> None:
    client = TestClient(pools_app(lambda: served), raise_server_exceptions=False)
    assert client.post("/pools/scale", content=b"[" * 20_000 + b"]" * 20_000).status_code == 400
    assert client.post("/pools/instances", content=b"{" + b" " * (1 << 20) + b"}").status_code == 413
    assert client.post("/pools/reload").status_code == 200  # no body is still an empty object


def test_pools_refuses_an_address_that_is_not_http(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("::::", "ftp://127.0.0.1/", "file:///etc/passwd", "http://127.0.0.1:99999"):
        code, out, err = run(capsys, "pools", "list", "--url", url)
        assert (code, out) == (2, ""), err
        assert err.startswith("routegraph pools: --url takes the server's http:// or https:// address")


def test_pools_retire_sends_the_instance_name_as_one_path_segment(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            seen.append(self.path)
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "no live instance"}')

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, _, _ = run(capsys, "pools", "retire", "../reload?x=1", "--url", url, "--json")
    finally:
        server.shutdown()
    assert code == 2 and seen == ["/pools/instances/..%2Freload%3Fx%3D1"]


def test_a_pool_refuses_bad_loads_from_python_too() -> None:
    pools = Pools(Registry.from_dict({**copy.deepcopy(BASE), "templates": []}, source="<test>"))
    with pytest.raises(PoolError, match="replicas must be 0 to 100"):
        pools.scale("calculator", 101)


# -- data files ------------------------------------------------------------------------------------

SURROGATE_ROW = '{"text": "what is 2*3 \\udcff", "labels": ["calculator"], "split": "test"}\n'
DEEP_ROW = '{"text": "x", "labels": ' + "[" * 50_000 + "]" * 50_000 + ', "split": "test"}\n'


def test_eval_and_tune_read_a_surrogate_escape_as_a_replacement_character(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = env / "rows.jsonl"
    data.write_text(SURROGATE_ROW + '{"text": "what time is it", "labels": ["clock"], "split": "test"}\n')
    code, out, _ = run(
        capsys, "eval", "--data", str(data), "--registry", str(env / "registry.yaml"), "--json", "--quiet"
    )
    assert code == 0 and json.loads(out)["rows"] == 2
    code, out, _ = run(capsys, "tune", "--data", str(data), "--json", "--quiet")
    assert code == 0 and json.loads(out)["rows"] == 2


def test_deeply_nested_rows_are_a_data_error_naming_the_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = env / "deep.jsonl"
    data.write_text(SURROGATE_ROW + DEEP_ROW)
    for argv in (
        ["eval", "--data", str(data), "--registry", str(env / "registry.yaml"), "--quiet"],
        ["tune", "--data", str(data), "--quiet"],
        ["demo", "traffic", "--n", "2", "--data", str(data)],
    ):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), err
        assert (f"{data}:2: " in err and "nested too deeply" in err) or "not a JSON object" in err, err


def test_demo_traffic_names_a_bad_row(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = env / "bad.jsonl"
    data.write_text('{"text": "hi", "labels": ["clock"]}\n{"labels": ["clock"]}\n')
    code, _, err = run(capsys, "demo", "traffic", "--n", "2", "--data", str(data))
    assert code == 2 and f"{data}:2: 'text' must be a non-empty string" in err, err


def test_eval_registry_routes_a_row_over_the_request_limit_nowhere_as_the_graph_does(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write_registry(env / "short.yaml", limits={"max_request_chars": 40})
    data = env / "long.jsonl"
    row = {"text": "what is 2*3 " * 20, "labels": ["calculator"], "split": "test"}
    data.write_text(json.dumps(row) + "\n" + SURROGATE_ROW)
    code, out, _ = run(capsys, "eval", "--data", str(data), "--registry", str(registry), "--json", "--quiet")
    result = json.loads(out)
    assert code == 0 and result["too_long_rows"] == 1
    assert [m["predicted"] for m in result["misrouted"]] == [[]]


# -- the checkpoint database and the data directory ------------------------------------------------


@pytest.mark.parametrize("content", [b"not a database" * 50, b"SQLite format 3\x00" + b"\x00" * 80])
def test_a_checkpoint_file_that_is_not_sqlite_is_one_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    (env / "data").mkdir()
    (env / "data" / "checkpoints.sqlite").write_bytes(content)
    for argv in (["ask", "what is 2*3", "--quiet"], ["threads", "list"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, "")
        assert "cannot use the checkpoint database" in err and "file is not a database" in err, err
        assert err.count("\n") == 1
    assert (env / "data" / "checkpoints.sqlite").read_bytes() == content  # nothing overwritten


def test_a_checkpoint_database_of_another_schema_fails_in_one_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "data").mkdir()
    with sqlite3.connect(env / "data" / "checkpoints.sqlite") as db:
        db.execute("CREATE TABLE checkpoints (x)")
        db.execute("CREATE TABLE writes (y)")
    code, out, err = run(capsys, "ask", "what is 2*3", "--quiet")
    assert (code, out) == (1, "")
    assert err.startswith(f"routegraph ask: a database in the data directory {env / 'data'} failed: "), err


def test_a_data_directory_that_is_a_file_is_one_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "data").write_text("a file where the data directory should be")
    code, out, err = run(capsys, "ask", "what is 2*3", "--quiet")
    assert (code, out) == (2, "") and "cannot make the directory" in err, err


# -- user ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["\udcff\udcfe", "bob\nalice", "\x1b[2J", "u" * 201])
def test_a_user_id_that_cannot_be_stored_is_refused_before_the_turn(
    env: Path, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    for argv in (["ask", "what is 2*3", "--user", user, "--quiet"], ["profile", "show", user]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), err
        assert "invalid user id" in err and "1 to 200 printable characters" in err
    assert not (env / "data" / "traces.sqlite").exists()  # no turn ran


def test_a_user_id_with_a_dot_is_kept_by_profile(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # LangGraph's stores refuse "." in a namespace label; the id is encoded (session 20), not refused.
    code, out, err = run(capsys, "profile", "set", "jane.doe", "language=fr")
    assert code == 0 and '"user_id": "jane.doe"' in out and '"language": "fr"' in out, err
    code, out, err = run(capsys, "profile", "show", "jane.doe")
    assert code == 0 and '"language": "fr"' in out, err


def test_a_plain_user_id_still_works(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ask", "what is 2*3", "--user", "jane-doe 42", "--quiet")
    assert (code, out) == (0, "2*3 = 6.\n")


# -- signals --------------------------------------------------------------------------------------


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of `python -m graph.cli` in a subprocess: this checkout, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    env.update(
        PYTHONPATH=str(ROOT),
        ROUTEGRAPH_DATA_DIR=str(tmp_path / "data"),
        ROUTEGRAPH_LLM="off",
        LANGSMITH_TRACING="false",
        ROUTEGRAPH_CACHE_DIR=os.environ.get("ROUTEGRAPH_CACHE_DIR", str(tmp_path / "cache")),
    )
    return env


def stop_mid_step(
    command: list[str], env: dict[str, str], capability: str, signum: int
) -> tuple[int, str, float]:
    """Start `command`, send `signum` once `capability`'s step has started (its progress line);
    return the exit code, the rest of stderr and the seconds from the signal to the exit."""
    proc = subprocess.Popen(
        command,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Python takes Ctrl-C (raises KeyboardInterrupt) unless it starts with SIGINT ignored, as
        # a test run started in the background does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # the progress lines: the step is under way when it starts
        seen.append(line)
        if f"{capability} started" in line:
            break
    else:
        proc.kill()
        raise AssertionError(f"the step never started: {seen}")
    time.sleep(0.3)  # well into the step (a block or a sleep)
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    took = time.monotonic() - sent
    no_traceback(out, err)
    assert out == "", out
    return proc.returncode, err, took


STOPPED = {
    signal.SIGTERM: "stopped by SIGTERM",
    signal.SIGHUP: "stopped by SIGHUP",
    signal.SIGINT: "interrupted",
}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_during_a_blocked_step_stops_ask_at_once_and_the_next_ask_finishes_the_turn(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGTERM, SIGHUP or Ctrl-C while a capability's step blocks its thread (a `time.sleep`, a
    call that does not return): one line, exit 128 + the signal (130 for Ctrl-C) within a second
    or so. LangGraph's executor waited for the step (here 600 s, its timeout 30 s) before the
    command could stop. The next `ask` on the thread finishes the turn."""
    registry = write_registry(tmp_path / "registry.yaml")
    env = cli_env(tmp_path)
    command = [sys.executable, "-m", "graph.cli", "ask", "--registry", str(registry), "--thread", "t"]
    blocked = {**env, "ROUTEGRAPH_FAULTS": "calculator:block:600"}
    code, err, took = stop_mid_step([*command, "what is 2*3"], blocked, "calculator", signum)
    assert code == 128 + signum, err
    assert err == f"routegraph ask: {STOPPED[signum]} (the next `ask` on this thread finishes the turn)\n"
    assert took < 3, took
    done = subprocess.run(
        [*command, "what time is it", "--quiet"], env=env, capture_output=True, text=True, timeout=120
    )
    no_traceback(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert "[earlier turn · success] 2*3 = 6." in done.stderr


@pytest.mark.parametrize(
    "fault", ["refund:slow:600", "refund:block:600"], ids=["before the refund", "after the refund"]
)
def test_a_side_effect_stopped_mid_step_is_made_once_by_the_next_ask(tmp_path: Path, fault: str) -> None:
    """SIGTERM during an approved refund's step: the turn's thread goes with the process, the step is
    recorded nowhere, and the next `ask` runs it again with the same step id. Stopped before the
    refund was written (`slow`: it waits, then works), the refund is made then; stopped after
    (`block`: it works, then waits), the step finds the refund it made and does not make another."""
    from graph.config.registry import default_registry

    data = yaml.safe_load(default_registry().read_text(encoding="utf-8"))
    data["classifier"] = {**data["classifier"], "encoder": "lexical", "finetune": False}
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(data), encoding="utf-8")
    env = cli_env(tmp_path)
    command = [sys.executable, "-m", "graph.cli", "ask", "--registry", str(registry), "--thread", "t"]
    request = "refund my duplicate charge, I'm jane@acme.io"
    faulty = {**env, "ROUTEGRAPH_FAULTS": fault}
    code, err, took = stop_mid_step([*command, request, "--approve"], faulty, "refund", signal.SIGTERM)
    assert (code, took < 3) == (143, True), (err, took)
    database = tmp_path / "data" / "support.sqlite"

    def refunds() -> list[tuple[str, str]]:
        with sqlite3.connect(database) as db:
            return db.execute(
                "SELECT charge_id, idempotency_key FROM refunds WHERE charge_id = 'CH-2003'"
            ).fetchall()

    assert len(refunds()) == (0 if fault.endswith(":slow:600") else 1)  # nothing half-written
    done = subprocess.run(  # no --approve: the approval given is recorded, not asked again
        [*command, "what time is it", "--quiet"], env=env, capture_output=True, text=True, timeout=120
    )
    no_traceback(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert "[earlier turn · success]" in done.stderr and "Approve?" not in done.stderr
    made = refunds()
    assert len(made) == 1 and made[0][1].startswith("t:refund:"), made


# -- what a Python caller puts in `configurable` ---------------------------------------------------


@pytest.mark.parametrize("user", [{"team": "a"}, "\udcff", "nul\x00byte"], ids=["dict", "surrogate", "NUL"])
def test_a_user_id_the_driver_cannot_bind_still_leaves_the_trace(tmp_path: Path, user: Any) -> None:
    """From Python (and Studio), `configurable.user_id` is whatever the caller sent: the turn is
    answered and its trace written (it was lost to "type 'dict' is not supported" / "surrogates
    not allowed"), with the id as text."""
    from graph.ops.store import open_store

    settings = Settings.offline(tmp_path / "data")
    graph = build_graph(registry=Registry.from_dict(copy.deepcopy(BASE), source="<test>"), settings=settings)
    config: Any = {"configurable": {"thread_id": "t", "user_id": user}}
    state = graph.invoke({"messages": [("user", "what is 2*3")]}, config)
    assert state["control_stop_reason"] == "success"
    trace = open_store(settings).get(state["control_run_id"])
    assert trace is not None and trace["stop_reason"] == "success"
    assert trace["user_id"] == (str(user) if isinstance(user, dict) else user).replace(
        "\udcff", "\ufffd"
    ).replace("\x00", "\ufffd")


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"configurable": {}},
        {"configurable": {"user_id": "u"}},
        {"configurable": {"thread_id": None}},
    ],
    ids=["none", "empty", "empty configurable", "user only", "thread None"],
)
def test_a_run_without_a_thread_id_names_what_to_pass(tmp_path: Path, config: Any) -> None:
    """A checkpointed graph run (or its state read or updated) without a thread id raised LangGraph's
    ValueError "Checkpointer requires one or more of the following 'configurable' keys" (a KeyError
    'thread_id' with other keys; a None id was stored as the thread "None"). Now `MissingThreadId`,
    a routegraph `ConfigError` (a ValueError still), naming the config to pass; nothing is written."""
    import asyncio

    from graph import ConfigError, MissingThreadId

    graph = build_graph(
        registry=Registry.from_dict(copy.deepcopy(BASE), source="<test>"),
        settings=Settings.offline(tmp_path / "data"),
        checkpointer="sqlite",
    )
    inputs = {"messages": [("user", "what is 2*3")]}
    calls = [
        lambda: graph.invoke(inputs, config),
        lambda: list(graph.stream(inputs, config)),
        lambda: asyncio.run(graph.ainvoke(inputs, config)),
        lambda: graph.get_state(config),
        lambda: asyncio.run(graph.aget_state(config)),
        lambda: graph.update_state(config, {"messages": []}),
    ]
    for call in calls:
        with pytest.raises(MissingThreadId) as raised:
            call()
        assert isinstance(raised.value, ConfigError) and isinstance(raised.value, ValueError)
        assert str(raised.value).startswith("no thread id: ")
        assert 'graph.invoke(inputs, {"configurable": {"thread_id": "..."}})' in str(raised.value)
    assert graph.checkpointer is not None and list(graph.checkpointer.list(None)) == []
    state = graph.invoke(inputs, {"configurable": {"thread_id": "t"}})  # the same graph, as documented
    assert state["control_stop_reason"] == "success"


def test_a_run_cut_by_a_low_recursion_limit_says_what_to_pass_and_the_turn_can_be_finished(
    tmp_path: Path,
) -> None:
    """`recursion_limit=2` cut the run with LangGraph's GraphRecursionError and no stop_reason. Now
    `RecursionLimitReached` (a `StopError` with stop_reason `max_steps`, a RecursionError as
    LangGraph's is) naming the limit to pass; the turn is left on its thread, and
    `graph.invoke(None, config)` finishes it."""
    import asyncio

    from graph import RecursionLimitReached, StopError

    graph = build_graph(
        registry=Registry.from_dict(copy.deepcopy(BASE), source="<test>"),
        settings=Settings.offline(tmp_path / "data"),
        checkpointer="sqlite",
    )
    own = graph.config["recursion_limit"]
    inputs = {"messages": [("user", "what is 2*3")]}
    runs = {
        "sync": lambda config: graph.invoke(inputs, config),
        "async": lambda config: asyncio.run(graph.ainvoke(inputs, config)),
    }
    for name, run in runs.items():
        config: Any = {"configurable": {"thread_id": name}, "recursion_limit": 2}
        with pytest.raises(RecursionLimitReached) as raised:
            run(config)
        error = raised.value
        assert isinstance(error, StopError) and isinstance(error, RecursionError)
        assert error.stop_reason == "max_steps"
        assert str(error).startswith("the run reached recursion_limit=2 ")
        assert f"pass at least {own}, the graph's own" in str(error)
        assert "graph.invoke(None, config) finishes it" in str(error)
        assert graph.get_state(config).next  # unfinished, as the message says
        state = graph.invoke(None, {"configurable": {"thread_id": name}})
        assert state["control_stop_reason"] == "success" and answer(state) == "2*3 = 6."
    state = graph.invoke(inputs, {"configurable": {"thread_id": "high"}, "recursion_limit": own})
    assert state["control_stop_reason"] == "success"


def test_a_thread_lock_is_held_when_its_note_of_the_holder_cannot_be_written(tmp_path: Path) -> None:
    """On a full disk the lock file's note (who holds it) cannot be written: the lock is still
    taken (it was an unexpected OSError: No space left on device, before the turn)."""
    from graph.persistence.locks import FileLock

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    lock = FileLock(tmp_path / "checkpoints.sqlite", "t")
    lock.path.parent.mkdir(parents=True)
    lock.path.symlink_to("/dev/full")  # every write: ENOSPC
    assert lock.try_acquire()
    lock.release()
    assert not lock.path.exists()


def test_a_cache_directory_that_cannot_be_made_is_exit_2_before_the_turn(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (env / "a-file").write_text("not a directory")
    monkeypatch.setenv("ROUTEGRAPH_CACHE_DIR", str(env / "a-file" / "cache"))
    code, out, err = run(capsys, "ask", "what is 2*3", "--quiet")  # was a turn ending `error`
    assert (code, out) == (2, "")
    assert err.startswith(f"routegraph ask: cannot make the cache directory {env / 'a-file' / 'cache'}"), err


def test_serve_on_a_host_that_is_no_address_says_so(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("langgraph_api", reason="langgraph-cli[inmem] is not installed")
    code, out, err = run(capsys, "serve", "--host", "999.1.1.1", "--port", "8999")
    assert (code, out) == (2, "")
    assert err.startswith("routegraph serve: cannot listen on '999.1.1.1': "), (
        err
    )  # was "port 8999 ... is in use"


# -- secrets --------------------------------------------------------------------------------------

KEY = "sk-proj-" + "Zq8" * 12


def test_validate_does_not_echo_a_key_put_in_the_wrong_field(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = env / "keyed.yaml"
    registry.write_text(yaml.safe_dump({**copy.deepcopy(BASE), "limits": {"max_steps": KEY}}))
    code, out, err = run(capsys, "validate", str(registry))
    assert code == 2 and "limits.max_steps: wrong type" in err, err
    assert "Zq8Zq8" not in out + err  # the problem quoted the value as it found it


# -- demo reset --db -------------------------------------------------------------------------------


def test_demo_reset_leaves_a_database_that_is_not_the_support_desks_alone(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo reset --yes --db` pointed at the wrong file (the checkpoints, the traces, anything)
    deleted every row of every table in it, then said "threads are kept". Now it is refused and
    the file is left as it was; the support desk's own file, new or existing, is still reset."""
    code, out, _ = run(capsys, "ask", "what is 2*3", "--thread", "kept", "--quiet")
    assert code == 0
    test_registry = os.environ["ROUTEGRAPH_REGISTRY"]
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(ROOT / "registry.yaml"))  # the support desk's
    checkpoints = env / "data" / "checkpoints.sqlite"

    def rows() -> int:
        with sqlite3.connect(checkpoints) as db:
            return int(db.execute("SELECT count(*) FROM checkpoints").fetchone()[0])

    before = rows()
    assert before > 0
    junk = env / "notes.txt"
    junk.write_text("not a database at all\n" * 20)
    for target, says in ((checkpoints, "it has the tables checkpoints"), (junk, "file is not a database")):
        code, _, err = run(capsys, "demo", "reset", "--yes", "--db", str(target))
        assert code == 2 and f"{target} is not a support desk database ({says}" in err, err
    assert rows() == before and junk.read_text() == "not a database at all\n" * 20
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", test_registry)
    code, out, _ = run(capsys, "threads", "show", "kept")
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(ROOT / "registry.yaml"))
    assert code == 0 and "2*3 = 6." in out
    fresh = env / "elsewhere" / "support.sqlite"
    for _ in range(2):  # made, then reset again
        code, out, _ = run(capsys, "demo", "reset", "--yes", "--db", str(fresh))
        assert code == 0 and f"{fresh}: demo data restored" in out


# -- replay --candidate ----------------------------------------------------------------------------


def test_replay_reads_a_candidate_with_the_registrys_guards(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The candidate (a registry or an overlay) was read with a bare `yaml.safe_load`: YAML nested
    3,000 deep was an unexpected RecursionError, /dev/zero was read until memory ran out."""
    deep = env / "deep.yaml"
    deep.write_text("classifier: " + "[" * 3000 + "]" * 3000 + "\n")
    cases = [(deep, "nested too deeply"), (Path("/dev/zero"), "the file is too large")]
    for candidate, says in cases:
        if not candidate.exists():
            continue
        code, out, err = run(capsys, "replay", "--candidate", str(candidate))
        assert (code, out) == (2, ""), err
        assert err.startswith(f"routegraph replay: invalid registry: {candidate}") and says in err, err
    overlay = env / "overlay.yaml"
    overlay.write_text("classifier: {threshold: 0.4}\n")
    code, out, _ = run(capsys, "replay", "--candidate", str(overlay))
    assert code == 0 and out.startswith("Replayed 0 distinct requests")


def test_a_registry_broken_after_start_up_is_a_503_not_a_500(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry.yaml")
    app = create_app(Settings.offline(tmp_path / "data", registry=registry))
    registry.write_text("capabilities: 3\n", encoding="utf-8")  # an edit in progress
    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.post("/feedback", json={"run_id": "x", "correct": ["calculator"]})
        assert reply.status_code == 503 and reply.json()["error"].startswith(
            "cannot check the capabilities: "
        )
        assert (
            client.post("/feedback", json={"run_id": "x", "verdict": "good"}).status_code == 404
        )  # no names needed
        reply = client.get("/dashboard/data")
        assert reply.status_code == 503 and "capabilities: wrong type" in reply.json()["error"]


def test_eval_refuses_a_row_longer_than_any_request_naming_the_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROUTEGRAPH_REGISTRY")  # the harness's own registry (with one, see above)
    data = env / "long.jsonl"
    rows = [
        {"text": "what is 2*3", "labels": ["calculator"], "split": "train"},
        {"text": "what time is it", "labels": ["clock"], "split": "train"},
        {"text": "what is 4*5 " * 1000, "labels": ["calculator"], "split": "test"},  # 11,999 stripped
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    started = time.monotonic()
    code, out, err = run(capsys, "eval", "--data", str(data), "--encoder", "lexical", "--quiet")
    assert (code, out) == (2, ""), err
    assert err.startswith(f"routegraph eval: {data}:3: 11,999 characters, more than a request can be"), err
    assert time.monotonic() - started < 10
