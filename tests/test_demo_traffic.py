"""`routegraph demo traffic`: labelled requests through the real graph into the real SQLite trace
store, with simulated feedback that agrees with the labels, an experiment whose variants are
recorded, and start times spread over the last days (small n: a few seconds)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from graph.cli import main
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.store import open_store
from graph.ops.traffic import DATA, feedback_for, load_rows, weakened


def test_the_shipped_labelled_requests_are_found() -> None:
    rows = load_rows(DATA)
    assert len(rows) >= 90
    assert any(not labels for _, labels in rows)  # out of scope: no capability
    assert any(len(labels) > 1 for _, labels in rows)


def test_feedback_follows_the_label() -> None:
    assert feedback_for(frozenset({"billing"}), frozenset({"billing"})) == ("good", [])
    assert feedback_for(frozenset({"billing"}), frozenset()) == ("out_of_scope", [])
    assert feedback_for(frozenset(), frozenset()) == ("good", [])
    assert feedback_for(frozenset({"sales"}), frozenset({"billing", "refund"})) == (
        "correct",
        ["billing", "refund"],
    )


def test_weakening_removes_half_of_each_guide() -> None:
    registry = Registry.from_file()
    overlay = weakened(registry, 0.5)
    for cap in registry.routable:
        kept = overlay["capabilities"][cap.name]["classifier_guide"]["examples"]
        assert len(kept) == len(cap.classifier_guide.examples) // 2 or len(kept) >= 1
        assert any(e["result"] for e in kept)


def test_demo_traffic_fills_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    before = time.time()
    assert (
        main(
            [
                "demo",
                "traffic",
                "--n",
                "40",
                "--seed",
                "3",
                "--feedback-rate",
                "0.5",
                "--weaken",
                "0.5",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "demo traffic: 40/40 runs" in captured.err  # the progress line
    assert result["runs"] == 40 and result["failed"] == 0 and result["encoder"] == "lexical"
    assert result["experiment"] == "threshold-demo" and sum(result["stop_reasons"].values()) == 40
    traces = open_store(Settings.from_env()).traces()
    assert len(traces) == 40
    # Spread over the last 7 days, oldest first.
    starts = [t["started_at"] for t in traces]
    assert before - 7 * 86400 - 5 <= starts[0] < starts[-1] <= time.time()
    assert starts[-1] - starts[0] > 5 * 86400
    # Both variants ran, the lower threshold's overlay applied in its runs.
    assert {t["variant"] for t in traces} == {"control", "lower-threshold"}
    assert {t["experiment"] for t in traces} == {"threshold-demo"}
    # Feedback on about half, and it says what the label says.
    labels = {text: labels for text, labels in load_rows(DATA)}
    judged = [t for t in traces if t["feedback"]]
    assert 10 <= len(judged) <= 30 and sum(result["feedback"].values()) == len(judged)
    for t in judged:
        verdict, correct = feedback_for(frozenset(t["selected"]), labels[t["request"]])
        assert (t["feedback"]["verdict"], t["feedback"]["correct"]) == (verdict, correct)
        assert t["feedback"]["source"] == "demo"
    # The demo registry is written for the commands that follow, with the weakened guides.
    demo = Registry.from_file(result["registry"])
    full = Registry.from_file()
    assert demo.spec.classifier.encoder == "lexical"
    assert len(demo["billing"].classifier_guide.examples) < len(full["billing"].classifier_guide.examples)
    # Analytics shows the traffic and the experiment comparison.
    assert main(["analytics", "--since", "all", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["volume"] == 40 and figures["feedback"]["count"] == len(judged)
    assert len(figures["confidence_by_day"]) >= 5
    assert (
        main(
            [
                "analytics",
                "--since",
                "all",
                "--registry",
                result["registry"],
                "--experiment",
                "threshold-demo",
            ]
        )
        == 0
    )
    assert "Verdict: lower-threshold vs control:" in capsys.readouterr().out


def test_bad_options_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    assert main(["demo", "traffic", "--n", "0"]) == 2
    assert "--n >= 1" in capsys.readouterr().err


def test_a_missing_data_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    assert main(["demo", "traffic", "--n", "2", "--data", str(tmp_path / "absent.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot read the labelled requests" in err and "Traceback" not in err
