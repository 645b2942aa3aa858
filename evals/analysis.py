"""What an evaluation got wrong, as data: per-label precision/recall/F1, the most-confused label
pairs, and how far confidence is from accuracy (a reliability table and its ECE).

Pure functions over truths, predictions and confidences (labels by name; `OUT_OF_SCOPE` for "no
capability"), so `routegraph eval`, notebook 03 and the plots (evals/plots.py) show the same numbers.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from evals.datasets import OUT_OF_SCOPE

NONE = OUT_OF_SCOPE
"""The label of "no capability": a rejected request, or an out-of-scope one."""
RELIABILITY_BINS = 10


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return round(precision, 4), round(recall, 4), round(f1, 4)


def per_label(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support (rows whose truth has the label) per label, sorted by name.

    Rows are label sets: an empty set is out of scope (truth) or rejected (prediction), counted as
    the label `out_of_scope` so that rejection has a precision and recall of its own."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for true_row, pred_row in zip(truth, predicted, strict=True):
        t, p = set(true_row) or {NONE}, set(pred_row) or {NONE}
        tp.update(t & p)
        fp.update(p - t)
        fn.update(t - p)
    out: dict[str, dict[str, Any]] = {}
    for label in sorted(set(tp) | set(fp) | set(fn)):
        precision, recall, f1 = _f1(tp[label], fp[label], fn[label])
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp[label] + fn[label]}
    return out


def confusions(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], *, top: int = 10
) -> list[dict[str, Any]]:
    """The most frequent (true label, predicted label) mistakes, most frequent first.

    In a row, each true label that was missed is paired with each label predicted instead (or with
    `out_of_scope` when nothing was); a wrong extra label with no missed one is paired with
    `out_of_scope` as the truth."""
    pairs: Counter[tuple[str, str]] = Counter()
    for true_row, pred_row in zip(truth, predicted, strict=True):
        t, p = set(true_row) or {NONE}, set(pred_row) or {NONE}
        missed, extra = sorted(t - p), sorted(p - t)
        if missed and extra:
            pairs.update((a, b) for a in missed for b in extra)
        elif missed:
            pairs.update((a, NONE) for a in missed)
        elif extra:
            pairs.update((NONE, b) for b in extra)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"truth": a, "predicted": b, "count": n} for (a, b), n in ranked]


def reliability(
    confidence: Sequence[float], correct: Sequence[bool], *, bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Confidence against accuracy in equal-width bins, and the expected calibration error (ECE:
    the bins' |accuracy - mean confidence| weighted by their share of the rows)."""
    edges = [i / bins for i in range(bins + 1)]
    table: list[dict[str, Any]] = []
    total = len(confidence)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = [i for i, c in enumerate(confidence) if lo <= c < hi or (hi == 1.0 and c == 1.0)]
        if not inside:
            table.append({"low": lo, "high": hi, "count": 0, "confidence": None, "accuracy": None})
            continue
        conf = sum(confidence[i] for i in inside) / len(inside)
        acc = sum(bool(correct[i]) for i in inside) / len(inside)
        ece += abs(acc - conf) * len(inside) / total
        table.append(
            {
                "low": lo,
                "high": hi,
                "count": len(inside),
                "confidence": round(conf, 4),
                "accuracy": round(acc, 4),
            }
        )
    return {"bins": table, "ece": round(ece, 4) if total else None, "rows": total}


def top1_reliability(truth: Sequence[Sequence[str]], scores: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Single-label data: the best label's confidence against whether it is the true label (an
    out-of-scope row has no true label, so its best label is always wrong)."""
    confidence: list[float] = []
    correct: list[bool] = []
    for true_row, row_scores in zip(truth, scores, strict=True):
        if not row_scores:
            continue
        best = max(row_scores, key=lambda k: row_scores[k])
        confidence.append(float(row_scores[best]))
        correct.append(best in true_row)
    return {**reliability(confidence, correct), "kind": "top-1 confidence"}


def label_reliability(
    truth: Sequence[Sequence[str]], scores: Sequence[Mapping[str, float]]
) -> dict[str, Any]:
    """Multi-label data: every (row, label) confidence against whether the row has that label."""
    confidence: list[float] = []
    correct: list[bool] = []
    for true_row, row_scores in zip(truth, scores, strict=True):
        for label, value in row_scores.items():
            confidence.append(float(value))
            correct.append(label in true_row)
    return {**reliability(confidence, correct), "kind": "confidence per (query, label)"}


def analyse(
    truth: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    scores: Sequence[Mapping[str, float]],
    *,
    multi_label: bool,
    top: int = 10,
) -> dict[str, Any]:
    """The three together, as `run_eval` adds them to its result (`per_label`, `confusions`,
    `reliability`)."""
    return {
        "per_label": per_label(truth, predicted),
        "confusions": confusions(truth, predicted, top=top),
        "reliability": (label_reliability if multi_label else top1_reliability)(truth, scores),
    }


def format_breakdown(result: Mapping[str, Any], *, worst: int = 10) -> list[str]:
    """Table lines: the labels with the lowest F1 (all of them when few), then the confusions."""
    labels: Mapping[str, Mapping[str, Any]] = result.get("per_label") or {}
    lines: list[str] = []
    if labels:
        ranked = sorted(labels.items(), key=lambda kv: (kv[1]["f1"], -kv[1]["support"], kv[0]))
        shown = ranked if len(ranked) <= worst + 2 else ranked[:worst]
        width = max(12, *(len(name) for name, _ in shown))
        title = (
            "per label"
            if len(shown) == len(ranked)
            else f"the {len(shown)} of {len(ranked)} labels with the lowest F1 (--json has all)"
        )
        lines += ["", title + ":", f"  {'label':<{width}}  precision  recall      F1  support"]
        lines += [
            f"  {name:<{width}}  {m['precision']:>9.3f}  {m['recall']:>6.3f}  {m['f1']:>6.3f}  {m['support']:>7}"
            for name, m in shown
        ]
    pairs = result.get("confusions") or []
    if pairs:
        width = max(len(p["truth"]) for p in pairs)
        lines += ["", "most confused (true label -> predicted instead, count):"]
        lines += [f"  {p['truth']:<{width}} -> {p['predicted']}  {p['count']}" for p in pairs]
    rel = result.get("reliability")
    if rel and rel.get("ece") is not None:
        lines += [
            "",
            f"calibration: expected calibration error {rel['ece']:.3f} ({rel['kind']}, {rel['rows']} rows)",
        ]
    return lines
