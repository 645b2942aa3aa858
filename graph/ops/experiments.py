"""A/B experiments: deterministic assignment, per-run variants, and the comparison with significance.

Declared in registry.yaml (graph/config/schema.py `ExperimentSpec`):

    experiments:
      - name: threshold-40
        assign_by: user            # or thread
        variants:
          - {name: control, share: 0.5}
          - {name: low, share: 0.5, overlay: {classifier: {threshold: 0.4}}}

Assignment: `assign(experiment, unit)` hashes `"<experiment>:<unit>"` with SHA-256 into [0, 1) and
walks the cumulative shares, so one user (or thread) always gets the same variant, in every process,
and over many ids each variant gets its share. A run that names its variant
(`configurable.variant`) keeps it. The variant's overlay is a registry of its own
(`Registry.with_overlay`), built lazily on its first run (`Dispatch`); the graph's nodes use it for
that run (nodes/base.py `Deps.for_run`), and the trace records `experiment` and `variant`.

`compare_experiment(store, name, since=None)` compares each variant with the control (the first) on
three proportions: success rate (stop_reason success), clarify rate, and routing accuracy against
feedback (graph/ops/analytics.py `routing_correct`). Each comparison has the two-sided
two-proportion z-test (statsmodels `proportions_ztest`) and Fisher's exact test (scipy
`fisher_exact`), the 95% interval of the difference variant - control (Newcomb's hybrid score
interval, statsmodels `confint_proportions_2indep`), and a plain verdict. The p-value the verdict
uses is Fisher's when an expected cell count is below 5, else the z-test's. When the difference
is not significant the verdict says how many runs per variant would detect the observed
difference with 80% power at alpha 0.05 (statsmodels `NormalIndPower`). JSON shape:

    {"experiment": str, "since": float | None, "control": str, "variants": [str, ...],
     "runs": {variant: int},
     "metrics": {variant: {"success" | "clarify" | "accuracy": {"k", "n", "rate", "ci95"}}},
     "comparisons": [{"variant": str, "control": str,
                      "success" | "clarify" | "accuracy": {
                          "control": {k, n, rate}, "variant": {k, n, rate}, "difference": float | None,
                          "ci95": [low, high] | None, "z": float | None, "p_z": float | None,
                          "odds_ratio": float | None, "p_fisher": float | None, "test": "z" | "fisher",
                          "p": float | None, "significant": bool, "better": str | None,
                          "runs_needed": int | None, "verdict": str}}],
     "verdict": str}
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from graph.config.registry import Registry
from graph.config.schema import ExperimentSpec
from graph.ops.analytics import proportion, routing_correct
from graph.ops.store import TraceStore

T = TypeVar("T")
ALPHA = 0.05
POWER = 0.8
HOPELESS = 100_000
"""Runs per variant past which a difference is called not meaningful rather than not significant yet."""
METRICS = ("success", "clarify", "accuracy")
LOWER_IS_BETTER = frozenset({"clarify"})
LABELS = {"success": "success rate", "clarify": "clarify rate", "accuracy": "feedback accuracy"}


def bucket(experiment: str, unit: str) -> float:
    """A stable number in [0, 1) for this unit in this experiment (SHA-256, same in every process)."""
    digest = hashlib.sha256(f"{experiment}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: ExperimentSpec, unit: str) -> str:
    """The variant of `unit` (a user or thread id): the one whose cumulative share covers its bucket."""
    point = bucket(experiment.name, unit)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.share
        if point < edge:
            return variant.name
    return experiment.variants[-1].name  # rounding: shares that add up to 0.9999999


def running(registry: Registry) -> ExperimentSpec | None:
    """The registry's enabled experiment (there is at most one)."""
    return next((e for e in registry.spec.experiments if e.enabled), None)


def unit_of(
    experiment: ExperimentSpec, configurable: Mapping[str, Any], fallback: str | None = None
) -> str | None:
    """Who is assigned: the user id (`assign_by: user`, the thread's id without one) or the thread id."""
    user, thread = configurable.get("user_id"), configurable.get("thread_id")
    if experiment.assign_by == "user" and user:
        return str(user)
    return str(thread) if thread else fallback


class Dispatch(Generic[T]):
    """Per-run variants of one experiment: `choose(configurable)` says which variant a run is in and
    gives what `make` built for that variant's registry (built once, on first use, thread-safe)."""

    def __init__(
        self,
        registry: Registry,
        experiment: ExperimentSpec,
        make: Callable[[Registry], T],
        *,
        base: T | None = None,
    ) -> None:
        self.registry = registry
        self.experiment = experiment
        self._make = make
        self._built: dict[str, T] = {}
        if base is not None:  # a variant without an overlay runs the graph's own registry
            self._built = {v.name: base for v in experiment.variants if not v.overlay}
        self._lock = threading.Lock()
        self._names = [v.name for v in experiment.variants]

    def variant_registry(self, name: str) -> Registry:
        variant = next(v for v in self.experiment.variants if v.name == name)
        return self.registry.with_overlay(
            variant.overlay, source=f"{self.registry.source} [experiment {self.experiment.name}: {name}]"
        )

    def variant_of(self, configurable: Mapping[str, Any], fallback: str | None = None) -> str:
        asked = configurable.get("variant")
        if asked in self._names and configurable.get("experiment") in (None, self.experiment.name):
            return str(asked)
        unit = unit_of(self.experiment, configurable, fallback)
        return assign(self.experiment, unit) if unit else self._names[0]

    def choose(self, configurable: Mapping[str, Any], fallback: str | None = None) -> tuple[str, T]:
        name = self.variant_of(configurable, fallback)
        with self._lock:
            if name not in self._built:
                self._built[name] = self._make(self.variant_registry(name))
            return name, self._built[name]


# -- the comparison -------------------------------------------------------------------------------


def _outcomes(trace: Mapping[str, Any]) -> dict[str, bool | None]:
    return {
        "success": trace["stop_reason"] == "success",
        "clarify": trace["stop_reason"] == "clarify",
        "accuracy": routing_correct(trace),
    }


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """Variant (k2/n2) against control (k1/n1): z-test, Fisher's exact test, the 95% interval of
    the difference p2 - p1, and which p-value decides (Fisher's when an expected count is under 5)."""
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    out: dict[str, Any] = {
        "difference": None, "ci95": None, "z": None, "p_z": None, "odds_ratio": None, "p_fisher": None,
        "test": "z", "p": None,
    }  # fmt: skip
    if not n1 or not n2:
        return out
    out["difference"] = k2 / n2 - k1 / n1
    table = [[k2, n2 - k2], [k1, n1 - k1]]
    odds, p_fisher = fisher_exact(table, alternative="two-sided")
    out["odds_ratio"], out["p_fisher"] = _finite(odds), float(p_fisher)
    pooled = (k1 + k2) / (n1 + n2)
    if 0 < pooled < 1:
        z, p_z = proportions_ztest([k2, k1], [n2, n1], alternative="two-sided")
        out["z"], out["p_z"] = float(z), float(p_z)
    low, high = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff", alpha=ALPHA)
    out["ci95"] = [float(low), float(high)]
    expected = min(min(n1, n2) * pooled, min(n1, n2) * (1 - pooled))
    fisher = expected < 5 or out["p_z"] is None
    out["test"] = "fisher" if fisher else "z"
    out["p"] = out["p_fisher"] if fisher else out["p_z"]
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def runs_needed(p1: float, p2: float, *, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Runs per variant for a two-sided z-test to detect p1 vs p2 with this power; None when equal."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(float(proportion_effectsize(p2, p1)))
    if effect < 1e-9:
        return None
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(float(n))


def verdict_text(metric: str, variant: str, control: str, result: Mapping[str, Any], n1: int, n2: int) -> str:
    label = LABELS.get(metric, metric)
    if result["p"] is None:
        return f"{label}: not enough data yet (control {n1}, {variant} {n2} runs with an outcome)"
    if result["significant"]:
        return f"{result['better']} is better on {label}, p={result['p']:.3g}"
    needed = result["runs_needed"]
    if needed is None:
        return f"{label}: no difference observed (p={result['p']:.3g})"
    if needed > HOPELESS:
        return f"{label}: no meaningful difference (p={result['p']:.3g}; detecting it would take over {HOPELESS:,} runs per variant)"
    more = max(0, needed - min(n1, n2))
    return f"{label}: no significant difference yet (p={result['p']:.3g}): need ~{more} more runs per variant"


def compare_metric(
    metric: str, control: str, variant: str, c: dict[str, Any], v: dict[str, Any]
) -> dict[str, Any]:
    result = two_proportions(c["k"], c["n"], v["k"], v["n"])
    result["control"], result["variant"] = c, v
    significant = result["p"] is not None and result["p"] < ALPHA and bool(result["difference"])
    result["significant"] = significant
    better = None
    if significant:
        higher = variant if result["difference"] > 0 else control
        lower = control if higher == variant else variant
        better = lower if metric in LOWER_IS_BETTER else higher
    result["better"] = better
    result["runs_needed"] = (
        runs_needed(c["rate"], v["rate"]) if c["n"] and v["n"] and not significant else None
    )
    result["verdict"] = verdict_text(metric, variant, control, result, c["n"], v["n"])
    return result


def compare_experiment(
    store: TraceStore,
    name: str,
    since: float | None = None,
    *,
    variants: Sequence[str] | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Compare the variants of experiment `name` in the traces since `since` (see the module
    docstring for the shape). `variants`: their order, control first (default: the registry's when
    the CLI passes it, else the variant named `control` first, then by name)."""
    traces = [t for t in store.traces(since=since, until=until) if t.get("experiment") == name]
    seen = sorted({str(t["variant"]) for t in traces if t.get("variant")})
    order = [v for v in (variants or []) if v] or sorted(seen, key=lambda v: (v != "control", v))
    order += [v for v in seen if v not in order]
    outcomes: dict[str, dict[str, list[bool]]] = {v: {m: [] for m in METRICS} for v in order}
    for trace in traces:
        for metric, ok in _outcomes(trace).items():
            if ok is not None and trace.get("variant") in outcomes:
                outcomes[str(trace["variant"])][metric].append(bool(ok))
    metrics = {
        v: {m: proportion(sum(values), len(values)) for m, values in per.items()}
        for v, per in outcomes.items()
    }
    runs = {v: sum(1 for t in traces if t.get("variant") == v) for v in order}
    comparisons = []
    control = order[0] if order else None
    for variant in order[1:]:
        entry: dict[str, Any] = {"variant": variant, "control": control}
        for metric in METRICS:
            entry[metric] = compare_metric(
                metric, str(control), variant, metrics[str(control)][metric], metrics[variant][metric]
            )
        comparisons.append(entry)
    return {
        "experiment": name,
        "since": since,
        "control": control,
        "variants": order,
        "runs": runs,
        "metrics": metrics,
        "comparisons": comparisons,
        "verdict": overall_verdict(name, comparisons, runs),
    }


def overall_verdict(name: str, comparisons: Sequence[Mapping[str, Any]], runs: Mapping[str, int]) -> str:
    """One line per comparison, led by feedback accuracy (what routing is for), then success."""
    if not runs:
        return f"no traces of experiment {name!r} yet"
    if not comparisons:
        return f"only one variant of {name!r} has traces so far"
    lines = []
    for c in comparisons:
        found = [c[m]["verdict"] for m in ("accuracy", "success", "clarify") if c[m]["significant"]]
        lines.append(
            f"{c['variant']} vs {c['control']}: " + ("; ".join(found) if found else c["accuracy"]["verdict"])
        )
    return "\n".join(lines)
