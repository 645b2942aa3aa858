"""The capability runner: executes one plan step (a `Send` task), behind the policy boundary.

It never raises into the graph: the outcome, good or bad, is a `StepResult` under the step's id,
and the join node turns failures into errors for the router. Parallel steps write distinct keys.

A step is given `min(timeout, what is left of the turn's max_seconds)`. The capability's `execute`
runs on an event loop of its own in a daemon thread (`run_detached`), which the runner can walk
away from: a capability that blocks (`time.sleep` in `execute`, a call through `blocking` that
never returns) cannot hold the run, nor the process's exit, past that limit. The step is recorded
as timed out, and whatever the thread produces later is dropped. Only the runner's own deadline
and LangGraph's cancellation of the run reach the runner as exceptions: everything the capability
raises, `SystemExit` and `CancelledError` included, comes back as a value and fails the step.

Fallback: a capability's registry `fallback` chain is tried, in order, when its step fails after
its last retry (a RETRIABLE failure on attempt `retry.max_attempts`), or at once when the failure
says its circuit breaker is open (`ServiceUnavailable.breaker_open`: retrying would be refused
again). The first fallback that answers makes the step `ok`, recorded under the fallback's name
with `output["fallback"]` saying whom it stood in for and why: the answer says it degraded. A
capability that answers "not mine" (`NotMine`) fails its step with the suggestion in
`output["reroute"]`, for the classifier (RECLASSIFICATION).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.errors import GraphBubbleUp

from graph.capability.base import (
    Capability,
    ContractViolation,
    NotMine,
    RunContext,
    describe_value,
    json_problem,
)
from graph.capability.http import ServiceUnavailable
from graph.config.registry import CapabilityInfo
from graph.errors import ErrorSeverity, PolicyDenied, describe
from graph.pools import Overloaded
from graph.progress import emit
from graph.redact import Redactor
from graph.retry import backoff
from graph.state import StepPayload, StepResult
from nodes.base import (
    STOP_REASONS,
    Deps,
    TurnTimeout,
    cancelled_from_outside,
    close_loop,
    correlation,
    entry_points,
    new_loop,
    redacted_traceback,
)

log = logging.getLogger("routegraph")


class Outcome(NamedTuple):
    """What a detached call ended with: its value, or what it raised (any `BaseException`)."""

    value: Any = None
    error: BaseException | None = None


async def run_detached(work: Callable[[], Awaitable[Any]], timeout: float, *, name: str) -> Outcome:
    """Run `work()` on a new event loop in a daemon thread, and wait at most `timeout` seconds.

    Returns what it returned or raised. Raises `TimeoutError` when the time is up, and lets a
    cancellation of the caller through: in both cases the thread is abandoned (its task is
    cancelled, which stops it at its next `await`; a blocking call runs on, unwaited for) and its
    late outcome goes nowhere. The task is created here, so it runs in a copy of the caller's
    context (LangGraph's config, for `interrupt()` and callbacks).

    The two loops talk under a lock, only while the other side is open: `call_soon_threadsafe`
    on a loop that is closing writes to its half-closed wake-up socket, and where SIGPIPE is not
    ignored (`routegraph ask` restores its default) that kills the process. Abandoning a step
    makes that race likely: both loops close within the same millisecond.
    """
    caller = asyncio.get_running_loop()
    answer: asyncio.Future[Outcome] = caller.create_future()
    loop = new_loop()
    lock = threading.Lock()
    open_ = {"caller": True, "worker": True}

    async def guarded() -> Outcome:
        try:
            return Outcome(value=await work())
        except BaseException as exc:  # delivered as a value: nothing of it escapes the thread
            return Outcome(error=exc)

    task = loop.create_task(guarded())

    def settle(outcome: Outcome) -> None:
        if not answer.done():
            answer.set_result(outcome)

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome = loop.run_until_complete(task)
        except BaseException as exc:  # cancelled before it started: abandoned
            outcome = Outcome(error=exc)
        finally:
            with lock:
                open_["worker"] = False
            close_loop(loop)
        with lock:
            if open_["caller"]:
                caller.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=main, name=f"routegraph-step:{name}", daemon=True).start()
    try:
        async with asyncio.timeout(timeout):
            return await answer
    finally:
        with lock:
            open_["caller"] = False
            if open_["worker"] and not task.done():
                loop.call_soon_threadsafe(task.cancel)


def make_runner(deps: Deps) -> RunnableLambda:
    async def execute(payload: StepPayload, config: RunnableConfig) -> dict[str, Any]:
        step, attempt = payload["step"], payload["attempt"]
        name = step["capability"]
        started = time.perf_counter()
        output: dict[str, Any] = {}
        error: str | None = None
        severity: ErrorSeverity | None = None
        stop: str | None = None
        status = "ok"
        info = deps.registry.capabilities.get(name)
        answered_by = name
        seat: dict[str, Any] = {}  # the pool instance that ran the step, and its wait in the queue
        try:
            if info is None:
                raise ContractViolation(f"the plan names an unknown capability {name!r}")
            output, status, error = await _run_step(deps, info, payload, config, seat)
        except GraphBubbleUp:
            raise
        except BaseException as exc:
            if cancelled_from_outside(exc):
                raise
            status = "failed"
            error, severity, stop = _failure(info, exc, deps.settings.redactor())
            ids = correlation(config)
            log.debug(
                "capability %s failed in step %s (attempt %d, %s; run %s, thread %s): %s\n%s",
                name,
                step["id"],
                attempt,
                severity.value,
                ids["run_id"] or "-",
                ids["thread_id"] or "-",
                error,
                redacted_traceback(exc, deps.settings.redactor()),
                extra={"capability": name, "step_id": step["id"], "attempt": attempt, **ids},
            )
            if isinstance(exc, NotMine):
                output = {"reroute": exc.reroute()}
            elif info is not None and _falls_back(info, exc, severity, attempt):
                found = await _fallback(deps, info, payload, config, error)
                if found is not None:
                    answered_by, output = found
                    status, error, severity, stop = "ok", None, None, None
        result = StepResult(
            step_id=step["id"],
            capability=answered_by,
            status=status,  # type: ignore[typeddict-item]
            output=output,
            error=error,
            severity=severity.value if severity else None,
            stop_reason=stop,
            attempts=attempt,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        result.update(seat)  # type: ignore[typeddict-item]
        emit(
            "capability_finished",
            capability=name,
            step_id=step["id"],
            status=status,
            duration_ms=result["duration_ms"],
            error=error,
            instance=seat.get("instance"),
        )
        update: dict[str, Any] = {
            "execution_results": {step["id"]: result},
            "control_steps": 1,
            "control_timings_ms": {"capabilities": (time.perf_counter() - started) * 1000},
        }
        if status == "ok" and info is not None:
            provider = deps.registry[answered_by]
            update["execution_context"] = {k: output[k] for k in provider.provides if k in output}
        return update

    return entry_points("execute", execute)


async def _run_step(
    deps: Deps, info: CapabilityInfo, payload: StepPayload, config: RunnableConfig, seat: dict[str, Any]
) -> tuple[dict[str, Any], str, str | None]:
    """Run one step within its time (unless it is refused, denied or skipped) on an instance leased
    from the capability's pool (written to `seat`); return its output, status and error, or raise
    what failed it."""
    step, attempt = payload["step"], payload["attempt"]
    deadline = payload.get("deadline")
    late = f"the turn's time ran out before {info.name} could start"
    budget = asyncio.timeout(None if deadline is None else max(deadline - deps.clock(), 0.0))
    try:
        async with budget:
            await backoff(info.retry, attempt, deps.sleep, target=info.name)
    except TimeoutError:
        if budget.expired():
            raise TurnTimeout(late) from None
        raise
    emit("capability_started", capability=info.name, step_id=step["id"], attempt=attempt)
    if not deps.registry.allowed(info.name):
        raise PolicyDenied(f"capability {info.name!r} is not in the allowlist")
    if payload["approved"] is False:
        return {}, "denied", "denied by a human"
    if payload["blocked_by"]:
        return {}, "skipped", f"skipped: {', '.join(payload['blocked_by'])} did not succeed"
    preferred = payload.get("preferred_instance") or _preferred(config, info.name)
    left = None if deadline is None else deadline - deps.clock()
    try:  # the queue's wait counts against the turn's max_seconds
        lease = await deps.pools.acquire(info.name, preferred=preferred, wait=left)
    except Overloaded as exc:
        if exc.by_turn:
            raise TurnTimeout(f"the turn's time ran out while {info.name} waited for a free instance") from None
        raise
    seat.update(instance=lease.instance.name, queued_ms=lease.queued_ms)
    ran = time.perf_counter()
    ok = False
    try:
        result = await _on_instance(deps, info, lease.instance.impl or info.instance, payload, config)
        ok = True
        return result
    except NotMine:
        ok = True  # the instance worked: the request was not for it
        raise
    finally:
        deps.pools.release(lease, ok=ok, seconds=time.perf_counter() - ran)


def _preferred(config: RunnableConfig, capability: str) -> str | None:
    """The user's preferred instance of `capability` (`configurable.preferred_instances`), if any."""
    chosen = (config.get("configurable") or {}).get("preferred_instances")
    value = chosen.get(capability) if isinstance(chosen, Mapping) else None
    return value if isinstance(value, str) else None


async def _on_instance(
    deps: Deps, info: CapabilityInfo, impl: Capability, payload: StepPayload, config: RunnableConfig
) -> tuple[dict[str, Any], str, str | None]:
    """Run the step on one capability object within its time."""
    step, deadline = payload["step"], payload.get("deadline")
    late = f"the turn's time ran out before {info.name} could start"
    inputs = impl.parse_inputs(payload["task"], step["inputs"], payload["context"])
    ctx = RunContext(
        task=payload["task"],
        context=payload["context"],
        step_id=step["id"],
        thread_id=(config.get("configurable") or {}).get("thread_id"),
        approved=payload["approved"],
        data_dir=deps.settings.data_dir,
    )
    left = math.inf if deadline is None else deadline - deps.clock()
    if left <= 0:  # the router let it start just in time; it would have no time to work
        raise TurnTimeout(late)
    limit = min(info.timeout, left)

    async def work() -> Any:
        result = impl.execute(inputs, ctx)
        if not inspect.isawaitable(result):
            raise ContractViolation(
                f"capability {info.name!r}: execute is not async (it returned {describe_value(result)});"
                " declare it `async def`"
            )
        return await result

    fault = deps.faults_for(config).step_fault(info.name)
    call = work if fault is None else lambda: fault.inject(info.name, work, node=False)
    try:
        outcome = await run_detached(call, limit, name=info.name)
    except TimeoutError:
        if limit < info.timeout:
            raise TurnTimeout(
                f"the turn's time ran out after {limit:.3g} s of this step (the step was abandoned)"
            ) from None
        # RETRIABLE, as `classify_error` rates timeouts (unless a capability says otherwise).
        raise TimeoutError(f"no result within {info.timeout:g} s (the step was abandoned)") from None
    if outcome.error is not None:
        raise outcome.error
    if problem := json_problem(outcome.value):
        raise ContractViolation(f"capability {info.name!r} {problem} (a JSON object is required)")
    return outcome.value, "ok", None


def _falls_back(info: CapabilityInfo, exc: BaseException, severity: ErrorSeverity, attempt: int) -> bool:
    """Whether this failure goes to the fallback chain: the breaker is open, or the last retry failed."""
    if not info.fallback or isinstance(exc, TurnTimeout):
        return False
    if isinstance(exc, Overloaded):
        return True
    if isinstance(exc, ServiceUnavailable) and exc.breaker_open:
        return True
    return severity is ErrorSeverity.RETRIABLE and attempt >= info.retry.max_attempts


async def _fallback(
    deps: Deps, info: CapabilityInfo, payload: StepPayload, config: RunnableConfig, error: str
) -> tuple[str, dict[str, Any]] | None:
    """The first of `info.fallback` that answers this step's task: its name and output (with a
    `fallback` note), or None when none does (the step then fails as it would have)."""
    step, deadline = payload["step"], payload.get("deadline")
    for name in info.fallback:
        other = deps.registry.capabilities.get(name)
        if other is None or not deps.registry.allowed(name):
            continue
        left = math.inf if deadline is None else deadline - deps.clock()
        if left <= 0:
            return None
        try:
            inputs = other.instance.parse_inputs(payload["task"], {}, payload["context"])
            ctx = RunContext(
                task=payload["task"],
                context=payload["context"],
                step_id=f"{step['id']}>fallback:{name}",
                thread_id=(config.get("configurable") or {}).get("thread_id"),
                data_dir=deps.settings.data_dir,
            )
            outcome = await run_detached(
                functools.partial(other.instance.execute, inputs, ctx),
                min(other.timeout, left),
                name=name,
            )
        except Exception as exc:  # a fallback that cannot start or times out: try the next one
            log.debug("fallback %s for %s failed: %s", name, info.name, describe(exc))
            continue
        if outcome.error is not None or json_problem(outcome.value) is not None:
            continue
        note = f"{info.name} was unavailable ({error}); {name} answered instead"
        emit("capability_fallback", capability=info.name, fallback=name, step_id=step["id"])
        return name, {
            **outcome.value,
            "fallback": {"for": info.name, "by": name, "reason": error, "note": note},
        }
    return None


def _failure(
    info: CapabilityInfo | None, exc: BaseException, redactor: Redactor | None = None
) -> tuple[str, ErrorSeverity, str | None]:
    """A failed step's error text, severity and stop_reason.

    The capability's `classify_error` decides the severity, except for what is not its call: the
    turn's time running out, a broken contract. Whatever it answers (or raises), the result is a
    known severity and a known stop_reason.
    """
    error = describe(exc, redactor)
    if isinstance(exc, TurnTimeout):
        return error, ErrorSeverity.CRITICAL, TurnTimeout.stop_reason
    if isinstance(exc, Overloaded):
        return error, ErrorSeverity.CRITICAL, Overloaded.stop_reason
    if isinstance(exc, ContractViolation) or info is None:
        return error, ErrorSeverity.CRITICAL, None
    try:
        severity = ErrorSeverity(info.instance.classify_error(exc))
    except Exception:
        log.debug("capability %s: classify_error failed", info.name, exc_info=True)
        severity = ErrorSeverity.CRITICAL
    stop = getattr(exc, "stop_reason", None)
    return error, severity, stop if stop in STOP_REASONS else None
