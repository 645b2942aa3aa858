"""What every infrastructure node shares: its dependencies, error capture, retry backoff, metering,
the turn's time budget and fault injection.

A node implementation is `async def impl(state, call) -> update`. `make_node` wraps it so that
any failure, `BaseException`s included, becomes an `ErrorRecord` for the router (never a crash of
the graph, never a traceback), a retried node waits its backoff (`graph.retry.backoff`, a
non-blocking sleep), the node is cut when the turn's `max_seconds` runs out, and steps, model
calls, tokens and time are counted. The wrapper also gives the node a sync entry point, so
`graph.invoke` and `graph.ainvoke` both work.

The time limit: a turn ends within `max_seconds` + `GRACE_SECONDS` (1 s), whichever path runs it
(`invoke`, `ainvoke`, `ask`, the server). A node is cut when the turn's budget runs out, a
capability step at `min(timeout, what is left)` (nodes/runner.py); a node that starts with less
than `NODE_SLICE` (0.25 s) left still gets that long, so the terminal node can answer. Worst case:
a node cut 0.25 s late, then the error node's 0.25 s; the rest of the grace is the router, the join
and the checkpoint writes. Not covered: code that blocks a node's event loop (nodes are framework
code and do not; capabilities run on loops of their own), and time paused at an approval.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, get_args

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.errors import GraphBubbleUp

from graph.capability.base import DAEMON_THREADS, LOOP_CLOSING, ContractViolation, describe_value
from graph.classifier.build import build_scorer
from graph.classifier.live import LiveScorer
from graph.classifier.scorer import FewShotScorer
from graph.config.limits import Limits
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import (
    ErrorRecord,
    ErrorSeverity,
    TurnTimeout,
    error_record,
    severity_of,
)
from graph.faults import NO_FAULTS, FaultPlan, plan_for
from graph.models import LLMGateway, ModelProvider
from graph.ops.experiments import Dispatch
from graph.ops.logs import correlation_ids, node_context
from graph.ops.otel import end_span, node_span
from graph.ops.traces import TraceWriter
from graph.pools import Pools
from graph.progress import emit
from graph.redact import Redactor, redact
from graph.retry import backoff
from graph.router import EXITS, Router, latest_request, turn_elapsed
from graph.state import AgentState, StopReason

R = TypeVar("R")
log = logging.getLogger("routegraph")
Update = dict[str, Any]

GRACE_SECONDS = 1.0
"""How far past `max_seconds` a turn may end (see the module docstring)."""
NODE_SLICE = 0.25
"""The least time a node is given, even when the turn's budget is spent (the terminal node answers)."""
TERMINAL = frozenset({"respond", "clarify", "error"})
"""Nodes that end the turn: nothing routes after them, so they must set a stop_reason themselves."""
STATE_KEYS = frozenset(AgentState.__required_keys__ | AgentState.__optional_keys__)
STOP_REASONS = frozenset(get_args(StopReason))


@dataclass
class Deps:
    """Everything nodes need, passed in by `build_graph` (no globals)."""

    registry: Registry
    settings: Settings
    models: ModelProvider
    router: Router
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    faults: FaultPlan = NO_FAULTS
    """Failures to inject (graph/faults.py); none unless a test or `ROUTEGRAPH_FAULTS` asks."""
    pools: Pools = field(default=None)  # type: ignore[assignment]
    """The capabilities' instance pools (graph/pools); `build_graph` makes one when none is given."""

    traces: TraceWriter | None = None
    """Writes each finished turn's trace (graph/ops/traces.py); None: no traces."""
    tracer: Any = None
    """An OpenTelemetry tracer for a span per node (graph/ops/otel.py); None: no spans."""
    experiments: Dispatch[Deps] | None = None
    """The running A/B experiment's variants (graph/ops/experiments.py); None: no experiment."""

    def for_run(self, state: Mapping[str, Any], config: RunnableConfig) -> tuple[Deps, RunnableConfig]:
        """The dependencies of this run's experiment variant, and the config naming it (the trace
        records `configurable.experiment` and `variant`); without an experiment, these."""
        if self.experiments is None:
            return self, config
        configurable = dict(config.get("configurable") or {})
        try:
            name, deps = self.experiments.choose(configurable, fallback=state.get("control_run_id"))
        except Exception as exc:  # a variant that cannot be built: the run goes on outside the experiment
            log.warning(
                "experiment %s: the run's variant could not be built (%s); the registry as it is runs",
                self.experiments.experiment.name,
                redact(" ".join(str(exc).split()) or type(exc).__name__),
            )
            return self, config
        configurable.update(experiment=self.experiments.experiment.name, variant=name)
        return deps, {**config, "configurable": configurable}

    def __post_init__(self) -> None:
        if self.pools is None:
            self.pools = Pools(self.registry)

    @property
    def limits(self) -> Limits:
        return self.registry.spec.limits

    @cached_property
    def live_scorer(self) -> LiveScorer:
        return LiveScorer(lambda: build_scorer(self.registry, self.settings))

    @property
    def scorer(self) -> FewShotScorer:
        """The few-shot scorer for this registry; its encoder loads on the first classification,
        and the fine-tuned one replaces it once a background fine-tune is done (`LiveScorer`)."""
        return self.live_scorer.current()

    def faults_for(self, config: Mapping[str, Any] | None) -> FaultPlan:
        """The run's own fault plan (`configurable.routegraph_faults`), else the graph's."""
        return plan_for(config, self.faults)

    def seconds_left(self, state: Mapping[str, Any]) -> float:
        """What is left of the turn's `max_seconds` (all of it before intake has started the turn).

        The same sum as the router's budget check (`turn_elapsed`: time waiting for a human does
        not count), so a node is cut when the router would stop the run.
        """
        return self.limits.max_seconds - turn_elapsed(state, self.clock())  # type: ignore[arg-type]


@dataclass
class NodeCall:
    """One execution of a node: its dependencies, model door, attempt number and run config."""

    deps: Deps
    llm: LLMGateway
    attempt: int
    config: RunnableConfig
    keep: Update = field(default_factory=dict)
    """State updates that stand even if the node then fails (e.g. a bounded counter's increment)."""


NodeImpl = Callable[[AgentState, NodeCall], Awaitable[Update]]


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine from sync code, also when an event loop is already running (notebooks).

    The loop's default executor is `DAEMON_THREADS`: work a node started in a thread and then
    abandoned (its time ran out) does not hold up the end of the loop, as `asyncio.run`'s
    thread pool would.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(coro)
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, _run_in_new_loop, coro).result()


def _run_in_new_loop(coro: Coroutine[Any, Any, R]) -> R:
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        close_loop(loop)


def new_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose default executor (`asyncio.to_thread`) is `DAEMON_THREADS`."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(DAEMON_THREADS)
    return loop


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """What `asyncio.run` does at the end, minus joining the default executor's threads (nor
    starting a thread to do that: this runs once per node in a sync run)."""
    try:
        pending = asyncio.all_tasks(loop)
        for leftover in pending:
            leftover.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:
        log.debug("closing an event loop failed", exc_info=True)
    finally:
        asyncio.set_event_loop(None)
        with LOOP_CLOSING:
            loop.close()


def entry_points(name: str, afunc: Callable[[Any, RunnableConfig], Awaitable[Update]]) -> RunnableLambda:
    """A graph node with both entry points; the sync one runs the coroutine to completion."""

    def func(state: Any, config: RunnableConfig) -> Update:
        return run_sync(afunc(state, config))  # type: ignore[arg-type]

    return RunnableLambda(func, afunc=afunc, name=name)


def dual(
    name: str, afunc: Callable[[Any, RunnableConfig], Awaitable[Update]], deps: Deps | None = None
) -> RunnableLambda:
    """A plain node (intake) with both entry points and the guarantees `make_node` gives the others.

    A failure of any kind becomes a critical `ErrorRecord` (the router stops the run with an
    explanation), an update that is not a state mapping is one, and the node's fault (if a plan
    names it) is injected. With `deps`, the graph's fault plan counts and the node is cut after
    the turn's `max_seconds` (intake starts the turn, so all of it is left).
    """

    async def run(state: Any, config: RunnableConfig) -> Update:
        plan = deps.faults_for(config) if deps else plan_for(config)
        limit = deps.limits.max_seconds if deps else None
        budget = asyncio.timeout(limit)
        try:
            async with budget:
                fault = plan.fault_for(name)
                if fault is None:
                    result = await afunc(state, config)
                else:
                    result = await fault.inject(name, lambda: afunc(state, config), node=True)
            return checked_update(name, result)
        except GraphBubbleUp:
            raise
        except BaseException as exc:
            if cancelled_from_outside(exc):
                raise
            if isinstance(exc, TimeoutError) and budget.expired():
                exc = TurnTimeout(f"the {name} node was still working when the turn's {limit:g} s ran out")
            record = _record(
                name, exc, 1, ErrorSeverity.CRITICAL, redactor=deps.settings.redactor() if deps else None
            )
            _log_failure(name, record, exc, config, deps.settings.redactor() if deps else None)
            return {"control_errors": [record]}

    return entry_points(name, run)


def cancelled_from_outside(exc: BaseException) -> bool:
    """Whether `exc` is a real cancellation of the run (propagate it), not a node raising
    `CancelledError` itself (a failure like any other).

    Whoever cancels a task (LangGraph stopping parallel siblings, the server cancelling a run,
    `asyncio.timeout`) counts it in `Task.cancelling()`; a node raising the error does not.
    LangGraph tells the two apart the same way (langgraph/pregel/_retry.py).
    """
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def checked_update(name: str, result: object) -> Update:
    """`result` if it is a state update: a dict of `AgentState` keys; else a `ContractViolation`."""
    if not isinstance(result, dict):
        raise ContractViolation(
            f"the {name} node returned {describe_value(result)} (a state update is required)"
        )
    if unknown := sorted(str(k) for k in result if k not in STATE_KEYS):
        raise ContractViolation(
            f"the {name} node returned keys the state does not have: {', '.join(unknown)}"
        )
    return result


def correlation(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """What identifies the run in a log line: LangGraph's run id (the server sets it) and the thread."""
    config = config or {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    run_id = metadata.get("run_id") or configurable.get("run_id") or config.get("run_id")
    return {"run_id": str(run_id) if run_id else None, "thread_id": configurable.get("thread_id")}


def _record(
    name: str,
    exc: BaseException,
    attempt: int,
    severity: ErrorSeverity | None = None,
    *,
    allowed: frozenset[ErrorSeverity] | None = None,
    redactor: Redactor | None = None,
) -> ErrorRecord:
    """The failure as the router sees it: a severity the node may have (else CRITICAL) and a known
    stop_reason (else none)."""
    severity = severity or severity_of(exc)
    if allowed is not None and severity not in allowed:
        severity = ErrorSeverity.CRITICAL
    record = error_record(name, exc, attempt=attempt, severity=severity, redactor=redactor)
    if record.get("stop_reason") not in STOP_REASONS:
        record["stop_reason"] = None
    return record


def _own_severities(name: str) -> frozenset[ErrorSeverity]:
    """Severities the router can route for a failure of the node itself (graph/router.py EXITS);
    any other is a stop (an undeclared route would raise in the router)."""
    row = EXITS.get(name)
    if row is None:
        return frozenset({ErrorSeverity.CRITICAL})
    allowed = {*row.errors, ErrorSeverity.CRITICAL}
    if row.step_errors:  # a retriable failure after a batch means "run the steps again", not the node
        allowed.discard(ErrorSeverity.RETRIABLE)
    return frozenset(allowed)


def _log_failure(
    name: str,
    record: ErrorRecord,
    exc: BaseException,
    config: Mapping[str, Any] | None,
    redactor: Redactor | None = None,
) -> None:
    ids = correlation(config)
    log.debug(
        "node %s failed (attempt %d, %s; run %s, thread %s): %s\n%s",
        name,
        record["attempt"],
        record["severity"],
        ids["run_id"] or "-",
        ids["thread_id"] or "-",
        record["message"],
        redacted_traceback(exc, redactor),
        extra={"node": name, "attempt": record["attempt"], **ids},
    )


def redacted_traceback(exc: BaseException, redactor: Redactor | None = None) -> str:
    """The exception's traceback (its causes included) for a debug log, with secrets masked: a
    driver's or server's message can quote a key, and a log line is an output too."""
    text = "".join(traceback.format_exception(exc))
    return redactor.redact(text) if redactor is not None else redact(text)


def gateway(deps: Deps, state: AgentState) -> LLMGateway:
    return LLMGateway(deps.models, used=state.get("control_llm_calls", 0), budget=deps.limits.max_llm_calls)


def meter(update: Update, name: str, llm: LLMGateway, started: float) -> Update:
    update["control_steps"] = 1
    update["control_llm_calls"] = llm.calls
    update["control_tokens"] = llm.tokens
    update["control_timings_ms"] = {name: (time.perf_counter() - started) * 1000}
    return update


def make_node(name: str, impl: NodeImpl, deps: Deps) -> RunnableLambda:
    allowed = _own_severities(name)

    async def run(state: AgentState, config: RunnableConfig) -> Update:
        mine = [
            e for e in state.get("control_errors") or [] if e["node"] == name and e["severity"] == "retriable"
        ]
        attempt = mine[0]["attempt"] + 1 if mine else 1
        own, config = deps.for_run(state, config)  # an experiment's variant, when one runs
        llm = gateway(own, state)
        started = time.perf_counter()
        call = NodeCall(own, llm, attempt, config)
        budget = asyncio.timeout(max(deps.seconds_left(state), NODE_SLICE))
        try:
            async with budget:
                await backoff(deps.limits.retry_policy(), attempt, deps.sleep, target=name)
                emit("node", node=name)
                fault = deps.faults_for(config).fault_for(name)
                if fault is None:
                    result = await impl(state, call)
                else:
                    result = await fault.inject(name, lambda: impl(state, call), node=True)
            update = {**call.keep, **checked_update(name, result)}
            update.setdefault("control_errors", [])
            if name in TERMINAL and update.get("control_stop_reason") not in STOP_REASONS:
                raise ContractViolation(f"the {name} node ended the turn without a stop_reason")
        except GraphBubbleUp:
            raise
        except BaseException as exc:
            if cancelled_from_outside(exc):
                raise
            if isinstance(exc, TimeoutError) and budget.expired():
                exc = TurnTimeout(f"the {name} node was still working when the turn's time ran out")
            record = _record(name, exc, attempt, allowed=allowed, redactor=deps.settings.redactor())
            _log_failure(name, record, exc, config, deps.settings.redactor())
            if name in TERMINAL:
                update = {**call.keep, **_last_words(name, record, state, deps)}
            else:
                update = {**call.keep, "control_errors": [record]}
        update = meter(update, name, llm, started)
        if name in TERMINAL and deps.traces is not None:
            # In a worker thread: a database write must not block the event loop (the server's).
            request = latest_request(state.get("messages") or [])
            try:
                await asyncio.to_thread(deps.traces.record, state, update, config, request)
            except Exception:  # `record` never raises; starting its thread can (no threads left)
                log.warning("could not write the trace of this turn", exc_info=True)
        return update

    async def logged(state: AgentState, config: RunnableConfig) -> Update:
        with node_context(name, state, config):
            if deps.tracer is None:
                update = await run(state, config)
            else:
                with node_span(deps.tracer, name, correlation_ids(state, config)) as span:
                    update = await run(state, config)
                    end_span(span, update)
            if log.isEnabledFor(logging.DEBUG):
                errors = update.get("control_errors") or []
                log.debug(
                    "node %s done in %.1f ms%s",
                    name,
                    (update.get("control_timings_ms") or {}).get(name, 0.0),
                    f" ({len(errors)} error(s) for the router)" if errors else "",
                )
            return update

    return entry_points(name, logged)


def _last_words(name: str, record: ErrorRecord, state: AgentState, deps: Deps) -> Update:
    """A terminal node failed: nothing routes after it, so answer here, with a stop_reason."""
    reason = record.get("stop_reason") or "error"
    if name == "error":  # the reason the error node was explaining, if the router can still say
        try:
            reason = deps.router.decide(state).stop_reason or reason
        except Exception:
            log.debug("the router could not say why the run stopped", exc_info=True)
    text = (
        f"I could not finish this request: the {name} step failed ({record['message']}).\n"
        f"(stop_reason: {reason})"
    )
    return {
        "messages": [AIMessage(content=text, name=name)],
        "control_stop_reason": reason,
        "control_errors": [*(state.get("control_errors") or []), record],
    }
