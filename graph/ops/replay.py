"""Replay: re-route logged requests offline with a candidate registry, before it takes traffic.

`replay(store, candidate, settings, baseline=...)` takes the traces that have feedback saying what
was right (`truth`: `good` -> what was selected, `correct CAPS` -> CAPS, `out_of_scope` -> nothing;
`bad` says only what was wrong and is left out), routes each request offline through the
classifier of the baseline registry and of the candidate (`route_offline`: the classifier node's
own `classify`, embedding mode, no model call), and compares the paired decisions with McNemar's
test (statsmodels `mcnemar`; exact binomial when the discordant pairs are fewer than 25, else the
chi-square with continuity correction). Each distinct request counts once (the latest feedback on
it decides its truth), so a request repeated in the traffic does not weigh more than another.

The 2x2 table: rows baseline right / wrong, columns candidate right / wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from graph.classifier.build import build_scorer
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.models import LLMGateway, ModelProvider
from graph.ops.analytics import proportion
from graph.ops.store import TraceStore
from nodes.base import run_sync
from nodes.classifier import classify

ALPHA = 0.05
EXACT_BELOW = 25
Progress = Callable[[int, int], None]


def truth(trace: Mapping[str, Any]) -> frozenset[str] | None:
    """The capabilities that should have taken the turn, by its feedback; None when unknown."""
    fb = trace.get("feedback")
    if not fb:
        return None
    if fb["verdict"] == "good":
        return frozenset(trace.get("selected") or [])
    if fb["verdict"] == "correct":
        return frozenset(fb.get("correct") or [])
    if fb["verdict"] == "out_of_scope":
        return frozenset()
    return None


def routing_text(trace: Mapping[str, Any]) -> str:
    """What the classifier read: the task when one was extracted, else the request."""
    return str(trace.get("task") or trace.get("request") or "")


def labelled(traces: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Distinct routing texts with their truth (the latest feedback on a text wins)."""
    found: dict[str, tuple[float, frozenset[str]]] = {}
    for trace in traces:
        right = truth(trace)
        text = routing_text(trace)
        if right is None or not text.strip():
            continue
        at = float((trace.get("feedback") or {}).get("created_at") or trace.get("started_at") or 0.0)
        if text not in found or at >= found[text][0]:
            found[text] = (at, right)
    return {text: right for text, (_, right) in found.items()}


def route_offline(
    registry: Registry, settings: Settings, texts: Sequence[str], *, progress: Progress | None = None
) -> list[frozenset[str]]:
    """The capabilities the classifier selects for each text under `registry` (no model call)."""
    scorer = build_scorer(registry, settings)
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()}, settings, enabled=False
    )
    routable = {c.name for c in registry.routable}

    async def all_of() -> list[frozenset[str]]:
        out = []
        for i, text in enumerate(texts, start=1):
            llm = LLMGateway(provider, used=0, budget=0)
            scored = await classify(text, registry, scorer, llm, mode="embedding")
            out.append(frozenset(c["name"] for c in scored if c["selected"] and c["name"] in routable))
            if progress is not None:
                progress(i, len(texts))
        return out

    return run_sync(all_of())


def mcnemar_test(table: Sequence[Sequence[int]]) -> dict[str, Any]:
    """McNemar's test of a paired 2x2 table: exact when the discordant pairs are under 25."""
    from statsmodels.stats.contingency_tables import mcnemar

    b, c = int(table[0][1]), int(table[1][0])
    exact = b + c < EXACT_BELOW
    if b + c == 0:
        return {"statistic": None, "p": 1.0, "exact": True, "discordant": 0}
    result = mcnemar([[int(x) for x in row] for row in table], exact=exact, correction=True)
    return {
        "statistic": float(result.statistic),
        "p": float(result.pvalue),
        "exact": exact,
        "discordant": b + c,
    }


def paired(
    texts: Sequence[str],
    right: Sequence[frozenset[str]],
    before: Sequence[frozenset[str]],
    after: Sequence[frozenset[str]],
    *,
    names: tuple[str, str] = ("baseline", "candidate"),
) -> dict[str, Any]:
    """Accuracy of two sets of decisions on the same requests, the 2x2 table, McNemar and a verdict."""
    a_ok = [b == t for b, t in zip(before, right, strict=True)]
    b_ok = [a == t for a, t in zip(after, right, strict=True)]
    table = [
        [sum(x and y for x, y in zip(a_ok, b_ok, strict=True)), sum(x and not y for x, y in zip(a_ok, b_ok, strict=True))],
        [sum(y and not x for x, y in zip(a_ok, b_ok, strict=True)), sum(not x and not y for x, y in zip(a_ok, b_ok, strict=True))],
    ]  # fmt: skip
    test = mcnemar_test(table)
    n = len(texts)
    first, second = proportion(sum(a_ok), n), proportion(sum(b_ok), n)
    changed = [
        {"request": t, "right": sorted(r), names[0]: sorted(x), names[1]: sorted(y)}
        for t, r, x, y, ok1, ok2 in zip(texts, right, before, after, a_ok, b_ok, strict=True)
        if ok1 != ok2
    ]
    return {
        "requests": n,
        names[0]: first,
        names[1]: second,
        "table": table,
        "mcnemar": test,
        "changed": changed,
        "verdict": paired_verdict(first, second, test, names),
    }


def paired_verdict(
    first: Mapping[str, Any], second: Mapping[str, Any], test: Mapping[str, Any], names: tuple[str, str]
) -> str:
    if not first["n"]:
        return "no feedback that says what was right yet: nothing to compare"
    if test["discordant"] == 0:
        return f"{names[1]} and {names[0]} route every judged request the same way"
    better = names[1] if second["k"] > first["k"] else names[0]
    if first["k"] == second["k"]:
        return f"no difference: each is right on {first['k']}/{first['n']} (p={test['p']:.3g})"
    if test["p"] < ALPHA:
        return f"{better} is better on feedback accuracy, p={test['p']:.3g} (McNemar)"
    return (
        f"no significant difference yet (p={test['p']:.3g}, {test['discordant']} requests routed "
        "differently): more feedback is needed"
    )


def replay(
    store: TraceStore,
    candidate: Registry,
    settings: Settings,
    *,
    baseline: Registry,
    since: float | None = None,
    until: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Baseline vs candidate on the logged requests with feedback (see the module docstring)."""
    judged = labelled(store.traces(since=since, until=until))
    texts = list(judged)
    right = [judged[t] for t in texts]
    before = route_offline(baseline, settings, texts, progress=progress)
    after = route_offline(candidate, settings, texts, progress=progress)
    result = paired(texts, right, before, after)
    result.update({"since": since, "baseline_source": baseline.source, "candidate_source": candidate.source})
    return result
