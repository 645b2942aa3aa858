"""A trace for every turn: what the router saw and did, written by the graph's terminal node.

`TraceWriter.record(state, update, config)` is called by `make_node` (nodes/base.py) after respond,
clarify or error has produced its update: the state plus that update is the finished turn. It
builds one row (`build_trace`) and writes it to the trace store (graph/ops/store.py). It never
raises: a failed write is logged (`routegraph.ops` logger, with the run id) and the run ends with
its stop_reason as if nothing happened. Every `prune_every` writes it applies the registry's
retention (`traces: {retention_days, max_rows}`).

The request is stored as the user wrote it, through the settings' redactor (graph/redact.py), as
are errors and plan inputs. The run id is the turn's correlation id (`control_run_id`: LangGraph's
run id under the server, `configurable.run_id` when a caller passes one, else a fresh uuid set by
intake); `configurable.user_id`, `configurable.experiment` and `configurable.variant` are recorded
when given.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from graph.ops.metrics import observe_turn
from graph.ops.store import TraceStore
from graph.redact import Redactor

log = logging.getLogger("routegraph.ops")

ALWAYS_SOURCES = frozenset({"always"})


def registry_fingerprint(spec_json: str) -> str:
    """A short, stable digest of the registry as loaded: traces made under one registry share it."""
    return hashlib.sha256(spec_json.encode("utf-8")).hexdigest()[:16]


def error_class(message: str | None) -> str | None:
    """`TypeName` from a `TypeName: message` error text (graph/errors.py `describe`), else None."""
    if not message:
        return None
    head, sep, _ = message.partition(":")
    return head if sep and head.isidentifier() else None


def _summed(state: Mapping[str, Any], update: Mapping[str, Any], key: str) -> Any:
    """A counter after the terminal node's update (its own step, calls and tokens added)."""
    before, added = state.get(key), update.get(key)
    if isinstance(before, dict) or isinstance(added, dict):
        merged = dict(before or {})
        for k, v in (added or {}).items():
            merged[k] = merged.get(k, 0.0) + v
        return merged
    return (before or 0) + (added or 0)


def build_trace(
    state: Mapping[str, Any],
    update: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    *,
    fingerprint: str,
    redactor: Redactor,
    now: float,
    request: str,
) -> dict[str, Any]:
    """The trace row of a finished turn: `state` before the terminal node, `update` its output."""
    configurable = (config or {}).get("configurable") or {}
    candidates = [
        {
            "name": c["name"],
            "score": round(float(c["score"]), 6),
            "selected": bool(c["selected"]),
            "source": c["source"],
        }
        for c in state.get("planning_capabilities") or []
    ]
    routable = [c for c in candidates if c["source"] not in ALWAYS_SOURCES]
    top = max(routable, key=lambda c: c["score"], default=None)
    plan = state.get("planning_plan") or []
    results = state.get("execution_results") or {}
    steps = []
    for step in plan:
        result = results.get(step["id"])
        if result is None:
            continue
        error = result.get("error")
        steps.append(
            {
                "id": step["id"],
                "capability": result["capability"],
                "status": result["status"],
                "attempts": result["attempts"],
                "duration_ms": round(float(result["duration_ms"]), 3),
                "error_class": error_class(error),
                "error": redactor.redact(error) if error else None,
            }
        )
    decisions = state.get("approval_decisions") or {}
    paused = 0.0
    if state.get("control_paused_turn") == state.get("task_turn"):
        paused = float(state.get("control_paused_seconds") or 0.0)
    errors = [
        {
            "node": e.get("node"),
            "severity": e.get("severity"),
            "capability": e.get("capability"),
            "error_class": error_class(e.get("message")),
            "message": redactor.redact(str(e.get("message") or "")),
        }
        for e in (update.get("control_errors") or state.get("control_errors") or [])
    ]
    started = float(state.get("control_started_at") or now)
    return {
        "run_id": state.get("control_run_id") or configurable.get("run_id"),
        "thread_id": configurable.get("thread_id"),
        "user_id": configurable.get("user_id"),
        "turn": state.get("task_turn"),
        "started_at": started,
        "ended_at": now,
        "duration_ms": max(0.0, (now - started) * 1000),
        "request": redactor.redact(request),
        "task": redactor.redact(state.get("task_current") or "") or None,
        "stop_reason": update.get("control_stop_reason") or "error",
        "selected": [c["name"] for c in routable if c["selected"]],
        "top_capability": top["name"] if top else None,
        "top_score": top["score"] if top else None,
        "candidates": candidates,
        "plan": [
            {
                "id": s["id"],
                "capability": s["capability"],
                "inputs": redactor.redact_value(s.get("inputs") or {}),
                "depends_on": list(s.get("depends_on") or []),
            }
            for s in plan
        ],
        "steps": steps,
        "approvals": [{"step_id": k, "approved": bool(v)} for k, v in decisions.items()],
        "approval_wait_s": round(paused, 3),
        "errors": errors,
        "notes": [redactor.redact(n) for n in state.get("planning_notes") or []],
        "llm_calls": int(_summed(state, update, "control_llm_calls")),
        "tokens": int(_summed(state, update, "control_tokens")),
        "node_steps": int(_summed(state, update, "control_steps")),
        "timings_ms": {k: round(v, 3) for k, v in _summed(state, update, "control_timings_ms").items()},
        "registry_fingerprint": fingerprint,
        "experiment": configurable.get("experiment"),
        "variant": configurable.get("variant"),
    }


class TraceWriter:
    """Writes the trace of each finished turn of one graph; never raises."""

    def __init__(
        self,
        store: TraceStore,
        *,
        fingerprint: str,
        redactor: Redactor,
        clock: Callable[[], float] = time.time,
        retention_days: float | None = 30.0,
        max_rows: int | None = None,
        prune_every: int = 500,
    ) -> None:
        self.store = store
        self.fingerprint = fingerprint
        self.redactor = redactor
        self.clock = clock
        self.retention_days = retention_days
        self.max_rows = max_rows
        self.prune_every = prune_every
        self.written = 0
        self.failures = 0
        """Writes that failed (logged), for tests and /health."""

    def record(
        self,
        state: Mapping[str, Any],
        update: Mapping[str, Any],
        config: Mapping[str, Any] | None,
        request: str,
    ) -> dict[str, Any] | None:
        """Write the turn's trace; the row, or None when it could not be written (logged)."""
        trace: dict[str, Any] | None = None
        try:
            trace = build_trace(
                state,
                update,
                config,
                fingerprint=self.fingerprint,
                redactor=self.redactor,
                now=self.clock(),
                request=request,
            )
            observe_turn(trace)
            self.store.write(trace)
            self.written += 1
            if self.prune_every and self.written % self.prune_every == 1:
                self.store.prune(retention_days=self.retention_days, max_rows=self.max_rows, now=self.clock())
        except Exception as exc:
            self.failures += 1
            run_id = trace["run_id"] if trace else state.get("control_run_id")
            log.warning(
                "could not write the trace of run %s: %s",
                run_id or "-",
                self.redactor.redact(" ".join(str(exc).split()) or type(exc).__name__),
                extra={"event_kind": "trace_failed"},
            )
            return None
        log.info(
            "turn ended: %s",
            trace["stop_reason"],
            extra={
                "stop_reason": trace["stop_reason"],
                "selected": trace["selected"],
                "duration_ms": round(trace["duration_ms"], 1),
            },
        )
        return trace
