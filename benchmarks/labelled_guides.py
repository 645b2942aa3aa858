"""Labelled requests as guide examples: how much routing gains on a set nobody tuned on.

    python -m benchmarks.labelled_guides --registry registry.yaml --eval SET.jsonl [...] [--add A.jsonl ...] [--json]
    python -m benchmarks.labelled_guides --add A.jsonl [B.jsonl ...] --write FILE

The registry's `classifier.labelled_examples` (graph/config/labelled.py) make single-label rows
positive examples of their capability's guide and out-of-scope rows out-of-scope examples. This
routes the `--eval` files with the registry's hand-written guides alone (`labelled_examples: []`)
and with its labelled examples plus the `--add` files', side by side in one run
(`evals.registry_eval.evaluate_registry`, each registry with its own fine-tune), and says how many
of an eval set's rows are themselves examples (those measure memory, not generalisation).

`--write FILE` writes every row of the `--add` files, with the file it came from, to FILE: how the
support desk's shipped `capabilities/support_desk/data/labelled_examples.jsonl` is made from its
development sets (tests/support_desk/data/HELDOUT.md). Session 14 measured the lever with four
writers' sets added and a fifth's blind set evaluated; session 15 shipped it (README "Status").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from evals.datasets import OUT_OF_SCOPE, read_rows
from evals.registry_eval import evaluate_registry
from graph.config.registry import Registry
from graph.config.settings import Settings


def _rows_of(paths: list[Path]) -> list[dict[str, Any]]:
    """Every row of the files, in order, with the file it came from (what `--write` ships)."""
    out: list[dict[str, Any]] = []
    for path in paths:
        for row in read_rows(path):
            labels = list(row.labels) or [OUT_OF_SCOPE]
            out.append({"text": row.text, "labels": labels, "source": path.name})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.labelled_guides", description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("registry.yaml"))
    p.add_argument("--add", type=Path, nargs="+", default=[], help="labelled files whose rows become examples too")
    p.add_argument("--eval", type=Path, nargs="+", default=[], help="labelled files to route, with and without")
    p.add_argument(
        "--write", type=Path, default=None, metavar="FILE",
        help="write the --add files' rows to FILE (JSON Lines, a `source` key each) instead of evaluating",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="where the fine-tunes are cached (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.write is not None:
        if not args.add:
            print("labelled_guides: --write needs --add", file=sys.stderr)
            return 2
        rows = _rows_of(args.add)
        args.write.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {len(rows)} rows from {len(args.add)} files to {args.write}")
        return 0
    if not args.eval:
        print("labelled_guides: give --eval files (or --write)", file=sys.stderr)
        return 2
    overlap = {x.resolve() for x in args.add} & {x.resolve() for x in args.eval}
    if overlap:
        print(f"labelled_guides: a file is both added and evaluated: {sorted(map(str, overlap))}", file=sys.stderr)
        return 2
    base = Registry.from_file(args.registry, learned=False)
    shipped = list(base.spec.classifier.labelled_examples)
    if not shipped and not args.add:
        print("labelled_guides: the registry has no classifier.labelled_examples and no --add was given", file=sys.stderr)
        return 2
    without = base.with_overlay({"classifier": {"labelled_examples": []}}, source=f"{base.source} without labelled examples")
    entries = [*shipped, *(str(x.resolve()) for x in args.add)]
    patched = base.with_overlay({"classifier": {"labelled_examples": entries}}, source=f"{base.source} + labelled examples")
    examples = {e.query.strip().lower() for c in patched for e in c.classifier_guide.examples}
    examples |= {t.strip().lower() for t in patched.spec.classifier.out_of_scope_examples}
    before_count = sum(len(c.classifier_guide.positives) for c in without.routable)
    after_count = sum(len(c.classifier_guide.positives) for c in patched.routable)
    with tempfile.TemporaryDirectory(prefix="routegraph-labelled-") as tmp:
        settings = Settings.offline(args.data_dir or Path(tmp))
        report: dict[str, Any] = {
            "added": {
                "positives": after_count - before_count,
                "out_of_scope": len(patched.spec.classifier.out_of_scope_examples)
                - len(without.spec.classifier.out_of_scope_examples),
                "from": entries,
            },
            "sets": {},
        }
        for path in args.eval:
            # A row that is itself an example measures memory, not generalisation: say how many.
            seen = sum(row.text.strip().lower() in examples for row in read_rows(path))
            before = evaluate_registry(path, without, settings)["metrics"]
            after = evaluate_registry(path, patched, settings)["metrics"]
            report["sets"][str(path)] = {"without": before, "with": after, "rows_among_examples": seen}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        added = report["added"]
        print(f"added {added['positives']} positives and {added['out_of_scope']} out-of-scope examples")
        for name, row in report["sets"].items():
            b, a = row["without"], row["with"]
            note = f" ({row['rows_among_examples']} of its rows are examples)" if row["rows_among_examples"] else ""
            print(
                f"{name}: micro-F1 {b['micro_f1']:.3f} -> {a['micro_f1']:.3f} "
                f"(P {b['micro_precision']:.3f} -> {a['micro_precision']:.3f}, "
                f"R {b['micro_recall']:.3f} -> {a['micro_recall']:.3f}), "
                f"exact {b['exact_match']:.3f} -> {a['exact_match']:.3f}{note}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
