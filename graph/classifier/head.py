"""The linear head: one-vs-rest logistic regression on the example embeddings, started from the
prototypes, whose score the scorer blends with the prototype similarity (`FewShotScorer.head_weight`).

A prototype is a mean and weighs every feature alike; the head learns which features tell the
capabilities apart (and from requests that fit none), which sparse lexical features need most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graph.classifier.encoders import LexicalEncoder
from graph.classifier.prototypes import GuideVectors

COSINE_SCALE = 20.0
"""Cosines times this are the logits of the head and of fine-tuning (`FineTune.scale`).

A cosine between unit vectors lies in [-1, 1], and a logit in that range is never confident
(a sigmoid of 1 is 0.73); scaled by 20, a cosine 0.1 higher multiplies the odds by e^2, about 7.
20 is the scale sentence-transformers trains with (`MultipleNegativesRankingLoss`)."""
HEAD_EPOCHS = 200
"""Full-batch gradient steps."""
HEAD_L2 = 1e-3
HEAD_FOLDS = 4
"""Cross-fitted calibration scores each example with a head trained on the other folds."""
HEAD_LEXICAL = 0.4
"""Share of the head's features that are lexical n-grams (`LexicalEncoder`) when the encoder is a
dense sentence embedding: the head reads `[sqrt(1 - s) * dense, sqrt(s) * lexical]` while the
prototypes stay dense. A sentence embedding blurs the exact words that separate near intents
("freeze my card" / "report my card lost"); the head weighs them where they help."""


SparseRow = tuple[np.ndarray, np.ndarray]
"""A unit lexical row as the indices of its features and their values."""


def sparse_lexical(lexicon: LexicalEncoder, texts: Sequence[str]) -> list[SparseRow]:
    """`lexicon.encode(texts)` as sparse rows (the same values: TF-IDF, unit length)."""
    rows: list[SparseRow] = []
    for text in texts:
        features = lexicon._features(text)
        index = np.fromiter(features, dtype=np.int64, count=len(features))
        value = np.fromiter(features.values(), dtype=np.float32, count=len(features)) * lexicon._idf[index]
        norm = float(np.linalg.norm(value))
        rows.append((index, value / norm if norm else value))
    return rows


def joined(dense: np.ndarray, lexical: np.ndarray, share: float) -> np.ndarray:
    """The head's rows: both halves unit length, so the row is too."""
    return np.hstack([np.sqrt(1.0 - share) * dense, np.sqrt(share) * lexical]).astype(np.float32)


def probabilities(similarity: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Sigmoid of the scaled similarity plus the bias (clipped: no overflow in `exp`)."""
    return 1.0 / (1.0 + np.exp(-np.clip(COSINE_SCALE * similarity + bias, -30, 30)))


def blend(similarity: np.ndarray, head: np.ndarray, head_weight: float) -> np.ndarray:
    """The score: the head's probability for `head_weight` of it, the prototype similarity for the rest."""
    return (1 - head_weight) * similarity + head_weight * head


@dataclass(frozen=True, eq=False)
class Head:
    """The trained head: called on unit rows, each capability's probability."""

    weights: np.ndarray
    """(dimension, capabilities)."""
    bias: np.ndarray

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(probabilities(vectors @ self.weights, self.bias), dtype=np.float32)

    def joined(self, dense: np.ndarray, lexical: Sequence[SparseRow], share: float) -> np.ndarray:
        """As `self(joined(dense, lexical, share))`, reading only the lexical features a row has:
        a hashed lexical row is 16k wide and holds a few hundred features."""
        width = dense.shape[1]
        logits = np.sqrt(1.0 - share) * (dense @ self.weights[:width])
        sparse = self.weights[width:]
        for row, (index, value) in enumerate(lexical):
            if len(index):
                logits[row] += np.sqrt(share) * (value @ sparse[index])
        return np.asarray(probabilities(logits, self.bias), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class TrainingRows:
    """What the head was trained on, kept for cross-fitting: rows are the positive examples, the
    descriptions, the negative examples and the background requests, in that order."""

    gram: np.ndarray
    """Dot products of every row with every other."""
    targets: np.ndarray
    start: np.ndarray
    """Where training starts: 1 for each capability's own texts, its prototype up to scale."""
    examples: int
    """How many rows are positive examples (the first ones)."""
    background_start: int
    """Where the background requests start (they run to the end)."""
    weights: np.ndarray | None = None
    """Each row's weight in the loss (`example_weights`); None: all 1."""


def example_weights(owners: Sequence[Sequence[int]], capabilities: int) -> np.ndarray:
    """A weight per positive example such that every capability's examples weigh the same in
    all, whatever their number: `mean count / own count` (the mean over its capabilities for a
    shared example). Guides of equal size (CLINC150's 10 shots each) get 1 everywhere, so nothing
    changes; a guide of 8 examples next to guides of 120 (a hand-written clock guide beside labelled
    support requests) is no longer outvoted in the head and the curve, where its scores were
    pushed down as if it were rare in traffic."""
    counts = np.zeros(capabilities, dtype=np.float64)
    for own in owners:
        counts[list(own)] += 1
    used = counts[counts > 0]
    if not len(used):
        return np.ones(len(owners), dtype=np.float32)
    per_capability = np.where(counts > 0, used.mean() / np.maximum(counts, 1), 0.0)
    return np.array([per_capability[list(own)].mean() for own in owners], dtype=np.float32)


def train_head(
    guides: GuideVectors,
    texts: Sequence[str],
    owners: dict[str, list[int]],
    background: np.ndarray,
    *,
    balanced: bool = False,
) -> tuple[Head, TrainingRows]:
    """Train the head: a capability's positives (`texts`, with every guide that gives each in
    `owners`) and its description are its positives; the other capabilities' positives, explicit
    negative examples and the `background` requests are its negatives. `balanced`: each
    capability's examples weigh the same in all (`example_weights`)."""
    rows = [guides.positives, guides.descriptions, guides.negatives, background]
    x = np.vstack([r for r in rows if len(r) and r.shape[1] == guides.positives.shape[1]])
    count = len(guides.counts)
    y = np.zeros((len(x), count), dtype=np.float32)
    for row, text in enumerate(texts):
        y[row, owners[text]] = 1.0
    for row, owner in enumerate(guides.described):
        y[len(texts) + row, owner] = 1.0
    # The weights stay in the span of the examples (they start at the prototypes, which are
    # means of examples, and every gradient is a combination of examples): w = x.T @ a.
    # Training the coefficients `a` costs O(n^2) per step instead of O(n * dim), which is what
    # makes wide lexical features cheap.
    start = np.zeros((len(x), count), dtype=np.float32)
    for row, owner in enumerate([*guides.positive_owner.tolist(), *guides.described]):
        start[row, owner] = 1.0
    gram = x @ x.T
    weights = None
    if balanced:
        weights = np.ones(len(x), dtype=np.float32)
        weights[: len(texts)] = example_weights([owners[t] for t in texts], count)
    a, b = fit_head(gram, y, start, weights)
    training = TrainingRows(gram, y, start, len(texts), len(x) - len(background), weights)
    return Head((x.T @ a).astype(np.float32), b), training


def fit_head(
    gram: np.ndarray, y: np.ndarray, start: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Dual coefficients `a` (weights = x.T @ a) and biases of the one-vs-rest logistic head;
    `weights`: each row's weight in the loss (default 1)."""
    rate = 1.0
    count = y.shape[1]
    b = np.full(count, -COSINE_SCALE * 0.5, dtype=np.float32)
    a = start.copy()
    norms = np.sqrt(np.maximum((a * (gram @ a)).sum(0), 0.0))  # |x.T @ a| per column
    a /= np.where(norms == 0, 1.0, norms)
    for _ in range(HEAD_EPOCHS):
        grad = (probabilities(gram @ a, b) - y) / len(gram)
        if weights is not None:
            grad *= weights[:, None]
        a -= rate * (COSINE_SCALE * grad + HEAD_L2 * a)
        b -= rate * grad.sum(0)
    return a.astype(np.float32), b.astype(np.float32)


def cross_fitted(
    training: TrainingRows, texts: Sequence[str], folds: int = HEAD_FOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """Head scores of the positive examples and of the background requests, each from a head
    trained without it (k folds; a text in several guides stays in one fold): calibration
    must see how the head scores requests it has not memorised."""
    gram, n = training.gram, len(training.gram)
    order = {t: i for i, t in enumerate(sorted(set(texts)))}
    fold = np.full(n, -1, dtype=np.int64)
    fold[: training.examples] = [order[t] % folds for t in texts]
    fold[training.background_start :] = np.arange(n - training.background_start) % folds
    scores = np.zeros((n, training.targets.shape[1]), dtype=np.float32)
    for f in range(folds):
        held, keep = fold == f, fold != f
        if not held.any():
            continue
        kept = None if training.weights is None else training.weights[keep]
        a, b = fit_head(gram[np.ix_(keep, keep)], training.targets[keep], training.start[keep], kept)
        scores[held] = probabilities(gram[np.ix_(held, keep)] @ a, b)
    return scores[: training.examples], scores[training.background_start :]
