"""The operations commands: `routegraph feedback`, `analytics`, `doctor` and `dashboard` (registered
by graph/cli.py's `parser()` through `register`). Each presents what a graph/ops function returns."""

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
    an.add_argument(
        "--experiment",
        metavar="NAME",
        help="compare the variants of this A/B experiment (z-test, Fisher's exact test, verdict)",
    )
    an.set_defaults(func=cmd_analytics)

    ln = add("learn", help="turn corrected feedback into guide examples, measured on held-out feedback")
    ln.add_argument(
        "--since", default="all", help="feedback on traces since: 7d, 24h, a date, or all (default)"
    )
    ln.add_argument("--holdout", type=float, default=0.3, help="share of the requests held out (default 0.3)")
    ln.add_argument(
        "--split", choices=("hash", "time"), default="hash", help="hold out by text hash or newest"
    )
    ln.add_argument("--max-per-capability", type=int, default=25, help="new examples per capability at most")
    ln.add_argument(
        "--out", type=_path, metavar="FILE", help="also write the patch (a registry overlay) here"
    )
    ln.add_argument(
        "--holdout-out",
        type=_path,
        metavar="FILE",
        help="write the held-out requests with their feedback as labelled JSON lines (for `demo traffic --data`)",
    )
    ln.add_argument(
        "--apply",
        action="store_true",
        help="write the patch to registry.learned.yaml beside the registry (merged on load); refused "
        "unless it improves held-out accuracy",
    )
    ln.add_argument("--registry", type=_path, help="registry.yaml to patch")
    ln.add_argument("--json", action="store_true", help="print one JSON object")
    ln.set_defaults(func=cmd_learn)

    rp = add("replay", help="re-route logged requests with a candidate registry; McNemar against feedback")
    rp.add_argument(
        "--candidate",
        "--with",
        dest="candidate",
        type=_path,
        required=True,
        metavar="FILE",
        help="the candidate registry.yaml, or a registry overlay (e.g. from `learn --out`)",
    )
    rp.add_argument("--since", default="all", help="traces since: 7d, 24h, a date, or all (default)")
    rp.add_argument("--registry", type=_path, help="the baseline registry.yaml (default: the current one)")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.set_defaults(func=cmd_replay)

    dr = add("doctor", help="check the registry, encoder, stores, migrations and model endpoint")
    dr.add_argument("--registry", type=_path, help="registry.yaml to check")
    dr.add_argument("--json", action="store_true", help="print one JSON object")
    dr.set_defaults(func=cmd_doctor)

    db = add("dashboard", help="serve the operations dashboard (and /health, /metrics, /feedback) alone")
    db.add_argument("--port", type=_port, default=8050, help="port (default: 8050; 0 picks a free one)")
    db.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    db.add_argument("--registry", type=_path, help="registry.yaml whose capabilities the queue offers")
    db.set_defaults(func=cmd_dashboard)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return port


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
        if args.experiment:
            return _experiment(args, settings, registry, store, since)
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


def _since(command: str, text: str) -> tuple[float | None, bool]:
    from graph.ops.analytics import parse_since

    try:
        return (None if text in ("all", "") else parse_since(text)), True
    except ValueError as exc:
        print(f"routegraph {command}: {exc}", file=sys.stderr)
        return None, False


def _json(settings: Settings, value: Any) -> str:
    return json.dumps(settings.redactor().redact_value(jsonable(value)), ensure_ascii=False, allow_nan=False)


def _experiment(
    args: argparse.Namespace, settings: Settings, registry: Registry, store: Any, since: float | None
) -> int:
    from graph.ops.experiments import compare_experiment

    spec = next((e for e in registry.spec.experiments if e.name == args.experiment), None)
    order = [v.name for v in spec.variants] if spec else None
    result = compare_experiment(store, args.experiment, since, variants=order)
    if args.json:
        print(_json(settings, result))
    else:
        print(settings.redactor().redact(format_experiment(result, args.since)))
    return EXIT_OK if result["runs"] else EXIT_FAIL


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def format_experiment(r: dict[str, Any], since: str) -> str:
    runs = ", ".join(f"{v} {n}" for v, n in r["runs"].items()) or "none"
    lines = [f"Experiment {r['experiment']} (traces since {since}): runs {runs}"]
    for v in r["variants"]:
        m = r["metrics"][v]
        lines.append(
            f"  {v:<18} success {_rate(m['success'])}\n  {'':<18} clarify {_rate(m['clarify'])}\n"
            f"  {'':<18} feedback accuracy {_rate(m['accuracy'])}"
        )
    for c in r["comparisons"]:
        lines.append(f"{c['variant']} - {c['control']}:")
        for metric in ("success", "clarify", "accuracy"):
            x = c[metric]
            if x["difference"] is None:
                lines.append(f"  {metric:<9} no data")
                continue
            low, high = x["ci95"]
            lines.append(
                f"  {metric:<9} diff {x['difference']:+.1%} (95% CI {low:+.1%} to {high:+.1%}); "
                f"z p={_p(x['p_z'])}, Fisher p={_p(x['p_fisher'])}"
            )
    lines.append("Verdict: " + r["verdict"])
    return "\n".join(lines)


def _progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            print(
                f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True
            )

    return show


def cmd_learn(args: argparse.Namespace) -> int:
    import yaml

    from graph.config.registry import learned_file
    from graph.ops.learn import learn
    from graph.ops.store import open_store

    settings: Settings = args.settings
    since, ok = _since("learn", args.since)
    if not ok:
        return EXIT_INVALID
    if not 0 < args.holdout < 1:
        print("routegraph learn: --holdout is a share between 0 and 1", file=sys.stderr)
        return EXIT_INVALID
    registry = Registry.from_file(settings.registry)
    store = open_store(settings)
    try:
        result = learn(
            store, registry, settings, since=since, holdout=args.holdout, split=args.split,
            max_per_capability=args.max_per_capability, progress=_progress("learn: routing offline"),
        )  # fmt: skip
    finally:
        store.close()
    text = yaml.safe_dump(result["overlay"], sort_keys=False, allow_unicode=True)
    if args.out is not None and result["overlay"]:
        args.out.write_text(text, encoding="utf-8")
    if args.holdout_out is not None:
        rows = (json.dumps(row, ensure_ascii=False) + "\n" for row in result["held_out"])
        args.holdout_out.write_text("".join(rows), encoding="utf-8")
    if args.json:
        print(_json(settings, result))
    else:
        print(settings.redactor().redact(format_learn(result)))
    if not args.apply:
        return EXIT_OK
    if not result["improves"]:
        print(f"routegraph learn: not applied: {result['reason']}", file=sys.stderr)
        return EXIT_FAIL
    target = learned_file(registry.source)
    if target.exists():
        backup = target.with_name(target.name + ".bak")
        backup.write_text(target.read_text(encoding="utf-8"), encoding="utf-8")
    target.write_text(
        "# Written by `routegraph learn --apply` (graph/ops/learn.py); delete it to undo.\n" + text,
        encoding="utf-8",
    )
    print(f"applied: {target} (merged into {registry.source} on every load)")
    return EXIT_OK


def format_learn(r: dict[str, Any]) -> str:
    from graph.ops.learn import format_diff

    lines = [
        f"Feedback: {r['feedback_requests']} distinct requests with a known answer; learn set "
        f"{r['learn_requests']} ({r['learn_misrouted']} routed wrong now), held out {r['holdout_requests']} "
        f"(split by {r['split']})",
        f"Patch: {len(r['additions'])} new examples",
    ]
    if r["additions"]:
        lines.append(format_diff(r["additions"]))
    e = r["evaluation"]
    if e is not None:
        lines.append(f"Held-out routing accuracy before: {_rate(e['before'])}")
        lines.append(f"Held-out routing accuracy after:  {_rate(e['after'])}")
        t = e["table"]
        lines.append(
            f"Paired: both right {t[0][0]}, only before {t[0][1]}, only after {t[1][0]}, both wrong {t[1][1]}; "
            f"McNemar p={_p(e['mcnemar']['p'])} ({'exact' if e['mcnemar']['exact'] else 'chi-square'})"
        )
        lines.append("Verdict: " + e["verdict"])
    lines.append(("Improves: " if r["improves"] else "Does not improve: ") + r["reason"])
    return "\n".join(lines)


def candidate_registry(path: Any, baseline: Registry) -> Registry:
    """A full registry file, or an overlay (no `capabilities` list) applied to the baseline.

    Read as a registry is (`Registry.from_file`'s guards): at most `MAX_TEXT_CHARS` bytes (so
    /dev/zero ends), YAML nested at most 64 deep and no alias bomb, else `RegistryError`."""
    import yaml

    from graph.config.yaml_source import MAX_TEXT_CHARS, Problem, load_yaml
    from graph.errors import RegistryError

    with path.open("rb") as handle:
        raw = handle.read(MAX_TEXT_CHARS + 1)
    if len(raw) > MAX_TEXT_CHARS:
        message = f"the file is too large (more than {MAX_TEXT_CHARS:,} bytes; a registry is a few kilobytes)"
        raise RegistryError([Problem(str(path), None, "", message)])
    text = raw.decode("utf-8")
    if not text.strip():
        return baseline.with_overlay({}, source=f"{baseline.source} + {path}")
    data, _, problems = load_yaml(text, str(path))
    if data is None and problems:
        raise RegistryError(problems)
    if isinstance(data, dict) and isinstance(data.get("capabilities"), list):
        return Registry.from_file(path)
    if data is not None and not isinstance(data, dict):
        raise yaml.YAMLError(f"{path} is neither a registry nor a registry overlay (a mapping)")
    return baseline.with_overlay(data or {}, source=f"{baseline.source} + {path}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cmd_replay(args: argparse.Namespace) -> int:
    import yaml

    from graph.ops.replay import replay
    from graph.ops.store import open_store

    settings: Settings = args.settings
    since, ok = _since("replay", args.since)
    if not ok:
        return EXIT_INVALID
    baseline = Registry.from_file(settings.registry)
    try:
        candidate = candidate_registry(args.candidate, baseline)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"routegraph replay: cannot read {args.candidate}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_INVALID
    store = open_store(settings)
    try:
        result = replay(
            store,
            candidate,
            settings,
            baseline=baseline,
            since=since,
            progress=_progress("replay: routing offline"),
        )
    finally:
        store.close()
    if args.json:
        print(_json(settings, result))
    else:
        print(settings.redactor().redact(format_replay(result)))
    return EXIT_OK


def format_replay(r: dict[str, Any]) -> str:
    t = r["table"]
    lines = [
        f"Replayed {r['requests']} distinct requests with feedback: baseline {r['baseline_source']}, "
        f"candidate {r['candidate_source']}",
        f"Baseline accuracy:  {_rate(r['baseline'])}",
        f"Candidate accuracy: {_rate(r['candidate'])}",
        f"{'':<18} {'cand. right':>12} {'cand. wrong':>12}",
        f"{'baseline right':<18} {t[0][0]:>12} {t[0][1]:>12}",
        f"{'baseline wrong':<18} {t[1][0]:>12} {t[1][1]:>12}",
        f"McNemar ({'exact' if r['mcnemar']['exact'] else 'chi-square, continuity-corrected'}): p={_p(r['mcnemar']['p'])}",
        "Verdict: " + r["verdict"],
    ]
    return "\n".join(lines)


def add_traffic_arguments(demo: argparse.ArgumentParser) -> None:
    """`routegraph demo traffic` options (the `demo` parser is graph/cli.py's)."""
    demo.add_argument("--n", type=int, default=500, help="traffic: runs (default 500)")
    demo.add_argument("--seed", type=int, default=0, help="traffic: seed of the draws (default 0)")
    demo.add_argument("--feedback-rate", type=float, default=0.6, help="traffic: share of runs with feedback")
    demo.add_argument(
        "--days", type=float, default=7.0, help="traffic: spread over the last N days (default 7)"
    )
    demo.add_argument("--encoder", default="lexical", help="traffic: classifier encoder (default lexical)")
    demo.add_argument(
        "--weaken",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="traffic: remove this share of each capability's guide examples",
    )
    demo.add_argument(
        "--variant-overlay",
        type=_path,
        metavar="FILE",
        help="traffic: run experiment overlay-demo: control vs this registry overlay",
    )
    demo.add_argument("--no-experiment", action="store_true", help="traffic: no experiment")
    demo.add_argument(
        "--data",
        type=_path,
        action="append",
        default=[],
        metavar="FILE",
        help="traffic: labelled JSON lines (text, labels); default: the support desk's",
    )
    demo.add_argument("--json", action="store_true", help="traffic: print one JSON object")


def cmd_traffic(args: argparse.Namespace) -> int:
    import yaml

    from graph.ops.traffic import demo_traffic

    settings: Settings = args.settings
    if args.n < 1 or not 0 <= args.feedback_rate <= 1 or not 0 <= args.weaken < 1 or args.days <= 0:
        print(
            "routegraph demo traffic: --n >= 1, --feedback-rate in [0, 1], --weaken in [0, 1), --days > 0",
            file=sys.stderr,
        )
        return EXIT_INVALID
    overlay = None
    if args.variant_overlay is not None:
        try:
            overlay = yaml.safe_load(args.variant_overlay.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            print(
                f"routegraph demo traffic: cannot read {args.variant_overlay}: {_first_line(exc)}",
                file=sys.stderr,
            )
            return EXIT_INVALID
        if not isinstance(overlay, dict):
            print(
                f"routegraph demo traffic: {args.variant_overlay} is not a registry overlay (a mapping)",
                file=sys.stderr,
            )
            return EXIT_INVALID
    result = demo_traffic(
        settings, n=args.n, seed=args.seed, feedback_rate=args.feedback_rate, days=args.days,
        data=args.data, encoder=args.encoder or None, weaken=args.weaken, variant_overlay=overlay,
        experiment=not args.no_experiment, say=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    if args.json:
        print(_json(settings, result))
        return EXIT_OK
    print(
        f"demo traffic: {result['runs']} runs in {result['seconds']} s ({result['failed']} failed), "
        f"encoder {result['encoder']}"
    )
    print("stop reasons: " + ", ".join(f"{k} {v}" for k, v in result["stop_reasons"].items()))
    print("feedback: " + (", ".join(f"{k} {v}" for k, v in result["feedback"].items()) or "none"))
    print(f"traces: {result['store']}")
    print(
        f"demo registry: {result['registry']}"
        + (f" (+ {result['learned_overlay']})" if result["learned_overlay"] else "")
    )
    reg = result["registry"]
    print("next:")
    print(f"  routegraph analytics --since all --registry {reg}")
    if result["experiment"]:
        print(f"  routegraph analytics --since all --registry {reg} --experiment {result['experiment']}")
    print(f"  routegraph learn --registry {reg} --out learned.yaml")
    print(f"  routegraph replay --registry {reg} --candidate learned.yaml")
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    """The HTTP app (graph/ops/http.py) under uvicorn, without the LangGraph server. The socket is
    bound first, so a taken port is one line and the URL printed is the one that answers."""
    import socket

    import uvicorn

    from graph.ops.http import create_app

    settings: Settings = args.settings
    Registry.from_file(settings.registry)  # a bad registry is refused here, not on the first page load
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        print(
            f"routegraph dashboard: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    print(f"routegraph: dashboard on http://{host}:{port}/dashboard (Ctrl-C stops it)", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK
