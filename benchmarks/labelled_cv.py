"""Leave-one-set-out: how labelled examples carry routing to a writer they do not include.

    python -m benchmarks.labelled_cv [--hold SET ...] [--sets SET ...] [--stand-ins on|off|both] [--json]

For each held set, the registry's labelled examples are replaced by the rows of the *other*
development sets (`classifier.labelled_examples`), and the held set is routed
(`evals.registry_eval.evaluate_registry`): micro precision, recall and F1 and exact-set match, as
for a new writer the examples never saw. `--stand-ins both` routes each held set twice, with the
identifiers of the labelled rows replaced by stand-ins as shipped (`graph.config.labelled.stand_ins`)
and without (the rows as written), side by side in one run. Fine-tunes are cached under
`--data-dir` (default: a temporary directory), one per held set and variant.

The default sets are the support desk's development sets (tests/support_desk/data/HELDOUT.md); the
blind sets are never among them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graph.config.labelled as labelled
from evals.registry_eval import evaluate_registry
from graph.config.registry import Registry
from graph.config.settings import Settings

DATA = Path("tests/support_desk/data")
DEVELOPMENT = ("support_dev", "support_heldout", "support_heldout2", "support_heldout3", "support_heldout4", "support_heldout5")
HELD = ("support_heldout3", "support_heldout4", "support_heldout5")
FIGURES = ("micro_f1", "micro_precision", "micro_recall", "exact_match")


def _as_written(text: str) -> str:
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.labelled_cv", description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("registry.yaml"))
    p.add_argument("--data", type=Path, default=DATA, help="folder of the sets (default: %(default)s)")
    p.add_argument("--sets", nargs="+", default=list(DEVELOPMENT), help="the development sets (file stems)")
    p.add_argument("--hold", nargs="+", default=list(HELD), help="the sets to hold out in turn")
    p.add_argument("--stand-ins", choices=("on", "off", "both"), default="on")
    p.add_argument("--data-dir", type=Path, default=None, help="where the fine-tunes are cached")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    missing = [h for h in args.hold if h not in args.sets]
    if missing:
        print(f"labelled_cv: held sets must be among --sets: {', '.join(missing)}", file=sys.stderr)
        return 2
    base = Registry.from_file(args.registry, learned=False)
    shipped = labelled.stand_ins
    variants: list[tuple[str, Callable[[str], str]]] = []
    if args.stand_ins in ("on", "both"):
        variants.append(("stand_ins", shipped))
    if args.stand_ins in ("off", "both"):
        variants.append(("as_written", _as_written))
    report: dict[str, Any] = {"sets": args.sets, "held": {}}
    with tempfile.TemporaryDirectory(prefix="routegraph-labelled-cv-") as tmp:
        root = args.data_dir or Path(tmp)
        try:
            for held in args.hold:
                entries = [str((args.data / f"{s}.jsonl").resolve()) for s in args.sets if s != held]
                for name, transform in variants:
                    labelled.stand_ins = transform  # type: ignore[assignment]  # expand() reads it at call time
                    registry = base.with_overlay(
                        {"classifier": {"labelled_examples": entries}}, source=f"{base.source} without {held}"
                    )
                    settings = Settings.offline(root / name)
                    metrics = evaluate_registry(args.data / f"{held}.jsonl", registry, settings)["metrics"]
                    figures = {k: round(float(metrics[k]), 3) for k in FIGURES}
                    report["held"].setdefault(held, {})[name] = figures
                    if not args.json:
                        print(
                            f"{held} ({name}): micro-F1 {figures['micro_f1']:.3f} "
                            f"(P {figures['micro_precision']:.3f}, R {figures['micro_recall']:.3f}), "
                            f"exact {figures['exact_match']:.3f}",
                            flush=True,
                        )
        finally:
            labelled.stand_ins = shipped
    means = {
        name: round(sum(report["held"][h][name]["micro_f1"] for h in args.hold) / len(args.hold), 4)
        for name, _ in variants
    }
    report["mean_micro_f1"] = means
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("mean micro-F1: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
