"""routegraph: a LangGraph agent that routes requests to capabilities declared in registry.yaml.

The public API, for applications, notebooks and capability authors::

    from graph import Settings, build_graph

    graph = build_graph(settings=Settings.from_env())

Importing `graph` is cheap: each name is imported on first use (the CLI starts without LangGraph
or the encoders). Everything not named here is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from graph.builder import CheckpointerOption, build_graph
    from graph.capability.base import Capability, CapabilityInputs, JSONValue, RunContext
    from graph.capability.guides import ClassifierGuide, GuideExample, OrchestratorGuide
    from graph.cli import summary as registry_summary
    from graph.config.registry import CapabilityInfo, Registry, default_registry
    from graph.config.settings import Settings
    from graph.drawing import picture as draw_graph
    from graph.errors import (
        BudgetExhausted,
        CheckpointerError,
        ConfigError,
        CriticalError,
        ErrorSeverity,
        MissingDependency,
        MissingInput,
        MissingThreadId,
        ModelOutputError,
        ModelUnavailableError,
        NotApplicable,
        PolicyDenied,
        ReclassificationError,
        RecursionLimitReached,
        RegistryError,
        ReplanningError,
        RetriableError,
        RoutegraphError,
        RunError,
        StopError,
    )
    from graph.progress import describe as describe_event
    from graph.state import AgentState

_EXPORTS = {
    "build_graph": "graph.builder",
    "CheckpointerOption": "graph.builder",
    "Capability": "graph.capability.base",
    "CapabilityInputs": "graph.capability.base",
    "JSONValue": "graph.capability.base",
    "RunContext": "graph.capability.base",
    "ClassifierGuide": "graph.capability.guides",
    "GuideExample": "graph.capability.guides",
    "OrchestratorGuide": "graph.capability.guides",
    "registry_summary": "graph.cli:summary",
    "CapabilityInfo": "graph.config.registry",
    "Registry": "graph.config.registry",
    "RegistryError": "graph.errors",
    "default_registry": "graph.config.registry",
    "Settings": "graph.config.settings",
    "BudgetExhausted": "graph.errors",
    "CriticalError": "graph.errors",
    "ErrorSeverity": "graph.errors",
    "MissingInput": "graph.errors",
    "MissingThreadId": "graph.errors",
    "ModelOutputError": "graph.errors",
    "NotApplicable": "graph.errors",
    "PolicyDenied": "graph.errors",
    "ReclassificationError": "graph.errors",
    "RecursionLimitReached": "graph.errors",
    "ReplanningError": "graph.errors",
    "RetriableError": "graph.errors",
    "RoutegraphError": "graph.errors",
    "StopError": "graph.errors",
    "ModelUnavailableError": "graph.errors",
    "CheckpointerError": "graph.errors",
    "ConfigError": "graph.errors",
    "RunError": "graph.errors",
    "MissingDependency": "graph.errors",
    "draw_graph": "graph.drawing:picture",
    "describe_event": "graph.progress:describe",
    "AgentState": "graph.state",
}

__all__ = [
    "AgentState",
    "BudgetExhausted",
    "Capability",
    "CapabilityInfo",
    "CapabilityInputs",
    "CheckpointerError",
    "CheckpointerOption",
    "ClassifierGuide",
    "ConfigError",
    "CriticalError",
    "ErrorSeverity",
    "GuideExample",
    "JSONValue",
    "MissingDependency",
    "MissingInput",
    "MissingThreadId",
    "ModelOutputError",
    "ModelUnavailableError",
    "NotApplicable",
    "OrchestratorGuide",
    "PolicyDenied",
    "ReclassificationError",
    "RecursionLimitReached",
    "Registry",
    "RegistryError",
    "ReplanningError",
    "RetriableError",
    "RoutegraphError",
    "RunContext",
    "RunError",
    "Settings",
    "StopError",
    "build_graph",
    "default_registry",
    "describe_event",
    "draw_graph",
    "registry_summary",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
