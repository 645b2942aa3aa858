"""`routegraph demo traffic`: labelled requests through the real graph, with simulated feedback and a
running experiment, so analytics, learn, replay and the dashboard have real figures on a fresh clone.

What it does
    1. The registry (the settings' one, or `--registry`) becomes the demo registry, written to
       `<data dir>/demo/registry.yaml` for the commands that follow: the classifier's encoder set
       to `lexical` (no weights, compiled in a second on 2 cores; `--encoder` to change it), with
       `--weaken SHARE` that share of each capability's guide examples removed (every other one
       at 0.5: a deliberately weak guide set for the learning measure), and an experiment when the
       registry runs none: `threshold-demo`, control vs `lower-threshold` (threshold 0.4), or with
       `--variant-overlay FILE` the experiment `overlay-demo` whose variant applies that overlay
       (e.g. a patch `routegraph learn --out` wrote).
    2. `n` requests drawn (seeded) from the labelled files (tests/support_desk/data/*.jsonl, or
       `--data`), each from one of `max(20, n/5)` users on a thread of its own, run through
       `build_graph` (in-memory checkpoints; traces to the usual trace store), with the start
       times spread over the last `days` days (an injected clock), oldest first. A run paused at
       an approval is resumed with a denial (nothing is refunded above the approval limit).
    3. With probability `feedback_rate` a run gets the feedback its label implies: `good` when the
       routable capabilities selected are the labelled ones, `out_of_scope` when the label is
       none, else `correct LABELS`.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from graph.builder import build_graph
from graph.config.registry import Registry, learned_file
from graph.config.settings import Settings
from graph.errors import ConfigError
from graph.ops.store import TraceStore, open_store

ROOT = Path(__file__).resolve().parents[2]
DATA = sorted((ROOT / "tests" / "support_desk" / "data").glob("*.jsonl"))
"""The labelled requests shipped in the repository (the support desk's routing set)."""
OUT_OF_SCOPE = "out_of_scope"
Say = Callable[[str], None]


def load_rows(files: Sequence[Path]) -> list[tuple[str, frozenset[str]]]:
    """(text, labels) from JSON lines files; the label `out_of_scope` means no capability."""
    rows = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the labelled requests {file}: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rows.append(_labelled(line, f"{file}:{number}"))
    return rows


def _labelled(line: str, where: str) -> tuple[str, frozenset[str]]:
    """One JSON line's (text, labels); `ConfigError` naming the file and line when it is not a
    JSON object with a non-empty `text` and a list of string `labels`."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{where}: not a JSON object ({type(exc).__name__})") from None
    text = row.get("text") if isinstance(row, dict) else None
    labels = row.get("labels") if isinstance(row, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: 'text' must be a non-empty string")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ConfigError(f"{where}: 'labels' must be a list of strings")
    clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # a "\udcff" escape
    return clean, frozenset(x for x in labels if x != OUT_OF_SCOPE)


def weakened(registry: Registry, share: float) -> dict[str, Any]:
    """An overlay that removes `share` of each routable capability's guide examples (evenly spaced,
    at least one positive kept)."""
    caps: dict[str, Any] = {}
    for cap in registry.routable:
        examples = list(cap.classifier_guide.examples)
        keep = [e for i, e in enumerate(examples) if (i + 1) * (1 - share) // 1 != i * (1 - share) // 1]
        if not any(e.result for e in keep):
            keep = [next(e for e in examples if e.result), *keep]
        guide = cap.classifier_guide.model_dump(mode="json")
        guide["examples"] = [e.model_dump(mode="json") for e in keep]
        caps[cap.name] = {"classifier_guide": guide}
    return {"capabilities": caps}


def demo_registry(
    base: Registry,
    *,
    encoder: str | None = "lexical",
    weaken: float = 0.0,
    variant_overlay: Mapping[str, Any] | None = None,
    experiment: bool = True,
) -> dict[str, Any]:
    """The demo registry's data (see the module docstring)."""
    data = base.data
    if encoder:
        data.setdefault("classifier", {})["encoder"] = encoder
    if weaken > 0:
        merged = Registry.from_dict(data, source=base.source).with_overlay(weakened(base, weaken))
        data = {**merged.data, "experiments": data.get("experiments", [])}
    if variant_overlay is not None:
        data["experiments"] = [
            {
                "name": "overlay-demo",
                "assign_by": "user",
                "variants": [
                    {"name": "control", "share": 0.5},
                    {"name": "overlay", "share": 0.5, "overlay": dict(variant_overlay)},
                ],
            }
        ]
    elif experiment and not any(e.get("enabled", True) for e in data.get("experiments") or []):
        data["experiments"] = [
            {
                "name": "threshold-demo",
                "assign_by": "user",
                "variants": [
                    {"name": "control", "share": 0.5},
                    {"name": "lower-threshold", "share": 0.5, "overlay": {"classifier": {"threshold": 0.4}}},
                ],
            }
        ]
    elif not experiment:
        data.pop("experiments", None)
    return data


def feedback_for(selected: frozenset[str], label: frozenset[str]) -> tuple[str, list[str]]:
    if selected == label:
        return "good", []
    if not label:
        return "out_of_scope", []
    return "correct", sorted(label)


def write_registry(data: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `routegraph demo traffic`: the demo's registry (see graph/ops/traffic.py).\n"
    path.write_text(
        header + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return path


def demo_traffic(
    settings: Settings,
    *,
    n: int = 500,
    seed: int = 0,
    feedback_rate: float = 0.6,
    days: float = 7.0,
    registry: Registry | None = None,
    data: Sequence[Path] = (),
    encoder: str | None = "lexical",
    weaken: float = 0.0,
    variant_overlay: Mapping[str, Any] | None = None,
    experiment: bool = True,
    store: TraceStore | None = None,
    now: float | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Run the demo traffic; returns what happened (counts, the registry file, the experiment)."""
    rows = load_rows(list(data) or DATA)
    if not rows:
        raise ConfigError(
            'no labelled requests to replay: give --data FILE.jsonl (lines of {"text", "labels"}); '
            "the support desk's are in the repository's tests/support_desk/data/"
        )
    base = registry or Registry.from_file(settings.registry)
    path = settings.data_dir / "demo" / "registry.yaml"
    write_registry(
        demo_registry(
            base, encoder=encoder, weaken=weaken, variant_overlay=variant_overlay, experiment=experiment
        ),
        path,
    )
    demo = Registry.from_file(path)  # with the learned overlay beside it, when `learn --apply` wrote one
    store = store or open_store(settings)
    shift = [0.0]

    def clock() -> float:
        return time.time() - shift[0]

    graph = build_graph(
        registry=demo, settings=settings, checkpointer="memory", store="memory", clock=clock, traces=store
    )
    rng = random.Random(seed)
    users = max(20, n // 5)
    start = (time.time() if now is None else now) - days * 86400
    stops: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    failures = 0
    began = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    for i in range(n):
        text, label = rng.choice(rows)
        at = start + days * 86400 * (i + rng.random()) / n
        shift[0] = time.time() - at
        config: RunnableConfig = {
            "configurable": {"thread_id": f"demo-{tag}-{i}", "user_id": f"demo-user-{rng.randrange(users)}"}
        }
        try:
            state = graph.invoke({"messages": [HumanMessage(content=text)]}, config)
            for _ in range(3):  # paused at an approval: a human says no
                if not state.get("__interrupt__"):
                    break
                state = graph.invoke(Command(resume=False), config)
        except Exception:  # a run that fails is counted, never a traceback
            failures += 1
            continue
        stops[str(state.get("control_stop_reason"))] += 1
        run_id = state.get("control_run_id")
        trace = store.get(str(run_id)) if run_id else None
        if trace is not None and rng.random() < feedback_rate:
            verdict, correct = feedback_for(frozenset(trace["selected"] or []), label)
            store.put_feedback(str(run_id), verdict=verdict, correct=correct, source="demo", at=at + 60)
            verdicts[verdict] += 1
        if say and ((i + 1) % 25 == 0 or i + 1 == n):
            rate = (i + 1) / max(time.perf_counter() - began, 1e-9)
            say(f"demo traffic: {i + 1}/{n} runs, {rate:.1f} runs/s, {sum(verdicts.values())} with feedback")
    experiment_spec = next((e for e in demo.spec.experiments if e.enabled), None)
    return {
        "runs": n,
        "failed": failures,
        "stop_reasons": dict(stops.most_common()),
        "feedback": dict(verdicts.most_common()),
        "registry": str(path),
        "learned_overlay": str(learned_file(path)) if learned_file(path).is_file() else None,
        "encoder": demo.spec.classifier.encoder,
        "experiment": experiment_spec.name if experiment_spec else None,
        "seconds": round(time.perf_counter() - began, 1),
        "store": store.where,
    }
