"""`routegraph tune`: the classifier's curve and thresholds fitted on labelled requests, applied from
the registry, and set aside together when the guides or settings they were fitted for change."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from evals.tune import TuneError, read_labelled, tune
from graph.classifier import Calibration, fingerprint
from graph.classifier.build import build_scorer
from graph.cli import main
from graph.config.registry import Registry, RegistryError
from graph.config.settings import Settings
from tests.conftest import BASE, guide

ROWS: list[tuple[str, list[str]]] = [
    ("what is 7 times 8", ["calculator"]),
    ("calculate 81 / 9", ["calculator"]),
    ("how much is 20% of 50", ["calculator"]),
    ("add 12 and 30", ["calculator"]),
    ("what is 100 minus 58", ["calculator"]),
    ("what time is it in Lisbon", ["clock"]),
    ("current time in Chicago", ["clock"]),
    ("what's the date today in Tokyo", ["clock"]),
    ("what day is it in Cairo", ["clock"]),
    ("tell me the local time in Rome", ["clock"]),
    ("write me a poem about autumn", []),
    ("who won the football match", ["out_of_scope"]),
    ("recommend a good film", []),
    ("what is the capital of peru", []),
]


def write_rows(path: Path, rows: list[tuple[str, list[str]]]) -> Path:
    path.write_text(
        "".join(json.dumps({"text": t, "labels": labels, "split": "test"}) + "\n" for t, labels in rows),
        encoding="utf-8",
    )
    return path


def write_registry(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def merged(data: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """The registry with `routegraph tune`'s block pasted in."""
    out = copy.deepcopy(data)
    out["classifier"] = {**out.get("classifier", {}), "calibration": fragment["classifier"]["calibration"]}
    return out


def test_tune_prints_registry_yaml_that_the_scorer_then_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    data = copy.deepcopy(BASE)
    registry_file = write_registry(tmp_path / "registry.yaml", data)
    rows = write_rows(tmp_path / "labelled.jsonl", ROWS)

    assert main(["tune", "--data", str(rows), "--registry", str(registry_file), "--quiet"]) == 0
    fragment = yaml.safe_load(capsys.readouterr().out)
    calibration = fragment["classifier"]["calibration"]
    assert set(fragment["classifier"]) == {
        "calibration"
    }  # classifier.threshold stays for a model's judgements
    assert calibration["slope"] > 0 and len(calibration["fingerprint"]) == 16
    assert 0 < calibration["threshold"] < 1 and calibration["thresholds"] == {}

    tuned = Registry.from_dict(merged(data, fragment))
    scorer = build_scorer(tuned, settings)
    assert scorer.calibration == Calibration(slope=calibration["slope"], midpoint=calibration["midpoint"])
    assert scorer.threshold_for("clock", 0.5) == calibration["threshold"]
    untuned = build_scorer(Registry.from_dict(data), settings)
    assert untuned.compile().calibration != scorer.calibration  # fitted on the guides instead
    assert untuned.threshold_for("clock", 0.5) == 0.5

    # On the requests it was fitted on, the fitted settings do at least as well as before, and here
    # they separate them: each in-scope one's best capability is right and accepted, no other is.
    assert main(["tune", "--data", str(rows), "--registry", str(registry_file), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == len(ROWS) and result["in_scope"] == 10 and not result["multi_label"]
    assert result["after"] >= result["before"] and result["after"] == 1.0
    best = scorer.confidences([t for t, _ in ROWS]).max(1)
    assert all(best[:10] >= calibration["threshold"]) and all(best[10:] < calibration["threshold"])


def test_per_capability_thresholds_are_fitted_and_applied(settings: Settings) -> None:
    # Multi-label validation rows where one capability needs a threshold of its own: calculator's
    # right answers sit at 0.6-0.7 and its wrong ones at 0.4, clock's right answers at 0.9 and its
    # wrong ones at 0.7. One global cut cannot separate both.
    scorer = build_scorer(Registry.from_dict(copy.deepcopy(BASE)), settings, tuned=False)
    labels: list[list[str]] = [["calculator", "clock"]] * 6 + [[]] * 6
    conf = np.array([[0.6 + 0.02 * i, 0.9] for i in range(6)] + [[0.4, 0.7]] * 6, dtype=np.float32)
    scorer.confidences = lambda texts: conf  # type: ignore[method-assign]
    scorer.compile()
    threshold = scorer.fit_thresholds(["x"] * 12, labels)
    assert scorer.fit_objective == 1.0
    assert scorer.thresholds  # at least one capability has a threshold of its own
    own = {name: scorer.threshold_for(name, threshold) for name in ("calculator", "clock")}
    assert 0.4 < own["calculator"] <= 0.6 and 0.7 < own["clock"] <= 0.9

    # Through the YAML block and back into a registry.
    from evals.tune import TuneResult

    stamp = fingerprint(
        scorer.guides, encoder="lexical", finetune=scorer.finetune, split_clauses=True, balanced=scorer.balance_guides
    )
    result = TuneResult(
        3, 2, True, "micro-F1", 0.5, 1.0, threshold, 20.0, 0.3, stamp, dict(scorer.thresholds)
    )
    fragment = yaml.safe_load(result.yaml("rows"))
    tuned = Registry.from_dict(merged(copy.deepcopy(BASE), fragment))
    applied = build_scorer(tuned, settings)
    assert applied.thresholds == result.thresholds
    assert applied.threshold_for("calculator", 0.5) == own["calculator"]


def test_multi_label_requests_are_tuned_on_micro_f1(settings: Settings) -> None:
    registry = Registry.from_dict(copy.deepcopy(BASE))
    rows = [
        *ROWS,
        ("what is 6 times 7 and what time is it in Oslo", ["calculator", "clock"]),
        ("add 2 and 2, and tell me the date in Lima", ["calculator", "clock"]),
    ]
    texts, truths = [t for t, _ in rows], [[x for x in labels if x != "out_of_scope"] for _, labels in rows]
    result = tune(registry, settings, texts, truths, min_out_of_scope_recall=0.9)
    assert result.multi_label and result.objective == "micro-F1"
    assert set(result.rates_after) == {"micro_f1"} and result.after == result.rates_after["micro_f1"]
    assert result.notes and "multi-label" in result.notes[0]


def test_a_block_fitted_for_other_guides_or_settings_is_set_aside_whole(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy.deepcopy(BASE)
    texts, truths = [t for t, _ in ROWS], [[x for x in labels if x != "out_of_scope"] for _, labels in ROWS]
    result = tune(Registry.from_dict(data), settings, texts, truths)
    block = yaml.safe_load(result.yaml("rows"))["classifier"]["calibration"]
    block["thresholds"] = {"clock": 0.9}
    pasted = merged(data, {"classifier": {"calibration": block}})
    assert build_scorer(Registry.from_dict(pasted), settings).thresholds == {"clock": 0.9}

    another_guide = copy.deepcopy(pasted)
    another_guide["capabilities"].append(
        {"name": "weather", "class": "tests.test_tune:Weather", "classifier_guide": guide("will it rain")}
    )
    no_clauses = copy.deepcopy(pasted)
    no_clauses["classifier"]["split_clauses"] = False
    for changed in (another_guide, no_clauses):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="routegraph"):
            scorer = build_scorer(Registry.from_dict(changed), settings)
        assert "fitted for other guides or settings" in caplog.text
        # Curve, threshold and per-capability thresholds all set aside: the guides' curve and
        # classifier.threshold apply.
        assert scorer.calibration is None and scorer.thresholds == {}
        assert scorer.threshold_for("clock", 0.5) == 0.5
    # Without a fingerprint the block is taken as given.
    del no_clauses["classifier"]["calibration"]["fingerprint"]
    assert build_scorer(Registry.from_dict(no_clauses), settings).calibration is not None


def test_bad_labelled_requests_name_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry.from_dict(copy.deepcopy(BASE))
    bad = write_rows(tmp_path / "bad.jsonl", [("what is 2 plus 2", ["calculator"]), ("play jazz", ["music"])])
    with pytest.raises(TuneError, match=r"bad.jsonl:2: 'music' is not a capability"):
        read_labelled(bad, registry)
    none = write_rows(tmp_path / "none.jsonl", [("play jazz", ["out_of_scope"])])
    with pytest.raises(TuneError, match="at least one needs a capability"):
        read_labelled(none, registry)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "hi", "labels": []}\n', encoding="utf-8")
    registry_file = write_registry(tmp_path / "registry.yaml", copy.deepcopy(BASE))
    assert main(["tune", "--data", str(broken), "--registry", str(registry_file)]) == 2
    assert "broken.jsonl:1: 'split' must be one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("calibration", "field", "message"),
    [
        ({"slope": 0, "midpoint": 0.3}, "classifier.calibration.slope", "greater than 0"),
        ({"slope": 10.0}, "classifier.calibration.midpoint", "required"),
        (
            {"slope": 10.0, "midpoint": 0.3, "threshold": 1.5},
            "classifier.calibration.threshold",
            "less than or equal to 1",
        ),
        (
            {"slope": 10.0, "midpoint": 0.3, "thresholds": {"clock": -0.1}},
            "classifier.calibration.thresholds.clock",
            "greater than or equal to 0",
        ),
        (
            {"slope": 10.0, "midpoint": 0.3, "thresholds": {"respond": 0.5}},
            "classifier.calibration.thresholds.respond",
            "not a capability the classifier routes to (those are: calculator, clock)",
        ),
    ],
)
def test_fitted_settings_are_validated(calibration: dict[str, Any], field: str, message: str) -> None:
    data = copy.deepcopy(BASE)
    data["classifier"] = {**data["classifier"], "calibration": calibration}
    with pytest.raises(RegistryError) as info:
        Registry.from_dict(data)
    problem = info.value.problems[0]
    assert problem.field == field and message in problem.message, problem


def test_an_operating_point_and_the_rates_before_and_after(settings: Settings) -> None:
    registry = Registry.from_dict(copy.deepcopy(BASE))
    texts, truths = [t for t, _ in ROWS], [[x for x in labels if x != "out_of_scope"] for _, labels in ROWS]
    result = tune(registry, settings, texts, truths, min_out_of_scope_recall=0.5)
    assert result.objective == "in-scope accuracy at out-of-scope recall >= 0.5"
    assert set(result.rates_after) == {"in_scope_accuracy", "out_of_scope_recall"}
    assert result.rates_after["out_of_scope_recall"] >= 0.5
    assert result.after == result.rates_after["in_scope_accuracy"]
    assert result.before == result.rates_before["in_scope_accuracy"]
    assert "in-scope accuracy" in result.summary() and "out-of-scope recall" in result.summary()
    balanced = tune(registry, settings, texts, truths)
    assert balanced.after == pytest.approx(sum(balanced.rates_after.values()) / 2)
    # A handful of out-of-scope requests cannot hold 0.9 at 95% confidence: held as measured, said.
    strict = tune(registry, settings, texts, truths, min_out_of_scope_recall=0.9)
    assert strict.rates_after["out_of_scope_recall"] >= 0.9
    assert any("too few out of scope" in note for note in strict.notes), strict.notes


def test_single_label_rates_select_as_the_classifier_does() -> None:
    # A top capability below its own threshold does not reject the request when the next one
    # reaches its threshold: the classifier would route it there.
    from graph.classifier import FewShotScorer, LabelGuide
    from graph.classifier.encoders import LexicalEncoder

    scorer = FewShotScorer([LabelGuide("a", ("x",)), LabelGuide("b", ("y",))], LexicalEncoder())
    scorer.thresholds = {"a": 0.9}
    conf = np.array([[0.8, 0.6], [0.95, 0.6], [0.4, 0.3]], dtype=np.float32)
    rates = scorer.rates(["1", "2", "3"], [["b"], ["a"], []], 0.5, _conf=conf)
    assert rates == {"in_scope_accuracy": 1.0, "out_of_scope_recall": 1.0}
    scorer.thresholds = {}
    rates = scorer.rates(["1", "2", "3"], [["b"], ["a"], []], 0.5, _conf=conf)
    assert rates == {"in_scope_accuracy": 0.5, "out_of_scope_recall": 1.0}


def test_the_printed_yaml_parses_back_to_the_same_values() -> None:
    # YAML 1.1 reads `1e-06` as a string and an all-digit fingerprint as an integer.
    from evals.tune import TuneResult

    result = TuneResult(
        3, 2, False, "x", 0.5, 0.6, 0.999822, 40.0, -1.2e-05, "1234567890123456", {"clock": 1e-06}
    )
    block = yaml.safe_load(result.yaml("rows"))["classifier"]["calibration"]
    assert block == {
        "slope": 40,
        "midpoint": -1.2e-05,
        "threshold": 0.999822,
        "thresholds": {"clock": 1e-06},
        "fingerprint": "1234567890123456",
    }
    spec = Registry.from_dict(merged(copy.deepcopy(BASE), {"classifier": {"calibration": block}})).spec
    assert spec.classifier.calibration is not None
    assert spec.classifier.calibration.fingerprint == "1234567890123456"
    assert spec.classifier.calibration.thresholds == {"clock": 1e-06}


from graph.capability.base import Capability  # noqa: E402  (a test capability for the changed registry)


class Weather(Capability):
    description = "Weather forecasts."

    async def execute(self, inputs: Any, ctx: Any) -> dict[str, Any]:
        return {"summary": "sunny"}
