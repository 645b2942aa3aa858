"""The capability API: what a capability imports to plug into routegraph.

A capability is one `Capability` subclass plus a few lines of registry.yaml; this package imports no
capability (the registry loads them by import path).
"""

from graph.capability.base import Capability, CapabilityInputs, JSONValue, RunContext
from graph.capability.guides import ClassifierGuide, GuideExample, OrchestratorGuide
from graph.errors import MissingInput, NotApplicable
from graph.intent import REFUND_VERBS

__all__ = [
    "REFUND_VERBS",
    "Capability",
    "CapabilityInputs",
    "ClassifierGuide",
    "GuideExample",
    "JSONValue",
    "MissingInput",
    "NotApplicable",
    "OrchestratorGuide",
    "RunContext",
]
