"""Small capability classes for registry tests: provides/requires chains, cycles, and misfits."""

from __future__ import annotations

from typing import Any

from graph.capability import Capability, ClassifierGuide, GuideExample, OrchestratorGuide, RunContext


def _guide(*queries: str) -> ClassifierGuide:
    return ClassifierGuide(examples=tuple(GuideExample(query=q) for q in queries))


class _Echo(Capability):
    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {key: inputs.query for key in self.provides} | {"summary": inputs.query}


class Geocode(_Echo):
    name = "geocode"
    description = "Find where a place is."
    provides = ("location",)
    classifier_guide = _guide("where is Lisbon")


class Weather(_Echo):
    name = "weather"
    description = "The weather forecast for a location."
    provides = ("forecast",)
    requires = ("location",)
    classifier_guide = _guide("will it rain in Lisbon tomorrow")
    orchestrator_guide = OrchestratorGuide(instructions="Run after geocode.")


class Chicken(_Echo):
    """Needs an egg, gives a chicken: with Egg, a dependency cycle."""

    name = "chicken"
    provides = ("chicken",)
    requires = ("egg",)
    classifier_guide = _guide("raise a chicken")


class Egg(_Echo):
    name = "egg"
    provides = ("egg",)
    requires = ("chicken",)
    classifier_guide = _guide("lay an egg")


class Unguided(_Echo):
    """Routable, but its class gives no classifier guide."""

    name = "unguided"
    description = "Does something the classifier cannot recognise."


class Picky(_Echo):
    """Rejects any option except `colour`."""

    name = "picky"
    classifier_guide = _guide("pick something")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = set(self.options) - {"colour"}
        if unknown:
            raise ValueError(f"unknown options: {', '.join(sorted(unknown))}")


class NotACapability:
    """Looks like a capability, but does not subclass Capability."""

    name = "impostor"
    description = "Not a capability."


def not_a_class() -> None:
    """A function where a class is expected."""
