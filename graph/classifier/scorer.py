"""The few-shot scorer: one confidence per capability from its classifier-guide examples.

Compiling embeds the guides into prototypes (`prototypes`), trains a linear head on them
(`head`) and fits the confidence curve on the guides themselves, each example scored as if
unseen (`calibration`). Scoring compares a request and each of its clauses (`clauses`) with every
capability. On labelled validation data the curve can be refitted and thresholds chosen
(`thresholds`, measured by `metrics`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graph.classifier import finetune, metrics
from graph.classifier.background import BACKGROUND, every_background, given_out_of_scope, unclaimed_background
from graph.classifier.calibration import Calibration, above_background, fit_with_background
from graph.classifier.clauses import clause_spans, mentions_identifier, names_a_need, reads_as_request
from graph.classifier.encoders import Encoder, HybridEncoder, LexicalEncoder, trainable
from graph.classifier.finetune import FineTune
from graph.classifier.guides import LabelGuide, example_owners, guides_from_registry
from graph.classifier.head import (
    HEAD_LEXICAL,
    Head,
    TrainingRows,
    blend,
    cross_fitted,
    example_weights,
    joined,
    sparse_lexical,
    train_head,
)
from graph.classifier.prototypes import GuideVectors, embed_guides, leave_one_out_similarities, similarities
from graph.classifier.thresholds import THRESHOLD_GRID, choose_thresholds, guide_threshold, secondary_need

# guides_from_registry lives in `guides`; it stays importable from here, where it was first.
__all__ = ["FewShotScorer", "Score", "guides_from_registry"]

DENSE_HEAD_WEIGHT = 0.75
"""`head_weight` for dense encoders: with lexical features the head sees more than the prototypes
and earns the larger share (0.5 before them; README "The hybrid head" has the figures)."""


@dataclass(frozen=True)
class Score:
    name: str
    confidence: float
    raw: float
    wins: bool = True
    """The best match of the whole request or of one of its clauses."""
    secondary: bool = False
    """A clause of the request names it clearly (`thresholds.secondary_need`): selected next to a
    capability the request selected by its threshold, even below its own."""
    asked: bool = True
    """It is the best match of the whole request, or of a clause that `reads_as_request`; not when
    it wins only statements ("I was charged for a seat I never used, please refund it": `billing`
    wins the statement, the request is the refund)."""


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
    """Share of the score from the linear head (`head`); the rest is the prototype similarity.
    0 disables the head. Default: 1.0 for the lexical encoder (sparse n-gram features are used
    far better by a discriminative head than by centroids), `DENSE_HEAD_WEIGHT` for dense sentence
    embeddings."""
    head_lexical: float | None = None
    """Share of the head's features that are lexical n-grams (`head.HEAD_LEXICAL`); the
    prototypes stay the encoder's. 0: the head reads the encoder's vectors alone. Default:
    `HEAD_LEXICAL` for dense encoders, 0 for `lexical` and `hybrid` (lexical already)."""
    curve_examples: frozenset[str] | None = None
    """The positive examples whose held-out scores the confidence curve is fitted on (single-label
    guides); None: all of them. The registry leaves out `classifier.labelled_examples`: many,
    noisy and memorised by the head, they pulled the curve so far right that clear requests ("I'm
    lukas.becker@fjordsoft.de, can I get a refund for the $36 charge?") fell below the threshold."""
    balance_guides: bool = True
    """Every capability's examples weigh the same in the head and the confidence curve, whatever
    their number (`head.example_weights`); single-label guides only. Off: each example weighs 1,
    and a capability with few examples beside ones with many scores low."""
    calibration: Calibration | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-capability confidence thresholds fitted on validation data; others use the global one."""
    default_threshold: float | None = None
    """The global threshold that goes with a fitted `calibration` (`routegraph tune`); None: the
    one the caller passes (the registry's `classifier.threshold`)."""
    fit_objective: float = 0.0
    """What the last `fit_thresholds` reached on its data (`ThresholdFit.objective`)."""
    recall_rule: str = ""
    """How the last `fit_thresholds` held its `min_out_of_scope_recall` (`ThresholdFit.recall_rule`)."""
    out_of_scope: tuple[str, ...] = ()
    """Requests no capability should take (`classifier.out_of_scope_examples`): negatives of every
    capability in fine-tuning, in the head and in the confidence curve, like the built-in
    background requests but never disowned by a guide that resembles them."""
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    """Told about long compile work (each fine-tuning pass), e.g. `routegraph eval`'s stderr lines;
    called on the thread that compiles, and what it raises stops the compile."""

    def __post_init__(self) -> None:
        default = 1.0 if isinstance(self.encoder, LexicalEncoder) else DENSE_HEAD_WEIGHT
        self._head_weight: float = default if self.head_weight is None else self.head_weight
        lexical = isinstance(self.encoder, LexicalEncoder | HybridEncoder)
        share = (0.0 if lexical else HEAD_LEXICAL) if self.head_lexical is None else self.head_lexical
        if not 0.0 <= share < 1.0:
            raise ValueError(f"head_lexical must be in [0, 1), not {share}")
        self._head_lexical: float = share
        self._lexicon: LexicalEncoder | None = None
        self.labels = [g.name for g in self.guides]
        self._index = {name: i for i, name in enumerate(self.labels)}
        self._compiled = False
        self._lock = threading.Lock()

    # -- compile -------------------------------------------------------------------------------

    def compile(self) -> FewShotScorer:
        with self._lock:
            if not self._compiled:
                self._compile()
                if self._head is not None and self._head_lexical > 0:
                    self._lexical()  # here, not on the first request (a cached compile skips it)
        return self

    def _corpus(self) -> list[str]:
        return [t for g in self.guides for t in (*g.positives, *g.negatives, g.description) if t]

    def _compile(self) -> None:
        self.encoder.fit(self._corpus())
        model = trainable(self.encoder)
        if self.finetune and model is not None:
            # Looked up on its module at each compile, so the training can be replaced (tests do).
            finetune.finetune_encoder(
                model,
                self.guides,
                self.finetune,
                cache_dir=self.cache_dir,
                progress=self.progress,
                out_of_scope=self.out_of_scope,
            )
        self._vectors = embed_guides(self.guides, self._embed, use_descriptions=self.use_descriptions)
        self._background = self._background_requests()
        self._head: Head | None = None
        self._held_out: tuple[np.ndarray, np.ndarray] | None = None
        training: TrainingRows | None = None
        if self._head_weight > 0 and len(self.guides) > 1 and len(self._vectors.positives):
            texts, owners = example_owners(self.guides)
            background = self._embed(list(self._background))
            vectors = self._vectors
            if self._head_lexical > 0:
                vectors = self._head_vectors(vectors)
                background = self._head_rows(background, self._background)
            balanced = self.balance_guides and not any(len(o) > 1 for o in owners.values())
            self._head, training = train_head(vectors, texts, owners, background, balanced=balanced)
        if self.calibration is None:
            self.calibration = self._guide_calibration(training)
        self._compiled = True

    def _lexical(self) -> LexicalEncoder:
        """The head's lexical features, IDF fitted on the guides (fitted again after a compiled
        scorer is loaded from its cache: the same guides give the same vectors)."""
        if self._lexicon is None:
            lexicon = LexicalEncoder()
            lexicon.fit(self._corpus())
            self._lexicon = lexicon
        return self._lexicon

    def _head_rows(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """What the head reads: the encoder's vectors, joined with lexical ones (`head_lexical`)."""
        if self._head_lexical <= 0 or not len(texts):
            return vectors
        return joined(vectors, self._lexical().encode(texts), self._head_lexical)

    def _head_vectors(self, vectors: GuideVectors) -> GuideVectors:
        """The guides' rows as the head reads them (positives, negatives, descriptions)."""
        described = {i: g.description for i, g in enumerate(self.guides)}
        return dataclasses.replace(
            vectors,
            positives=self._head_rows(vectors.positives, [t for g in self.guides for t in g.positives]),
            negatives=self._head_rows(vectors.negatives, [t for g in self.guides for t in g.negatives]),
            descriptions=self._head_rows(vectors.descriptions, [described[i] for i in vectors.described]),
        )

    def _head_scores(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The head's probabilities; lexical features read sparse (`Head.joined`)."""
        head = self._head
        assert head is not None
        if self._head_lexical <= 0:
            return head(vectors)
        return head.joined(vectors, sparse_lexical(self._lexical(), texts), self._head_lexical)

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
        # A name of its own per process and thread: two first runs embedding the same texts at once
        # wrote one shared `.tmp.npy`, and the second rename found it gone (FileNotFoundError).
        tmp = path.with_name(f".{os.getpid()}-{threading.get_ident()}-{path.name}")
        np.save(tmp, vectors)
        tmp.replace(path)
        return vectors

    def _background_requests(self) -> tuple[str, ...]:
        """The out-of-scope examples and the background requests no guide claims (`background`)."""
        given = given_out_of_scope(self.guides, self.out_of_scope)
        if not len(self._vectors.positives) or len(self.guides) < 2:
            return every_background(given)
        return unclaimed_background(given, self._vectors, self._embed(list(BACKGROUND)))

    def _guide_calibration(self, training: TrainingRows | None) -> Calibration:
        """The curve fitted on the guides: each positive example scored with its own left out.

        Guides that share texts are multi-label: there the head must not score the examples it
        memorised (they would all look certain), so each is scored by a head trained without it
        (`cross_fitted`), and the held-out rows are kept for `fit_guide_threshold`.
        """
        vectors = self._vectors
        if len(self.guides) < 2:
            return Calibration()
        if not len(vectors.positives):
            return self._background_calibration()
        texts, owners = example_owners(self.guides)
        multi_label = any(len(o) > 1 for o in owners.values())
        sims, valid = leave_one_out_similarities(vectors)
        background_head: np.ndarray | None = None
        if self._head is not None:
            if multi_label:
                assert training is not None
                head, background_head = cross_fitted(training, texts)
            else:
                head = self._head_scores(vectors.positives, [t for g in self.guides for t in g.positives])
            sims = blend(sims, head, self._head_weight)
        positive = metrics.truth_matrix([owners[t] for t in texts], range(len(self.guides)))
        held_out: dict[str, np.ndarray] = {}
        if multi_label:  # one row per text, each capability's score the one left out for it
            for row, (text, owner) in enumerate(zip(texts, vectors.positive_owner.tolist(), strict=True)):
                if valid[row]:
                    held_out.setdefault(text, sims[row].copy())[owner] = sims[row, owner]
        if self.curve_examples is not None and not multi_label:
            chosen = valid & np.array([t in self.curve_examples for t in texts], dtype=bool)
            if chosen.any():
                valid = chosen
        row_weights = None
        if self.balance_guides and not multi_label:
            row_weights = example_weights([owners[t] for t in texts], len(self.guides))[valid]
        sims, positive = sims[valid], positive[valid]
        if len(sims) == 0:
            return self._background_calibration()
        if background_head is None:
            background = self.raw_scores(self._background, compiled=True)
        else:
            protos = self._embed(list(self._background)) @ vectors.prototypes.T
            background = blend(protos, background_head, self._head_weight)
        if held_out:
            truth = metrics.truth_matrix([owners[t] for t in held_out], range(len(self.guides)))
            self._held_out = (
                np.vstack([np.stack(list(held_out.values())), background]),
                np.vstack([truth, np.zeros(background.shape, dtype=bool)]),
            )
        return fit_with_background(sims, positive, background, multi_label=multi_label, row_weights=row_weights)

    def _background_calibration(self) -> Calibration:
        """One example or only a description per capability: nothing to leave out."""
        given = given_out_of_scope(self.guides, self.out_of_scope)
        return above_background(self.raw_scores(every_background(given), compiled=True))

    # -- scoring -------------------------------------------------------------------------------

    def raw_scores(self, texts: Sequence[str], *, compiled: bool = False) -> np.ndarray:
        """Raw similarity per (text, capability), the best over each text's clauses."""
        return self._scores(texts, compiled=compiled)[0]

    def _scores(self, texts: Sequence[str], *, compiled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores, and which capabilities are the best match of the text or of a clause."""
        out, wins, _ = self._segment_scores(texts, compiled=compiled)
        return out, wins

    def _segment_scores(
        self, texts: Sequence[str], *, compiled: bool = False
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray, str]]]:
        """`_scores`, and each clause that names a need (not the texts themselves): the index of
        its text, its raw scores and its words."""
        if not compiled:
            self.compile()
        if not texts:
            empty = np.zeros((0, len(self.labels)), dtype=np.float32)
            return empty, empty.astype(bool), []
        vectors, owner, needs, pieces = self._encode_segments(texts)
        sims = similarities(vectors, self._vectors)
        if self._head is not None:
            sims = blend(sims, self._head_scores(vectors, pieces), self._head_weight)
        clause_rows = [  # each text comes first, its clauses after it
            (o, sims[k], pieces[k]) for k, o in enumerate(owner) if needs[k] and k and owner[k - 1] == o
        ]
        owner_of = np.array(owner)[needs]
        sims = sims[needs]  # "I'm jane@acme.io", "I don't want a refund": no need of their own
        out = np.full((len(texts), len(self.labels)), -1.0, dtype=np.float32)
        np.maximum.at(out, owner_of, sims)
        wins = np.zeros(out.shape, dtype=bool)
        wins[owner_of, sims.argmax(1)] = True
        return out, wins, clause_rows

    def _encode_segments(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int], np.ndarray, list[str]]:
        """One vector per text and per clause, with the index of the text each belongs to,
        whether it is scored (the text always; a clause when it `names_a_need`), and the pieces.

        An encoder with `encode_spans` (MiniLM) reads each text once and pools the clauses from
        its token vectors, so splitting costs no extra forward passes; others encode every clause.
        """
        spans = [clause_spans(t) if self.split_clauses else [] for t in texts]
        owner = [i for i, s in enumerate(spans) for _ in range(1 + len(s))]
        needs = np.array(
            [flag for t, s in zip(texts, spans, strict=True) for flag in (True, *names_a_need(t, s))],
            dtype=bool,
        )
        segments = [
            piece for t, s in zip(texts, spans, strict=True) for piece in (t, *(t[a:b] for a, b in s))
        ]
        encode_spans = getattr(self.encoder, "encode_spans", None)
        if encode_spans is not None:  # also without clauses: MiniLM's own pooling, with less overhead
            return encode_spans(texts, spans), owner, needs, segments
        return self.encoder.encode(segments), owner, needs, segments

    def confidences(self, texts: Sequence[str]) -> np.ndarray:
        raw = self.raw_scores(texts)
        assert self.calibration is not None
        return np.asarray(self.calibration(raw), dtype=np.float32)

    def score(self, text: str, names: Sequence[str] | None = None) -> list[Score]:
        """Confidence per capability (all, or those named), best first."""
        return self.score_clauses(text, names)[0]

    def score_clauses(
        self, text: str, names: Sequence[str] | None = None
    ) -> tuple[list[Score], list[tuple[str, np.ndarray]]]:
        """`score`, and each clause that names a need with its calibrated confidences (columns in
        `labels` order), for selection rules that read clauses (nodes/classifier.py)."""
        raws, wins, clause_rows = self._segment_scores([text])
        raw, win = raws[0], wins[0]
        assert self.calibration is not None
        conf = self.calibration(raw)
        secondary = {
            j
            for _, row, piece in clause_rows
            if not mentions_identifier(piece) and (j := secondary_need(self.calibration(row))) is not None
        }
        asked = {int(raw.argmax())} | {
            int(row.argmax())
            for _, row, piece in clause_rows
            if reads_as_request(piece, text[text.find(piece) + len(piece) :])
        }
        wanted = names if names is not None else self.labels
        scores = [
            Score(n, float(conf[i]), float(raw[i]), bool(win[i]), i in secondary, i in asked)
            for n in wanted
            if (i := self._index.get(n)) is not None
        ]
        clause_conf = [(piece, np.asarray(self.calibration(row))) for _, row, piece in clause_rows]
        return sorted(scores, key=lambda s: (-s.confidence, -s.raw)), clause_conf

    def threshold_for(self, name: str, default: float) -> float:
        fallback = default if self.default_threshold is None else self.default_threshold
        return self.thresholds.get(name, fallback)

    # -- fitting on validation data ------------------------------------------------------------

    def calibrate(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> FewShotScorer:
        """Refit the confidence curve on labelled validation data (texts with their true labels)."""
        raw = self.raw_scores(texts)
        positive = metrics.truth_matrix(label_sets, self.labels)
        if positive.any():  # without a single positive there is nothing to fit: keep the curve
            self.calibration = Calibration.fit(raw, positive)
        return self

    @property
    def held_out_rows(self) -> int:
        """How many rows `fit_guide_threshold` uses (guide texts and background requests)."""
        return 0 if self._held_out is None else len(self._held_out[0])

    def fit_guide_threshold(self, grid: Sequence[float] = THRESHOLD_GRID) -> float | None:
        """A global threshold for multi-label guides when there is no validation data
        (`thresholds.guide_threshold`), on held-out scores: every example scored by a head trained
        without it and against its capabilities' prototypes without it (the scores the calibration
        was fitted on), the background requests as rows needing nothing. None for single-label
        guides (their validation data decide)."""
        self.compile()
        if self._held_out is None or self.calibration is None:
            return None
        raw, truth = self._held_out
        return guide_threshold(self.calibration(raw), truth, grid)

    def fit_thresholds(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        *,
        min_support: int = 5,
        grid: Sequence[float] = THRESHOLD_GRID,
        min_out_of_scope_recall: float | None = None,
    ) -> float:
        """Choose the global threshold, and per-capability ones where the data allow
        (`thresholds.choose_thresholds`), with the current calibration; returns the global one and
        keeps the rest in `thresholds`, `fit_objective` and `recall_rule`."""
        fit = choose_thresholds(
            self.confidences(texts),
            metrics.truth_matrix(label_sets, self.labels),
            self.labels,
            min_support=min_support,
            grid=grid,
            min_out_of_scope_recall=min_out_of_scope_recall,
        )
        self.thresholds = fit.per_capability
        self.recall_rule = fit.recall_rule
        self.fit_objective = fit.objective
        return fit.threshold

    def rates(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        threshold: float,
        *,
        max_capabilities: int | None = None,
        _conf: np.ndarray | None = None,
    ) -> dict[str, float]:
        """`metrics.rates` with the current calibration, the per-capability thresholds and this
        global one (`_conf`: confidences already computed for `texts`)."""
        conf = self.confidences(texts) if _conf is None else _conf
        return metrics.rates(
            conf,
            metrics.truth_matrix(label_sets, self.labels),
            metrics.cutoffs(self.labels, self.thresholds, threshold),
            max_capabilities=max_capabilities,
        )
