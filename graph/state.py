"""The agent state: one TypedDict on top of `MessagesState`, grouped by prefix.

`task_*`, `planning_*`, `execution_*`, `control_*` and `approval_*` fields are per turn: the intake
node resets them when a new user message arrives. `execution_context` (values the capabilities
provided) persists across turns, and so does `approval_offer` (a side effect offered and not done,
which the next message may accept), and `context_user_id` and `context_topic` (whose thread, and
what it is about). `approval_asked_at` and `control_paused_seconds` are tied to
their turn (by the turn's start and `control_paused_turn`), so a value an earlier turn left counts
for nothing. Everything here is plain JSON-like data, so checkpoints and Studio show it as it is.

`AgentInput` is what a caller sends (the graph's input schema: Studio's input form shows the
messages only); the output schema is the whole `AgentState`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph import MessagesState
from langgraph.graph.message import add_messages

# typing_extensions, not typing: pydantic builds the JSON schemas Studio shows from these, and it
# refuses typing.TypedDict on Python < 3.12 (get_input_jsonschema would raise).
from typing_extensions import TypedDict

from graph.errors import ErrorRecord

StepStatus = Literal["ok", "failed", "denied", "skipped"]
StopReason = Literal[
    "success",
    "clarify",
    "error",
    "max_retries",
    "max_reclassifications",
    "max_replans",
    "max_steps",
    "max_seconds",
    "max_llm_calls",
    "route_denied",
    "invalid_plan",
    "input_too_long",
    "plan_rejected",
    "overloaded",
]


def merge_dict(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Merge updates into a dict; a None value deletes its key."""
    merged = dict(left or {})
    for key, value in (right or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def sum_dict(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Add numbers per key (timings from parallel nodes)."""
    merged = dict(left or {})
    for key, value in (right or {}).items():
        merged[key] = merged.get(key, 0.0) + value
    return merged


class ScoredCapability(TypedDict):
    name: str
    score: float
    """Calibrated confidence in [0, 1]."""
    selected: bool
    source: Literal["always", "scorer", "llm"]


class PlanStep(TypedDict):
    id: str
    """`capability:fingerprint-of-inputs`: the same work gets the same id (loop detection)."""
    capability: str
    inputs: dict[str, Any]
    depends_on: list[str]


class StepResult(TypedDict):
    step_id: str
    capability: str
    status: StepStatus
    output: dict[str, Any]
    error: str | None
    severity: str | None
    stop_reason: str | None
    """Set when the failure must end the run with a specific reason (e.g. route_denied)."""
    attempts: int
    duration_ms: float
    instance: NotRequired[str]
    """The pool instance that ran the step (graph/pools)."""
    queued_ms: NotRequired[float]
    """How long the step waited in its pool's queue for a free instance."""


class SideEffectOffer(TypedDict):
    """A side effect a turn offered and did not do: one the user only asked about (a confirmation
    question), or one a capability's result suggested (billing: "this charge is refundable").

    A yes to it ("yes", "go ahead", "go ahead with CH-2004") within the next `MAX_AGE` turns accepts it
    (graph/context/offers.py): that turn runs the offered capabilities for the offered task, as an
    explicit instruction (still under the approval policy, threshold included)."""

    turn: int
    """The turn (`task_turn`) that made the offer; turns turn + 1 to turn + `MAX_AGE` can accept it."""
    task: str
    """That turn's task: what the offered steps were for."""
    capabilities: list[str]
    question: str
    accepted_turn: int | None
    """Set by the orchestrator of the turn whose message said yes."""
    source: NotRequired[Literal["confirm", "suggested"]]
    """`confirm` (or absent): a confirmation question the turn asked; `suggested`: a capability's
    result suggested it (`Capability.suggested_action`) and no question was asked: only a go-ahead
    accepts it (graph/context/offers.py)."""
    context: NotRequired[dict[str, str]]
    """A digest of each context value the offered capabilities read, as the offering turn left them:
    a later turn that changed one (another customer, another charge) withdraws the offer."""


class AgentState(MessagesState):
    task_current: str | None
    """The task for this turn, as extracted from the conversation."""
    task_depends_on_history: bool
    """True when the task continues an earlier turn (a follow-up)."""
    task_previous: str | None
    """The previous turn's task: what a follow-up ("and in Paris?") refers to."""
    task_turn: int
    """User messages handled so far in the thread: how intake recognises a new one."""

    planning_capabilities: list[ScoredCapability] | None
    """Every candidate with its confidence; None until the classifier has run."""
    planning_excluded: list[str]
    """Capabilities ruled out by reclassification this turn."""
    planning_plan: list[PlanStep] | None
    """The validated plan; None until the orchestrator has run."""
    planning_notes: list[str]
    """What plan validation fixed or rejected."""

    execution_results: Annotated[dict[str, StepResult], merge_dict]
    """Per plan step; parallel steps write their own keys."""
    execution_context: Annotated[dict[str, Any], merge_dict]
    """Values provided by capabilities, keyed by what they provide; persists across turns."""

    control_errors: list[ErrorRecord]
    """Failures the router must act on; cleared by the next successful node."""
    control_reclassifications: int
    control_replans: int
    control_steps: Annotated[int, operator.add]
    """Node executions this turn."""
    control_llm_calls: Annotated[int, operator.add]
    control_tokens: Annotated[int, operator.add]
    control_started_at: float
    """Wall-clock start of the turn (seconds since the epoch)."""
    control_paused_seconds: float
    """Seconds of this turn spent waiting for a human at approval interrupts: `max_seconds` does not
    count them (waiting is not work). Belongs to the turn `control_paused_turn` names."""
    control_paused_turn: int
    """The `task_turn` that `control_paused_seconds` was measured in; another turn's pause counts 0."""
    control_timings_ms: Annotated[dict[str, float], sum_dict]
    """Milliseconds spent per node this turn."""
    control_stop_reason: StopReason | None
    """Why the turn ended; set by the terminal node."""
    control_run_id: NotRequired[str | None]
    """The turn's correlation id (set by intake: the server's run id, `configurable.run_id`, else a
    new uuid): the key of its trace and of feedback on it, on every log line of the turn."""

    approval_decisions: Annotated[dict[str, bool], merge_dict]
    """Human decisions per plan step id."""
    approval_asked_at: float | None
    """When the pending approval question was put (clock seconds), written by the approval node in a
    pass before the one that interrupts (an interrupt raises, so that pass could write nothing); the
    wait until the answer is added to `control_paused_seconds` and checked against
    `approval.timeout_seconds`. None when no question is pending; a value older than the turn is stale."""
    approval_offer: SideEffectOffer | None
    """The side effect this thread last offered and did not do; outlives the turn that made it."""

    context_user_id: str | None
    """Whose thread this is: the run's `configurable.user_id`, else the customer a capability
    identified (account's `customer_id`); selects the profile in the store. Outlives the turn."""
    context_profile: dict[str, Any] | None
    """The user's profile as intake read it from the store this turn (graph/context/profiles.py)."""
    context_topic: list[dict[str, Any]]
    """What the conversation is about: the capabilities recent turns ran, each with the clause it
    ran for and its turn (most recent first); what a follow-up continues. Outlives the turn."""
    context_followup: dict[str, Any] | None
    """How this turn relates to the topic (graph/context/followups.py): kind, capabilities, the
    rewritten task and why; None for a turn read on its own."""


class AgentInput(TypedDict):
    """The graph's input schema: a turn is the conversation's new message(s); intake sets the rest."""

    messages: Annotated[list[AnyMessage], add_messages]


class StepPayload(TypedDict):
    """What the router sends to one capability-runner task (`Send("execute", ...)`)."""

    step: PlanStep
    attempt: int
    task: str
    context: dict[str, Any]
    approved: bool | None
    blocked_by: list[str]
    """Dependencies that did not succeed (denied or skipped): the step is skipped, not run."""
    preferred_instance: NotRequired[str | None]
    """The pool instance to use when it is healthy and has room (a user's continuity)."""
    deadline: NotRequired[float | None]
    """When the turn's `max_seconds` runs out (`control_started_at + max_seconds`, on the router's
    clock): the runner gives the step no longer than this, and does not start it after."""
