"""Capabilities as prototypes: the mean embedding of a guide's examples (and of its description).

A request is compared with every prototype by cosine similarity; a negative example (`result:
false`) closer to the request than any of the capability's positives pulls its score down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from graph.classifier.encoders import normalize
from graph.classifier.guides import LabelGuide


@dataclass(frozen=True, eq=False)
class GuideVectors:
    """The guides embedded. Rows of `positives` and `negatives` belong to the guide numbered in
    `positive_owner` and `negative_owner`; `descriptions` has one row per guide in `described`."""

    positives: np.ndarray
    positive_owner: np.ndarray
    negatives: np.ndarray
    negative_owner: np.ndarray
    descriptions: np.ndarray
    described: list[int]
    sums: np.ndarray
    """Per guide, the sum of its positives and description (a prototype before normalising)."""
    counts: np.ndarray
    """Per guide, how many vectors `sums` adds up."""
    prototypes: np.ndarray
    """Per guide, the unit-length mean."""


def embed_guides(
    guides: Sequence[LabelGuide], embed: Callable[[list[str]], np.ndarray], *, use_descriptions: bool
) -> GuideVectors:
    """Embed the guides' texts (`embed`: texts to unit rows) and build their prototypes.

    A description that is already one of the examples (description-only data) is not counted
    twice: it would make leave-one-out calibration compare a text with itself.
    """
    positive_owner = np.array([i for i, g in enumerate(guides) for _ in g.positives], dtype=np.int64)
    negative_owner = np.array([i for i, g in enumerate(guides) for _ in g.negatives], dtype=np.int64)
    desc_texts = [
        g.description if use_descriptions and g.description not in g.positives else "" for g in guides
    ]
    positives = embed([t for g in guides for t in g.positives])
    negatives = embed([t for g in guides for t in g.negatives])
    descriptions = embed([d for d in desc_texts if d])
    dim = positives.shape[1] if len(positives) else descriptions.shape[1] if len(descriptions) else 1
    sums = np.zeros((len(guides), dim), dtype=np.float32)
    counts = np.zeros(len(guides), dtype=np.float32)
    np.add.at(sums, positive_owner, positives)
    np.add.at(counts, positive_owner, 1.0)
    described = [i for i, d in enumerate(desc_texts) if d]
    if described:
        sums[described] += descriptions
        counts[described] += 1.0
    return GuideVectors(
        positives=positives,
        positive_owner=positive_owner,
        negatives=negatives,
        negative_owner=negative_owner,
        descriptions=descriptions,
        described=described,
        sums=sums,
        counts=counts,
        prototypes=normalize(sums / np.maximum(counts, 1.0)[:, None]),
    )


def similarities(vectors: np.ndarray, guides: GuideVectors) -> np.ndarray:
    """Each row's cosine to every prototype, lowered by how much closer the row is to the
    capability's nearest negative example than to its nearest positive one."""
    sims = vectors @ guides.prototypes.T
    if not len(guides.negatives):
        return sims
    pos_best = np.full_like(sims, -1.0)
    neg_best = np.full_like(sims, -1.0)
    np.maximum.at(pos_best.T, guides.positive_owner, (vectors @ guides.positives.T).T)
    np.maximum.at(neg_best.T, guides.negative_owner, (vectors @ guides.negatives.T).T)
    return sims - np.maximum(0.0, neg_best - pos_best)


def leave_one_out_similarities(guides: GuideVectors) -> tuple[np.ndarray, np.ndarray]:
    """Every positive example's cosine to every prototype, its own prototype taken without it
    (`(sum - e) / (n - 1)`, renormalised), and which examples have such a prototype (their guide
    has other texts, not all the same vector)."""
    sims = guides.positives @ guides.prototypes.T
    own = guides.positive_owner
    rest = guides.sums[own] - guides.positives
    rest_norm = np.linalg.norm(rest, axis=1)
    valid = (guides.counts[own] > 1) & (rest_norm > 0)
    own_sim = np.einsum("ij,ij->i", guides.positives, rest) / np.where(rest_norm == 0, 1, rest_norm)
    sims[np.arange(len(own)), own] = own_sim
    return sims, valid
