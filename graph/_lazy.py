"""Lazy package exports (PEP 562): a package names its public API without importing it.

`import graph` (and so every `routegraph` command, whose module lives in the package) must stay
cheap, while `from graph import build_graph` pulls in LangGraph and the encoders; each package's
`__init__` maps its public names to the modules that define them, imported on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for the package whose `globals()` is `namespace`: `names` maps a
    public name to `module` (its attribute of that name) or `module:attribute` (renamed)."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
