"""Analytics over the trace store: functions that return data (the CLI, HTTP app and notebooks
present it).

`analytics(store, since=...)` returns one JSON-ready dict: volume, stop reasons, completion and
clarify rates, routing accuracy against feedback with 95% Wilson intervals (scipy's
`binomtest(...).proportion_ci(method="wilson")`), per capability (selections, step latency p50/p95,
errors, retries, approvals and time to approve), model calls and tokens, the confidence of the top
candidate per day (drift), and recommendations: the most corrected capabilities, the pairs the
router confuses, and clusters of clarified requests that no capability covers.

Routing is judged correct against feedback as follows: `good` yes, `bad` no, `correct [CAPS]` when
the selected routable capabilities are exactly CAPS, `out_of_scope` when none was selected.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from graph.ops.store import TraceStore

Embed = Callable[[Sequence[str]], np.ndarray]
"""Texts to vectors (one row each): the project's encoder, or TF-IDF when none is given."""

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, *, now: float | None = None) -> float | None:
    """`7d`, `24h`, `30m`, `2w`, `90s` ago, or an ISO date/time (UTC when no zone): epoch seconds.

    A moment before 1970 (`0001-01-01`, `99999999999d`, a span too long for a float) is the epoch
    itself: every trace, rather than a time the store, `datetime` and the dashboard's buckets
    cannot hold (year 0, minus infinity, billions of buckets)."""
    if not text:
        return None
    now = time.time() if now is None else now
    if found := _SPAN.match(text):
        return _from_epoch(now - float(found.group(1)) * _UNIT[found.group(2).lower()])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"bad --since {text!r}: a span like 7d, 24h, 30m, or a date like 2026-01-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _from_epoch(moment.timestamp())


def _from_epoch(seconds: float) -> float:
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (scipy); None when n is 0."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion(successes: int, n: int) -> dict[str, Any]:
    interval = wilson(successes, n)
    return {
        "k": successes,
        "n": n,
        "rate": successes / n if n else None,
        "ci95": list(interval) if interval else None,
    }


def routing_correct(trace: Mapping[str, Any]) -> bool | None:
    """Whether the turn was routed right according to its feedback; None without feedback."""
    fb = trace.get("feedback")
    if not fb:
        return None
    selected = set(trace.get("selected") or [])
    verdict = fb["verdict"]
    if verdict == "good":
        return True
    if verdict == "bad":
        return False
    if verdict == "out_of_scope":
        return not selected
    return selected == set(fb.get("correct") or [])


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def per_capability(traces: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Selections, steps, latency p50/p95 (ms), errors, retries, approvals and time to approve."""
    selections: Counter[str] = Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    approvals: Counter[str] = Counter()
    approved: Counter[str] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    for trace in traces:
        selections.update(trace.get("selected") or [])
        for step in trace.get("steps") or []:
            name = step["capability"]
            durations[name].append(float(step["duration_ms"]))
            if step["status"] == "failed":
                errors[name] += 1
            retries[name] += max(0, int(step.get("attempts") or 1) - 1)
        asked = {a["step_id"].partition(":")[0]: a["approved"] for a in trace.get("approvals") or []}
        for name, yes in asked.items():
            approvals[name] += 1
            approved[name] += int(bool(yes))
            waits[name].append(float(trace.get("approval_wait_s") or 0.0))
    names = sorted(set(selections) | set(durations) | set(approvals))
    return {
        name: {
            "selections": selections[name],
            "steps": len(durations[name]),
            "latency_ms_p50": _pct(durations[name], 50),
            "latency_ms_p95": _pct(durations[name], 95),
            "errors": errors[name],
            "retries": retries[name],
            "approvals_asked": approvals[name],
            "approved": approved[name],
            "seconds_to_approve_p50": _pct(waits[name], 50),
        }
        for name in names
    }


def drift(traces: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The top candidate's confidence per UTC day: n, p25, median, p75 (a falling median is drift)."""
    by_day: dict[str, list[float]] = defaultdict(list)
    for trace in traces:
        if trace.get("top_score") is not None:
            by_day[_day(float(trace["started_at"]))].append(float(trace["top_score"]))
    return [
        {
            "day": day,
            "n": len(scores),
            "p25": _pct(scores, 25),
            "median": _pct(scores, 50),
            "p75": _pct(scores, 75),
        }
        for day, scores in sorted(by_day.items())
    ]


def confusions(traces: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """From corrections: capabilities most often wrongly picked or missed, and (selected, correct) pairs."""
    wrong: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for trace in traces:
        fb = trace.get("feedback")
        if not fb or routing_correct(trace) is not False:
            continue
        selected = set(trace.get("selected") or [])
        right = set(fb.get("correct") or []) if fb["verdict"] == "correct" else set()
        extra, lacking = selected - right, right - selected
        wrong.update(extra)
        missed.update(lacking)
        if fb["verdict"] in ("correct", "out_of_scope"):
            for a in sorted(extra) or ["(none)"]:
                for b in sorted(lacking) or ["(none)"]:
                    pairs[(a, b)] += 1
    names = set(wrong) | set(missed)
    ranked = sorted(names, key=lambda n: (-(wrong[n] + missed[n]), n))
    corrected: list[dict[str, Any]] = [
        {"capability": n, "wrongly_selected": wrong[n], "missed": missed[n]} for n in ranked
    ]
    confused = [
        {"selected": a, "correct": b, "count": c}
        for (a, b), c in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return corrected, confused


def tfidf_embed(texts: Sequence[str]) -> np.ndarray:
    """A simple embedding (word and character n-gram TF-IDF), when no encoder is given."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    return np.asarray(vectorizer.fit_transform(texts).toarray())


def uncovered_clusters(
    requests: Sequence[str], *, embed: Embed | None = None, distance: float = 0.6, min_size: int = 2
) -> list[dict[str, Any]]:
    """Groups of similar requests (agglomerative clustering, cosine distance, average linkage,
    cut at `distance`) with at least `min_size` members, largest first: each a candidate new
    capability, shown by the member closest to the group's centre and a few examples."""
    texts = list(dict.fromkeys(t for t in requests if t and t.strip()))
    if len(texts) < max(2, min_size):
        return []
    from sklearn.cluster import AgglomerativeClustering

    vectors = np.asarray((embed or tfidf_embed)(texts), dtype=float)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1.0, norms)
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average"
    ).fit_predict(vectors)
    clusters = []
    for label in set(labels.tolist()):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        centre = vectors[members].mean(axis=0)
        best = members[int(np.argmax(vectors[members] @ centre))]
        clusters.append(
            {
                "size": len(members),
                "representative": texts[best],
                "examples": [texts[i] for i in members[:5]],
            }
        )
    return sorted(clusters, key=lambda c: (-c["size"], c["representative"]))


def analytics(
    store: TraceStore,
    *,
    since: float | None = None,
    until: float | None = None,
    embed: Embed | None = None,
    cluster_distance: float = 0.6,
) -> dict[str, Any]:
    """Everything `routegraph analytics` shows, for the traces started in [since, until)."""
    traces = store.traces(since=since, until=until)
    n = len(traces)
    stops = Counter(t["stop_reason"] for t in traces)
    judged = [(t, ok) for t in traces if (ok := routing_correct(t)) is not None]
    verdicts = Counter(t["feedback"]["verdict"] for t in traces if t.get("feedback"))
    corrected, confused = confusions(traces)
    clarified = [t["request"] or "" for t in traces if t["stop_reason"] == "clarify"]
    clarified += [
        t["request"] or "" for t in traces if (t.get("feedback") or {}).get("verdict") == "out_of_scope"
    ]
    llm_calls = [int(t["llm_calls"]) for t in traces]
    tokens = [int(t["tokens"]) for t in traces]
    durations = [float(t["duration_ms"]) for t in traces]
    return {
        "window": {
            "since": since,
            "until": until,
            "first": traces[0]["started_at"] if traces else None,
            "last": traces[-1]["started_at"] if traces else None,
        },
        "volume": n,
        "threads": len({t["thread_id"] for t in traces}),
        "users": len({t["user_id"] for t in traces if t["user_id"]}),
        "stop_reasons": dict(stops.most_common()),
        "completion": proportion(stops.get("success", 0), n),
        "clarify": proportion(stops.get("clarify", 0), n),
        "turn_ms": {"p50": _pct(durations, 50), "p95": _pct(durations, 95)},
        "feedback": {"count": sum(verdicts.values()), "verdicts": dict(verdicts.most_common())},
        "routing_accuracy": proportion(sum(ok for _, ok in judged), len(judged)),
        "capabilities": per_capability(traces),
        "models": {
            "calls": sum(llm_calls),
            "tokens": sum(tokens),
            "calls_per_turn": sum(llm_calls) / n if n else None,
            "tokens_per_turn": sum(tokens) / n if n else None,
        },
        "confidence_by_day": drift(traces),
        "recommendations": {
            "most_corrected": corrected[:10],
            "confused_pairs": confused[:10],
            "uncovered_clusters": uncovered_clusters(clarified, embed=embed, distance=cluster_distance),
        },
    }
