"""`routegraph tune`: fit the classifier's confidence curve and thresholds on labelled requests.

The guides alone give a curve fitted leave-one-out on their own examples and the registry's one
threshold. Requests labelled with the capabilities that should take them (the evaluation format,
`{"text": ..., "labels": [...], "split": ...}`, `out_of_scope` or `[]` for "none") say more: this
fits the curve on them, the threshold, and a threshold per capability where there are enough
positives (multi-label data), as `routegraph eval` tunes on a validation split. The result is one
`classifier.calibration` block to paste, replacing any earlier one whole; it carries a fingerprint
of the guides and settings it was fitted for, so a later change to them sets the block aside
instead of silently misapplying it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.classifier import fingerprint
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import DatasetError, TuneError

RATE_NAMES = {
    "in_scope_accuracy": "in-scope accuracy",
    "out_of_scope_recall": "out-of-scope recall",
    "micro_f1": "micro-F1",
}


@dataclass
class TuneResult:
    rows: int
    in_scope: int
    multi_label: bool
    objective: str
    before: float
    after: float
    threshold: float
    slope: float
    midpoint: float
    fingerprint: str
    thresholds: dict[str, float] = field(default_factory=dict)
    rates_before: dict[str, float] = field(default_factory=dict)
    rates_after: dict[str, float] = field(default_factory=dict)
    """In-scope accuracy and out-of-scope recall (single-label) or micro-F1 (multi-label)."""
    notes: list[str] = field(default_factory=list)
    """What the caller should know: an option that did not apply, a recall out of reach."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "in_scope": self.in_scope,
            "multi_label": self.multi_label,
            "objective": self.objective,
            "before": round(self.before, 4),
            "after": round(self.after, 4),
            "calibration": {
                "slope": self.slope,
                "midpoint": self.midpoint,
                "threshold": self.threshold,
                "thresholds": self.thresholds,
                "fingerprint": self.fingerprint,
            },
            "rates_before": {k: round(v, 4) for k, v in self.rates_before.items()},
            "rates_after": {k: round(v, 4) for k, v in self.rates_after.items()},
            "notes": self.notes,
        }

    def summary(self) -> str:
        def show(rates: dict[str, float]) -> str:
            return ", ".join(f"{RATE_NAMES.get(k, k)} {v:.3f}" for k, v in rates.items())

        return (
            f"on these {self.rows} requests: {show(self.rates_before)} with the registry as it is; "
            f"{show(self.rates_after)} fitted ({self.objective}; in-sample: check on requests it "
            "was not fitted on)"
        )

    def yaml(self, source: str) -> str:
        """The `classifier.calibration` block to paste (it replaces any earlier one whole)."""
        lines = [
            f"# fitted by `routegraph tune` on {self.rows} labelled requests ({source})",
            "classifier:",
            "  calibration:",
            f"    slope: {_number(self.slope)}",
            f"    midpoint: {_number(self.midpoint)}",
            f"    threshold: {_number(self.threshold)}",
        ]
        if self.thresholds:
            lines.append("    thresholds:")
            lines += [f"      {name}: {_number(value)}" for name, value in sorted(self.thresholds.items())]
        else:
            lines.append("    thresholds: {}")
        lines.append(f'    fingerprint: "{self.fingerprint}"  # the guides and settings it was fitted for')
        return "\n".join(lines)


def _number(value: float) -> str:
    """Plain decimal notation: YAML 1.1 reads `1e-05` as a string, not a number."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def read_labelled(path: Path, registry: Registry) -> tuple[list[str], list[list[str]]]:
    """Texts and label sets from a JSONL file; every label must be a routable capability."""
    from evals.datasets import read_rows

    try:
        rows = read_rows(path)
    except DatasetError as exc:
        raise TuneError(str(exc)) from None
    routable = {c.name for c in registry.routable}
    for row in rows:
        unknown = [label for label in row.labels if label not in routable]
        if unknown:
            raise TuneError(
                f"{path}:{row.line}: {', '.join(map(repr, unknown))} is not a capability the classifier "
                f"routes to in {registry.source} (those are: {', '.join(sorted(routable)) or 'none'}; "
                "use out_of_scope or [] for requests none should take)"
            )
    if not any(row.labels for row in rows):
        raise TuneError(f"{path}: every request is out of scope; at least one needs a capability")
    return [row.text for row in rows], [list(row.labels) for row in rows]


def tune(
    registry: Registry,
    settings: Settings,
    texts: list[str],
    truths: list[list[str]],
    *,
    min_out_of_scope_recall: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Fit on the requests; `before` is the objective with the registry's current settings.

    `min_out_of_scope_recall` (single-label requests, some out of scope): the threshold with the
    best in-scope accuracy that keeps this out-of-scope recall (its 95% lower bound, where the
    requests allow), instead of balancing the two.
    `progress` is told about long compile work (fine-tuning passes).
    """
    from graph.classifier.build import build_scorer

    current = build_scorer(registry, settings)
    scorer = build_scorer(registry, settings, tuned=False)
    scorer.progress = progress
    scorer.compile()
    config = registry.spec.classifier
    guide_curve = scorer.calibration
    # Before: the registry as it is (its fitted curve and thresholds, where they still apply).
    if current.calibration is not None:
        scorer.calibration = current.calibration
    scorer.thresholds = dict(current.thresholds)
    threshold = float(config.threshold) if current.default_threshold is None else current.default_threshold
    cap = config.max_capabilities
    before = scorer.rates(texts, truths, threshold, max_capabilities=cap)
    scorer.calibration, scorer.thresholds = guide_curve, {}
    scorer.calibrate(texts, truths)
    fitted = scorer.fit_thresholds(texts, truths, min_out_of_scope_recall=min_out_of_scope_recall)
    after = scorer.rates(texts, truths, fitted, max_capabilities=cap)
    assert scorer.calibration is not None
    multi = "micro_f1" in after
    has_oos = "out_of_scope_recall" in after
    notes: list[str] = []
    if min_out_of_scope_recall is not None and multi:
        notes.append(
            "--min-oos-recall applies to single-label requests; these are multi-label: micro-F1 is used"
        )
    elif min_out_of_scope_recall is not None and not has_oos:
        notes.append("--min-oos-recall: no out-of-scope requests here, so there is no recall to keep")
    elif min_out_of_scope_recall is not None and scorer.fit_objective < 0:
        notes.append(
            f"out-of-scope recall {min_out_of_scope_recall:g} is out of reach on these requests: the "
            f"threshold rejects as many as it can ({after['out_of_scope_recall']:.3f})"
        )
    elif min_out_of_scope_recall is not None and scorer.recall_rule == "measured":
        notes.append(
            f"out-of-scope recall {min_out_of_scope_recall:g} holds on these requests "
            f"({after['out_of_scope_recall']:.3f}), but they are too few out of scope to hold it at 95% "
            "confidence on new ones: label more out-of-scope requests"
        )
    operating = min_out_of_scope_recall is not None and has_oos and not multi

    def value(rates: dict[str, float]) -> float:
        if operating:
            return rates.get("in_scope_accuracy", 0.0)
        return rates["micro_f1"] if multi else sum(rates.values()) / max(1, len(rates))

    if multi:
        objective = "micro-F1"
    elif operating:
        objective = f"in-scope accuracy at out-of-scope recall >= {min_out_of_scope_recall:g}"
    elif has_oos:
        objective = "mean of in-scope accuracy and out-of-scope recall"
    else:
        objective = "in-scope accuracy"
    return TuneResult(
        rows=len(texts),
        in_scope=sum(1 for t in truths if t),
        multi_label=multi,
        objective=objective,
        before=value(before),
        after=value(after),
        threshold=round(fitted, 6),
        slope=round(scorer.calibration.slope, 4),
        midpoint=round(scorer.calibration.midpoint, 6),
        fingerprint=fingerprint(
            scorer.guides,
            encoder=config.encoder,
            finetune=scorer.finetune,
            split_clauses=scorer.split_clauses,
            out_of_scope=scorer.out_of_scope,
            balanced=scorer.balance_guides,
        ),
        thresholds={k: round(v, 6) for k, v in scorer.thresholds.items()},
        rates_before=before,
        rates_after=after,
        notes=notes,
    )
