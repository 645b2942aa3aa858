"""The Capability base class: one subclass and a few lines of registry.yaml add a capability."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from graph.capability.guides import ClassifierGuide, OrchestratorGuide
from graph.errors import ErrorSeverity, MissingInput, RoutegraphError

T = TypeVar("T")
JSONValue = Any
"""A JSON-serialisable value (the state is checkpointed and shown in Studio)."""


class CapabilityInputs(BaseModel):
    """Typed inputs of a capability. `query` is always the task text."""

    model_config = ConfigDict(extra="ignore")

    query: str = ""
    """The task as extracted from the conversation."""


@dataclass(frozen=True)
class RunContext:
    """What a capability may see besides its inputs."""

    task: str
    """The current task."""
    context: Mapping[str, JSONValue] = field(default_factory=dict)
    """Values provided by earlier steps and earlier turns, keyed by what they provide."""
    step_id: str = ""
    """Plan step being executed; use it as an idempotency key for side effects."""
    thread_id: str | None = None
    """Conversation thread, when the graph runs with a checkpointer."""
    approved: bool | None = None
    """The human decision for this step when its approval policy asked for one."""
    data_dir: Path | None = None
    """The graph's data directory (`Settings.data_dir`), where a capability keeps its files; None
    outside a graph. Given here so that a capability never reads the environment for it."""


class Capability(ABC):
    """A specialist the router can send work to.

    Class attributes describe it to the registry, classifier and planner; registry.yaml may
    override the description and guides (YAML wins).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    provides: ClassVar[tuple[str, ...]] = ()
    """Context keys this capability's output fills in."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Context keys that must be provided (by an earlier step or turn) before it runs."""
    always_active: ClassVar[bool] = False
    """Added to every classification without scoring (respond, clarify)."""
    terminal: ClassVar[bool] = False
    """Ends a plan (respond, clarify); executed by its own node, not the step runner."""
    side_effects: ClassVar[bool] = False
    """It changes something outside the conversation (moves money, sends, deletes). Its steps then
    run only when the user's latest message explicitly asks for the action (see `graph.intent`): a
    question asks a human to confirm first, a negated or information-only request skips the step.
    registry.yaml's `side_effects: true` declares it for a class that does not."""
    action_verbs: ClassVar[tuple[str, ...]] = ()
    """The words that ask for the action ("refund", "money back"...: `REFUND_VERBS`): what the side-effect
    policy looks for in the user's message. Needed when `side_effects` is set; registry.yaml's
    `action_verbs` replaces them."""
    classifier_guide: ClassVar[ClassifierGuide | None] = None
    orchestrator_guide: ClassVar[OrchestratorGuide | None] = None
    Inputs: ClassVar[type[CapabilityInputs]] = CapabilityInputs

    def __init__(self, options: Mapping[str, JSONValue] | None = None) -> None:
        self.options: dict[str, JSONValue] = dict(options or {})

    def parse_inputs(
        self, task: str, args: Mapping[str, JSONValue], context: Mapping[str, JSONValue]
    ) -> CapabilityInputs:
        """Build the typed inputs: plan arguments win over context values of the same name.

        Plan arguments come from a model when the LLM orchestrator planned: untrusted input,
        validated here by the pydantic model.
        """
        fields = self.Inputs.model_fields
        data: dict[str, JSONValue] = {k: v for k, v in context.items() if k in fields}
        data.update({k: v for k, v in args.items() if k in fields})
        data.setdefault("query", task)
        try:
            return self.Inputs.model_validate(data)
        except ValidationError as exc:
            raise MissingInput(f"{self.name}: invalid inputs: {exc.errors()[0]['msg']}") from exc

    @abstractmethod
    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, JSONValue]:
        """Do the work; return JSON-serialisable output, keyed by what the capability provides.

        It runs on the graph's event loop: do blocking work (files, sqlite3, CPU-heavy code)
        through `await self.blocking(fn, ...)`, as the LangGraph server rejects blocking calls.
        """

    @staticmethod
    async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking code on a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def summarize(self, output: Mapping[str, JSONValue]) -> str:
        """One or two sentences for the offline template answer."""
        return str(output.get("summary") or output)

    def needs_approval(self, inputs: CapabilityInputs, policy: Mapping[str, JSONValue]) -> str | None:
        """The question to put to a human, or None when the step may run unattended.

        `policy` is the capability's `approval` block from registry.yaml. The question must describe
        what the execution will do with these same inputs: a human approves exactly that. In mode
        `above` a value that is missing or not a number asks too (an unknown amount is not a small
        one), and so does a negative one beyond the threshold.
        """
        mode = policy.get("mode", "never")
        if mode == "always":
            return f"Run {self.name} for: {inputs.query!r}?"
        if mode == "above":
            field_name = str(policy.get("field", "amount"))
            value = getattr(inputs, field_name, None)
            threshold = float(policy.get("threshold", 0))
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                return f"Run {self.name} for: {inputs.query!r}? ({field_name} is not known before it runs)"
            if abs(value) > threshold:  # a negative amount moves money too
                return f"Run {self.name} with {field_name}={value} (above {threshold:g})?"
        return None

    def classify_error(self, exc: BaseException) -> ErrorSeverity:
        """Map a failure of `execute` to what the router should do.

        Timeouts and connection problems are worth retrying; errors that know their severity
        keep it; anything else is CRITICAL.
        """
        if isinstance(exc, RoutegraphError):
            return exc.severity
        if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError):
            return ErrorSeverity.RETRIABLE
        return ErrorSeverity.CRITICAL
