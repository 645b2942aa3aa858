"""The capability API: what a capability imports to plug into routegraph.

A capability is one `Capability` subclass plus a few lines of registry.yaml; this package imports no
capability (the registry loads them by import path).
"""

from graph.capability.base import (
    Capability,
    CapabilityInputs,
    JSONValue,
    NotMine,
    RunContext,
    SuggestedAction,
)
from graph.capability.guides import ClassifierGuide, GuideExample, OrchestratorGuide
from graph.errors import MissingInput, NotApplicable
from graph.intent import REFUND_VERBS

# Plainly sorted, as tests/test_public_api.py checks (isort style would put the constant first).
__all__ = [  # noqa: RUF022
    "Capability",
    "CapabilityInputs",
    "ClassifierGuide",
    "GuideExample",
    "JSONValue",
    "MissingInput",
    "NotApplicable",
    "NotMine",
    "OrchestratorGuide",
    "REFUND_VERBS",
    "RunContext",
    "SuggestedAction",
]
