"""The operations commands: `routegraph feedback`, `analytics` and `doctor` (registered by
graph/cli.py's `parser()` through `register`). Each presents what a graph/ops function returns."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graph.capability.base import jsonable
from graph.config.registry import Registry
from graph.config.settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


def register(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the operations subcommands with graph/cli.py's `add(name, help=...)`."""
    fb = add("feedback", help="say whether a turn was routed right (stored with its trace)")
    fb.add_argument("run_id", help="the run id (`routegraph ask --json` prints it)")
    verdict = fb.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--good", dest="verdict", action="store_const", const="good", help="routed right")
    verdict.add_argument("--bad", dest="verdict", action="store_const", const="bad", help="routed wrong")
    verdict.add_argument(
        "--correct", metavar="CAP[,CAP]", help="routed wrong: these capabilities should have taken it"
    )
    verdict.add_argument(
        "--out-of-scope",
        dest="verdict",
        action="store_const",
        const="out_of_scope",
        help="no capability should have taken it",
    )
    fb.add_argument("--note", help="a free-text note (redacted)")
    fb.add_argument("--registry", type=_path, help="registry.yaml whose capabilities --correct may name")
    fb.set_defaults(func=cmd_feedback)

    an = add("analytics", help="routing and operations figures from the trace store")
    an.add_argument(
        "--since", default="7d", help="7d, 24h, 30m, or a date (default: 7d; 'all' for every trace)"
    )
    an.add_argument("--json", action="store_true", help="print one JSON object")
    an.add_argument(
        "--registry", type=_path, help="registry.yaml whose encoder clusters the uncovered requests"
    )
    an.set_defaults(func=cmd_analytics)

    dr = add("doctor", help="check the registry, encoder, stores, migrations and model endpoint")
    dr.add_argument("--registry", type=_path, help="registry.yaml to check")
    dr.add_argument("--json", action="store_true", help="print one JSON object")
    dr.set_defaults(func=cmd_doctor)


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def cmd_feedback(args: argparse.Namespace) -> int:
    from graph.ops.feedback import FeedbackError, give_feedback
    from graph.ops.store import open_store

    settings: Settings = args.settings
    names = frozenset(Registry.from_file(settings.registry).capabilities)
    correct = [c for c in (args.correct or "").split(",") if c.strip()]
    store = open_store(settings)
    try:
        stored = give_feedback(
            store,
            args.run_id,
            verdict=args.verdict or ("correct" if args.correct is not None else None),
            correct=correct,
            note=args.note,
            source="cli",
            capabilities=names,
            redactor=settings.redactor(),
        )
    except FeedbackError as exc:
        print(f"routegraph feedback: {settings.redactor().redact(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        store.close()
    extra = f" -> {', '.join(stored['correct'])}" if stored["correct"] else ""
    print(f"feedback on run {stored['run_id']}: {stored['verdict']}{extra}")
    return EXIT_OK


def encoder_embed(settings: Settings, registry: Registry) -> Callable[[Sequence[str]], np.ndarray]:
    """The registry's encoder as an embedding for clustering (fitted on the texts: lexical needs it)."""
    from graph.classifier.encoders import make_encoder

    encoder = make_encoder(
        registry.spec.classifier.encoder, base_url=settings.base_url, models_dir=settings.data_dir / "models"
    )

    def embed(texts: Sequence[str]) -> np.ndarray:
        encoder.fit(list(texts))
        return np.asarray(encoder.encode(list(texts)))

    return embed


def cmd_analytics(args: argparse.Namespace) -> int:
    from graph.ops.analytics import analytics, parse_since
    from graph.ops.store import open_store

    settings: Settings = args.settings
    try:
        since = None if args.since in ("all", "") else parse_since(args.since)
    except ValueError as exc:
        print(f"routegraph analytics: {exc}", file=sys.stderr)
        return EXIT_INVALID
    registry = Registry.from_file(settings.registry)
    store = open_store(settings)
    try:
        result = analytics(store, since=since, embed=encoder_embed(settings, registry))
    finally:
        store.close()
    redactor = settings.redactor()
    if args.json:
        print(json.dumps(redactor.redact_value(jsonable(result)), ensure_ascii=False, allow_nan=False))
    else:
        print(redactor.redact(format_analytics(result, args.since)))
    return EXIT_OK


def _rate(p: dict[str, Any]) -> str:
    if not p["n"]:
        return "n/a (no data)"
    low, high = p["ci95"]
    return f"{p['rate']:.1%} ({p['k']}/{p['n']}; 95% CI {low:.1%}-{high:.1%})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_analytics(r: dict[str, Any], since: str) -> str:
    lines = [f"Traces since {since}: {r['volume']} turns, {r['threads']} threads, {r['users']} users"]
    if not r["volume"]:
        return lines[0] + "\n(nothing to show: run some requests first)"
    lines.append("Stop reasons: " + ", ".join(f"{k} {v}" for k, v in r["stop_reasons"].items()))
    lines.append(f"Completion:   {_rate(r['completion'])}")
    lines.append(f"Clarify:      {_rate(r['clarify'])}")
    lines.append(f"Turn time:    p50 {_ms(r['turn_ms']['p50'])} ms, p95 {_ms(r['turn_ms']['p95'])} ms")
    fb = r["feedback"]
    lines.append(
        f"Feedback:     {fb['count']} ("
        + (", ".join(f"{k} {v}" for k, v in fb["verdicts"].items()) or "none")
        + ")"
    )
    lines.append(f"Routing accuracy (vs feedback): {_rate(r['routing_accuracy'])}")
    m = r["models"]
    lines.append(f"Model calls:  {m['calls']} ({m['tokens']} tokens)")
    lines.append("")
    lines.append(
        f"{'capability':<18} {'sel':>5} {'steps':>5} {'p50 ms':>8} {'p95 ms':>8} {'err':>4} {'retry':>5} {'asked':>5} {'wait s':>7}"
    )
    for name, c in r["capabilities"].items():
        lines.append(
            f"{name:<18} {c['selections']:>5} {c['steps']:>5} {_ms(c['latency_ms_p50']):>8} "
            f"{_ms(c['latency_ms_p95']):>8} {c['errors']:>4} {c['retries']:>5} {c['approvals_asked']:>5} "
            f"{_ms(c['seconds_to_approve_p50']):>7}"
        )
    if r["confidence_by_day"]:
        lines.append("")
        lines.append("Top-candidate confidence by day (median [p25, p75]):")
        for d in r["confidence_by_day"]:
            lines.append(f"  {d['day']}  {d['median']:.3f} [{d['p25']:.3f}, {d['p75']:.3f}]  n={d['n']}")
    rec = r["recommendations"]
    lines.append("")
    lines.append("Recommendations:")
    if not any(rec.values()):
        lines.append("  none yet (they come from feedback and clarified requests)")
    for c in rec["most_corrected"]:
        lines.append(
            f"  corrected: {c['capability']} (wrongly selected {c['wrongly_selected']}, missed {c['missed']})"
        )
    for p in rec["confused_pairs"]:
        lines.append(f"  confused: selected {p['selected']} where {p['correct']} was right ({p['count']}x)")
    for cl in rec["uncovered_clusters"]:
        lines.append(
            f"  uncovered: {cl['size']} clarified requests like {cl['representative']!r}: a new capability?"
        )
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    from graph.ops.doctor import as_dict, doctor, format_checks, healthy

    settings: Settings = args.settings
    checks = doctor(settings)
    if args.json:
        print(json.dumps(as_dict(checks)))
    else:
        print(format_checks(checks))
    return EXIT_OK if healthy(checks) else EXIT_FAIL
