"""Labelled requests as guide examples: how much routing gains on a set nobody tuned on.

`python -m benchmarks.labelled_guides --registry registry.yaml --add A.jsonl [B.jsonl ...] --eval SET.jsonl [--json]`

Every single-label row of the `--add` files becomes a positive example of its capability's guide, and
every out-of-scope row an out-of-scope example (the overlay `routegraph learn` writes:
`graph.ops.learn.overlay_for`); multi-label rows are left out (which clause needs which capability
is not labelled). Then the `--eval` files are routed by the registry with and without those examples,
side by side in one run (`evals.registry_eval.evaluate_registry`, each registry's own fine-tune).
Session 14 measured it with the support desk's development sets written by four people as `--add`
and a fifth person's blind set as `--eval` (README "Status", CHANGELOG).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from evals.datasets import read_rows
from evals.registry_eval import evaluate_registry
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.learn import overlay_for


def additions_from(paths: list[Path], registry: Registry) -> list[dict[str, Any]]:
    """The examples the labelled files give: single-label rows of a routable capability, and
    out-of-scope rows; texts a guide already has, and repeats, are skipped."""
    known = {e.query.strip().lower() for c in registry for e in c.classifier_guide.examples}
    known |= {t.strip().lower() for t in registry.spec.classifier.out_of_scope_examples}
    routable = {c.name for c in registry.routable}
    out: list[dict[str, Any]] = []
    for path in paths:
        for row in read_rows(path):
            key = row.text.strip().lower()
            if key in known:
                continue
            if not row.labels:
                out.append({"kind": "out_of_scope", "capability": None, "query": row.text, "why": path.name})
            elif len(row.labels) == 1 and row.labels[0] in routable:
                out.append({"kind": "positive", "capability": row.labels[0], "query": row.text, "why": path.name})
            else:
                continue
            known.add(key)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.labelled_guides", description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("registry.yaml"))
    p.add_argument("--add", type=Path, nargs="+", required=True, help="labelled files whose rows become examples")
    p.add_argument("--eval", type=Path, nargs="+", required=True, help="labelled files to route, with and without")
    p.add_argument("--data-dir", type=Path, default=None, help="where the fine-tunes are cached (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    overlap = {x.resolve() for x in args.add} & {x.resolve() for x in args.eval}
    if overlap:
        print(f"labelled_guides: a file is both added and evaluated: {sorted(map(str, overlap))}", file=sys.stderr)
        return 2
    base = Registry.from_file(args.registry)
    additions = additions_from(args.add, base)
    patched = base.with_overlay(overlay_for(base, additions), source=f"{base.source} + labelled examples")
    with tempfile.TemporaryDirectory(prefix="routegraph-labelled-") as tmp:
        settings = Settings.offline(args.data_dir or Path(tmp))
        report: dict[str, Any] = {
            "added": {
                "positives": sum(a["kind"] == "positive" for a in additions),
                "out_of_scope": sum(a["kind"] == "out_of_scope" for a in additions),
                "from": [str(x) for x in args.add],
            },
            "sets": {},
        }
        for path in args.eval:
            before = evaluate_registry(path, base, settings)["metrics"]
            after = evaluate_registry(path, patched, settings)["metrics"]
            report["sets"][str(path)] = {"without": before, "with": after}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        added = report["added"]
        print(f"added {added['positives']} positives and {added['out_of_scope']} out-of-scope examples")
        for name, row in report["sets"].items():
            b, a = row["without"], row["with"]
            print(
                f"{name}: micro-F1 {b['micro_f1']:.3f} -> {a['micro_f1']:.3f} "
                f"(P {b['micro_precision']:.3f} -> {a['micro_precision']:.3f}, "
                f"R {b['micro_recall']:.3f} -> {a['micro_recall']:.3f}), "
                f"exact {b['exact_match']:.3f} -> {a['exact_match']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
