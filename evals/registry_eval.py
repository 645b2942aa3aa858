"""`routegraph eval --registry`: a registry's own classifier measured on labelled requests.

`run_eval` builds a registry from the data file (shots drawn from its train rows); this measures
the guides a registry ships instead, as the classifier node runs them (embedding mode, the
registry's encoder, fine-tune, clause splitting, curve and thresholds), on every row of the file
whatever its split: the support desk's held-out requests are scored against the guides they were
not written from. A row longer than the registry's `limits.max_request_chars` is routed nowhere, as
the graph answers it (`input_too_long`) without classifying it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.datasets import load_dataset
from evals.harness import graph_scorer, make_provider, multi_label_metrics
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import EvalError
from graph.models import LLMGateway
from nodes.base import run_sync
from nodes.classifier import classify


def evaluate_registry(
    data_path: Path,
    registry: Registry,
    settings: Settings,
    *,
    labels_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Exact-set match, micro precision/recall/F1 and the misrouted rows of `data_path` under
    `registry`'s classifier. Labels that are not capabilities of the registry are refused."""
    dataset = load_dataset(data_path, labels_path)
    unknown = sorted({x for row in dataset.rows for x in row.labels} - set(registry.capabilities))
    if unknown:
        raise EvalError(
            f"{data_path}: labels that are not capabilities of {registry.source}: {', '.join(unknown)}"
        )
    settings = settings.model_copy(update={"llm": "off"})
    provider = make_provider(registry, settings, None)
    scorer = graph_scorer(registry, settings, provider)
    started = time.perf_counter()
    if progress:
        progress(f"eval: compiling the classifier of {registry.source}...")
    scorer.compile()
    compiled = time.perf_counter()

    longest = registry.spec.limits.max_request_chars

    async def predict_all() -> list[list[str]]:
        out: list[list[str]] = []
        for row in dataset.rows:
            if len(row.text) > longest:  # the graph routes it nowhere: stop_reason input_too_long
                out.append([])
                continue
            scored = await classify(
                row.text, registry, scorer, LLMGateway(provider, used=0, budget=0), mode="embedding"
            )
            out.append(sorted(c["name"] for c in scored if c["selected"] and c["source"] != "always"))
        return out

    predicted = run_sync(predict_all())
    truth = [sorted(row.labels) for row in dataset.rows]
    labels = sorted({x for r in truth + predicted for x in r})
    return {
        "data": str(data_path),
        "registry": str(registry.source),
        "rows": len(truth),
        "multi_intent_rows": sum(len(t) > 1 for t in truth),
        "out_of_scope_rows": sum(not t for t in truth),
        "too_long_rows": sum(len(row.text) > longest for row in dataset.rows),
        "metrics": multi_label_metrics(truth, predicted, labels),
        "misrouted": [
            {"text": row.text, "labels": t, "predicted": p}
            for row, t, p in zip(dataset.rows, truth, predicted, strict=True)
            if t != p
        ],
        "seconds": {
            "compile": round(compiled - started, 2),
            "classify": round(time.perf_counter() - compiled, 2),
        },
    }


def format_registry_table(result: dict[str, Any]) -> str:
    """The readable report of `routegraph eval --registry`."""
    m = result["metrics"]
    lines = [
        f"{result['data']}: {result['rows']} requests ({result['multi_intent_rows']} multi-intent, "
        f"{result['out_of_scope_rows']} out of scope), classifier of {result['registry']}",
        "",
        *(
            f"{k:<16} {m[k]}"
            for k in ("exact_match", "micro_f1", "micro_precision", "micro_recall", "macro_f1")
        ),
        "",
        f"misrouted ({len(result['misrouted'])}):",
        *(f"  {r['labels']} -> {r['predicted']}: {r['text']}" for r in result["misrouted"]),
    ]
    return "\n".join(lines)
