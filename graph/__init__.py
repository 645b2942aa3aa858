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
    from graph.config.registry import CapabilityInfo, Registry, RegistryError, default_registry
    from graph.config.settings import Settings
    from graph.errors import (
        BudgetExhausted,
        CriticalError,
        ErrorSeverity,
        MissingInput,
        ModelOutputError,
        NotApplicable,
        PolicyDenied,
        ReclassificationError,
        ReplanningError,
        RetriableError,
        RoutegraphError,
        StopError,
    )
    from graph.models import ModelUnavailableError
    from graph.persistence.sqlite import CheckpointerError
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
    "RegistryError": "graph.config.registry",
    "default_registry": "graph.config.registry",
    "Settings": "graph.config.settings",
    "BudgetExhausted": "graph.errors",
    "CriticalError": "graph.errors",
    "ErrorSeverity": "graph.errors",
    "MissingInput": "graph.errors",
    "ModelOutputError": "graph.errors",
    "NotApplicable": "graph.errors",
    "PolicyDenied": "graph.errors",
    "ReclassificationError": "graph.errors",
    "ReplanningError": "graph.errors",
    "RetriableError": "graph.errors",
    "RoutegraphError": "graph.errors",
    "StopError": "graph.errors",
    "ModelUnavailableError": "graph.models",
    "CheckpointerError": "graph.persistence.sqlite",
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
    "CriticalError",
    "ErrorSeverity",
    "GuideExample",
    "JSONValue",
    "MissingInput",
    "ModelOutputError",
    "ModelUnavailableError",
    "NotApplicable",
    "OrchestratorGuide",
    "PolicyDenied",
    "ReclassificationError",
    "Registry",
    "RegistryError",
    "ReplanningError",
    "RetriableError",
    "RoutegraphError",
    "RunContext",
    "Settings",
    "StopError",
    "build_graph",
    "default_registry",
    "describe_event",
    "registry_summary",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
