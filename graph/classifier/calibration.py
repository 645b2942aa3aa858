"""The confidence curve: raw similarity scores become probabilities a threshold can be read against.

A raw score's scale depends on the encoder, the head and the guides; a logistic curve fitted on
labelled scores (`Calibration.fit`) puts every scorer's confidences on one scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SLOPE = 1.0
"""The flattest confidence curve `Calibration.fit` returns (for scores that do not rise with the labels)."""


@dataclass(frozen=True)
class Calibration:
    """confidence = 1 / (1 + exp(-slope * (raw - midpoint)))."""

    slope: float = 14.0
    midpoint: float = 0.3

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        z = np.clip(self.slope * (np.asarray(raw, dtype=np.float64) - self.midpoint), -60.0, 60.0)
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    @classmethod
    def fit(
        cls,
        raw: np.ndarray,
        positive: np.ndarray,
        *,
        weights: np.ndarray | None = None,
        max_slope: float = 40.0,
        iterations: int = 50,
        balanced: bool = True,
    ) -> Calibration:
        """Logistic regression of `positive` on `raw`, by Newton steps with a line search: the
        classes weighted equally, or (`balanced=False`) as they come, so the confidence keeps the
        prior.

        The slope is capped: with a handful of examples the classes are often separable, and an
        unbounded fit would turn every confidence into 0 or 1. Past the cap, the midpoint is the
        best one for the capped slope (the loss is convex, so that is the best capped curve).
        Below `MIN_SLOPE` (scores that do not rise with the labels) the curve is the best one with
        that slope. One class only, or one without weight: the default curve.
        """
        x = np.asarray(raw, dtype=np.float64).ravel()
        y = np.asarray(positive, dtype=np.float64).ravel()
        if y.min() == y.max():
            return cls()
        extra = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        pos_mass, neg_mass = float((extra * y).sum()), float((extra * (1 - y)).sum())
        if pos_mass <= 0 or neg_mass <= 0:
            return cls()  # one class carries no weight: nothing to separate
        if balanced:
            w = extra * np.where(y > 0, 0.5 / pos_mass, 0.5 / neg_mass) * len(x)
        else:
            w = extra * len(x) / extra.sum()
        a, b = _newton(x, y, w, 10.0, -10.0 * float(np.median(x)), iterations=iterations, fixed_slope=False)
        if a > max_slope:
            a, b = _newton(x, y, w, max_slope, b * max_slope / a, iterations=iterations, fixed_slope=True)
        elif a < MIN_SLOPE:
            # Scores that do not rise with the labels (or run against them) carry no usable signal:
            # a shallow increasing curve, its midpoint the best one for that slope, instead of a
            # midpoint far outside the scores (-b / a for a slope near 0).
            a, b = _newton(
                x, y, w, MIN_SLOPE, -MIN_SLOPE * float(np.median(x)), iterations=iterations, fixed_slope=True
            )
        return cls(slope=float(a), midpoint=float(-b / a))


def _newton(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, a: float, b: float, *, iterations: int, fixed_slope: bool
) -> tuple[float, float]:
    """Weighted logistic regression of `y` on `x` (logit `a * x + b`) from a starting point; with
    `fixed_slope`, only `b` moves."""
    sign = 1.0 - 2.0 * y  # log(1 + exp(sign * z)) is the loss of a positive (-z) or a negative (z)

    def loss(a: float, b: float) -> float:
        return float(np.sum(w * np.logaddexp(0.0, sign * (a * x + b))))

    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(a * x + b, -60, 60)))
        r, s = w * (p - y), w * p * (1 - p)
        if fixed_slope:
            step = np.array([0.0, np.sum(r) / (np.sum(s) + 1e-9)])
            slope_g = 0.0
        else:
            g = np.array([np.sum(r * x), np.sum(r)])
            h = np.array([[np.sum(s * x * x), np.sum(s * x)], [np.sum(s * x), np.sum(s)]])
            step = np.linalg.solve(h + 1e-6 * np.eye(2), g)
            slope_g = float(g[0] * step[0])
        decrease = slope_g + float(np.sum(r)) * float(step[1])
        current, t = loss(a, b), 1.0
        while loss(a - t * step[0], b - t * step[1]) > current - 1e-4 * t * decrease:
            t /= 2  # backtrack: a full Newton step can overshoot on nearly separable data
            if t < 1e-6:
                return a, b  # no step lowers the loss: as good as it gets
        a, b = a - t * step[0], b - t * step[1]
        if np.abs(t * step).max() < 1e-7:
            break
    return a, b


def fit_with_background(
    scores: np.ndarray,
    positive: np.ndarray,
    background: np.ndarray,
    *,
    multi_label: bool,
    row_weights: np.ndarray | None = None,
) -> Calibration:
    """The curve for held-out guide scores (`positive` marks each row's own capabilities) and the
    background requests' raw scores, negatives for every capability.

    The background weighs as much as all the in-guide negatives together, so "fits nothing"
    counts as much as "fits another". Multi-label guides make each capability a decision of its
    own ("free" selection), so the confidence should be a probability, priors included; single-label
    guides keep the classes weighted equally: the selection first picks the best capability of
    each clause, and the curve only has to tell good matches from the rest. `row_weights`: a
    weight per guide row (`head.example_weights`: every capability's examples weigh the same).
    """
    raw = np.concatenate([scores.ravel(), background.ravel()])
    labels = np.concatenate([positive.ravel(), np.zeros(background.size)])
    in_guide_negatives = max(1.0, float((positive == 0).sum()))
    rows = np.ones(len(scores)) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    weights = np.concatenate(
        [np.repeat(rows, scores.shape[1] if scores.ndim > 1 else 1),
         np.full(background.size, in_guide_negatives / background.size)]
    )
    return Calibration.fit(raw, labels, weights=weights, balanced=not multi_label)


def above_background(background: np.ndarray) -> Calibration:
    """The default slope, its midpoint where the background requests' best scores stop (their 95th
    percentile): the curve when the guides have nothing to leave out (one text per capability), so
    the scale of the encoder's similarities (dense or lexical) does not decide what passes."""
    return Calibration(midpoint=float(np.quantile(background.max(1), 0.95)))
