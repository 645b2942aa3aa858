"""Thresholds: the confidence a capability needs to be selected, chosen on labelled confidences.

Every function here is pure: confidences and truth matrices in (`metrics`), thresholds out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graph.classifier import metrics

THRESHOLD_GRID: tuple[float, ...] = tuple(
    float(t)
    for t in np.concatenate(
        [
            np.round(np.concatenate([np.arange(0.05, 0.9, 0.025), np.arange(0.9, 0.9951, 0.005)]), 3),
            np.round(1.0 - 10.0 ** -np.arange(2.5, 4.01, 0.25), 6),
        ]
    )
)
"""Candidate thresholds: finer near 1, where calibrated confidences of good matches crowd (a curve
refitted on many capabilities' validation scores puts most right answers above 0.99, so the last
steps are 1 - 10^-k, k from 2.5 to 4)."""

RECALL_Z = 1.645
"""A `min_out_of_scope_recall` is held by the recall's one-sided 95% lower bound (Wilson) on the
tuning rows, not by the recall measured there: 100 out-of-scope rows measure a recall near 0.85
only to about +-0.04 (one standard error), so a threshold that just reaches it on them falls short
on new requests as often as not."""


def recall_lower_bound(hits: int, total: int, z: float = RECALL_Z) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score interval); 0 for no rows."""
    if total <= 0:
        return 0.0
    p = hits / total
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (p + z * z / (2 * total) - spread) / (1 + z * z / total)


@dataclass(frozen=True)
class ThresholdFit:
    """What `choose_thresholds` chose, and what it reached on its data."""

    threshold: float
    """The global threshold."""
    objective: float
    """Balanced accuracy/recall, in-scope accuracy at the recall asked for, or micro-F1."""
    per_capability: dict[str, float] = field(default_factory=dict)
    """Capabilities whose own threshold does better than the global one (multi-label data)."""
    recall_rule: str = ""
    """How `min_out_of_scope_recall` was held: `bound` (the recall's 95% lower bound), `measured`
    (too few out-of-scope rows for the bound: the recall measured on them), `out of reach`, or ""
    (no recall asked for)."""


def choose_thresholds(
    conf: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    *,
    min_support: int = 5,
    grid: Sequence[float] = THRESHOLD_GRID,
    min_out_of_scope_recall: float | None = None,
) -> ThresholdFit:
    """The global threshold (and per-capability ones where the data allow) for validation data.

    Single-label data (each request needs at most one capability): the threshold maximises the
    mean of in-scope accuracy (best capability right and accepted) and out-of-scope recall
    (nothing accepted), so the few out-of-scope requests of a validation set weigh as much as
    the many in-scope ones. Multi-label data: it maximises micro-F1 of the selected sets, and a
    capability (column of `labels`) with at least `min_support` validation positives gets its own
    threshold when that improves its F1. Ties go to the threshold nearest 0.5.

    `min_out_of_scope_recall` (single-label data with out-of-scope requests): an operating point
    instead of the balance (`_operating_point`).
    """
    closest_to_half = {t: -abs(t - 0.5) for t in grid}
    if metrics.single_label(truth):
        best = _BestMatch.of(conf, truth)
        if min_out_of_scope_recall is not None and best.in_scope.any() and (~best.in_scope).any():
            return _operating_point(best, min_out_of_scope_recall, grid)
        chosen = float(max(grid, key=lambda t: (best.balanced(t), closest_to_half[t])))
        return ThresholdFit(chosen, best.balanced(chosen))

    threshold = float(max(grid, key=lambda t: (metrics.micro_f1(conf >= t, truth), closest_to_half[t])))
    own: dict[str, float] = {}
    for j, name in enumerate(labels):
        if int(truth[:, j].sum()) < min_support:
            continue
        column, gold = conf[:, j], truth[:, j]

        def label_f1(t: float, column: np.ndarray = column, gold: np.ndarray = gold) -> tuple[float, float]:
            return metrics.micro_f1(column >= t, gold), -abs(t - threshold)

        candidate = max(grid, key=label_f1)
        if metrics.micro_f1(column >= candidate, gold) > metrics.micro_f1(column >= threshold, gold) + 1e-9:
            own[name] = float(candidate)
    reached = metrics.rates(conf, truth, metrics.cutoffs(labels, own, threshold))
    return ThresholdFit(threshold, metrics.objective(reached), own)


@dataclass(frozen=True)
class _BestMatch:
    """Single-label rows as the classifier decides them: each request's best capability."""

    conf: np.ndarray
    """The best capability's confidence."""
    right: np.ndarray
    """Whether the best capability is the one the request needs."""
    in_scope: np.ndarray
    """Whether the request needs any capability."""

    @classmethod
    def of(cls, conf: np.ndarray, truth: np.ndarray) -> _BestMatch:
        rows = np.arange(len(conf))
        top = conf.argmax(1)
        return cls(conf[rows, top], truth[rows, top], np.asarray(truth.any(1), dtype=bool))

    def accuracy(self, t: float) -> float:
        """In-scope accuracy: the best capability is right and reaches `t`."""
        return float((self.right & (self.conf >= t))[self.in_scope].mean())

    def recall(self, t: float) -> float:
        """Out-of-scope recall: nothing reaches `t`."""
        return float((self.conf < t)[~self.in_scope].mean())

    def recall_bound(self, t: float) -> float:
        outside = ~self.in_scope
        return recall_lower_bound(int((self.conf < t)[outside].sum()), int(outside.sum()))

    def balanced(self, t: float) -> float:
        """The mean of in-scope accuracy and out-of-scope recall, of those there are rows for."""
        groups = []
        if self.in_scope.any():
            groups.append(self.accuracy(t))
        if (~self.in_scope).any():
            groups.append(self.recall(t))
        return sum(groups) / max(1, len(groups))


def _operating_point(best: _BestMatch, min_recall: float, grid: Sequence[float]) -> ThresholdFit:
    """The threshold with the best in-scope accuracy among those that reject at least `min_recall`
    of the out-of-scope requests (the highest, on ties), counted by the recall's one-sided 95% lower
    bound (`RECALL_Z`), so that it holds on new requests too; where the rows are too few for any
    threshold to reach it that way, by the recall measured on them; when none does, the one that
    rejects most. The objective is that in-scope accuracy, minus 1 when the recall is out of reach,
    so a choice that reaches it always compares better."""
    wanted = min_recall - 1e-9
    feasible = [t for t in grid if best.recall_bound(t) >= wanted]
    rule = "bound"
    if not feasible:
        feasible = [t for t in grid if best.recall(t) >= wanted]
        rule = "measured"
    if feasible:
        chosen = float(max(feasible, key=lambda t: (best.accuracy(t), t)))
        return ThresholdFit(chosen, best.accuracy(chosen), recall_rule=rule)
    chosen = float(max(grid, key=lambda t: (best.recall(t), best.accuracy(t))))
    return ThresholdFit(chosen, best.accuracy(chosen) - 1.0, recall_rule="out of reach")


def guide_threshold(
    conf: np.ndarray, truth: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
) -> float | None:
    """Half the best micro-F1 the held-out confidences reach (None when it is 0).

    For calibrated probabilities the threshold that maximises F1 is half the best F1 (Lipton et
    al., 2014): 0.5 is the right cut for accuracy, not for F1, which rewards recall more when each
    label is rare. Half of it is steadier than the argmax on the rows, which a few hundred rows
    leave noisy.
    """
    best = max(metrics.micro_f1(conf >= t, truth) for t in grid)
    return round(best / 2, 3) if best > 0 else None


SECONDARY_MARGIN = 3.0
"""Log-odds by which a clause's best capability must lead the clause's runner-up to be selected as a
secondary need (`secondary_need`): e^3, about 20 times as likely."""
SECONDARY_FLOOR = 0.002
"""The least calibrated confidence of a secondary need: below it a clause matches nothing at all."""


def logit(p: float | np.ndarray) -> np.ndarray:
    """Log-odds, clipped away from 0 and 1."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.asarray(np.log(q / (1 - q)))


def secondary_need(
    clause_conf: np.ndarray,
    margin: float = SECONDARY_MARGIN,
    floor: float = SECONDARY_FLOOR,
) -> int | None:
    """The capability (column) a clause asks for as a secondary need of its request, or None.

    One clause of a request that already selected a capability ("List my charges. Also how do I
    update the card on file?") is short and scored alone, so its confidence stays far below the
    threshold a whole request needs, even when it names one capability clearly: the curve was
    fitted on whole examples. Its reading is the lead, not the level: the clause's best capability
    must lead the runner-up by `margin` in log-odds and reach `floor`. The caller applies it only
    to a request that selected something by the usual rule, and only to clauses that name a need
    and no identifier (an e-mail or id alone pulls a clause toward the customer lookup)."""
    row = np.asarray(clause_conf, dtype=np.float64)
    if row.size < 2:
        return None
    order = np.argsort(-row, kind="stable")
    best, runner_up = int(order[0]), int(order[1])
    if row[best] < floor or float(logit(row[best]) - logit(row[runner_up])) < margin:
        return None
    return best


def near_threshold(confidence: float, threshold: float, band: float) -> bool:
    """Whether a confidence is within `band` of its threshold, as cascade mode asks: measured in
    log-odds, with `band` read as at a threshold of 0.5 (there, exactly |confidence - 0.5| < band).
    Near 0 or 1, where a curve fitted on many capabilities puts its thresholds, the band narrows with
    the curve instead of sending every confidence above 1 - band to the model."""
    if band <= 0:
        return False
    if band >= 0.5:
        return True

    return float(abs(logit(confidence) - logit(threshold))) < float(logit(0.5 + band))
