"""`build_graph(...)`: wire the nodes around the central router and compile."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.context.profiles import StoreOption, resolve_store
from graph.faults import FaultPlan
from graph.models import ModelProvider
from graph.ops.experiments import Dispatch, running
from graph.ops.otel import node_tracer
from graph.ops.store import TraceStore, open_store
from graph.ops.traces import TraceWriter, registry_fingerprint
from graph.persistence import CheckpointerOption, resolve_checkpointer, serialise_threads
from graph.pools import Pools
from graph.router import ROUTES, Router
from graph.state import AgentInput, AgentState
from nodes.approval import approval
from nodes.base import Deps, make_node
from nodes.clarify import clarify
from nodes.classifier import classifier
from nodes.error import error
from nodes.intake import make_intake
from nodes.join import join
from nodes.orchestrator import orchestrator
from nodes.profile import make_profile
from nodes.respond import respond
from nodes.runner import make_runner
from nodes.task_extraction import task_extraction


def build_graph(
    *,
    registry: Registry | str | Path | None = None,
    settings: Settings | None = None,
    checkpointer: CheckpointerOption = "auto",
    store: StoreOption = "auto",
    models: Mapping[str, BaseChatModel] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    pools: Pools | None = None,
    traces: TraceStore | Literal["auto", "none"] = "auto",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the routing graph.

    Args:
        registry: a `Registry`, or a path to a registry.yaml (default: the repository's). To use
            the registry too, load it first (`Registry.from_file(path)`) and pass it here.
        settings: data directory and model switches (default: from the environment).
        checkpointer: a LangGraph checkpointer, or "auto" (default: "postgres" when
            `settings.postgres_url` is set, else "sqlite"), "sqlite", "postgres", "memory", "none".
        store: where user profiles live (graph/context/profiles.py): a LangGraph store, or "auto"
            (PostgresStore when `settings.postgres_url` is set, else a SQLite file in the data
            directory; none with `checkpointer="none"`: the server's own), "sqlite", "postgres",
            "memory", "none".
        models: chat models per role ("task_extraction", "classifier", "orchestrator", "respond",
            or "default" for all); given models are used even when the environment has no key.
        clock, sleep: injectable time, for tests of budgets and backoff.
        pools: the capabilities' instance pools (`graph.pools.Pools(registry)`), to share them
            between graphs (a reloaded registry) or to manage them from Python; default: new ones.
        traces: where each turn's trace goes (graph/ops/): "auto" (default): the PostgreSQL
            database when `settings.postgres_url` is set, else traces.sqlite next to the checkpoint
            file, whatever the checkpointer; "none": no traces (also registry `traces.enabled: false`);
            or a `TraceStore`.

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
        traces=_trace_writer(traces, registry, settings, clock),
        tracer=node_tracer(settings.otel_endpoint),
    )
    if (experiment := running(registry)) is not None:
        # Each variant: its own registry, models, router and (lazily compiled) scorer; the nodes
        # pick the run's variant (nodes/base.py `Deps.for_run`).
        deps.experiments = Dispatch(registry, experiment, partial(_variant_deps, deps, models), base=deps)

    builder = StateGraph(AgentState, input_schema=AgentInput, output_schema=AgentState)
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
    builder.add_node("profile", make_profile(deps))

    builder.add_edge(START, "intake")
    # Each router edge declares the nodes it can reach (its path map: what the drawing shows).
    # `execute` is reached with `Send` (fan-out), which the Runnable types do not say.
    for source, reachable in ROUTES.items():
        edge = router.edge(source)
        route: RunnableLambda[Any, Any] = RunnableLambda(edge, afunc=edge.acall, name="route")
        builder.add_conditional_edges(source, route, list(reachable))
    builder.add_edge("execute", "join")
    for terminal in ("respond", "clarify", "error"):
        builder.add_edge(terminal, "profile")  # the turn's last word is the profile's (nodes/profile.py)
    builder.add_edge("profile", END)
    if store == "auto" and checkpointer == "none":
        store = "none"  # a host that brings its persistence brings its store (the LangGraph server)
    elif store == "auto" and checkpointer in ("sqlite", "memory"):
        store = checkpointer  # an explicit local checkpointer: the profiles stay local too
    compiled = builder.compile(
        checkpointer=resolve_checkpointer(checkpointer, settings),
        store=resolve_store(store, settings),
        name="routegraph",
    )
    configured = compiled.with_config(recursion_limit=max(25, spec.limits.max_steps * 2 + 10))
    # One turn at a time per thread (a lock where the checkpoints live), for every caller.
    return serialise_threads(configured, wait=spec.limits.max_seconds)


def _variant_deps(base: Deps, models: Mapping[str, BaseChatModel] | None, registry: Registry) -> Deps:
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()},
        base.settings,
        enabled=base.settings.llm_enabled(registry.spec.models),
        overrides=models,
    )
    return dataclasses.replace(
        base, registry=registry, models=provider, router=Router(registry, clock=base.clock), experiments=None
    )


def _trace_writer(
    option: TraceStore | Literal["auto", "none"], registry: Registry, settings: Settings, clock: Callable[[], float]
) -> TraceWriter | None:
    config = registry.spec.traces
    if option == "none" or not config.enabled:
        return None
    store = option if isinstance(option, TraceStore) else open_store(settings)
    return TraceWriter(
        store,
        fingerprint=registry_fingerprint(registry.spec.model_dump_json()),
        redactor=settings.redactor(),
        clock=clock,
        retention_days=config.retention_days,
        max_rows=config.max_rows,
    )
