"""The out-of-scope decision in `routegraph eval` (issue 19): out-of-scope train rows not drawn as
examples join val's rows, so a `--min-oos-recall` is held by its 95% lower bound on more rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.datasets import OUT_OF_SCOPE, load_dataset, prepare
from evals.harness import run_eval
from graph.config.settings import Settings

TOPICS = ("weather forecast rain", "pizza order delivery", "flight booking airport")
STRANGERS = ("volcano", "poetry", "chess", "knitting", "astronomy", "gardening", "violin", "origami")


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows(*, spare_out_of_scope: int, val: bool = True) -> list[dict[str, Any]]:
    """Three topics (6 train rows each), 5 out-of-scope val rows, and out-of-scope train rows."""
    out: list[dict[str, Any]] = []
    for n, topic in enumerate(TOPICS):
        label = topic.split()[0]
        out += [{"text": f"{topic} request {i}", "labels": [label], "split": "train"} for i in range(6)]
        if val:
            out += [{"text": f"{topic} question {i}", "labels": [label], "split": "val"} for i in range(4)]
        out += [{"text": f"{topic} please {n}", "labels": [label], "split": "test"}]
    out += [
        {"text": f"tell me about {STRANGERS[i % 8]} {i}", "labels": [OUT_OF_SCOPE], "split": "train"}
        for i in range(spare_out_of_scope)
    ]
    if val:
        out += [{"text": f"{w} hobby ideas", "labels": [OUT_OF_SCOPE], "split": "val"} for w in STRANGERS[:5]]
    out += [{"text": "a limerick about chess and the sea", "labels": [OUT_OF_SCOPE], "split": "test"}]
    return out


def test_spare_out_of_scope_train_rows_are_tuning_rows(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "d.jsonl", rows(spare_out_of_scope=30)))
    prepared = prepare(dataset, shots=4, seed=0)
    tuning = {r.text for r in prepared.tuning}
    spare = {r.text for r in dataset.split("train") if not r.labels} - set(prepared.out_of_scope)
    assert len(prepared.out_of_scope) == 4 and len(spare) == 26
    assert spare <= tuning  # every spare one is tuned on
    assert not set(prepared.out_of_scope) & tuning  # an example is never a tuning row
    assert {r.text for r in dataset.split("val")} <= tuning
    assert len(prepared.tuning) == len(dataset.split("val")) + 26
    assert prepared.tuning_source == "val"
    assert prepare(dataset, shots=4, seed=0).tuning == prepared.tuning  # seeded


def test_without_out_of_scope_train_rows_val_alone_is_tuned_on(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path / "d.jsonl", rows(spare_out_of_scope=0)))
    prepared = prepare(dataset, shots=4, seed=0)
    assert prepared.tuning == tuple(dataset.split("val"))
    assert prepared.out_of_scope == ()


def test_without_val_the_train_slice_is_unchanged(tmp_path: Path) -> None:
    """No val: the tuning rows are a slice of the unused train rows, out-of-scope ones included."""
    dataset = load_dataset(write(tmp_path / "d.jsonl", rows(spare_out_of_scope=30, val=False)))
    prepared = prepare(dataset, shots=4, seed=0)
    assert prepared.tuning_source == "train-slice"
    assert not set(prepared.out_of_scope) & {r.text for r in prepared.tuning}


def test_min_oos_recall_is_held_by_its_bound_with_the_spare_rows(tmp_path: Path) -> None:
    """Five out-of-scope val rows cannot hold a recall of 0.85 at 95% confidence (all five rejected
    give a lower bound of 0.65): the threshold falls back to the recall measured on them. With the
    spare out-of-scope train rows they can, and the eval says so."""
    path = write(tmp_path / "d.jsonl", rows(spare_out_of_scope=40))
    settings = Settings.offline(tmp_path / "data")
    result = run_eval(
        path, shots=4, encoder="lexical", settings=settings, progress=None, min_out_of_scope_recall=0.85
    )
    assert result["counts"]["tuning"] == 12 + 5 + 36
    assert "95% lower bound" in result["threshold_objective"], result["threshold_objective"]
    few = write(tmp_path / "few.jsonl", rows(spare_out_of_scope=4))
    small = run_eval(
        few, shots=4, encoder="lexical", settings=settings, progress=None, min_out_of_scope_recall=0.85
    )
    assert small["counts"]["tuning"] == 12 + 5
    assert "95% lower bound" not in small["threshold_objective"]
