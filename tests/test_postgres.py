"""The PostgreSQL checkpointer against a real server: requests, approvals across a restart, the
threads CLI, a kill -9 mid-plan, and clear errors for a bad ROUTEGRAPH_POSTGRES_URL.

The server: `ROUTEGRAPH_TEST_POSTGRES_URL` (scripts/test starts one with scripts/postgres), else this
module starts its own with scripts/postgres, else the tests that need it are skipped with the reason
(`ROUTEGRAPH_TEST_POSTGRES_SKIP` carries the reason from scripts/test). Every test gets a fresh
database on that server.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.builder import build_graph
from graph.cli import main
from graph.config.settings import Settings
from graph.errors import CheckpointerError
from graph.persistence.common import redact
from graph.persistence.postgres import PostgresCheckpointer
from graph.persistence.sqlite import SqliteCheckpointer
from tests.conftest import BASE, answer, registry_with
from tests.test_durability import crash_mid_plan_and_resume
from tests.test_graph import approval_graph
from tests.testcaps import make_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running PostgreSQL server for this test session (or a skip saying why not)."""
    url = os.environ.get("ROUTEGRAPH_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    reason = os.environ.get("ROUTEGRAPH_TEST_POSTGRES_SKIP")
    if reason:
        pytest.skip(f"no PostgreSQL server: {reason}")
    directory = Path(tempfile.gettempdir()) / f"routegraph-pg-pytest-{os.getpid()}"
    script = str(ROOT / "scripts" / "postgres")
    try:
        started = subprocess.run(
            ["bash", script, "start", str(directory)], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", script, "stop", str(directory)], capture_output=True, timeout=60)
        pytest.skip("no PostgreSQL server: scripts/postgres start timed out")
    if started.returncode != 0:
        lines = started.stderr.strip().splitlines() or ["scripts/postgres start failed"]
        pytest.skip(f"no PostgreSQL server: {lines[-1]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "stop", str(directory)], capture_output=True, timeout=60)


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped afterwards."""
    name = f"routegraph_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_settings(tmp_path: Path, url: str) -> Settings:
    return Settings.offline(tmp_path, postgres_url=url)


def checkpointed_threads(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def ask(graph: Any, text: str, thread: str) -> dict[str, Any]:
    return dict(graph.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}))


def test_auto_picks_postgres_when_a_url_is_configured(pg_url: str, tmp_path: Path) -> None:
    graph = build_graph(registry=registry_with(), settings=pg_settings(tmp_path, pg_url))
    assert isinstance(graph.checkpointer, PostgresCheckpointer)
    state = ask(graph, "What is 12*7 and what time is it in Tokyo?", "sync")
    assert state["control_stop_reason"] == "success", answer(state)
    assert "84" in answer(state) and "Asia/Tokyo" in answer(state)
    second = ask(graph, "and in Paris?", "sync")  # the same thread continues from its checkpoint
    assert "Europe/Paris" in answer(second) and second["task_turn"] == 2
    assert checkpointed_threads(pg_url) == {"sync"}
    assert not (tmp_path / "checkpoints.sqlite").exists()  # nothing went to SQLite
    graph.checkpointer.close()


async def test_async_requests_run_concurrently(pg_url: str, tmp_path: Path) -> None:
    graph = build_graph(registry=registry_with(), settings=pg_settings(tmp_path, pg_url))
    states = await asyncio.gather(
        *(
            graph.ainvoke(
                {"messages": [HumanMessage(f"what is {n}*7")]}, {"configurable": {"thread_id": f"a{n}"}}
            )
            for n in range(2, 6)
        )
    )
    assert [answer(dict(s)) for s in states] == [f"{n}*7 = {n * 7}." for n in range(2, 6)]
    assert all(s["control_stop_reason"] == "success" for s in states)
    assert checkpointed_threads(pg_url) == {"a2", "a3", "a4", "a5"}
    snapshot = await graph.aget_state({"configurable": {"thread_id": "a3"}})
    assert snapshot.values["control_stop_reason"] == "success" and not snapshot.next
    graph.checkpointer.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_approval_is_resumed_by_a_new_graph_on_the_same_database(
    pg_url: str, tmp_path: Path, mode: str
) -> None:
    db = make_db(tmp_path / "shop.sqlite")

    def make_graph(registry: Any) -> Any:  # what a restarted process does: a new graph, same URL
        return build_graph(registry=registry, settings=pg_settings(tmp_path, pg_url))

    first = approval_graph(make_graph, db)
    config: Any = {"configurable": {"thread_id": "hitl"}}
    first.invoke({"messages": [HumanMessage("pay alice 500 dollars")]}, config)
    (pending,) = [i for t in first.get_state(config).tasks for i in t.interrupts]
    assert pending.value["type"] == "approval" and "amount=500" in pending.value["steps"][0]["question"]
    first.checkpointer.close()  # the first process is gone

    second = approval_graph(make_graph, db)
    (waiting,) = [i for t in second.get_state(config).tasks for i in t.interrupts]
    assert waiting.value == pending.value
    if mode == "sync":
        state = second.invoke(Command(resume=True), config)
    else:
        state = asyncio.run(second.ainvoke(Command(resume=True), config))
    assert state["control_stop_reason"] == "success" and "paid 500" in answer(state)
    rows = sqlite3.connect(db).execute("SELECT customer_id, amount FROM payouts").fetchall()
    assert rows == [(7, 500.0)]  # paid once, after the approval
    assert not second.get_state(config).next
    second.checkpointer.close()


def test_threads_cli_reads_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(copy.deepcopy(BASE)), encoding="utf-8")  # lexical: fast
    data = tmp_path / "data"
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(data))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    monkeypatch.setenv("ROUTEGRAPH_POSTGRES_URL", pg_url)
    registry = ["--registry", str(registry_file)]
    assert main(["ask", "what time is it in Tokyo?", "--thread", "kept", "--quiet", *registry]) == 0
    assert main(["ask", "what is 6*7", "--thread", "newer", "--quiet", *registry]) == 0
    capsys.readouterr()

    assert main(["threads", *registry, "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["thread_id"] for r in rows] == ["newer", "kept"]  # newest first
    assert rows[1]["stop_reason"] == "success" and rows[1]["turns"] == 1
    assert main(["threads", *registry, "list", "--limit", "1"]) == 0
    listed = capsys.readouterr().out
    assert "newer" in listed and "kept" not in listed

    assert main(["threads", *registry, "show", "kept", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [m["role"] for m in shown["messages"]] == ["human", "ai"]
    assert shown["steps"][0]["capability"] == "clock" and shown["checkpoints"] > 3
    assert main(["threads", *registry, "show", "nope"]) == 1
    assert not (data / "checkpoints.sqlite").exists()
    assert checkpointed_threads(pg_url) == {"kept", "newer"}


def test_killed_mid_plan_resumes_from_postgres(pg_url: str, tmp_path: Path) -> None:
    crash_mid_plan_and_resume(tmp_path, postgres_url=pg_url)
    assert not (tmp_path / "checkpoints.sqlite").exists()
    assert checkpointed_threads(pg_url) == {"crash"}


# Configuration errors: no server needed.


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_malformed_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointerError, match="ROUTEGRAPH_POSTGRES_URL is not a valid PostgreSQL URL"):
        build_graph(registry=registry_with(), settings=pg_settings(tmp_path, "not a url"))


def test_unreachable_server_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://bob:s3cret@127.0.0.1:{closed_port()}/routegraph"
    with pytest.raises(CheckpointerError) as caught:
        build_graph(registry=registry_with(), settings=pg_settings(tmp_path, url))
    message = str(caught.value)
    assert message.startswith(
        "ROUTEGRAPH_POSTGRES_URL: cannot connect to PostgreSQL at postgresql://bob:***@"
    )
    assert "s3cret" not in message and "refused" in message


def test_cli_reports_a_bad_url_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROUTEGRAPH_POSTGRES_URL", f"postgresql://bob:s3cret@127.0.0.1:{closed_port()}/x")
    assert main(["threads", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("routegraph threads: ROUTEGRAPH_POSTGRES_URL: cannot connect")
    assert "\n" not in err and "Traceback" not in err and "s3cret" not in err


def test_explicit_postgres_needs_a_url_and_sqlite_stays_available(tmp_path: Path) -> None:
    with pytest.raises(CheckpointerError, match="ROUTEGRAPH_POSTGRES_URL"):
        build_graph(registry=registry_with(), settings=Settings.offline(tmp_path), checkpointer="postgres")
    auto = build_graph(registry=registry_with(), settings=Settings.offline(tmp_path))
    assert isinstance(auto.checkpointer, SqliteCheckpointer)  # no URL: SQLite, as before
    explicit = build_graph(
        registry=registry_with(),
        settings=pg_settings(tmp_path, "postgresql://nobody@127.0.0.1:1/never-contacted"),
        checkpointer="sqlite",
    )
    assert isinstance(explicit.checkpointer, SqliteCheckpointer)


def test_settings_read_the_url_from_the_environment(tmp_path: Path) -> None:
    env = {"ROUTEGRAPH_DATA_DIR": str(tmp_path), "ROUTEGRAPH_POSTGRES_URL": "postgresql://h/db"}
    assert Settings.from_env(env).postgres_url == "postgresql://h/db"
    assert Settings.from_env({"ROUTEGRAPH_DATA_DIR": str(tmp_path)}).postgres_url is None


def test_redact_masks_passwords() -> None:
    assert redact("postgresql://bob:s3:cr@t@db.example:5432/x") == "postgresql://bob:***@db.example:5432/x"
    assert redact("postgres://:s3cret@db/x?sslmode=require") == "postgres://:***@db/x?sslmode=require"
    assert redact("host=db password=s3cret dbname=x") == "host=db password=*** dbname=x"
    assert redact("postgresql://bob@db/x") == "postgresql://bob@db/x"


def test_sqlite_and_postgres_do_not_import_each_other() -> None:
    """Both build on graph/persistence/common.py; graph/persistence/__init__.py chooses between them."""
    for name, other in (("sqlite", "postgres"), ("postgres", "sqlite")):
        tree = ast.parse((ROOT / "graph" / "persistence" / f"{name}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        assert f"graph.persistence.{other}" not in imported, f"{name}.py imports {other}.py"


def test_without_a_url_nothing_loads_the_postgres_client() -> None:
    """psycopg is imported on first use of a URL, not at every start of the CLI or the graph."""
    code = "import sys, graph.cli, graph.builder; assert 'psycopg' not in sys.modules, 'psycopg loaded'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
