"""Prometheus metrics of the turns this process ran, served at `/metrics` (graph/ops/http.py).

prometheus_client's default registry holds them: that is the process-wide registry Prometheus
scrapes, and the graph under `langgraph dev` / the Agent Server runs in the same process as the
HTTP app that serves it. Counters are per process (Prometheus sums processes); the trace store
holds the history across processes (`routegraph analytics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Histogram

RUNS = Counter("routegraph_runs", "Turns finished, by stop_reason.", ["stop_reason"])
STEP_SECONDS = Histogram(
    "routegraph_step_duration_seconds",
    "Capability step durations (the last attempt), by capability and status.",
    ["capability", "status"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TURN_SECONDS = Histogram(
    "routegraph_turn_duration_seconds",
    "Wall time of a turn, approval waits included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_CALLS = Counter("routegraph_llm_calls", "Chat-model calls made by finished turns.")
TOKENS = Counter("routegraph_tokens", "Tokens used by finished turns.")


def observe_turn(trace: Mapping[str, Any]) -> None:
    """Count one finished turn (a trace row from graph/ops/traces.py)."""
    RUNS.labels(stop_reason=str(trace["stop_reason"])).inc()
    TURN_SECONDS.observe(max(0.0, float(trace["duration_ms"])) / 1000)
    for step in trace.get("steps") or []:
        STEP_SECONDS.labels(capability=step["capability"], status=step["status"]).observe(
            max(0.0, float(step["duration_ms"])) / 1000
        )
    if trace.get("llm_calls"):
        LLM_CALLS.inc(trace["llm_calls"])
    if trace.get("tokens"):
        TOKENS.inc(trace["tokens"])
