"""What every infrastructure node shares: its dependencies, error capture, retry backoff, metering.

A node implementation is `async def impl(state, call) -> update`. `make_node` wraps it so that
any exception becomes an `ErrorRecord` for the router (never a crash of the graph), a retried
node waits its backoff (`graph.retry.backoff`, a non-blocking sleep), and steps, model calls, tokens
and time are counted. The wrapper also gives the node a sync entry point, so `graph.invoke` and
`graph.ainvoke` both work.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.errors import GraphBubbleUp

from graph.classifier.build import build_scorer
from graph.classifier.scorer import FewShotScorer
from graph.config.limits import Limits
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import error_record
from graph.models import LLMGateway, ModelProvider
from graph.progress import emit
from graph.retry import backoff
from graph.router import Router
from graph.state import AgentState

R = TypeVar("R")
log = logging.getLogger("routegraph")
Update = dict[str, Any]


@dataclass
class Deps:
    """Everything nodes need, passed in by `build_graph` (no globals)."""

    registry: Registry
    settings: Settings
    models: ModelProvider
    router: Router
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    @property
    def limits(self) -> Limits:
        return self.registry.spec.limits

    @cached_property
    def scorer(self) -> FewShotScorer:
        """The few-shot scorer for this registry; its encoder loads on the first classification."""
        return build_scorer(self.registry, self.settings)


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
    """Run a coroutine from sync code, also when an event loop is already running (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, coro).result()


def dual(name: str, afunc: Callable[[Any, RunnableConfig], Awaitable[Update]]) -> RunnableLambda:
    """A graph node with both entry points; the sync one runs the coroutine to completion."""

    def func(state: Any, config: RunnableConfig) -> Update:
        return run_sync(afunc(state, config))  # type: ignore[arg-type]

    return RunnableLambda(func, afunc=afunc, name=name)


def gateway(deps: Deps, state: AgentState) -> LLMGateway:
    return LLMGateway(deps.models, used=state.get("control_llm_calls", 0), budget=deps.limits.max_llm_calls)


def meter(update: Update, name: str, llm: LLMGateway, started: float) -> Update:
    update["control_steps"] = 1
    update["control_llm_calls"] = llm.calls
    update["control_tokens"] = llm.tokens
    update["control_timings_ms"] = {name: (time.perf_counter() - started) * 1000}
    return update


def make_node(name: str, impl: NodeImpl, deps: Deps) -> RunnableLambda:
    async def run(state: AgentState, config: RunnableConfig) -> Update:
        mine = [
            e for e in state.get("control_errors") or [] if e["node"] == name and e["severity"] == "retriable"
        ]
        attempt = mine[0]["attempt"] + 1 if mine else 1
        await backoff(deps.limits.retry_policy(), attempt, deps.sleep, target=name)
        emit("node", node=name)
        llm = gateway(deps, state)
        started = time.perf_counter()
        call = NodeCall(deps, llm, attempt, config)
        try:
            result = await impl(state, call)
            update = {**call.keep, **result}
            update.setdefault("control_errors", [])
        except GraphBubbleUp:
            raise
        except Exception as exc:
            update = {**call.keep, "control_errors": [error_record(name, exc, attempt=attempt)]}
        return meter(update, name, llm, started)

    return dual(name, run)
