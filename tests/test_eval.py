"""`routegraph eval` (evals/harness.py): the JSON contract, determinism, bad input, cascade LLM calls.

Offline and fast: the lexical encoder on tiny data sets in tests/data/.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evals.datasets import OUT_OF_SCOPE, load_dataset, prepare
from evals.harness import EvalError, format_table, multi_label_metrics, run_eval, single_label_metrics
from graph.cli import main
from graph.config.settings import Settings
from tests.conftest import fake

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "tiny.jsonl"
TINY_MULTI = DATA / "tiny_multi.jsonl"


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    return tmp_path / "data"


def evaluate(path: Path, tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("encoder", "lexical")
    kwargs.setdefault("shots", 4)
    return run_eval(path, settings=Settings.offline(tmp_path / "data"), progress=None, **kwargs)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One embedding-mode run on the tiny single-label set, with per-query details (shared)."""
    return evaluate(TINY, tmp_path_factory.mktemp("tiny"), details=True)


def test_single_label_json_contract(tiny: dict[str, Any]) -> None:
    result = tiny
    assert result["benchmark"] == "eval" and result["kind"] == "single-label"
    assert result["labels_file"] == str(DATA / "tiny.labels.json")  # found next to the data
    assert (result["encoder"], result["mode"], result["seed"]) == ("lexical", "embedding", 0)
    assert result["counts"] == {
        "labels": 4,
        "shots_per_label": 4,
        "shots": 16,
        "description_only_labels": 0,
        "out_of_scope_examples": 2,
        "tuning": 10,
        "tuning_source": "val",
        "test": 15,
        "test_in_file": 15,
        "test_in_scope": 12,
        "test_out_of_scope": 3,
    }
    assert "(4/label, 2 out-of-scope examples)" in format_table(result)
    metrics = result["metrics"]
    for key in (
        "in_scope_accuracy",
        "in_scope_accuracy_no_rejection",
        "out_of_scope_recall",
        "out_of_scope_precision",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["in_scope_accuracy"] <= metrics["in_scope_accuracy_no_rejection"]
    assert metrics["in_scope_accuracy_no_rejection"] >= 0.5  # the lexical scorer does route these
    assert set(result["latency_ms"]) == {"p50", "p95", "mean"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    assert result["queries_per_second"] > 0
    assert result["llm"] == {
        "calls_per_query": 0.0,
        "calls_total": 0,
        "decided_without_llm": 1.0,
        "errors": 0,
    }
    assert 0.0 < result["threshold"] < 1.0
    assert set(result["seconds"]) == {"compile", "tune", "test", "total"}
    assert len(result["queries"]) == 15
    json.dumps(result)  # serialisable as it is


def without_timings(result: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in result.items() if k not in {"latency_ms", "queries_per_second", "seconds"}}
    out["queries"] = [{k: v for k, v in q.items() if k != "latency_ms"} for q in result["queries"]]
    return out


def test_deterministic_for_a_seed(tiny: dict[str, Any], tmp_path: Path) -> None:
    again = evaluate(TINY, tmp_path, details=True)
    assert without_timings(again) == without_timings(tiny)
    dataset = load_dataset(TINY)
    assert prepare(dataset, shots=2, seed=0).examples == prepare(dataset, shots=2, seed=0).examples
    assert prepare(dataset, shots=2, seed=0).examples != prepare(dataset, shots=2, seed=1).examples


def test_shots_tuning_and_test_rows_are_disjoint_and_seeded() -> None:
    dataset = load_dataset(TINY)
    prepared = prepare(dataset, shots=3, seed=0)
    assert all(len(v) == 3 for v in prepared.examples.values())
    assert set(prepared.names.values()) == {"weather", "translate", "balance", "play_music"}
    assert prepared.labels_of["play_music"] == "play-music"
    shot_texts = {t for v in prepared.examples.values() for t in v}
    assert all(r.split == "train" for r in dataset.rows if r.text in shot_texts)
    assert {r.split for r in prepared.tuning} == {"val"} and {r.split for r in prepared.test} == {"test"}
    assert OUT_OF_SCOPE not in prepared.names
    registry = prepared.registry_dict(encoder="lexical", threshold=0.4)
    assert registry["classifier"]["threshold"] == 0.4
    play = next(c for c in registry["capabilities"] if c["name"] == "play_music")
    assert play["description"] == "Play songs, artists and playlists."
    assert play["class"] == "evals.datasets:LabelCapability"


def test_train_slice_when_there_is_no_val(tmp_path: Path) -> None:
    rows = [
        {"text": f"{word} question number {i}", "labels": [word], "split": "train"}
        for word in ("alpha", "beta")
        for i in range(10)
    ]
    rows += [{"text": "alpha question", "labels": ["alpha"], "split": "test"}]
    path = write_jsonl(tmp_path / "noval.jsonl", rows)
    prepared = prepare(load_dataset(path), shots=3, seed=0)
    assert prepared.tuning_source == "train-slice"
    assert 0 < len(prepared.tuning) <= 0.2 * 20
    shot_texts = {t for v in prepared.examples.values() for t in v}
    assert not shot_texts & {r.text for r in prepared.tuning}
    assert prepare(load_dataset(path), shots=3, seed=0).tuning == prepared.tuning
    # Every labelled train row a shot: the spare rows are all out of scope, nothing to tune on.
    rows += [{"text": f"unrelated request {i}", "labels": [OUT_OF_SCOPE], "split": "train"} for i in range(5)]
    everything = prepare(load_dataset(write_jsonl(tmp_path / "all.jsonl", rows)), shots=100, seed=0)
    assert everything.tuning == () and everything.tuning_source == "none"


def test_cli_json_prints_one_object_multi_label(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--data", str(TINY_MULTI), "--encoder", "lexical", "--shots", "4", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert len(captured.out.strip().splitlines()) == 1
    result = json.loads(captured.out)
    assert "eval:" in captured.err  # progress goes to stderr only
    assert result["kind"] == "multi-label" and result["labels_file"] is None
    assert result["counts"]["labels"] == 3 and result["counts"]["test"] == 6
    metrics = result["metrics"]
    for key in ("exact_match", "micro_f1", "macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["micro_f1"] > 0.3
    assert "in_scope_accuracy" not in metrics


def test_description_only_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MetaTool-like: test rows only; each tool's description is its one guide example."""
    rows = [
        {"text": "latest headlines and the apple share price", "labels": ["NewsTool", "StockTool"]},
        {"text": "weather in rome and today's news", "labels": ["WeatherTool", "NewsTool"]},
        {"text": "forecast for paris and the nasdaq index", "labels": ["WeatherTool", "StockTool"]},
    ]
    path = write_jsonl(tmp_path / "tools.jsonl", [{**r, "split": "test"} for r in rows])
    descriptions = {
        "NewsTool": "Latest news and headlines.",
        "StockTool": "Stock prices, shares and market indexes.",
        "WeatherTool": "Weather forecasts for a city.",
    }
    (tmp_path / "tools.labels.json").write_text(json.dumps(descriptions), encoding="utf-8")
    prepared = prepare(load_dataset(path), shots=5, seed=0)
    assert prepared.examples["NewsTool"] == ("Latest news and headlines.",)
    assert prepared.names["NewsTool"] == "news_tool"
    assert main(["eval", "--data", str(path), "--encoder", "lexical", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "(multi-label): 3 labels, 0 shots" in captured.out and "3 description-only" in captured.out
    assert "micro_f1" in captured.out and "latency_p95_ms" in captured.out
    # Descriptions alone are nothing to fine-tune on: the report does not claim a fine-tune.
    result = run_eval(path, encoder="minilm", progress=None)
    assert result["finetune"] is False and result["finetune_cached"] is None
    assert "+ fine-tune" not in format_table(result)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"text": "hi", "labels": "x", "split": "test"}', "'labels' must be a list"),
        ('{"text": "hi", "labels": ["x"], "split": "dev"}', "'split' must be one of"),
        ('["hi"]', "expected a JSON object"),
    ],
)
def test_cli_malformed_line_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    good = TINY.read_text(encoding="utf-8").splitlines()[:2]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*good, line]) + "\n", encoding="utf-8")
    assert main(["eval", "--data", str(path), "--encoder", "lexical"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and message in err


def test_cli_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["eval", "--data", str(missing), "--encoder", "lexical"]) == 2
    assert str(missing) in capsys.readouterr().err
    labels = tmp_path / "nope.labels.json"
    assert main(["eval", "--data", str(TINY), "--labels", str(labels), "--encoder", "lexical"]) == 2
    assert str(labels) in capsys.readouterr().err
    assert main(["eval", "--data", str(TINY), "--encoder", "no-such-encoder"]) == 2
    assert "unknown encoder" in capsys.readouterr().err


def test_cli_cascade_without_a_model_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(TINY), "--encoder", "lexical", "--mode", "cascade"]) == 2
    assert "cascade mode needs a chat model" in capsys.readouterr().err


def test_cascade_calls_the_llm_only_for_uncertain_queries(tiny: dict[str, Any], tmp_path: Path) -> None:
    thresholds = tiny["per_label_thresholds"]

    def logit(p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        return math.log(p / (1 - p))

    def distance(query: dict[str, Any]) -> float:
        """How close the query's nearest confidence is to its threshold, in log-odds."""
        return min(
            abs(logit(score) - logit(thresholds.get(label, tiny["threshold"])))
            for label, score in query["scores"].items()
        )

    # A band halfway across the widest gap between distances: some queries inside, some out, none
    # near the edge (the reported scores are rounded to 4 decimals, which moves a log-odds distance
    # near 0 or 1 a little). As a cascade_band: the same log-odds distance from 0.5.
    distances = sorted({round(distance(q), 3) for q in tiny["queries"]})
    gap = max(range(1, len(distances)), key=lambda i: distances[i] - distances[i - 1])
    halfway = (distances[gap - 1] + distances[gap]) / 2
    band = 1 / (1 + math.exp(-halfway)) - 0.5
    expected = [distance(q) < halfway for q in tiny["queries"]]
    assert 0 < sum(expected) < len(expected)

    reply = {"judgements": [{"name": "weather", "relevant": True, "confidence": 0.95, "reason": "r"}]}
    model = fake(reply, repeat=True)
    with pytest.raises(EvalError, match="cascade mode needs a chat model"):
        evaluate(TINY, tmp_path, mode="cascade")  # no model given, none configured
    result = evaluate(
        TINY, tmp_path, mode="cascade", details=True, cascade_band=band, models={"classifier": model}
    )
    calls = [q["llm_calls"] for q in result["queries"]]
    assert calls == [int(x) for x in expected]
    assert result["llm"]["calls_total"] == model.calls == sum(expected)
    assert result["llm"]["decided_without_llm"] == round(1 - sum(expected) / len(expected), 4)
    assert result["llm"]["errors"] == 0 and result["cascade_band"] == band
    for query, before in zip(result["queries"], tiny["queries"], strict=True):
        if query["llm_calls"] == 0:  # confident: the scorer alone decided, as in embedding mode
            assert query["predicted"] == before["predicted"]
            assert set(query["sources"].values()) == {"scorer"}
        else:
            assert "llm" in query["sources"].values()


def test_metric_functions() -> None:
    single = single_label_metrics(
        truth=["a", "a", "b", None, None],
        predicted=["a", None, "b", None, "a"],
        argmax=["a", "b", "b", "a", "a"],
    )
    assert single["in_scope_accuracy"] == round(2 / 3, 4)
    assert single["in_scope_accuracy_no_rejection"] == round(2 / 3, 4)
    assert single["out_of_scope_recall"] == 0.5
    assert single["out_of_scope_precision"] == 0.5
    assert single["accuracy"] == 0.6
    multi = multi_label_metrics(
        truth=[["a", "b"], ["b"], []], predicted=[["a"], ["b", "c"], []], labels=["a", "b", "c"]
    )
    assert multi["exact_match"] == round(1 / 3, 4)
    # tp 2 (a, b), fp 1 (c), fn 1 (b): micro-F1 = 4 / 6
    assert multi["micro_f1"] == round(4 / 6, 4)
    # per label: a 1.0, b 2/3, c 0.0
    assert multi["macro_f1"] == round((1 + 2 / 3 + 0) / 3, 4)


def test_semantic_router_threshold_tuning() -> None:
    """The peer's tuned setup picks predictions as `router(q)` would with that raw threshold."""
    vs = pytest.importorskip("benchmarks.vs_semantic_router")
    scores = {"a": 0.8, "b": 0.6, "c": 0.1}
    assert vs.select(scores, 0.5, multi=False) == ["a"]
    assert vs.select(scores, 0.5, multi=True) == ["a", "b"]
    assert vs.select(scores, 0.9, multi=False) == []
    raw = [{"a": 0.9, "b": 0.2}, {"a": 0.3, "b": 0.7}, {"a": 0.35, "b": 0.3}]
    threshold, _ = vs.tune_threshold(raw, [["a"], ["b"], []], multi=False)
    assert 0.35 < threshold <= 0.7  # accepts both in-scope rows, rejects the out-of-scope one
    threshold, objective = vs.tune_threshold(raw, [["a"], ["b"], []], multi=True)
    assert objective == "micro_f1" and 0.35 < threshold <= 0.7


def test_semantic_router_comparison_needs_a_sentence_transformers_encoder(tmp_path: Path) -> None:
    vs = pytest.importorskip("benchmarks.vs_semantic_router")
    assert vs.encoder_label("mpnet").startswith("all-mpnet-base-v2")
    for name, message in (("lexical", "sentence-transformers encoder"), ("word2vec", "unknown encoder")):
        with pytest.raises(EvalError, match=message):
            vs.compare(tmp_path / "never-read.jsonl", encoder=name)


def test_multi_label_without_tuning_rows_takes_the_threshold_from_the_guides(tmp_path: Path) -> None:
    """No val and every train row a shot: half the best held-out micro-F1 on the guides sets the
    threshold (calibrated confidences: 0.5 suits accuracy, F1 wants it lower)."""
    topics = {
        "card": ["my card", "the debit card", "a new card", "card payments", "the card reader"],
        "balance": ["my balance", "the account balance", "balance today", "my current balance", "balances"],
        "cancel": ["cancel", "close", "stop", "terminate", "end"],
    }
    rows = []
    for i, (a, b) in enumerate([("card", "balance"), ("card", "cancel"), ("balance", "cancel")] * 5):
        rows.append(
            {
                "text": f"please {topics[b][i % 5]} about {topics[a][(i + 2) % 5]} number {i}",
                "labels": [a, b],
                "split": "train",
            }
        )
    rows += [
        {"text": f"{topics[k][i]} question {i}", "labels": [k], "split": "train"}
        for k in topics
        for i in range(5)
    ]
    rows += [
        {"text": "cancel my card", "labels": ["cancel", "card"], "split": "test"},
        {"text": "what is my balance", "labels": ["balance"], "split": "test"},
    ]
    path = write_jsonl(tmp_path / "multi.jsonl", rows)
    result = evaluate(path, tmp_path, shots=100)
    assert result["kind"] == "multi-label"
    assert result["counts"]["tuning_source"] == "guides-held-out"
    assert result["counts"]["tuning"] >= len(rows) - 2  # every train text (and the background requests)
    assert 0.0 < result["threshold"] <= 0.5
    again = evaluate(path, tmp_path, shots=100)
    assert (again["threshold"], again["metrics"]) == (result["threshold"], result["metrics"])


class _SplitStub:
    """A scorer whose tuning objective depends only on clause splitting (for the choice rule)."""

    def __init__(self, on: float, off: float) -> None:
        self.values = {True: on, False: off}
        self.split_clauses = True
        self.fit_objective = 0.0
        self.calibration: Any = None
        self.thresholds: dict[str, float] = {}

    def calibrate(self, texts: Any, truths: Any) -> None:
        return None

    def fit_thresholds(self, texts: Any, truths: Any, **options: Any) -> float:
        self.fit_objective = self.values[self.split_clauses]
        return 0.5


@pytest.mark.parametrize(
    ("on", "off", "multi_label", "chosen"),
    [
        (0.80, 0.90, True, False),
        (0.90, 0.80, True, True),
        (0.85, 0.85, True, True),
        (0.85, 0.851, True, True),
        (0.80, 0.90, False, False),
        (0.90, 0.80, False, True),
        (0.85, 0.85, False, False),
        (0.851, 0.85, False, False),
    ],
)
def test_clause_splitting_leaves_its_default_only_when_the_tuning_rows_say_so(
    on: float, off: float, multi_label: bool, chosen: bool
) -> None:
    """Default: on for multi-label data, off for single-label data (one intent per request)."""
    from evals.harness import _choose_clause_splitting

    stub = _SplitStub(on, off)
    said: list[str] = []
    values, _ = _choose_clause_splitting(  # type: ignore[arg-type]
        stub, ["a"], [["x"]], said.append, multi_label=multi_label
    )
    assert values == {"on": on, "off": off}
    assert stub.split_clauses is chosen
    assert said and ("on" if chosen else "off") in said[0]


def test_clause_splitting_option_in_the_json(tmp_path: Path, tiny: dict[str, Any]) -> None:
    assert set(tiny["split_clauses_choice"]) == {"on", "off"}  # auto: chosen on the val rows
    choice = tiny["split_clauses_choice"]
    assert tiny["kind"] == "single-label"  # so splitting is on only if it does better by the margin
    assert tiny["split_clauses"] is (choice["on"] > choice["off"] + 0.002)
    fixed = evaluate(TINY, tmp_path, split_clauses=False)
    assert fixed["split_clauses"] is False and fixed["split_clauses_choice"] is None


def test_operating_point_trades_balance_for_in_scope_accuracy(tmp_path: Path) -> None:
    balanced = evaluate(TINY, tmp_path)
    assert balanced["threshold_objective"] == "mean of in-scope accuracy and out-of-scope recall"
    at = evaluate(TINY, tmp_path, min_out_of_scope_recall=0.0)
    assert at["threshold_objective"] == (
        "in-scope accuracy at out-of-scope recall >= 0 (its 95% lower bound on the tuning rows)"
    )
    # Without a recall to keep, nothing is rejected that the best capability gets right.
    assert at["metrics"]["in_scope_accuracy"] == at["metrics"]["in_scope_accuracy_no_rejection"]
    assert at["threshold"] <= balanced["threshold"]
    with pytest.raises(EvalError, match="between 0 and 1"):
        evaluate(TINY, tmp_path, min_out_of_scope_recall=1.5)


def test_cli_min_oos_recall_must_be_a_share(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval", "--data", str(TINY), "--min-oos-recall", "85"])
    assert info.value.code == 2 and "must be between 0 and 1" in capsys.readouterr().err


def test_cascade_share_counts_the_model_calls(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.cascade_share import main as share_main
    from benchmarks.cascade_share import measure

    none = measure(TINY, band=0.0, encoder="lexical", shots=4)
    assert none["model_calls"] == 0 and none["decided_without_llm"] == 1.0
    every = measure(TINY, band=0.5, encoder="lexical", shots=4)
    assert every["model_calls"] == every["queries"] == 15 and every["decided_without_llm"] == 0.0
    assert share_main(["--data", str(TINY), "--encoder", "lexical", "--shots", "4", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cascade_band"] == 0.15 and 0 <= out["decided_without_llm"] <= 1
    assert out["calls_per_query"] == round(1 - out["decided_without_llm"], 4)


def test_out_of_scope_train_rows_become_out_of_scope_examples(tmp_path: Path) -> None:
    """Train rows no label applies to are drawn like one more label (`shots` at most) into
    `classifier.out_of_scope_examples`, and never tuned on."""
    rows = [
        {"text": f"{word} question number {i}", "labels": [word], "split": "train"}
        for word in ("alpha", "beta")
        for i in range(10)
    ]
    rows += [{"text": f"unrelated request {i}", "labels": [OUT_OF_SCOPE], "split": "train"} for i in range(6)]
    rows += [{"text": "alpha question", "labels": ["alpha"], "split": "test"}]
    dataset = load_dataset(write_jsonl(tmp_path / "oos.jsonl", rows))
    prepared = prepare(dataset, shots=3, seed=0)
    assert len(prepared.out_of_scope) == 3 and all(t.startswith("unrelated") for t in prepared.out_of_scope)
    assert not set(prepared.out_of_scope) & {r.text for r in prepared.tuning}
    assert prepared.registry_dict()["classifier"]["out_of_scope_examples"] == list(prepared.out_of_scope)
    assert prepare(dataset, shots=3, seed=0).out_of_scope == prepared.out_of_scope
    assert len(prepare(dataset, shots=100, seed=0).out_of_scope) == 6
    assert prepare(dataset, shots=3, seed=0).examples == prepare(dataset, shots=3, seed=0).examples
    without = [r for r in rows if r["labels"] != [OUT_OF_SCOPE]]
    plain = prepare(load_dataset(write_jsonl(tmp_path / "plain.jsonl", without)), shots=3, seed=0)
    assert plain.examples == prepared.examples  # the labels' shots do not move
    assert "out_of_scope_examples" not in plain.registry_dict()["classifier"]


def test_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    """Files saved by editors that add a UTF-8 byte order mark and Windows line ends still load."""
    rows = [
        {"text": "météo à Paris", "labels": ["天气"], "split": "train"},
        {"text": "quel temps fait-il", "labels": ["天气"], "split": "test"},
    ]
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        ("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n").encode("utf-8-sig")
    )
    (tmp_path / "bom.labels.json").write_bytes(json.dumps({"天气": "weather"}).encode("utf-8-sig"))
    dataset = load_dataset(path)
    assert [r.text for r in dataset.rows] == ["météo à Paris", "quel temps fait-il"]
    assert dataset.descriptions == {"天气": "weather"}
    prepared = prepare(dataset, shots=1, seed=0)
    assert prepared.names == {"天气": "label"}


def test_seeds_summarise_every_metric_across_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.seeds import main as seeds_main
    from benchmarks.seeds import run_seeds

    result = run_seeds(
        TINY, seeds=[0, 1, 2], shots=4, encoder="lexical", progress=None, settings=Settings.offline(tmp_path)
    )
    assert result["benchmark"] == "seeds" and [r["seed"] for r in result["runs"]] == [0, 1, 2]
    accuracy = [r["metrics"]["in_scope_accuracy"] for r in result["runs"]]
    summary = result["summary"]["in_scope_accuracy"]
    assert summary["min"] == min(accuracy) and summary["max"] == max(accuracy)
    assert summary["mean"] == pytest.approx(sum(accuracy) / 3, abs=1e-4)
    assert summary["sd"] == pytest.approx(float(np.std(accuracy, ddof=1)), abs=1e-4)
    assert {"threshold", "latency_p50_ms", "out_of_scope_recall"} <= set(result["summary"])
    # The same seed is the same run: nothing but the timings varies.
    same = run_seeds(
        TINY, seeds=[1], shots=4, encoder="lexical", progress=None, settings=Settings.offline(tmp_path)
    )
    assert same["runs"][0]["metrics"] == result["runs"][1]["metrics"]
    assert same["summary"]["in_scope_accuracy"]["sd"] == 0.0
    with pytest.raises(EvalError, match="each seed once"):
        run_seeds(TINY, seeds=[1, 1], encoder="lexical", progress=None)
    assert (
        seeds_main(
            [
                "--data",
                str(TINY),
                "--encoder",
                "lexical",
                "--shots",
                "4",
                "--seeds",
                "0",
                "1",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["seeds"] == [0, 1] and "queries" not in printed["runs"][0]
    assert seeds_main(["--data", str(tmp_path / "missing.jsonl"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_seed_also_seeds_the_fine_tuning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graph.classifier.finetune

    seen: list[int] = []

    def record(encoder: Any, guides: Any, spec: Any, **kwargs: Any) -> bool:
        seen.append(spec.seed)
        return False

    monkeypatch.setattr(graph.classifier.finetune, "finetune_encoder", record)
    for seed in (0, 3):
        result = evaluate(TINY, tmp_path, encoder="minilm", seed=seed)
        assert result["finetune"] is True
    assert seen == [0, 3]


# -- what went wrong: per label, confusions, calibration; progress; the plot ----------------------


def test_per_label_confusions_and_reliability_by_hand() -> None:
    from evals.analysis import confusions, per_label, reliability

    truth = [["a"], ["a"], ["b"], [], ["a", "b"]]
    predicted = [["a"], ["b"], ["b"], ["a"], ["a"]]
    labels = per_label(truth, predicted)
    # a: tp 2 (rows 0, 4), fp 1 (row 3), fn 1 (row 1); b: tp 1, fp 1 (row 1), fn 1 (row 4)
    assert labels["a"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    assert labels["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert labels[OUT_OF_SCOPE] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert confusions(truth, predicted) == [
        {"truth": "a", "predicted": "b", "count": 1},
        {"truth": "b", "predicted": OUT_OF_SCOPE, "count": 1},
        {"truth": OUT_OF_SCOPE, "predicted": "a", "count": 1},
    ]
    rel = reliability([0.95, 0.9, 0.15, 0.1], [True, False, False, False], bins=2)
    assert [b["count"] for b in rel["bins"]] == [2, 2]
    assert rel["bins"][1]["confidence"] == 0.925 and rel["bins"][1]["accuracy"] == 0.5
    assert rel["ece"] == round((2 * 0.425 + 2 * 0.125) / 4, 4)


def test_the_result_and_table_carry_the_breakdown(tiny: dict[str, Any]) -> None:
    from evals.analysis import confusions, per_label

    truth = [q["truth"] for q in tiny["queries"]]
    predicted = [q["predicted"][:1] for q in tiny["queries"]]
    assert tiny["per_label"] == per_label(truth, predicted)
    assert sum(m["support"] for m in tiny["per_label"].values()) == tiny["counts"]["test"]
    wrong = sum((p or [OUT_OF_SCOPE]) != (t or [OUT_OF_SCOPE]) for t, p in zip(truth, predicted, strict=True))
    assert wrong > 0, "the tiny set has mistakes to show"
    assert sum(c["count"] for c in confusions(truth, predicted, top=10**6)) == wrong  # one pair per mistake
    assert tiny["confusions"] == confusions(truth, predicted)
    rel = tiny["reliability"]
    assert rel["kind"] == "top-1 confidence" and rel["rows"] == tiny["counts"]["test"]
    assert sum(b["count"] for b in rel["bins"]) == rel["rows"] and 0 <= rel["ece"] <= 1
    table = format_table(tiny)
    assert "precision  recall      F1  support" in table
    assert f"expected calibration error {rel['ece']:.3f}" in table
    if tiny["confusions"]:
        assert "most confused (true label -> predicted instead, count):" in table


def test_progress_lines_on_a_pipe_and_on_a_terminal() -> None:
    import io

    from evals.progress import ProgressLine, encoding_progress

    pipe = io.StringIO()
    line = ProgressLine(pipe, tty=False)
    line("eval: compiling...")
    for done in range(1, 101):
        line.count("eval: test queries", done, 100)
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "eval: compiling..."
    assert lines[1] == "eval: test queries: 1/100"  # the first, then at most one every 5 s, then the last
    assert lines[-1].startswith("eval: test queries: 100/100, ") and len(lines) == 3
    assert "\r" not in pipe.getvalue()

    term = io.StringIO()
    line = ProgressLine(term, tty=True)
    for done in (1, 2, 3):
        line.count("stage", done, 3)
    line("next message")
    assert term.getvalue().count("\r\x1b[2K") == 3
    assert term.getvalue().endswith("\nnext message\n")

    class Counting:
        identity = "counting"
        calls = 0

        def encode(self, texts: list[str]) -> np.ndarray:
            Counting.calls += 1
            return np.ones((len(texts), 2), dtype=np.float32)

    seen: list[tuple[int, int]] = []
    encoder = encoding_progress(Counting(), lambda done, total: seen.append((done, total)))
    texts = [f"t{i}" for i in range(600)]
    assert encoder.encode(texts).shape == (600, 2) and encoder.identity == "counting"
    assert seen == [(256, 600), (512, 600), (600, 600)]
    encoder.encode(texts)  # the same rows again (calibration, then thresholds): remembered
    assert Counting.calls == 3
    assert not hasattr(encoder, "encode_spans")  # only an encoder that has it


def test_cli_details_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "eval.png"
    args = ["eval", "--data", str(TINY), "--encoder", "lexical", "--shots", "4", "--json", "--quiet"]
    assert main([*args, "--plot", str(plot)]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "queries" not in plain, "--plot alone does not add the details to the JSON"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000
    assert main([*args, "--details"]) == 0
    detailed = json.loads(capsys.readouterr().out)
    assert len(detailed["queries"]) == detailed["counts"]["test"]
    assert {"text", "truth", "predicted", "scores", "llm_calls", "latency_ms"} <= set(detailed["queries"][0])
    assert main([*args, "--plot", str(tmp_path / "missing" / "dir" / "x.png")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_plot_panels(tiny: dict[str, Any]) -> None:
    from evals.plots import confusion_matrix, plot_eval

    labels, counts = confusion_matrix(tiny["queries"], multi_label=False)
    assert labels[-1] == OUT_OF_SCOPE and sum(map(sum, counts)) == tiny["counts"]["test"]
    fig = plot_eval(tiny)
    left, right, *_ = fig.axes
    assert left.get_title().startswith("confusion")  # few labels: the heatmap
    assert right.get_title().startswith(f"reliability: ECE {tiny['reliability']['ece']:.3f}")
    many = {**tiny, "queries": None}  # without details (or with many labels): the pairs as bars
    assert plot_eval(many).axes[0].get_title().startswith("most-confused") or not tiny["confusions"]
