"""classifier.balance_guides: every capability's examples weigh the same in the head and the curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.classifier.calibration import fit_with_background
from graph.classifier.head import example_weights, fit_head, probabilities
from graph.config.registry import Registry
from graph.config.schema import ClassifierConfig

ROOT = Path(__file__).resolve().parent.parent


def test_weights_are_mean_count_over_own_count() -> None:
    owners = [[0]] * 2 + [[1]] * 6 + [[0, 1]]
    weights = example_weights(owners, 3)  # capability 2 has no examples: left out of the mean
    # counts: 0 -> 3 (two own + the shared one), 1 -> 7; mean 5
    assert weights[:2] == pytest.approx([5 / 3] * 2)
    assert weights[2:8] == pytest.approx([5 / 7] * 6)
    assert weights[8] == pytest.approx((5 / 3 + 5 / 7) / 2)
    # Each capability's own examples now weigh the same in all.
    assert weights[:2].sum() + weights[8] / 2 == pytest.approx(weights[2:8].sum() + weights[8] / 2, rel=0.2)


def test_guides_of_equal_size_are_unchanged() -> None:
    assert example_weights([[0], [0], [1], [1], [2], [2]], 3) == pytest.approx(np.ones(6))


def _two_clusters(rng: np.random.Generator, small: int, large: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows: `small` near axis 0, `large` near axis 1, both sharing a common direction."""
    dim = 16
    common = np.zeros(dim)
    common[2] = 1.0
    rows, targets = [], []
    for label, count in ((0, small), (1, large)):
        axis = np.zeros(dim)
        axis[label] = 1.0
        for _ in range(count):
            v = 0.3 * axis + 0.8 * common + 0.3 * rng.standard_normal(dim)
            rows.append(v / np.linalg.norm(v))
            t = np.zeros(2)
            t[label] = 1
            targets.append(t)
    return np.array(rows, dtype=np.float32), np.array(targets, dtype=np.float32)


def test_a_small_guide_is_not_outvoted_in_the_head() -> None:
    """At the centre of a 4-example guide beside an 80-example one, the balanced head says "the
    small one" every time; the unbalanced head lets the large guide claim it too (or instead)."""
    plain_wrong = 0
    for seed in range(5):
        x, y = _two_clusters(np.random.default_rng(seed), small=4, large=80)
        gram = x @ x.T
        centre = x[:4].mean(0)
        centre /= np.linalg.norm(centre)
        weights = example_weights([[int(t.argmax())] for t in y], 2)
        fair_a, fair_b = fit_head(gram, y, y.copy(), weights)
        fair = probabilities(centre[None] @ (x.T @ fair_a), fair_b)[0]
        assert fair[0] > 0.99 and fair[1] < 0.1, (seed, fair)
        plain_a, plain_b = fit_head(gram, y, y.copy())
        plain = probabilities(centre[None] @ (x.T @ plain_a), plain_b)[0]
        plain_wrong += not (plain[0] > 0.99 and plain[1] < 0.1)
    assert plain_wrong >= 3  # the property is the weighting's, not the data's


def test_row_weights_move_the_curve_towards_the_small_guides_scores() -> None:
    # 40 examples of a capability scoring high, 4 of one scoring lower; background low.
    scores = np.array([[0.8, 0.1]] * 40 + [[0.1, 0.45]] * 4)
    positive = np.array([[1, 0]] * 40 + [[0, 1]] * 4)
    background = np.full((50, 2), 0.2)
    plain = fit_with_background(scores, positive, background, multi_label=False)
    weights = example_weights([[0]] * 40 + [[1]] * 4, 2)
    fair = fit_with_background(scores, positive, background, multi_label=False, row_weights=weights)
    assert fair(np.array([0.45]))[0] > plain(np.array([0.45]))[0]


def test_the_setting_is_on_by_default_and_in_the_shipped_registry() -> None:
    assert ClassifierConfig().balance_guides is True
    registry = Registry.from_file(ROOT / "registry.yaml", learned=False)
    assert registry.spec.classifier.balance_guides is True
    off = registry.with_overlay({"classifier": {"balance_guides": False}})
    assert off.spec.classifier.balance_guides is False
