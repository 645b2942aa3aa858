"""The few-shot scorer: one score per capability from its classifier-guide examples.

A capability is a prototype: the mean embedding of its positive examples (and of its
description). A request is scored by cosine similarity to every prototype, on the whole text and
on each of its clauses, so one message can select several capabilities; a negative example
(`result: false`) closer than the positives pulls the score down. Raw scores become calibrated
confidences with a logistic curve fitted leave-one-out on the guides themselves, or on labelled
validation data when there is some (`calibrate`), where per-capability thresholds can be fitted too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graph.classifier.background import BACKGROUND
from graph.classifier.encoders import Encoder, LexicalEncoder, normalize, trainable

_CLAUSE_SPLIT = re.compile(
    r"[?!;.]+\s+|[?!;]+$|[()]|:\s+|\s+(?:and also|also|and then|and|plus|as well as)\s+|,\s+(?=\w+\s+\w+)",
    re.I,
)


CLAUSES = 2
"""Part of the tune fingerprint when clauses are split: bumped when the splitting changes (2: a
single word followed by punctuation is a clause, other lone words join a neighbour), so curves
fitted on the old clauses are set aside."""


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's clauses (not the whole text itself): pieces of at least two
    words, and single words followed by punctuation ("Yes, ...", "Hi, ...", "No. ...", "Thanks!").

    A dialogue act often takes one word in front of the request ("Yes, refund the £27"): as a
    clause of its own it is scored on its own (NLU++ micro-F1 0.793 -> 0.813; `affirm`, `deny`,
    `greet` and `acknowledge` gained). Any other lone word ("cats and dogs", "cancel my order and
    refund", an e-mail address after the question) stays with the clause next to it, so the
    clauses cover every word: MiniLM pools the request's own vector from them, and before, such a
    word was in no clause and dropped from the request's vector too.
    """
    spans: list[list[int]] = []
    start = 0
    lone: int | None = None  # where a leading lone word starts, until the next clause takes it
    for sep in [*_CLAUSE_SPLIT.finditer(text), None]:
        end = sep.start() if sep is not None else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        left, right = start + lead, start + len(piece.rstrip())
        punctuated = sep is not None and sep.group()[:1] in ",.!?;:"
        if right > left:
            if len(text[left:right].split()) >= 2 or punctuated:
                spans.append([left if lone is None else lone, right])
                lone = None
            elif spans:
                spans[-1][1] = right  # a lone word stays with the clause before it
            elif lone is None:
                lone = left
        if sep is not None:
            start = sep.end()
    if lone is not None:
        spans.append([lone, len(text.rstrip())])
    return [(a, b) for a, b in spans if text[a:b] != text.strip()]


def clauses(text: str) -> list[str]:
    """The whole text, then its clauses (`clause_spans`)."""
    return [text, *(text[a:b] for a, b in clause_spans(text))]


MIN_SLOPE = 1.0
"""The flattest confidence curve `Calibration.fit` returns (for scores that do not rise with the labels)."""
HEAD_EPOCHS = 200
HEAD_L2 = 1e-3
BACKGROUND_CLAIM_FLOOR = 0.5
"""A background request is an example of a capability only if at least this similar to one of them."""
RECALL_Z = 1.645
"""A `min_out_of_scope_recall` is held by the recall's one-sided 95% lower bound (Wilson) on the
tuning rows, not by the recall measured there: 100 out-of-scope validation requests measure a
recall to about +-0.04, and a threshold chosen where it just reaches 0.85 there rejected 0.76-0.78
of the test set's out-of-scope requests (CLINC150)."""


def recall_lower_bound(hits: int, total: int, z: float = RECALL_Z) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score interval); 0 for no rows."""
    if total <= 0:
        return 0.0
    p = hits / total
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (p + z * z / (2 * total) - spread) / (1 + z * z / total)


HEAD_FOLDS = 4
"""Leave-one-out calibration scores each example with a head trained on the other folds."""

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


@dataclass(frozen=True)
class LabelGuide:
    """What the scorer knows about one capability."""

    name: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Score:
    name: str
    confidence: float
    raw: float
    wins: bool = True
    """The best match of the whole request or of one of its clauses."""


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
        sign = 1.0 - 2.0 * y  # log(1 + exp(sign * z)) is the loss of a positive (-z) or a negative (z)

        def loss(a: float, b: float) -> float:
            return float(np.sum(w * np.logaddexp(0.0, sign * (a * x + b))))

        def newton(a: float, b: float, *, fixed_slope: bool) -> tuple[float, float]:
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

        a, b = newton(10.0, -10.0 * float(np.median(x)), fixed_slope=False)
        if a > max_slope:
            a, b = newton(max_slope, b * max_slope / a, fixed_slope=True)
        elif a < MIN_SLOPE:
            # Scores that do not rise with the labels (or run against them) carry no usable signal:
            # a shallow increasing curve, its midpoint the best one for that slope, instead of a
            # midpoint far outside the scores (-b / a for a slope near 0).
            a, b = newton(MIN_SLOPE, -MIN_SLOPE * float(np.median(x)), fixed_slope=True)
        return cls(slope=float(a), midpoint=float(-b / a))


@dataclass
class FineTune:
    """Adapt the encoder to the guides before scoring (MiniLM only), cached by content hash."""

    epochs: int = 3
    """Passes over the examples (at least, for multi-label guides)."""
    min_steps: int = 400
    """Multi-label guides: optimizer steps, at least. A sigmoid per capability learns from few
    positives each: on NLU++ (304 examples, 10 steps a pass, biases started at the boundary) 3
    passes reached micro-F1 0.740, 10 passes 0.762, 40 passes 0.775, and the same held on two
    resamplings of it. Single-label guides keep `epochs`: 9 passes over CLINC150's 1,500 examples
    instead of 3 lost 0.013 in-scope accuracy."""
    max_epochs: int = 60
    """The most passes `min_steps` may ask for (a guide set of a few dozen examples)."""
    learning_rate: float = 3e-5
    batch_size: int = 32
    scale: float = 20.0
    seed: int = 0

    def passes(self, examples: int, *, multi_label: bool) -> int:
        """How many times the training passes over `examples` texts."""
        if not multi_label:
            return self.epochs
        steps_per_pass = max(1, math.ceil(examples / self.batch_size))
        return max(self.epochs, min(self.max_epochs, math.ceil(self.min_steps / steps_per_pass)))


@dataclass
class FewShotScorer:
    """Scores texts against the capabilities' guides. Compiles lazily on first use."""

    guides: Sequence[LabelGuide]
    encoder: Encoder
    cache_dir: Path | None = None
    finetune: FineTune | None = None
    use_descriptions: bool = True
    split_clauses: bool = True
    head_weight: float | None = None
    """Share of the score from a linear head trained on the examples (one-vs-rest logistic,
    started from the prototypes); the rest is the prototype similarity. 0 disables the head.
    Default: 1.0 for the lexical encoder (sparse n-gram features are used far better by a
    discriminative head than by centroids), 0.5 for dense sentence embeddings."""
    calibration: Calibration | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-capability confidence thresholds fitted on validation data; others use the global one."""
    default_threshold: float | None = None
    """The global threshold that goes with a fitted `calibration` (`routegraph tune`); None: the
    one the caller passes (the registry's `classifier.threshold`)."""
    fit_objective: float = 0.0
    """What the last `fit_thresholds` reached on its data (balanced accuracy/recall, or micro-F1)."""
    recall_rule: str = ""
    """How the last `fit_thresholds` held its `min_out_of_scope_recall`: `bound` (the recall's 95%
    lower bound), `measured` (too few out-of-scope rows for the bound: the recall measured on
    them), `out of reach`, or "" (no recall asked for)."""
    out_of_scope: tuple[str, ...] = ()
    """Requests no capability should take (`classifier.out_of_scope_examples`): negatives of every
    capability in fine-tuning, in the head and in the confidence curve, like the built-in
    background requests but never disowned by a guide that resembles them."""
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    """Told about long compile work (each fine-tuning pass), e.g. `routegraph eval`'s stderr lines;
    called on the thread that compiles, and what it raises stops the compile."""

    def __post_init__(self) -> None:
        default = 1.0 if isinstance(self.encoder, LexicalEncoder) else 0.5
        self._head_weight: float = default if self.head_weight is None else self.head_weight
        self.labels = [g.name for g in self.guides]
        self._index = {name: i for i, name in enumerate(self.labels)}
        self._compiled = False
        self._lock = threading.Lock()

    # -- compile -------------------------------------------------------------------------------

    def compile(self) -> FewShotScorer:
        with self._lock:
            if not self._compiled:
                self._compile()
        return self

    def _compile(self) -> None:
        corpus = [t for g in self.guides for t in (*g.positives, *g.negatives, g.description) if t]
        self.encoder.fit(corpus)
        model = trainable(self.encoder)
        if self.finetune and model is not None:
            from graph.classifier.finetune import finetune_encoder

            finetune_encoder(
                model,
                self.guides,
                self.finetune,
                cache_dir=self.cache_dir,
                progress=self.progress,
                out_of_scope=self.out_of_scope,
            )
        pos_texts = [t for g in self.guides for t in g.positives]
        self._pos_owner = np.array(
            [i for i, g in enumerate(self.guides) for _ in g.positives], dtype=np.int64
        )
        neg_texts = [t for g in self.guides for t in g.negatives]
        self._neg_owner = np.array(
            [i for i, g in enumerate(self.guides) for _ in g.negatives], dtype=np.int64
        )
        # A description that is already one of the examples (description-only data) is not
        # counted twice: it would make leave-one-out calibration compare a text with itself.
        desc_texts = [
            g.description if self.use_descriptions and g.description not in g.positives else ""
            for g in self.guides
        ]
        self._pos = self._embed(pos_texts)
        self._neg = self._embed(neg_texts)
        desc = self._embed([d for d in desc_texts if d])
        count = len(self.guides)
        dim = self._pos.shape[1] if len(self._pos) else desc.shape[1] if len(desc) else 1
        sums = np.zeros((count, dim), dtype=np.float32)
        counts = np.zeros(count, dtype=np.float32)
        np.add.at(sums, self._pos_owner, self._pos)
        np.add.at(counts, self._pos_owner, 1.0)
        with_desc = [i for i, d in enumerate(desc_texts) if d]
        if with_desc:
            sums[with_desc] += desc
            counts[with_desc] += 1.0
        self._sums, self._counts = sums, counts
        self._background = self._background_requests()
        self._protos = normalize(sums / np.maximum(counts, 1.0)[:, None])
        self._head: tuple[np.ndarray, np.ndarray] | None = None
        self._head_data: tuple[np.ndarray, np.ndarray, np.ndarray, int, int] | None = None
        self._held_out: tuple[np.ndarray, np.ndarray] | None = None
        if self._head_weight > 0 and count > 1 and len(self._pos):
            self._head = self._train_head(desc, with_desc)
        if self.calibration is None:
            self.calibration = self._leave_one_out_calibration()
        self._head_data = None
        self._compiled = True

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Encode with a disk cache keyed by the encoder's identity and the texts themselves."""
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        if self.cache_dir is None:
            return self.encoder.encode(texts)
        key = hashlib.sha256(json.dumps([self.encoder.identity, texts]).encode()).hexdigest()[:32]
        path = self.cache_dir / f"embeddings-{key}.npy"
        if path.exists():
            return np.load(path)
        vectors = self.encoder.encode(texts)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        return vectors

    def _train_head(self, desc: np.ndarray, with_desc: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """One-vs-rest logistic regression on the example embeddings, started from the prototypes.

        Positives of a capability are negatives of every other one (unless the same text is in
        both guides), explicit negative examples and the background requests are negatives of all.
        """
        background = self._embed(list(self._background))
        rows = [self._pos, desc, self._neg, background]
        x = np.vstack([r for r in rows if len(r) and r.shape[1] == self._pos.shape[1]])
        count = len(self.guides)
        y = np.zeros((len(x), count), dtype=np.float32)
        texts = [t for g in self.guides for t in g.positives]
        owners: dict[str, set[int]] = {}
        for text, owner in zip(texts, self._pos_owner, strict=True):
            owners.setdefault(text, set()).add(int(owner))
        for row, text in enumerate(texts):
            y[row, sorted(owners[text])] = 1.0
        for row, owner in enumerate(with_desc):
            y[len(texts) + row, owner] = 1.0
        # The weights stay in the span of the examples (they start at the prototypes, which are
        # means of examples, and every gradient is a combination of examples): w = x.T @ a.
        # Training the coefficients `a` costs O(n^2) per step instead of O(n * dim), which is what
        # makes wide lexical features cheap.
        start = np.zeros((len(x), count), dtype=np.float32)
        start_owner: list[int] = [*self._pos_owner.tolist(), *with_desc]
        for row, owner_index in enumerate(start_owner):
            start[row, owner_index] = 1.0
        gram = x @ x.T
        # Kept for cross-fitting the calibration (`_cross_fitted_head`), dropped after compiling.
        self._head_data = (y, start, gram, len(texts), len(x) - len(background))
        a, b = _fit_head(gram, y, start)
        return (x.T @ a).astype(np.float32), b

    def _cross_fitted_head(self, folds: int = HEAD_FOLDS) -> tuple[np.ndarray, np.ndarray]:
        """Head scores of the positive examples and of the background requests, each from a head
        trained without it (k folds; a text in several guides stays in one fold): calibration
        must see how the head scores requests it has not memorised."""
        assert self._head_data is not None
        y, start, gram, n_pos, bg_start = self._head_data
        texts = [t for g in self.guides for t in g.positives]
        order = {t: i for i, t in enumerate(sorted(set(texts)))}
        fold = np.full(len(gram), -1, dtype=np.int64)
        fold[:n_pos] = [order[t] % folds for t in texts]
        fold[bg_start:] = np.arange(len(gram) - bg_start) % folds
        scores = np.zeros((len(gram), y.shape[1]), dtype=np.float32)
        for f in range(folds):
            held, keep = fold == f, fold != f
            if not held.any():
                continue
            a, b = _fit_head(gram[np.ix_(keep, keep)], y[keep], start[keep])
            z = 20.0 * (gram[np.ix_(held, keep)] @ a) + b
            scores[held] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        return scores[:n_pos], scores[bg_start:]

    def _head_scores(self, vectors: np.ndarray) -> np.ndarray:
        assert self._head is not None
        w, b = self._head
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(20.0 * (vectors @ w) + b, -30, 30))), dtype=np.float32)

    def _leave_one_out_calibration(self) -> Calibration:
        """Fit the calibration on the guides: each positive example scored with its own left out."""
        if len(self.guides) < 2:
            return Calibration()
        if not len(self._pos):
            return self._background_calibration()
        # Guides that share texts are multi-label: each capability is then a decision of its own
        # ("free" selection), so the confidence should be a probability, priors included, and the
        # head must not be scored on the examples it memorised (they would all look certain).
        # Single-label guides keep equal class weights: the selection first picks the best
        # capability of each clause, and the curve only has to tell good matches from the rest.
        texts = [t for g in self.guides for t in g.positives]
        owners: dict[str, list[int]] = {}
        for text, owner in zip(texts, self._pos_owner.tolist(), strict=True):
            owners.setdefault(text, []).append(owner)
        multi_label = any(len(o) > 1 for o in owners.values())
        sims = self._pos @ self._protos.T  # against full prototypes
        head: np.ndarray | None = None
        background_head: np.ndarray | None = None
        if self._head is not None and multi_label:
            head, background_head = self._cross_fitted_head()
        elif self._head is not None:
            head = self._head_scores(self._pos)
        own = self._pos_owner
        # The example's own prototype without the example: (sum - e) / (n - 1), renormalised.
        rest = self._sums[own] - self._pos
        rest_norm = np.linalg.norm(rest, axis=1)
        valid = (self._counts[own] > 1) & (rest_norm > 0)
        own_sim = np.einsum("ij,ij->i", self._pos, rest) / np.where(rest_norm == 0, 1, rest_norm)
        sims[np.arange(len(own)), own] = own_sim
        if head is not None:
            sims = (1 - self._head_weight) * sims + self._head_weight * head
        # A text in several guides is a positive of each of them, not a negative of the others.
        positive = np.zeros_like(sims)
        for row, text in enumerate(texts):
            positive[row, owners[text]] = 1.0
        held_out: dict[str, np.ndarray] = {}
        if multi_label:  # one row per text, each capability's score the one left out for it
            for row, (text, owner) in enumerate(zip(texts, own.tolist(), strict=True)):
                if valid[row]:
                    held_out.setdefault(text, sims[row].copy())[owner] = sims[row, owner]
        sims, own, positive = sims[valid], own[valid], positive[valid]
        if len(sims) == 0:
            return self._background_calibration()
        # Requests that fit no capability: negatives for every one, weighted like all the
        # in-guide negatives together, so "fits nothing" counts as much as "fits another".
        if background_head is None:
            background = self.raw_scores(self._background, compiled=True)
        else:
            protos = self._embed(list(self._background)) @ self._protos.T
            background = (1 - self._head_weight) * protos + self._head_weight * background_head
        raw = np.concatenate([sims.ravel(), background.ravel()])
        labels = np.concatenate([positive.ravel(), np.zeros(background.size)])
        in_guide_negatives = max(1.0, float((positive == 0).sum()))
        weights = np.concatenate(
            [np.ones(sims.size), np.full(background.size, in_guide_negatives / background.size)]
        )
        if held_out:
            truth = np.zeros((len(held_out), len(self.guides)), dtype=bool)
            for row, text in enumerate(held_out):
                truth[row, owners[text]] = True
            self._held_out = (
                np.vstack([np.stack(list(held_out.values())), background]),
                np.vstack([truth, np.zeros(background.shape, dtype=bool)]),
            )
        return Calibration.fit(raw, labels, weights=weights, balanced=not multi_label)

    def _background_requests(self) -> tuple[str, ...]:
        """The background requests that no guide claims: one as close to a capability's example as
        that capability's examples usually are to each other (the median nearest-sibling
        similarity) is an example of it ("thanks a lot" where there is a thank-you capability),
        and teaching the scorer that it fits nothing would contradict the guide."""
        given = self._given_out_of_scope()
        if not len(self._pos) or len(self.guides) < 2:
            return self._every_background()
        nearest: list[np.ndarray] = []
        for i in range(len(self.guides)):
            own = self._pos[self._pos_owner == i]
            if len(own) > 1:
                sims = own @ own.T
                np.fill_diagonal(sims, -np.inf)
                nearest.append(sims.max(1))
        # Never below BACKGROUND_CLAIM_FLOOR: guides whose examples barely resemble one another (or a
        # lexical encoder's low similarities) would otherwise disown most of the background.
        cutoff = max(float(np.median(np.concatenate(nearest))) if nearest else 0.9, BACKGROUND_CLAIM_FLOOR)
        closest = (self._embed(list(BACKGROUND)) @ self._pos.T).max(1)
        kept = (t for t, s in zip(BACKGROUND, closest, strict=True) if s < cutoff and t not in given)
        return (*given, *kept)

    def _given_out_of_scope(self) -> tuple[str, ...]:
        """`out_of_scope` without the texts a guide gives as its own (an example or its
        description): those stay positives, as in fine-tuning."""
        own = {t for g in self.guides for t in (*g.positives, g.description) if t}
        return tuple(t for t in dict.fromkeys(self.out_of_scope) if t not in own)

    def _every_background(self) -> tuple[str, ...]:
        """The given out-of-scope requests, then every built-in background request."""
        given = self._given_out_of_scope()
        return (*given, *(t for t in BACKGROUND if t not in given))

    def _background_calibration(self) -> Calibration:
        """One example or only a description per capability: nothing to leave out. Put the
        midpoint where background requests stop (above 95% of their best scores), so the scale
        of the encoder's similarities (dense or lexical) does not decide what passes."""
        background = self.raw_scores(self._every_background(), compiled=True)
        return Calibration(midpoint=float(np.quantile(background.max(1), 0.95)))

    # -- scoring -------------------------------------------------------------------------------

    def raw_scores(self, texts: Sequence[str], *, compiled: bool = False) -> np.ndarray:
        """Raw similarity per (text, capability), the best over each text's clauses."""
        return self._scores(texts, compiled=compiled)[0]

    def _scores(self, texts: Sequence[str], *, compiled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores, and which capabilities are the best match of the text or of a clause."""
        if not compiled:
            self.compile()
        if not texts:
            empty = np.zeros((0, len(self.labels)), dtype=np.float32)
            return empty, empty.astype(bool)
        vectors, owner = self._encode_segments(texts)
        sims = vectors @ self._protos.T
        if len(self._neg):
            pos_best = np.full_like(sims, -1.0)
            neg_best = np.full_like(sims, -1.0)
            pos_sims = vectors @ self._pos.T
            neg_sims = vectors @ self._neg.T
            np.maximum.at(pos_best.T, self._pos_owner, pos_sims.T)
            np.maximum.at(neg_best.T, self._neg_owner, neg_sims.T)
            sims = sims - np.maximum(0.0, neg_best - pos_best)
        if self._head is not None:
            sims = (1 - self._head_weight) * sims + self._head_weight * self._head_scores(vectors)
        out = np.full((len(texts), len(self.labels)), -1.0, dtype=np.float32)
        np.maximum.at(out, np.array(owner), sims)
        wins = np.zeros(out.shape, dtype=bool)
        wins[np.array(owner), sims.argmax(1)] = True
        return out, wins

    def _encode_segments(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """One vector per text and per clause, with the index of the text each belongs to.

        An encoder with `encode_spans` (MiniLM) reads each text once and pools the clauses from
        its token vectors, so splitting costs no extra forward passes; others encode every clause.
        """
        spans = [clause_spans(t) if self.split_clauses else [] for t in texts]
        owner = [i for i, s in enumerate(spans) for _ in range(1 + len(s))]
        encode_spans = getattr(self.encoder, "encode_spans", None)
        if encode_spans is not None:  # also without clauses: MiniLM's own pooling, with less overhead
            return encode_spans(texts, spans), owner
        segments = [
            piece for t, s in zip(texts, spans, strict=True) for piece in (t, *(t[a:b] for a, b in s))
        ]
        return self.encoder.encode(segments), owner

    def confidences(self, texts: Sequence[str]) -> np.ndarray:
        raw = self.raw_scores(texts)
        assert self.calibration is not None
        return np.asarray(self.calibration(raw), dtype=np.float32)

    def score(self, text: str, names: Sequence[str] | None = None) -> list[Score]:
        """Confidence per capability (all, or those named), best first."""
        raws, wins = self._scores([text])
        raw, win = raws[0], wins[0]
        assert self.calibration is not None
        conf = self.calibration(raw)
        wanted = names if names is not None else self.labels
        scores = [
            Score(n, float(conf[i]), float(raw[i]), bool(win[i]))
            for n in wanted
            if (i := self._index.get(n)) is not None
        ]
        return sorted(scores, key=lambda s: (-s.confidence, -s.raw))

    def threshold_for(self, name: str, default: float) -> float:
        fallback = default if self.default_threshold is None else self.default_threshold
        return self.thresholds.get(name, fallback)

    # -- fitting on validation data ------------------------------------------------------------

    def calibrate(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> FewShotScorer:
        """Refit the confidence curve on labelled validation data (texts with their true labels)."""
        raw = self.raw_scores(texts)
        positive = np.zeros_like(raw)
        for row, names in enumerate(label_sets):
            for name in names:
                if name in self._index:
                    positive[row, self._index[name]] = 1.0
        if positive.any():  # without a single positive there is nothing to fit: keep the curve
            self.calibration = Calibration.fit(raw, positive)
        return self

    @property
    def held_out_rows(self) -> int:
        """How many rows `fit_guide_threshold` uses (guide texts and background requests)."""
        return 0 if self._held_out is None else len(self._held_out[0])

    def fit_guide_threshold(self, grid: Sequence[float] = THRESHOLD_GRID) -> float | None:
        """A global threshold for multi-label guides when there is no validation data: half the
        best micro-F1 reached on the guides themselves.

        For calibrated probabilities the threshold that maximises F1 is half the best F1 (Lipton
        et al., 2014): 0.5 is the right cut for accuracy, not for F1, which rewards recall more
        when each label is rare. The best F1 is estimated on held-out scores: every example scored
        by a head trained without it and against its capabilities' prototypes without it (the
        scores the calibration was fitted on), the background requests as rows needing nothing.
        Half of it is steadier than the held-out argmax, which a few hundred rows leave noisy.
        None for single-label guides (their validation data decide).
        """
        self.compile()
        if self._held_out is None or self.calibration is None:
            return None
        raw, truth = self._held_out
        conf = self.calibration(raw)
        best = max(
            2 * float((pred & truth).sum()) / max(1.0, float(pred.sum() + truth.sum()))
            for pred in (conf >= t for t in grid)
        )
        return round(best / 2, 3) if best > 0 else None

    def fit_thresholds(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        *,
        min_support: int = 5,
        grid: Sequence[float] = THRESHOLD_GRID,
        min_out_of_scope_recall: float | None = None,
    ) -> float:
        """Choose the global threshold (and per-capability ones where the data allow) on validation data.

        Single-label data (each request needs at most one capability): the threshold maximises the
        mean of in-scope accuracy (best capability right and accepted) and out-of-scope recall
        (nothing accepted), so the few out-of-scope requests of a validation set weigh as much as
        the many in-scope ones. Multi-label data: it maximises micro-F1 of the selected sets, and a
        capability with at least `min_support` validation positives gets its own threshold when
        that improves its F1. Returns the global threshold.

        `min_out_of_scope_recall` (single-label data with out-of-scope requests): an operating point
        instead of the balance, the threshold with the best in-scope accuracy among those that
        reject at least this share of the out-of-scope requests (the highest, on ties), counted
        by the recall's one-sided 95% lower bound (`RECALL_Z`), so that it holds on new requests
        too; where the rows are too few for any threshold to reach it that way, by the recall
        measured on them; when none does, the one that rejects most. `fit_objective` is then that
        in-scope accuracy (minus 1 when the recall is out of reach, so a choice that reaches it
        always compares better); `recall_rule` says which.
        """
        conf = self.confidences(texts)
        truth = np.zeros_like(conf, dtype=bool)
        for row, names in enumerate(label_sets):
            for name in names:
                if name in self._index:
                    truth[row, self._index[name]] = True
        self.thresholds = {}
        self.recall_rule = ""
        closest_to_half = {t: -abs(t - 0.5) for t in grid}
        if truth.sum(1).max(initial=0) <= 1:
            rows = np.arange(len(conf))
            top = conf.argmax(1)
            best_conf = conf[rows, top]
            in_scope = truth.any(1)
            right = truth[rows, top]

            def balanced(t: float) -> float:
                groups = []
                if in_scope.any():
                    groups.append(float((right & (best_conf >= t))[in_scope].mean()))
                if (~in_scope).any():
                    groups.append(float((best_conf < t)[~in_scope].mean()))
                return sum(groups) / max(1, len(groups))

            if min_out_of_scope_recall is not None and in_scope.any() and (~in_scope).any():

                def accuracy(t: float) -> float:
                    return float((right & (best_conf >= t))[in_scope].mean())

                def recall(t: float) -> float:
                    return float((best_conf < t)[~in_scope].mean())

                outside = int((~in_scope).sum())

                def bound(t: float) -> float:
                    return recall_lower_bound(int((best_conf < t)[~in_scope].sum()), outside)

                wanted = min_out_of_scope_recall - 1e-9
                feasible = [t for t in grid if bound(t) >= wanted]
                self.recall_rule = "bound"
                if not feasible:
                    feasible = [t for t in grid if recall(t) >= wanted]
                    self.recall_rule = "measured"
                if feasible:
                    chosen = float(max(feasible, key=lambda t: (accuracy(t), t)))
                    self.fit_objective = accuracy(chosen)
                else:
                    chosen = float(max(grid, key=lambda t: (recall(t), accuracy(t))))
                    self.fit_objective = accuracy(chosen) - 1.0
                    self.recall_rule = "out of reach"
                return chosen
            chosen = float(max(grid, key=lambda t: (balanced(t), closest_to_half[t])))
            self.fit_objective = balanced(chosen)
            return chosen

        def micro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
            tp = float((pred & gold).sum())
            return 2 * tp / max(1.0, float(pred.sum() + gold.sum()))

        best = float(max(grid, key=lambda t: (micro_f1(conf >= t, truth), closest_to_half[t])))
        for j, name in enumerate(self.labels):
            if int(truth[:, j].sum()) < min_support:
                continue
            column, gold = conf[:, j], truth[:, j]

            def label_f1(
                t: float, column: np.ndarray = column, gold: np.ndarray = gold
            ) -> tuple[float, float]:
                return micro_f1(column >= t, gold), -abs(t - best)

            own = max(grid, key=label_f1)
            if micro_f1(conf[:, j] >= own, truth[:, j]) > micro_f1(conf[:, j] >= best, truth[:, j]) + 1e-9:
                self.thresholds[name] = float(own)
        self.fit_objective = self.objective(texts, label_sets, best, _conf=conf)
        return best

    def objective(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        threshold: float,
        *,
        _conf: np.ndarray | None = None,
    ) -> float:
        """What `fit_thresholds` maximises (without an operating point), for the current
        calibration, the per-capability thresholds and this global one: single-label data, the
        mean of in-scope accuracy and out-of-scope recall; multi-label data, micro-F1."""
        rates = self.rates(texts, label_sets, threshold, _conf=_conf)
        if "micro_f1" in rates:
            return rates["micro_f1"]
        return sum(rates.values()) / max(1, len(rates))

    def rates(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        threshold: float,
        *,
        max_capabilities: int | None = None,
        _conf: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Single-label data: `in_scope_accuracy` (best capability right and accepted) and
        `out_of_scope_recall` (nothing accepted), each when there are such requests; multi-label
        data: `micro_f1` of the selected sets; with `max_capabilities`, only the most confident
        that many of a request can be selected, as in the classifier. With the current calibration and thresholds."""
        conf = self.confidences(texts) if _conf is None else _conf
        truth = np.zeros_like(conf, dtype=bool)
        for row, names in enumerate(label_sets):
            for name in names:
                if name in self._index:
                    truth[row, self._index[name]] = True
        cut = np.array([self.thresholds.get(name, threshold) for name in self.labels], dtype=np.float32)
        if truth.sum(1).max(initial=0) <= 1:
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
        return {"micro_f1": 2 * float((pred & truth).sum()) / max(1.0, float(pred.sum() + truth.sum()))}


def near_threshold(confidence: float, threshold: float, band: float) -> bool:
    """Whether a confidence is within `band` of its threshold, as cascade mode asks: measured in
    log-odds, with `band` read as at a threshold of 0.5 (there, exactly |confidence - 0.5| < band).
    Near 0 or 1, where a curve fitted on many capabilities puts its thresholds, the band narrows with
    the curve instead of sending every confidence above 1 - band to the model."""
    if band <= 0:
        return False
    if band >= 0.5:
        return True

    def logit(p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        return math.log(p / (1 - p))

    return abs(logit(confidence) - logit(threshold)) < logit(0.5 + band)


def _fit_head(gram: np.ndarray, y: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dual coefficients `a` (weights = x.T @ a) and biases of the one-vs-rest logistic head."""
    scale, l2, rate = 20.0, HEAD_L2, 1.0
    count = y.shape[1]
    b = np.full(count, -scale * 0.5, dtype=np.float32)
    a = start.copy()
    norms = np.sqrt(np.maximum((a * (gram @ a)).sum(0), 0.0))  # |x.T @ a| per column
    a /= np.where(norms == 0, 1.0, norms)
    for _ in range(HEAD_EPOCHS):
        z = np.clip(scale * (gram @ a) + b, -30, 30)
        grad = (1.0 / (1.0 + np.exp(-z)) - y) / len(gram)
        a -= rate * (scale * grad + l2 * a)
        b -= rate * grad.sum(0)
    return a.astype(np.float32), b.astype(np.float32)


def fingerprint(
    guides: Sequence[LabelGuide],
    *,
    encoder: str,
    finetune: FineTune | None,
    split_clauses: bool,
    out_of_scope: Sequence[str] = (),
) -> str:
    """Identifies what a fitted calibration was fitted for: every guide, the encoder setting,
    fine-tuning (its settings and the training's version) and clause splitting (and its version),
    all of which move the raw scores."""
    from graph.classifier.finetune import TRAINING

    payload: list[object] = [
        encoder,
        None if finetune is None else [vars(finetune), TRAINING],
        [split_clauses, CLAUSES] if split_clauses else False,
        [[g.name, list(g.positives), list(g.negatives), g.description] for g in guides],
    ]
    if out_of_scope:  # appended only when given: registries without any keep their fingerprint
        payload.append(list(out_of_scope))
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def guides_from_registry(capabilities: Sequence[object]) -> list[LabelGuide]:
    """LabelGuides from registry `CapabilityInfo`s (kept loose to avoid an import cycle)."""
    out = []
    for cap in capabilities:
        guide = cap.classifier_guide  # type: ignore[attr-defined]
        desc = " ".join(x for x in (cap.description, guide.instructions) if x)  # type: ignore[attr-defined]
        out.append(LabelGuide(cap.name, tuple(guide.positives), tuple(guide.negatives), desc))  # type: ignore[attr-defined]
    return out
