"""benchmarks/labelled_guides.py: which labelled rows become guide examples, and the registry they make."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.labelled_guides import additions_from, main
from graph.config.registry import Registry
from graph.ops.learn import overlay_for

ROOT = Path(__file__).resolve().parent.parent


def test_single_label_and_out_of_scope_rows_become_examples_and_nothing_else(tmp_path: Path) -> None:
    registry = Registry.from_file(ROOT / "registry.yaml")
    known = next(iter(registry["billing"].classifier_guide.examples)).query
    data = tmp_path / "labelled.jsonl"
    rows = [
        {"text": "the invoice for march looks doubled to me", "labels": ["billing"], "split": "test"},
        {"text": "Ordered a pizza, where is it", "labels": ["out_of_scope"], "split": "test"},
        {"text": "refund CH-2003 and tell me about the outage", "labels": ["refund", "incidents"], "split": "test"},
        {"text": known, "labels": ["billing"], "split": "test"},
        {"text": "The invoice for March looks doubled to me", "labels": ["billing"], "split": "test"},
        {"text": "what is 2+2", "labels": ["respond"], "split": "test"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    additions = additions_from([data], registry)
    assert [(a["kind"], a["capability"], a["query"]) for a in additions] == [
        ("positive", "billing", "the invoice for march looks doubled to me"),
        ("out_of_scope", None, "Ordered a pizza, where is it"),
    ]
    patched = registry.with_overlay(overlay_for(registry, additions))
    assert "the invoice for march looks doubled to me" in patched["billing"].classifier_guide.positives
    assert "Ordered a pizza, where is it" in patched.spec.classifier.out_of_scope_examples
    assert len(patched["refund"].classifier_guide.examples) == len(registry["refund"].classifier_guide.examples)


def test_a_file_both_added_and_evaluated_is_refused(tmp_path: Path, capsys: object) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps({"text": "hi", "labels": ["out_of_scope"], "split": "test"}) + "\n", encoding="utf-8")
    assert main(["--add", str(data), "--eval", str(data)]) == 2
