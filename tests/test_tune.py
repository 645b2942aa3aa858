"""`routegraph tune`: the classifier's curve and thresholds fitted on labelled requests, applied from
the registry, and set aside when the guides they were fitted for change."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from capabilities.registry import Registry, RegistryError
from graph.cli import main
from graph.fewshot import Calibration
from graph.settings import Settings
from graph.tune import TuneError, read_labelled, tune
from nodes.base import build_scorer
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
    """The registry with `routegraph tune`'s YAML pasted in."""
    out = copy.deepcopy(data)
    out["classifier"] = {**out.get("classifier", {}), **fragment["classifier"]}
    own = {c["name"]: c["threshold"] for c in fragment.get("capabilities", [])}
    for entry in out["capabilities"]:
        if entry["name"] in own:
            entry["threshold"] = own[entry["name"]]
    return out


def test_tune_prints_registry_yaml_that_the_scorer_then_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    data = copy.deepcopy(BASE)
    registry_file = write_registry(tmp_path / "registry.yaml", data)
    rows = write_rows(tmp_path / "labelled.jsonl", ROWS)

    assert main(["tune", "--data", str(rows), "--registry", str(registry_file), "--quiet"]) == 0
    out = capsys.readouterr().out
    fragment = yaml.safe_load(out)
    calibration = fragment["classifier"]["calibration"]
    assert calibration["slope"] > 0 and len(calibration["guides"]) == 16
    assert 0 < fragment["classifier"]["threshold"] < 1

    tuned = Registry.from_dict(merged(data, fragment))
    scorer = build_scorer(tuned, settings)
    assert scorer.calibration == Calibration(slope=calibration["slope"], midpoint=calibration["midpoint"])
    untuned = build_scorer(Registry.from_dict(data), settings)
    assert untuned.compile().calibration != scorer.calibration  # fitted on the guides instead

    # On the requests it was fitted on, the fitted settings do at least as well as before.
    assert main(["tune", "--data", str(rows), "--registry", str(registry_file), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["after"] >= result["before"]
    assert result["rows"] == len(ROWS) and result["in_scope"] == 10 and not result["multi_label"]
    # The fitted curve and threshold separate these requests: each in-scope one's best capability
    # is the right one and accepted, the others are not.
    texts = [t for t, _ in ROWS]
    conf = scorer.confidences(texts)
    best = conf.max(1)
    threshold = fragment["classifier"]["threshold"]
    assert result["after"] == 1.0
    assert all(best[:10] >= threshold) and all(best[10:] < threshold)


def test_per_capability_thresholds_from_multi_label_requests(settings: Settings) -> None:
    registry = Registry.from_dict(copy.deepcopy(BASE))
    rows = [
        *ROWS,
        ("what is 6 times 7 and what time is it in Oslo", ["calculator", "clock"]),
        ("add 2 and 2, and tell me the date in Lima", ["calculator", "clock"]),
    ]
    texts, truths = [t for t, _ in rows], [[x for x in labels if x != "out_of_scope"] for _, labels in rows]
    result = tune(registry, settings, texts, truths)
    assert result.multi_label and result.objective == "micro-F1"
    assert set(result.thresholds) <= {"calculator", "clock"}
    assert result.after >= result.before
    fragment = yaml.safe_load(result.yaml("rows"))
    tuned = Registry.from_dict(merged(copy.deepcopy(BASE), fragment))
    assert {c.name: c.threshold for c in tuned.routable if c.threshold is not None} == result.thresholds
    assert build_scorer(tuned, settings).thresholds == result.thresholds


def test_a_curve_fitted_for_other_guides_is_set_aside(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy.deepcopy(BASE)
    texts, truths = [t for t, _ in ROWS], [[x for x in labels if x != "out_of_scope"] for _, labels in ROWS]
    result = tune(Registry.from_dict(data), settings, texts, truths)
    fragment = yaml.safe_load(result.yaml("rows"))
    changed = merged(data, fragment)
    changed["capabilities"].append(
        {"name": "weather", "class": "tests.test_tune:Weather", "classifier_guide": guide("will it rain")}
    )
    with caplog.at_level(logging.WARNING, logger="routegraph"):
        scorer = build_scorer(Registry.from_dict(changed), settings)
    assert "fitted for other guides" in caplog.text
    assert scorer.calibration is None  # fitted on the guides when it compiles
    # Without a fingerprint the curve is taken as given.
    del changed["classifier"]["calibration"]["guides"]
    assert build_scorer(Registry.from_dict(changed), settings).calibration is not None


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
    ("change", "field", "message"),
    [
        (
            {"classifier": {"calibration": {"slope": 0, "midpoint": 0.3}}},
            "classifier.calibration.slope",
            "greater than 0",
        ),
        ({"classifier": {"calibration": {"slope": 10.0}}}, "classifier.calibration.midpoint", "required"),
        ({"capabilities": {"threshold": 1.5}}, "capabilities[2].threshold", "less than or equal to 1"),
    ],
)
def test_fitted_settings_are_validated(change: dict[str, Any], field: str, message: str) -> None:
    data = copy.deepcopy(BASE)
    if "classifier" in change:
        data["classifier"] = {**data["classifier"], **change["classifier"]}
    else:
        data["capabilities"][2].update(change["capabilities"])
    with pytest.raises(RegistryError) as info:
        Registry.from_dict(data)
    problem = info.value.problems[0]
    assert problem.field == field and message in problem.message


from capabilities.base import Capability  # noqa: E402  (a test capability for the changed registry)


class Weather(Capability):
    description = "Weather forecasts."

    async def execute(self, inputs: Any, ctx: Any) -> dict[str, Any]:
        return {"summary": "sunny"}


def test_an_operating_point_and_the_rates_before_and_after(settings: Settings) -> None:
    registry = Registry.from_dict(copy.deepcopy(BASE))
    texts, truths = [t for t, _ in ROWS], [[x for x in labels if x != "out_of_scope"] for _, labels in ROWS]
    result = tune(registry, settings, texts, truths, min_out_of_scope_recall=0.5)
    assert result.objective == "in-scope accuracy at out-of-scope recall >= 0.5"
    assert set(result.rates_after) == {"in_scope_accuracy", "out_of_scope_recall"}
    assert result.rates_after["out_of_scope_recall"] >= 0.5
    assert result.after == result.rates_after["in_scope_accuracy"]
    assert result.before == result.rates_before["in_scope_accuracy"]
    assert "in scope accuracy" in result.summary() and "out of scope recall" in result.summary()
    balanced = tune(registry, settings, texts, truths)
    assert balanced.after == pytest.approx(sum(balanced.rates_after.values()) / 2)
