"""The HTTP extras: `/health`, `/metrics` and `/feedback` on the real `routegraph serve` (langgraph
dev, the app mounted through langgraph.json's `http.app`), next to the graph's own API; and the
same Starlette app under uvicorn on 127.0.0.1, unhealthy (503) when its stores cannot open."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from graph.config.settings import Settings
from tests.conftest import BASE
from tests.test_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def http(method: str, url: str, body: Any = None) -> tuple[int, str, str]:
    """(status, content type, body text) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)]
    return found[0] if found else 0.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip(
        "langgraph_api", reason="langgraph-cli[inmem] is not installed (./scripts/setup installs it)"
    )
    tmp = tmp_path_factory.mktemp("ops-server")
    path = tmp / "registry.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(BASE)))
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
        [sys.executable, "-m", "graph.cli", "serve", "--port", str(port), "--registry", str(path)],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
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
        yield {"url": url, "data": tmp / "data"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_served_runs_are_traced_counted_and_take_feedback(server: dict[str, Any]) -> None:
    from langgraph_sdk import get_client

    url = server["url"]
    status, kind, body = http("GET", url + "/health")
    assert status == 200 and kind.startswith("application/json")
    health = json.loads(body)
    assert health["ok"] is True
    assert {c["name"]: c["status"] for c in health["checks"]}["traces"] == "ok"

    _, kind, before = http("GET", url + "/metrics")
    assert kind.startswith("text/plain") and "# TYPE routegraph_runs_total counter" in before

    async def one_run() -> tuple[str, dict[str, Any]]:
        client = get_client(url=url)
        thread = await client.threads.create()
        run = await client.runs.create(
            thread["thread_id"],
            "routegraph",
            input={"messages": [{"role": "user", "content": "what is 12*7?"}]},
            config={"configurable": {"user_id": "u-7"}},
        )
        await client.runs.join(thread["thread_id"], run["run_id"])
        state = await client.threads.get_state(thread["thread_id"])
        return run["run_id"], state["values"]

    run_id, values = asyncio.run(one_run())
    assert values["control_stop_reason"] == "success"
    assert values["control_run_id"] == run_id  # the server's run id is the correlation id

    row = (
        sqlite3.connect(server["data"] / "traces.sqlite")
        .execute("SELECT stop_reason, user_id, selected FROM traces WHERE run_id = ?", (run_id,))
        .fetchone()
    )
    assert row == ("success", "u-7", '["calculator"]')

    _, _, after = http("GET", url + "/metrics")
    for name in ("routegraph_runs_total",):
        assert metric(after, name, stop_reason="success") == metric(before, name, stop_reason="success") + 1
    assert metric(after, "routegraph_step_duration_seconds_count", capability="calculator", status="ok") >= 1
    assert "routegraph_step_duration_seconds_bucket{" in after

    status, _, body = http("POST", url + "/feedback", {"run_id": run_id, "correct": ["clock"], "note": "x"})
    assert status == 200 and json.loads(body)["verdict"] == "correct"
    stored = (
        sqlite3.connect(server["data"] / "traces.sqlite")
        .execute("SELECT verdict, correct, source FROM feedback WHERE run_id = ?", (run_id,))
        .fetchone()
    )
    assert stored == ("correct", '["clock"]', "http")
    status, _, body = http("POST", url + "/feedback", {"run_id": "nope", "verdict": "good"})
    assert status == 404 and "no trace of run" in json.loads(body)["error"]
    status, _, body = http("POST", url + "/feedback", {"run_id": run_id, "correct": ["weather"]})
    assert status == 400 and "unknown capability" in json.loads(body)["error"]
    status, _, _ = http("POST", url + "/feedback", [1, 2])
    assert status == 400


def test_the_app_under_uvicorn_is_unhealthy_when_its_stores_cannot_open(tmp_path: Path) -> None:
    import uvicorn

    from graph.ops.http import create_app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = Settings.offline(tmp_path, checkpoint_path=blocker / "checkpoints.sqlite")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = http("GET", f"http://127.0.0.1:{port}/health")
        assert status == 503
        failed = {c["name"] for c in json.loads(body)["checks"] if c["status"] == "fail"}
        assert failed == {"checkpoints", "traces"}
        status, _, _ = http("GET", f"http://127.0.0.1:{port}/metrics")
        assert status == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
