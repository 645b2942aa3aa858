"""Feedback on real traces (Python and the CLI) and the analytics computed from them: rates with
Wilson intervals checked against their closed form and published values, per-capability figures,
drift by day, confused pairs and clusters of uncovered requests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from langchain_core.messages import HumanMessage

from graph.builder import build_graph
from graph.cli import main
from graph.config.settings import Settings
from graph.ops.analytics import analytics, parse_since, routing_correct, uncovered_clusters, wilson
from graph.ops.cli import format_analytics
from graph.ops.feedback import FeedbackError, give_feedback
from graph.ops.store import open_store
from tests.conftest import BASE, registry_with

DAY = 86400.0
T0 = 1_780_000_000.0  # 2026-05-28 UTC, a fixed clock: traces land on known days


def run(graph: Any, text: str, thread: str) -> dict[str, Any]:
    return dict(graph.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}))


def wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 5), (5, 5), (37, 50), (1, 1)])
def test_wilson_intervals_match_the_closed_form(k: int, n: int) -> None:
    assert wilson(k, n) == pytest.approx(wilson_closed_form(k, n), abs=1e-12)


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson(81, 263)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 0) is None


def test_parse_since() -> None:
    assert parse_since("7d", now=T0) == T0 - 7 * DAY
    assert parse_since("90m", now=T0) == T0 - 5400
    assert parse_since("2026-05-01") == 1_777_593_600.0
    with pytest.raises(ValueError, match="bad --since"):
        parse_since("last tuesday")


@pytest.fixture
def traffic(settings: Settings) -> dict[str, Any]:
    """Real turns through the graph on three days (a clock that moves), some with feedback."""
    clock = [T0]
    graph = build_graph(
        registry=registry_with(), settings=settings, checkpointer="memory", clock=lambda: clock[0]
    )
    requests = [
        ("what is 12*7?", 0),
        ("what time is it in Tokyo?", 0),
        ("calculate 1540 / 11", 0),
        ("what is the weather in Paris tomorrow", 1),
        ("weather forecast for Paris tomorrow", 1),
        ("tell me the weather in Paris tomorrow", 1),
        ("what time is it in London and what is 2+2", 2),
        ("write a poem about the sea", 2),
    ]
    runs = {}
    for i, (text, day) in enumerate(requests):
        clock[0] = T0 + day * DAY + i
        runs[text] = run(graph, text, f"th-{i}")
    return {"settings": settings, "runs": runs, "store": open_store(settings)}


def test_feedback_is_stored_with_the_trace_and_validated(traffic: dict[str, Any]) -> None:
    store, runs = traffic["store"], traffic["runs"]
    run_id = runs["what is 12*7?"]["control_run_id"]
    names = {"calculator", "clock", "respond", "clarify"}
    stored = give_feedback(
        store, run_id, verdict="good", note="thanks sk-proj-abcdefghijklmnop1234567890", capabilities=names
    )
    assert stored["verdict"] == "good" and "abcdefghijklmnop1234567890" not in stored["note"]
    assert store.get(run_id)["feedback"]["verdict"] == "good"
    # a later word replaces the earlier one; `correct` alone implies the verdict
    give_feedback(store, run_id, correct=["clock"], capabilities=names)
    fb = store.get(run_id)["feedback"]
    assert (fb["verdict"], fb["correct"], fb["note"]) == ("correct", ["clock"], None)
    with pytest.raises(FeedbackError, match="no trace of run"):
        give_feedback(store, "no-such-run", verdict="good")
    with pytest.raises(FeedbackError, match="unknown capability weather"):
        give_feedback(store, run_id, correct=["weather"], capabilities=names)
    with pytest.raises(FeedbackError, match="a verdict is needed"):
        give_feedback(store, run_id)
    with pytest.raises(FeedbackError, match="only with `correct`"):
        give_feedback(store, run_id, verdict="bad", correct=["clock"])


def test_analytics_from_traces_and_feedback(traffic: dict[str, Any]) -> None:
    store, runs = traffic["store"], traffic["runs"]
    rid = {text: state["control_run_id"] for text, state in runs.items()}
    stops = {text: state["control_stop_reason"] for text, state in runs.items()}
    give_feedback(store, rid["what is 12*7?"], verdict="good")
    give_feedback(store, rid["what time is it in Tokyo?"], verdict="good")
    give_feedback(store, rid["calculate 1540 / 11"], correct=["clock"])  # judged wrong: it was a calculation
    give_feedback(store, rid["write a poem about the sea"], verdict="out_of_scope")
    for text in ("what is the weather in Paris tomorrow", "weather forecast for Paris tomorrow"):
        give_feedback(store, rid[text], verdict="out_of_scope")

    result = analytics(store)
    assert result["volume"] == 8 and result["threads"] == 8
    assert sum(result["stop_reasons"].values()) == 8
    successes = sum(1 for s in stops.values() if s == "success")
    assert result["completion"]["k"] == successes and result["completion"]["n"] == 8
    assert result["completion"]["ci95"] == pytest.approx(list(wilson_closed_form(successes, 8)))
    assert result["clarify"]["k"] == sum(1 for s in stops.values() if s == "clarify")

    traces = store.traces()
    judged = [ok for t in traces if (ok := routing_correct(t)) is not None]
    assert result["routing_accuracy"]["n"] == 6 == len(judged)
    assert result["routing_accuracy"]["k"] == sum(judged)
    assert routing_correct(store.get(rid["calculate 1540 / 11"])) is False

    calc = result["capabilities"]["calculator"]
    durations = [s["duration_ms"] for t in traces for s in t["steps"] if s["capability"] == "calculator"]
    assert calc["steps"] == len(durations) >= 3
    assert calc["latency_ms_p50"] == pytest.approx(float(np.percentile(durations, 50)))
    assert calc["latency_ms_p95"] == pytest.approx(float(np.percentile(durations, 95)))
    assert calc["selections"] == sum("calculator" in t["selected"] for t in traces)
    assert calc["errors"] == 0 and calc["retries"] == 0

    days = result["confidence_by_day"]
    assert [d["day"] for d in days] == ["2026-05-28", "2026-05-29", "2026-05-30"]
    assert [d["n"] for d in days] == [3, 3, 2]
    day1 = [t["top_score"] for t in traces[:3]]
    assert days[0]["median"] == pytest.approx(float(np.median(day1)))

    rec = result["recommendations"]
    assert {"capability": "clock", "wrongly_selected": 0, "missed": 1} in rec["most_corrected"]
    assert {"capability": "calculator", "wrongly_selected": 1, "missed": 0} in rec["most_corrected"]
    assert {"selected": "calculator", "correct": "clock", "count": 1} in rec["confused_pairs"]
    [weather] = [c for c in rec["uncovered_clusters"] if "weather" in c["representative"]]
    assert weather["size"] >= 2 and all("weather" in e for e in weather["examples"])
    assert not any("poem" in e for c in rec["uncovered_clusters"] for e in c["examples"] if c is weather)

    # --since cuts the window; the text view says the same numbers
    assert analytics(store, since=T0 + 2 * DAY)["volume"] == 2
    text = format_analytics(result, "all")
    assert (
        "Routing accuracy (vs feedback)" in text
        and "confused: selected calculator where clock was right" in text
    )


def test_uncovered_clusters_group_similar_requests() -> None:
    from graph.classifier.encoders import MiniLMEncoder

    encoder = MiniLMEncoder()  # the shipped encoder: what `routegraph analytics` clusters with

    requests = [
        "what is the weather in Paris",
        "weather forecast for Rome tomorrow",
        "will it rain in London, what's the weather",
        "book a table for two at an italian restaurant",
        "reserve a restaurant table for tonight",
        "write a sonnet",
    ]
    clusters = uncovered_clusters(requests, embed=lambda texts: np.asarray(encoder.encode(list(texts))))
    groups = [set(c["examples"]) for c in clusters]
    assert set(requests[:3]) in groups and set(requests[3:5]) in groups
    assert not any("write a sonnet" in g for g in groups)  # alone: no cluster
    assert uncovered_clusters(["one request"]) == []


def test_feedback_and_analytics_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    assert main(["ask", "what is 6*7?", "--registry", str(registry), "--json", "--quiet"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert (
        main(["feedback", run_id, "--correct", "clock", "--note", "a test", "--registry", str(registry)]) == 0
    )
    assert capsys.readouterr().out.strip() == f"feedback on run {run_id}: correct -> clock"
    assert main(["feedback", run_id, "--correct", "weather", "--registry", str(registry)]) == 2
    assert "unknown capability weather" in capsys.readouterr().err
    assert main(["feedback", "nope", "--good", "--registry", str(registry)]) == 2
    capsys.readouterr()
    assert main(["analytics", "--since", "1h", "--json", "--registry", str(registry)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["volume"] == 1 and result["routing_accuracy"] == {
        "k": 0, "n": 1, "rate": 0.0, "ci95": pytest.approx(list(wilson_closed_form(0, 1)))
    }  # fmt: skip
    assert result["recommendations"]["confused_pairs"] == [
        {"selected": "calculator", "correct": "clock", "count": 1}
    ]
    assert main(["analytics", "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Traces since 7d: 1 turns") and "calculator" in out
    assert main(["analytics", "--since", "someday"]) == 2
