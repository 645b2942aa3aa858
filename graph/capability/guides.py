"""Classifier and orchestrator guides: few-shot examples declared per capability."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GuideExample(BaseModel):
    """One labelled request: does it need this capability, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1)
    """A user request, written as a user would."""
    result: bool = True
    """True when the request needs the capability; False marks a near miss (a negative example)."""
    reason: str = ""
    """Why: shown to an LLM classifier, ignored by the offline scorer."""


class ClassifierGuide(BaseModel):
    """How the classifier recognises requests that need a capability."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instructions: str = ""
    """One or two sentences on when the capability applies."""
    examples: tuple[GuideExample, ...] = ()
    """Few-shot examples; at least one positive one for a routable capability."""

    @property
    def positives(self) -> list[str]:
        return [e.query for e in self.examples if e.result]

    @property
    def negatives(self) -> list[str]:
        return [e.query for e in self.examples if not e.result]


class OrchestratorGuide(BaseModel):
    """How the planner uses a capability."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instructions: str = ""
    """When to schedule the capability and which inputs to give it."""
