"""The offline few-shot scorer: TF-IDF over word and character n-grams of the guide examples.

A request is split into clauses ("... and ...", "Also ..."), so one message can select several
capabilities. A capability's raw score is its best cosine similarity to a positive example; a
closer negative example (`result: false`) pulls it down. Raw scores map to a confidence with a
logistic curve, so the registry threshold reads as a probability-like number.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from capabilities.registry import CapabilityInfo

Vector = dict[str, float]

_CLAUSE_SPLIT = re.compile(
    r"[?!;.]+\s+|[?!;]+$|\s+(?:and also|also|and then|then|and|plus|as well as)\s+|,\s+", re.I
)
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[+\-*/%^×÷]")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "am",
        "be",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "me",
        "my",
        "i",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "do",
        "does",
        "please",
        "can",
        "could",
        "would",
    ]
)


def clauses(text: str) -> list[str]:
    """The whole text plus its clauses (each at least two words long)."""
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(text) if p and p.strip()]
    return [text, *(p for p in parts if len(p.split()) >= 2 and p != text)]


def features(text: str) -> dict[str, float]:
    words = _WORD.findall(text.lower())
    feats: defaultdict[str, float] = defaultdict(float)
    content = [w for w in words if w not in _STOP]
    for w in content:
        if w[0].isdigit():
            feats["#num"] += 1
            continue
        feats["w:" + w] += 1
        if w in "+-*/%^×÷":
            continue
        padded = f"<{w}>"
        for n in (3, 4):
            for i in range(len(padded) - n + 1):
                feats["c:" + padded[i : i + n]] += 0.5
    # Bigrams over a shape-normalised sequence (any number is "#"), so "12 * 7" and "3*4" share "#_*".
    shapes = ["#" if w[0].isdigit() else w for w in words]
    for a, b in itertools.pairwise(shapes):
        feats[f"b:{a}_{b}"] += 1
    return feats


@dataclass(frozen=True)
class Score:
    name: str
    confidence: float
    raw: float
    example: str
    """The guide example that matched best."""


class LexicalScorer:
    """Scores requests against the classifier guides of a set of capabilities."""

    def __init__(
        self, capabilities: Iterable[CapabilityInfo], *, midpoint: float = 0.3, slope: float = 14.0
    ) -> None:
        self.midpoint = midpoint
        self.slope = slope
        caps = list(capabilities)
        docs: list[tuple[str, str, bool]] = []
        for cap in caps:
            guide = cap.classifier_guide
            docs += [(cap.name, q, True) for q in guide.positives]
            docs += [(cap.name, q, False) for q in guide.negatives]
        df: Counter[str] = Counter()
        counted = [features(q) for _, q, _ in docs]
        for f in counted:
            df.update(f.keys())
        n = max(1, len(docs))
        self._idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self._default_idf = math.log(1 + n) + 1.0
        self._examples: dict[str, list[tuple[str, Vector, bool]]] = {c.name: [] for c in caps}
        for (name, query, positive), f in zip(docs, counted, strict=True):
            self._examples[name].append((query, self._vector(f), positive))

    def _vector(self, counts: dict[str, float]) -> Vector:
        vec = {t: (1 + math.log(c)) * self._idf.get(t, self._default_idf) for t, c in counts.items() if c > 0}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def calibrate(self, raw: float) -> float:
        return 1.0 / (1.0 + math.exp(-self.slope * (raw - self.midpoint)))

    def score(self, text: str, names: Sequence[str] | None = None) -> list[Score]:
        """Confidence per capability (all, or those named), best first."""
        segments = [self._vector(features(c)) for c in clauses(text)]
        out = []
        for name in names if names is not None else list(self._examples):
            best_raw, best_example = 0.0, ""
            for seg in segments:
                pos, pos_q, neg = 0.0, "", 0.0
                for query, vec, positive in self._examples.get(name, []):
                    sim = _dot(seg, vec)
                    if positive and sim > pos:
                        pos, pos_q = sim, query
                    elif not positive and sim > neg:
                        neg = sim
                raw = pos - max(0.0, neg - pos + 0.05)
                if raw > best_raw:
                    best_raw, best_example = raw, pos_q
            out.append(Score(name, self.calibrate(best_raw), best_raw, best_example))
        return sorted(out, key=lambda s: -s.confidence)


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())
