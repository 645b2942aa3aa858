"""`build_graph(...)`: wire the nodes around the central router and compile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.faults import FaultPlan
from graph.models import ModelProvider
from graph.persistence import CheckpointerOption, resolve_checkpointer, serialise_threads
from graph.pools import Pools
from graph.router import ROUTES, Router
from graph.state import AgentState
from nodes.approval import approval
from nodes.base import Deps, make_node
from nodes.clarify import clarify
from nodes.classifier import classifier
from nodes.error import error
from nodes.intake import make_intake
from nodes.join import join
from nodes.orchestrator import orchestrator
from nodes.respond import respond
from nodes.runner import make_runner
from nodes.task_extraction import task_extraction


def build_graph(
    *,
    registry: Registry | str | Path | None = None,
    settings: Settings | None = None,
    checkpointer: CheckpointerOption = "auto",
    models: Mapping[str, BaseChatModel] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    pools: Pools | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the routing graph.

    Args:
        registry: a `Registry`, or a path to a registry.yaml (default: the repository's). To use
            the registry too, load it first (`Registry.from_file(path)`) and pass it here.
        settings: data directory and model switches (default: from the environment).
        checkpointer: a LangGraph checkpointer, or "auto" (default: "postgres" when
            `settings.postgres_url` is set, else "sqlite"), "sqlite", "postgres", "memory", "none".
        models: chat models per role ("task_extraction", "classifier", "orchestrator", "respond",
            or "default" for all); given models are used even when the environment has no key.
        clock, sleep: injectable time, for tests of budgets and backoff.
        pools: the capabilities' instance pools (`graph.pools.Pools(registry)`), to share them
            between graphs (a reloaded registry) or to manage them from Python; default: new ones.

    Raises:
        CheckpointerError: the Postgres checkpointer cannot be used (malformed URL, server down).
    """
    if not isinstance(registry, Registry):
        registry = Registry.from_file(registry)
    settings = settings or Settings.from_env()
    spec = registry.spec
    provider = ModelProvider(
        {role: spec.models.for_role(role) for role in ModelProvider.roles()},
        settings,
        enabled=settings.llm_enabled(spec.models),
        overrides=models,
    )
    router = Router(registry, clock=clock)
    deps = Deps(
        registry=registry,
        settings=settings,
        models=provider,
        router=router,
        clock=clock,
        sleep=sleep,
        faults=FaultPlan.parse(settings.faults),
        pools=pools or Pools(registry),
    )

    builder = StateGraph(AgentState)
    builder.add_node("intake", make_intake(deps))
    for name, impl in (
        ("task_extraction", task_extraction),
        ("classifier", classifier),
        ("orchestrator", orchestrator),
        ("approval", approval),
        ("join", join),
        ("respond", respond),
        ("clarify", clarify),
        ("error", error),
    ):
        builder.add_node(name, make_node(name, impl, deps))
    builder.add_node("execute", make_runner(deps))

    builder.add_edge(START, "intake")
    # Each router edge declares the nodes it can reach (its path map: what the drawing shows).
    # `execute` is reached with `Send` (fan-out), which the Runnable types do not say.
    for source, reachable in ROUTES.items():
        edge = router.edge(source)
        route: RunnableLambda[Any, Any] = RunnableLambda(edge, afunc=edge.acall, name="route")
        builder.add_conditional_edges(source, route, list(reachable))
    builder.add_edge("execute", "join")
    for terminal in ("respond", "clarify", "error"):
        builder.add_edge(terminal, END)
    compiled = builder.compile(checkpointer=resolve_checkpointer(checkpointer, settings), name="routegraph")
    configured = compiled.with_config(recursion_limit=max(25, spec.limits.max_steps * 2 + 10))
    # One turn at a time per thread (a lock where the checkpoints live), for every caller.
    return serialise_threads(configured, wait=spec.limits.max_seconds)
