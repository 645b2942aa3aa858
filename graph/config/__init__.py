"""Configuration: registry.yaml loaded into a `Registry`, and the runtime `Settings`.

Names are imported on first use (`graph._lazy`), so reading one setting loads no registry code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from graph.config.limits import Limits, RetryPolicy
    from graph.config.registry import CapabilityInfo, Registry, RegistryError, default_registry
    from graph.config.schema import ModelConfig, ModelsConfig, RegistryFile
    from graph.config.settings import LLMSwitch, Settings
    from graph.config.yaml_source import Problem

_EXPORTS = {
    "Limits": "graph.config.limits",
    "RetryPolicy": "graph.config.limits",
    "CapabilityInfo": "graph.config.registry",
    "Registry": "graph.config.registry",
    "RegistryError": "graph.config.registry",
    "default_registry": "graph.config.registry",
    "ModelConfig": "graph.config.schema",
    "ModelsConfig": "graph.config.schema",
    "RegistryFile": "graph.config.schema",
    "LLMSwitch": "graph.config.settings",
    "Settings": "graph.config.settings",
    "Problem": "graph.config.yaml_source",
}

__all__ = [
    "CapabilityInfo",
    "LLMSwitch",
    "Limits",
    "ModelConfig",
    "ModelsConfig",
    "Problem",
    "Registry",
    "RegistryError",
    "RegistryFile",
    "RetryPolicy",
    "Settings",
    "default_registry",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
