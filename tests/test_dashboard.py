"""The operations dashboard in a real headless browser (Debian's chromium driven by Playwright): the
page served by `routegraph dashboard` over a trace store seeded with real turns, its charts drawn
from the same figures `routing_analytics` computes, a mark from the feedback queue stored with its
trace, and no request leaving 127.0.0.1. Also: `routegraph serve` (langgraph dev) serves it.

Chromium comes from Debian (`./scripts/setup` installs it with apt-get when it can); Playwright's
own browser download is never used. Without chromium or Playwright the browser tests are skipped,
saying why.

A copy of the screenshot for the README (small, 256 colours):

    DASHBOARD_SCREENSHOT=docs/dashboard.png pytest tests/test_dashboard.py -k browser
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage

from graph.builder import build_graph
from graph.capability.base import jsonable
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.analytics import analytics
from graph.ops.dashboard import dashboard_data, render_charts, volume_series
from graph.ops.store import open_store
from tests.conftest import BASE
from tests.test_ops_http import http
from tests.test_server import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("ROUTEGRAPH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAY = 86400.0
EXPERIMENT = "seeded-split"


def experiments_module() -> Any:
    """graph/ops/experiments.py (another part of issue 21), or None while it does not exist."""
    try:
        return importlib.import_module("graph.ops.experiments")
    except ImportError:
        return None


# Requests for the shipped registry (support desk and built-ins), a few out of scope. Each runs as
# its own thread, on one of three days, through the real graph with the lexical encoder.
REQUESTS = [
    "what is 12*7?",
    "calculate 1540 / 11",
    "what is 2 to the power of 10",
    "what time is it in Tokyo?",
    "what time is it in New York right now",
    "current time in London",
    "how much does the pro plan cost?",
    "what plans do you sell and what are the prices",
    "I want to upgrade to the enterprise plan",
    "why was I charged twice this month? my customer id is C-1001",
    "show my invoices for customer C-1002",
    "what is the status of my account C-1001",
    "update the email on my account",
    "is there an outage right now?",
    "the API is down, are there any incidents",
    "how do I reset my password",
    "how do I export my data",
    "where can I find the API documentation",
    "what is the weather in Paris tomorrow",
    "write a poem about the sea",
    "recommend a good pizza place",
    "what is 99 - 17 and what time is it in Paris",
    "what is 7 * 6",
    "what time is it in Sydney",
    "what does the starter plan include",
    "is the status page showing any incidents today",
    "how do I invite a teammate",
    "tell me a joke",
    "what is 5 + 5",
    "what is <b>3+4</b>? <img src=x onerror=alert(1)>",  # shown as text, never as markup
]


def lexical_registry(tmp: Path) -> Path:
    """The shipped registry with the lexical encoder (no weights: a fast, offline graph)."""
    data = yaml.safe_load((ROOT / "registry.yaml").read_text())
    data["classifier"]["encoder"] = "lexical"
    path = tmp / "registry.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def seed(data_dir: Path, registry: Path, now: float) -> list[str]:
    """Run REQUESTS through the real graph (offline), spread over the last three days; their traces
    land in the data directory's trace store. Returns the run ids."""
    settings = Settings.offline(data_dir, registry=registry)
    shift = [0.0]  # a clock that runs (real durations) from a start moved back by whole days
    graph = build_graph(
        registry=Registry.from_file(registry),
        settings=settings,
        checkpointer="memory",
        clock=lambda: time.time() + shift[0],
    )
    runs = []
    for i, text in enumerate(REQUESTS):
        shift[0] = now - (2 - i % 3) * DAY - 3600 + i - time.time()
        state = graph.invoke(
            {"messages": [HumanMessage(text)]},
            {
                "configurable": {
                    "thread_id": f"seed-{i}",
                    "user_id": f"user-{i % 5}",
                    # recorded with the trace: the dashboard's experiments panel looks them up
                    **({"experiment": EXPERIMENT, "variant": "ab"[i % 2]} if i < 12 else {}),
                }
            },
        )
        runs.append(state["control_run_id"])
    return runs


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dashboard")
    registry = lexical_registry(tmp)
    runs = seed(tmp / "data", registry, time.time())
    return {"tmp": tmp, "data": tmp / "data", "registry": registry, "runs": runs}


def env_for(data_dir: Path, registry: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))},
        "ROUTEGRAPH_DATA_DIR": str(data_dir),
        "ROUTEGRAPH_REGISTRY": str(registry),
        "LANGSMITH_TRACING": "false",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="module")
def dashboard(seeded: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`routegraph dashboard --port N` over the seeded store, as a user starts it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graph.cli", "dashboard", "--port", str(port), "--host", "127.0.0.1"],
        cwd=seeded["tmp"],
        env=env_for(seeded["data"], seeded["registry"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"routegraph: dashboard on http://127.0.0.1:{port}/dashboard (Ctrl-C stops it)"
        url = f"http://127.0.0.1:{port}"
        status, kind, _ = http("GET", url + "/dashboard")
        assert status == 200 and kind.startswith("text/html")
        yield {**seeded, "url": url}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_volume_buckets_cover_the_window_with_empty_ones() -> None:
    now = 1_780_000_000.0
    hourly = volume_series([now - 3600 * 5, now - 10, now - 5], since=now - 6 * 3600, now=now)
    assert hourly["unit"] == "hour" and len(hourly["buckets"]) == 7
    assert [b["turns"] for b in hourly["buckets"]] == [0, 1, 0, 0, 0, 0, 2]
    daily = volume_series([now - 3 * DAY], since=now - 7 * DAY, now=now)
    assert (
        daily["unit"] == "day"
        and len(daily["buckets"]) == 8
        and sum(b["turns"] for b in daily["buckets"]) == 1
    )
    assert volume_series([], since=None, now=now)["buckets"][0]["turns"] == 0


def test_data_and_charts_follow_the_analytics(seeded: dict[str, Any]) -> None:
    store = open_store(Settings.offline(seeded["data"]))
    data = dashboard_data(store, since=None, capabilities=["clock", "calculator"])
    figures = analytics(store, since=None)
    assert data["analytics"]["volume"] == figures["volume"] == len(REQUESTS)
    assert data["analytics"]["stop_reasons"] == figures["stop_reasons"]
    assert sum(b["turns"] for b in data["volume"]["buckets"]) == len(REQUESTS)
    assert len(data["queue"]) == min(25, len(REQUESTS))
    assert data["queue"][0]["started_at"] >= data["queue"][-1]["started_at"]  # newest first
    assert data["capabilities"] == ["calculator", "clock"]
    module = experiments_module()
    if module is None or not hasattr(module, "compare_experiment"):
        assert data["experiments"] == []  # the panel says "no experiments"
    else:
        (found,) = data["experiments"]
        assert found["name"] == EXPERIMENT
        assert found["comparison"] == jsonable(module.compare_experiment(store, EXPERIMENT, since=None))
    charts = render_charts(data)
    assert set(charts) == {"volume", "stop_reasons", "latency", "confidence", "health"}
    for reason, count in figures["stop_reasons"].items():  # the bars are labelled with the counts
        assert f">{reason}<" in charts["stop_reasons"] and f">{count}<" in charts["stop_reasons"]
    for day in figures["confidence_by_day"]:
        assert day["day"] in charts["confidence"]
    empty = open_store(Settings.offline(seeded["tmp"] / "nothing"))
    assert render_charts(dashboard_data(empty, since=None)) == {}


def browser() -> Any:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the dev extra: ./scripts/setup)"
    )
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no chromium at {CHROMIUM}: ./scripts/setup installs Debian's chromium with apt-get")
    return sync_api


def svg_marks(page: Any, chart: str) -> int:
    return int(
        page.locator(f"#chart-{chart} svg path, #chart-{chart} svg rect, #chart-{chart} svg use").count()
    )


def test_the_browser_shows_the_figures_and_stores_a_mark(dashboard: dict[str, Any], tmp_path: Path) -> None:
    sync_api = browser()
    url = dashboard["url"]
    store = open_store(Settings.offline(dashboard["data"]))
    before = analytics(store, since=time.time() - 7 * DAY)
    requested: list[str] = []
    foreign: list[str] = []

    def guard(route: Any) -> None:
        target = route.request.url
        requested.append(target)
        host = urllib.parse.urlsplit(target).hostname
        if target.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(target)
            route.abort()

    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            context.route("**/*", guard)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/dashboard")
            page.wait_for_selector("body[data-loaded]")
            assert page.locator("#empty").is_hidden() and page.locator("#panels").is_visible()

            # The tiles carry the analytics' figures.
            assert page.inner_text("#tile-volume .value") == str(before["volume"])
            completion = before["completion"]
            assert page.inner_text("#tile-completion .detail").startswith(
                f"{completion['k']}/{completion['n']}"
            )
            # Every chart is an SVG with marks, labelled with the figures.
            for chart in ("volume", "stop_reasons", "latency", "confidence", "health"):
                assert svg_marks(page, chart) > 5, chart
            stop_text = page.inner_text("#chart-stop_reasons")
            for reason, count in before["stop_reasons"].items():
                assert reason in stop_text and str(count) in stop_text
            latency_text = page.inner_text("#chart-latency")
            for name, figures in before["capabilities"].items():
                if figures["latency_ms_p50"] is not None:
                    assert name in latency_text and f"{figures['latency_ms_p50']:.0f}" in latency_text
            health_rows = page.locator("#health-table tbody tr")
            assert health_rows.count() == len(before["capabilities"])
            experiments = page.inner_text("#experiments-body")
            if experiments_module() is None:
                assert experiments == "no experiments in this window"
            else:
                assert EXPERIMENT in experiments

            # The queue: mark one turn's right capability, another out of scope.
            rows = page.locator("#queue-table tbody tr")
            assert rows.count() == min(25, before["volume"])
            first, second = rows.nth(0), rows.nth(1)
            run_a, run_b = first.get_attribute("data-run-id"), second.get_attribute("data-run-id")
            assert run_a and run_b
            request_a = first.locator("td.request").inner_text()
            assert request_a == store.get(run_a)["request"]  # type: ignore[index]
            markup = page.locator("#queue-table td.request", has_text="<b>3+4</b>")
            assert markup.count() == 1 and page.locator("#queue-table b, #queue-table img").count() == 0
            first.locator("select").select_option("billing")
            page.screenshot(path=str(tmp_path / "dashboard.png"))
            first.locator("button.mark-correct").click()
            page.wait_for_function("document.querySelector('#status').textContent.startsWith('stored')")
            page.locator(f"#queue-table tr[data-run-id='{run_b}'] button.mark-out-of-scope").click()
            page.wait_for_function(
                f"!document.querySelector(\"#queue-table tr[data-run-id='{run_b}']\")"
                " && document.querySelector('#tile-feedback .value').textContent === '2'"
            )
            assert page.locator(f"#queue-table tr[data-run-id='{run_a}']").count() == 0
            assert errors == []
            page.screenshot(path=str(tmp_path / "after.png"), full_page=True)
            resources = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        finally:
            context.close()

    stored_a, stored_b = store.get(run_a), store.get(run_b)
    assert stored_a is not None and stored_b is not None
    assert {k: stored_a["feedback"][k] for k in ("verdict", "correct", "source")} == {
        "verdict": "correct",
        "correct": ["billing"],
        "source": "http",
    }
    assert stored_b["feedback"]["verdict"] == "out_of_scope"
    assert foreign == []
    assert any(r.endswith("/dashboard/static/dashboard.js") for r in requested)
    assert all(urllib.parse.urlsplit(r).hostname == "127.0.0.1" for r in resources)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    if target := os.environ.get("DASHBOARD_SCREENSHOT"):
        from PIL import Image

        with Image.open(tmp_path / "after.png") as image:
            image.convert("RGB").quantize(colors=256).save(target, optimize=True)


def test_an_empty_store_shows_the_empty_state(tmp_path: Path) -> None:
    sync_api = browser()
    import threading

    import uvicorn

    from graph.ops.http import create_app

    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(copy.deepcopy(BASE)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings.offline(tmp_path / "data", registry=registry)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with sync_api.sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}/dashboard")
                page.wait_for_selector("body[data-loaded]")
                assert page.locator("#empty").is_visible() and page.locator("#panels").is_hidden()
                assert page.inner_text("#tile-volume .value") == "0"
                assert page.locator("svg").count() == 0
            finally:
                context.close()
        status, _, body = http("GET", f"http://127.0.0.1:{port}/dashboard/data?since=last+tuesday")
        assert status == 400 and "bad --since" in json.loads(body)["error"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_routegraph_serve_serves_the_dashboard(seeded: dict[str, Any]) -> None:
    pytest.importorskip(
        "langgraph_api", reason="langgraph-cli[inmem] is not installed (./scripts/setup installs it)"
    )
    port = free_port()
    log_path = seeded["tmp"] / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graph.cli", "serve", "--port", str(port)],
            cwd=seeded["tmp"],
            env={
                **env_for(seeded["data"], seeded["registry"]),
                "LANGGRAPH_CLI_NO_ANALYTICS": "1",
                "LANGGRAPH_NO_VERSION_CHECK": "true",
            },
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
                    raise RuntimeError("routegraph serve did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.3)
            status, kind, page = http("GET", url + "/dashboard")
            assert status == 200 and kind.startswith("text/html") and "/dashboard/static/dashboard.js" in page
            status, kind, _ = http("GET", url + "/dashboard/static/dashboard.css")
            assert status == 200 and kind.startswith("text/css")
            status, _, body = http("GET", url + "/dashboard/data?since=all&charts=svg")
            data = json.loads(body)
            assert status == 200 and data["analytics"]["volume"] >= len(REQUESTS)
            assert re.search(r"<svg[^>]*viewBox", data["charts"]["volume"])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_taken_port_is_refused_in_one_line(seeded: dict[str, Any]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "graph.cli", "dashboard", "--port", str(port)],
            cwd=seeded["tmp"],
            env=env_for(seeded["data"], seeded["registry"]),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"routegraph dashboard: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in done.stderr


def test_a_store_that_cannot_open_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from graph.ops.http import create_app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    app = create_app(Settings.offline(tmp_path, checkpoint_path=blocker / "checkpoints.sqlite"))
    with TestClient(app) as client:
        reply = client.get("/dashboard/data?since=7d&charts=svg")
        assert reply.status_code == 503
        error = reply.json()["error"]
        assert error.startswith("cannot open the trace store at") and "Traceback" not in error
        page = client.get("/dashboard")
        assert page.status_code == 200 and "dashboard.js" in page.text
