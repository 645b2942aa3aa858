"""How well confidences select capabilities: the figures thresholds are fitted for and reported by.

Rows are requests and columns capabilities throughout: `conf` holds confidences, `truth` whether
the request needs the capability. Data where no request needs more than one capability is
single-label and measured as the classifier decides there (the best capability or nothing);
otherwise each request's selected set is compared with its true set (micro-F1).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np


def truth_matrix(label_sets: Sequence[Iterable[Hashable]], labels: Sequence[Hashable]) -> np.ndarray:
    """A boolean (request, capability) matrix: row i marks the labels of `label_sets[i]`, whether
    names or column numbers; labels not among `labels` (capabilities not scored) are left out."""
    index = {label: j for j, label in enumerate(labels)}
    truth = np.zeros((len(label_sets), len(labels)), dtype=bool)
    for row, names in enumerate(label_sets):
        for name in names:
            if name in index:
                truth[row, index[name]] = True
    return truth


def single_label(truth: np.ndarray) -> bool:
    """Whether every request needs at most one capability."""
    return bool(truth.sum(1).max(initial=0) <= 1)


def micro_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """F1 over every (request, capability) decision; 0 when nothing is predicted or true."""
    return 2 * float((pred & truth).sum()) / max(1.0, float(pred.sum() + truth.sum()))


def cutoffs(labels: Sequence[str], thresholds: Mapping[str, float], default: float) -> np.ndarray:
    """Each capability's threshold, in column order: its own where it has one, else `default`."""
    return np.array([thresholds.get(name, default) for name in labels], dtype=np.float32)


def rates(
    conf: np.ndarray, truth: np.ndarray, cut: np.ndarray, *, max_capabilities: int | None = None
) -> dict[str, float]:
    """Single-label data: `in_scope_accuracy` (best capability right and accepted) and
    `out_of_scope_recall` (nothing accepted), each when there are such requests; multi-label
    data: `micro_f1` of the selected sets. `cut` holds each capability's threshold; with
    `max_capabilities`, only the most confident that many of a request can be selected, as in the
    classifier."""
    if single_label(truth):
        # The best-ranked capability that reaches its own threshold (with per-capability
        # thresholds, not always the top one), as the classifier selects among its top
        # `max_capabilities` (a passing capability ranked lower is rare).
        rows = np.arange(len(conf))
        passing = np.asarray(conf >= cut[None, :], dtype=bool)
        top = np.where(passing, conf, -np.inf).argmax(1)
        accepted: np.ndarray = np.asarray(passing.any(axis=1), dtype=bool)
        in_scope = truth.any(1)
        out: dict[str, float] = {}
        if in_scope.any():
            out["in_scope_accuracy"] = float((truth[rows, top] & accepted)[in_scope].mean())
        if (~in_scope).any():
            out["out_of_scope_recall"] = float((~accepted)[~in_scope].mean())
        return out
    pred = conf >= cut
    if max_capabilities is not None:
        # As the classifier: the `max_capabilities` most confident, then each one's threshold.
        rank = np.argsort(np.argsort(-conf, axis=1, kind="stable"), axis=1)
        pred &= rank < max_capabilities
    return {"micro_f1": micro_f1(pred, truth)}


def objective(figures: Mapping[str, float]) -> float:
    """The one figure thresholds are fitted for, from `rates`: micro-F1 on multi-label data, else
    the mean of in-scope accuracy and out-of-scope recall (so the few out-of-scope requests of a
    data set weigh as much as the many in-scope ones)."""
    if "micro_f1" in figures:
        return figures["micro_f1"]
    return sum(figures.values()) / max(1, len(figures))
