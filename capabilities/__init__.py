"""The shipped capabilities, and the shipped registry.yaml as package data (`graph.default_registry()`).

A registry names capabilities by import path (`capabilities.calculator:Calculator`); these names
are for code that builds or tests a capability directly. Imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from capabilities.calculator import Calculator, CalculatorInputs
    from capabilities.clarify import Clarify
    from capabilities.clock import Clock, ClockInputs
    from capabilities.respond import Respond

_EXPORTS = {
    "Calculator": "capabilities.calculator",
    "CalculatorInputs": "capabilities.calculator",
    "Clarify": "capabilities.clarify",
    "Clock": "capabilities.clock",
    "ClockInputs": "capabilities.clock",
    "Respond": "capabilities.respond",
}

__all__ = ["Calculator", "CalculatorInputs", "Clarify", "Clock", "ClockInputs", "Respond"]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
