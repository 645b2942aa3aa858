"""`build_scorer`: the few-shot scorer a registry describes, as the graph and `routegraph tune` use it,
and the `fingerprint` that tells whether a fitted calibration still applies to it."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence

from graph.classifier.calibration import Calibration
from graph.classifier.clauses import CLAUSES
from graph.classifier.compiled import CachedScorer
from graph.classifier.deferred import FinetuneMode
from graph.classifier.encoders import make_encoder, trainable
from graph.classifier.finetune import TRAINING, FineTune
from graph.classifier.guides import LabelGuide, guides_from_registry
from graph.classifier.scorer import FewShotScorer
from graph.config.labelled import LABELLED
from graph.config.registry import Registry
from graph.config.settings import Settings

log = logging.getLogger("routegraph")


def build_scorer(registry: Registry, settings: Settings, *, tuned: bool = True) -> FewShotScorer:
    """The few-shot scorer a registry describes: its encoder, fine-tuning and clause setting, and
    (`tuned`) the curve and thresholds `routegraph tune` fitted (`classifier.calibration`). Those
    are set aside together, with a warning on the `routegraph` logger, when they were fitted for
    other guides or settings: the curve is then fitted on the guides and `classifier.threshold`
    applies.

    When the fine-tune is not cached yet, `settings.finetune` decides (`deferred.FinetuneMode`):
    `auto` is foreground here (the first compile fine-tunes and waits, as `routegraph prepare`,
    eval and tune need); `routegraph ask` and the server make it `background`
    (`Settings.for_serving`)."""
    config = registry.spec.classifier
    models_dir = settings.data_dir / "models"
    encoder = make_encoder(
        config.encoder, base_url=settings.base_url, models_dir=models_dir, onnx_dir=settings.cache
    )
    guides = guides_from_registry(registry.routable)
    mode: FinetuneMode = "foreground" if settings.finetune == "auto" else settings.finetune
    finetune = FineTune() if config.finetune and mode != "off" and trainable(encoder) is not None else None
    scorer = CachedScorer(
        guides,
        encoder,
        cache_dir=settings.cache,
        finetune=finetune,
        split_clauses=config.split_clauses,
        out_of_scope=tuple(config.out_of_scope_examples),
        balance_guides=config.balance_guides,
        curve_examples=curve_examples(registry),
        finetune_mode=mode,
        rebuild={"name": config.encoder, "base_url": settings.base_url, "models_dir": str(models_dir)},
    )
    fitted = config.calibration
    if not tuned or fitted is None:
        return scorer
    expected = fingerprint(
        guides,
        encoder=config.encoder,
        finetune=finetune,
        split_clauses=config.split_clauses,
        out_of_scope=config.out_of_scope_examples,
        balanced=config.balance_guides,
    )
    if fitted.fingerprint is not None and fitted.fingerprint != expected:
        log.warning(
            "%s: classifier.calibration was fitted for other guides or settings (encoder, fine-tuning, "
            "clause splitting); its curve and thresholds are set aside: the curve is fitted on the "
            "guides and classifier.threshold applies (run `routegraph tune` again)",
            registry.source,
        )
        return scorer
    scorer.calibration = Calibration(slope=fitted.slope, midpoint=fitted.midpoint)
    scorer.default_threshold = fitted.threshold
    scorer.thresholds = dict(fitted.thresholds)
    return scorer


def prepare_before_turn(
    registry: Registry, settings: Settings, progress: Callable[[str], None] | None = None
) -> None:
    """Compile `registry`'s classifier into the cache now, when it is not there yet: with
    `ROUTEGRAPH_FINETUNE=foreground` the fine-tune then runs before a turn starts, not inside it.
    The turn's `limits.max_seconds` bounds the work of answering, not the encoder's training (on a
    loaded machine that alone took over 120 s, and the first turn ended `max_seconds`). A graph's
    scorer then loads the compiled state from the cache. Nothing happens when it is cached, or when
    the scorer keeps no cache."""
    scorer = build_scorer(registry, settings)
    if not isinstance(scorer, CachedScorer) or scorer.cache_dir is None:
        return
    if (scorer.cache_dir / f"compiled-{scorer.compiled_key()}.npz").exists():
        return  # warm: nothing to prepare
    if progress is not None:
        scorer.progress = progress
    scorer.compile()


def compile_ahead(
    registry: Registry, settings: Settings, progress: Callable[[str], None] | None = None
) -> bool:
    """The first ask's compile on the base weights into the cache, when a compile now would make
    it (`CachedScorer.compile_ahead`); True if it did. `routegraph ask` runs it on a thread of its
    own while the graph is built, whose scorer then loads it."""
    scorer = build_scorer(registry, settings)
    if not isinstance(scorer, CachedScorer):
        return False
    scorer.progress = progress
    return scorer.compile_ahead()


def curve_examples(registry: Registry) -> frozenset[str] | None:
    """The positives the confidence curve is fitted on: the hand-written ones, not those
    `classifier.labelled_examples` added (None when there are none of those)."""
    written: set[str] = set()
    labelled = False
    for cap in registry.routable:
        for example in cap.classifier_guide.examples:
            if not example.result:
                continue
            if example.reason.startswith(LABELLED):
                labelled = True
            else:
                written.add(example.query)
    return frozenset(written) if labelled and written else None


def fingerprint(
    guides: Sequence[LabelGuide],
    *,
    encoder: str,
    finetune: FineTune | None,
    split_clauses: bool,
    out_of_scope: Sequence[str] = (),
    balanced: bool = False,
) -> str:
    """Identifies what a fitted calibration was fitted for: every guide, the encoder setting,
    fine-tuning (its settings and the training's version) and clause splitting (and its version),
    all of which move the raw scores."""
    payload: list[object] = [
        encoder,
        None if finetune is None else [vars(finetune), TRAINING],
        [split_clauses, CLAUSES] if split_clauses else False,
        [[g.name, list(g.positives), list(g.negatives), g.description] for g in guides],
    ]
    if out_of_scope:  # appended only when given: registries without any keep their fingerprint
        payload.append(list(out_of_scope))
    if balanced:  # `classifier.balance_guides` moves the head's scores; appended only when on
        payload.append("balanced")
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, default=str).encode()).hexdigest()[:16]
