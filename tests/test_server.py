"""`routegraph serve` (`langgraph dev` on the project's langgraph.json) serves the graph: threads,
runs, an approval interrupt resumed, state and history.

The server runs as a subprocess on a free local port, fully offline, started from an unrelated
directory with `--registry`; the test talks to it through `langgraph_sdk`, as Studio does.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BASE
from tests.testcaps import make_db

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip(
        "langgraph_api", reason="langgraph-cli[inmem] is not installed (./scripts/setup installs it)"
    )
    tmp = tmp_path_factory.mktemp("server")
    db = make_db(tmp / "shop.sqlite")
    registry = copy.deepcopy(BASE)  # the test registry: lexical encoder, no support domain
    registry["capabilities"] += [
        {
            "name": "lookup",
            "class": "tests.testcaps:Lookup",
            "options": {"db": str(db)},
            "classifier_guide": {
                "examples": [{"query": "find the account of alice"}, {"query": "look up customer bob"}]
            },
        },
        {
            "name": "payout",
            "class": "tests.testcaps:Payout",
            "options": {"db": str(db)},
            "approval": {"mode": "above", "field": "amount", "threshold": 100},
            "classifier_guide": {
                "examples": [{"query": "pay alice 20 dollars"}, {"query": "send a payout of 50 to bob"}]
            },
        },
    ]
    path = tmp / "registry.yaml"
    path.write_text(yaml.safe_dump(registry))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))},
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "ROUTEGRAPH_DATA_DIR": str(tmp / "data"),
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "graph.cli", "serve", "--port", str(port), "--registry", path.name],
        cwd=tmp,  # a relative --registry, from another directory: serve runs the server in the checkout
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/ok", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "routegraph serve did not start:\n" + (tmp / "server.log").read_text()[-3000:]
                )
            time.sleep(0.3)
        yield {"url": url, "db": db, "log": tmp / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_server_runs_a_request_and_keeps_the_thread(server: dict[str, Any]) -> None:
    from langgraph_sdk import get_client

    async def scenario() -> None:
        client = get_client(url=server["url"])
        thread = await client.threads.create()
        message = {"role": "user", "content": "What is 12*7 and what time is it in Tokyo?"}
        state = await client.runs.wait(thread["thread_id"], "routegraph", input={"messages": [message]})
        assert isinstance(state, dict)
        assert state["control_stop_reason"] == "success"
        assert "84" in state["messages"][-1]["content"]
        follow_up = {"role": "user", "content": "and in Paris?"}
        state = await client.runs.wait(thread["thread_id"], "routegraph", input={"messages": [follow_up]})
        assert isinstance(state, dict) and "Europe/Paris" in state["messages"][-1]["content"]
        history = await client.threads.get_history(thread["thread_id"], limit=100)
        assert len(history) > 10  # a checkpoint per step, kept by the server

    asyncio.run(scenario())


def test_server_pauses_for_approval_and_resumes(server: dict[str, Any]) -> None:
    import sqlite3

    from langgraph_sdk import get_client

    async def scenario() -> None:
        client = get_client(url=server["url"])
        thread = await client.threads.create()
        message = {"role": "user", "content": "pay alice 500 dollars"}
        await client.runs.wait(thread["thread_id"], "routegraph", input={"messages": [message]})
        current = await client.threads.get_state(thread["thread_id"])
        interrupts = [i for task in current["tasks"] for i in task.get("interrupts", [])]
        assert interrupts and interrupts[0]["value"]["type"] == "approval"
        assert sqlite3.connect(server["db"]).execute("SELECT count(*) FROM payouts").fetchone() == (0,)
        state = await client.runs.wait(thread["thread_id"], "routegraph", command={"resume": True})
        assert isinstance(state, dict) and state["control_stop_reason"] == "success"
        assert "paid 500" in state["messages"][-1]["content"]
        assert sqlite3.connect(server["db"]).execute("SELECT count(*) FROM payouts").fetchone() == (1,)

    asyncio.run(scenario())


def test_server_publishes_input_and_output_schemas(server: dict[str, Any]) -> None:
    """Studio draws its input form from the input schema: the served graph publishes both."""
    from langgraph_sdk import get_client

    async def scenario() -> dict[str, Any]:
        client = get_client(url=server["url"])
        assistants = await client.assistants.search(graph_id="routegraph")
        return dict(await client.assistants.get_schemas(assistants[0]["assistant_id"]))

    schemas = asyncio.run(scenario())
    assert schemas["input_schema"] is not None, "no input schema (Studio shows no input form)"
    assert list(schemas["input_schema"]["properties"]) == ["messages"]
    assert schemas["input_schema"]["required"] == ["messages"]
    output = schemas["output_schema"]
    assert output is not None
    for field in ("messages", "control_stop_reason", "planning_plan", "execution_results"):
        assert field in output["properties"], field
    assert "max_seconds" in str(output["properties"]["control_stop_reason"])


def test_serve_prints_the_url_that_answers(server: dict[str, Any]) -> None:
    """`routegraph serve` announces the URL once the server answers there (Studio connects to it)."""
    deadline = time.monotonic() + 30
    while True:
        log = server["log"].read_text(encoding="utf-8", errors="replace")
        announced = [line for line in log.splitlines() if line.startswith("routegraph: serving on ")]
        if announced or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(announced) == 1, log[-2000:]
    assert announced[0].split()[3] == server["url"]
