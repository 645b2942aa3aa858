"""Routing figures over several seeds: each metric's mean, standard deviation, lowest and highest.

One seed draws one set of K shots per label (and, without a `val` split, one tuning slice), so a
figure from one seed can be a lucky or an unlucky draw. This runs `routegraph eval` once per seed
on the same data and options and summarises every metric, the threshold and the latency across
the runs (sample standard deviation; 0 with one seed). Each seed's run is what
`routegraph eval --seed S --json` prints for it, with `queries` left out; a MiniLM run fine-tunes
once per seed (the shots differ), then loads from the cache.

Run
    python -m benchmarks.seeds --data ../shared/data/clinc150.jsonl --shots 10 --encoder minilm --seeds 0 1 2 [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.harness import EvalError, Progress, run_eval, stderr_progress


def _figures(run: dict[str, Any]) -> dict[str, float]:
    """A run's numeric figures: its metrics, then the threshold and the timings."""
    out = {k: float(v) for k, v in run["metrics"].items() if isinstance(v, int | float)}
    out["threshold"] = float(run["threshold"])
    out["latency_p50_ms"] = float(run["latency_ms"]["p50"])
    out["latency_p95_ms"] = float(run["latency_ms"]["p95"])
    out["queries_per_second"] = float(run["queries_per_second"])
    return out


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation, lowest and highest of each figure present in every run."""
    figures = [_figures(run) for run in runs]
    names = [name for name in figures[0] if all(name in f for f in figures)] if figures else []
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values = [f[name] for f in figures]
        out[name] = {
            "mean": round(statistics.fmean(values), 4),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }
    return out


def run_seeds(
    data_path: str | Path,
    *,
    seeds: Sequence[int],
    progress: Progress | None = stderr_progress,
    **options: Any,
) -> dict[str, Any]:
    """`run_eval` once per seed (the other `options` as `run_eval` takes them), then the summary."""
    if not seeds:
        raise EvalError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise EvalError(f"each seed once (got {' '.join(map(str, seeds))})")
    say = progress or (lambda _message: None)
    runs = []
    for n, seed in enumerate(seeds, start=1):
        say(f"seeds: seed {seed} ({n}/{len(seeds)})")
        run = run_eval(data_path, seed=seed, progress=progress, **options)
        run.pop("queries", None)
        runs.append(run)
    first = runs[0]
    return {
        "benchmark": "seeds",
        "data": first["data"],
        "kind": first["kind"],
        "encoder": first["encoder"],
        "mode": first["mode"],
        "shots_per_label": first["counts"]["shots_per_label"],
        "seeds": list(seeds),
        "summary": summarise(runs),
        "runs": runs,
    }


def format_table(result: dict[str, Any]) -> str:
    seeds = " ".join(str(s) for s in result["seeds"])
    lines = [
        f"{result['data']} ({result['kind']}), encoder {result['encoder']}, mode {result['mode']}, "
        f"{result['shots_per_label']} shots per label, seeds {seeds}",
        "",
        f"  {'':30} {'mean':>9} {'sd':>8} {'min':>9} {'max':>9}",
    ]
    for name, s in result["summary"].items():
        lines.append(f"  {name:30} {s['mean']:9.4f} {s['sd']:8.4f} {s['min']:9.4f} {s['max']:9.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.seeds", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="JSONL file of {text, labels, split} rows")
    p.add_argument(
        "--labels", type=Path, help="label descriptions (default: <data stem>.labels.json if present)"
    )
    p.add_argument("--shots", type=int, default=10, help="train examples per label (default: 10)")
    p.add_argument("--encoder", default="minilm", help="as for routegraph eval (default: minilm)")
    p.add_argument("--mode", choices=("embedding", "cascade"), default="embedding", help="classifier mode")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds to run (default: 0 1 2)"
    )
    p.add_argument("--no-finetune", dest="finetune", action="store_false", help="do not fine-tune MiniLM")
    p.add_argument("--min-oos-recall", type=float, help="as for routegraph eval")
    p.add_argument("--limit", type=int, help="a seeded sample of this many test rows per run")
    p.add_argument("--json", action="store_true", help="one JSON object: the summary and every run")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.shots < 1:
        p.error("--shots must be at least 1")
    try:
        result = run_seeds(
            args.data,
            seeds=args.seeds,
            labels_path=args.labels,
            shots=args.shots,
            encoder=args.encoder,
            mode=args.mode,
            finetune=args.finetune,
            min_out_of_scope_recall=args.min_oos_recall,
            limit=args.limit,
            progress=None if args.quiet else stderr_progress,
        )
    except EvalError as exc:
        print(f"seeds: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
