"""Share of requests cascade mode decides without the LLM, on any data file of the shared format.

What is measured
    `routegraph eval --mode cascade` on the data (the same shots, seed, tuning and test rows as
    `routegraph eval`), with the classifier role played by a scripted chat model
    (`CountingFakeChatModel` from `benchmarks.bench_llm_calls`, a `GenericFakeChatModel` that counts its
    calls) which judges no candidate relevant. Which requests reach the model depends only on the
    scorer's confidences, their thresholds and `cascade_band`, not on what the model answers, so
    the counts are those a real model would see. Accuracy is not reported: it would be the fake
    model's. No network.

Run
    .venv/bin/python -m benchmarks.cascade_share --data ../shared/data/clinc150.jsonl [--band 0.15]
        [--shots 10] [--encoder minilm] [--limit N] [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from benchmarks.bench_llm_calls import CountingFakeChatModel
from evals.harness import EvalError, run_eval, stderr_progress


def measure(
    data: Path,
    *,
    band: float = 0.15,
    shots: int = 10,
    encoder: str = "minilm",
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Calls per query and the share decided without the model, from one cascade-mode eval."""
    reply = AIMessage(content=json.dumps({"judgements": []}))
    model = CountingFakeChatModel(role="classifier", messages=itertools.repeat(reply))
    result = run_eval(
        data,
        shots=shots,
        encoder=encoder,
        mode="cascade",
        seed=seed,
        limit=limit,
        cascade_band=band,
        models={"classifier": model},
        progress=stderr_progress if progress else None,
    )
    queries = result["counts"]["test"]
    return {
        "benchmark": "cascade_share",
        "data": str(data),
        "encoder": encoder,
        "shots": shots,
        "seed": seed,
        "cascade_band": band,
        "threshold": result["threshold"],
        "queries": queries,
        "model_calls": model.calls,
        "calls_per_query": round(model.calls / max(1, queries), 4),
        "decided_without_llm": result["llm"]["decided_without_llm"],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cascade_share",
        description="Share of requests cascade mode decides without the LLM (a scripted model counts the calls).",
    )
    p.add_argument("--data", type=Path, required=True, help="JSONL file of {text, labels, split} rows")
    p.add_argument("--band", type=float, default=0.15, help="classifier.cascade_band (default: 0.15)")
    p.add_argument("--shots", type=int, default=10, help="train examples per label (default: 10)")
    p.add_argument("--encoder", default="minilm", help="encoder (default: minilm)")
    p.add_argument("--limit", type=int, help="a seeded sample of this many test rows")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        out = measure(
            args.data,
            band=args.band,
            shots=args.shots,
            encoder=args.encoder,
            limit=args.limit,
            seed=args.seed,
            progress=not args.quiet,
        )
    except EvalError as exc:
        print(f"cascade_share: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{out['data']}: {out['queries']} queries, threshold {out['threshold']}, band {out['cascade_band']}: "
            f"{out['decided_without_llm']:.1%} decided without the LLM, {out['calls_per_query']} calls per query"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
