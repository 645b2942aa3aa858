"""Every exception routegraph raises, its severities, and the record a failure leaves in the state.

One base, `RoutegraphError`, and two families, so a caller can tell "fix something, then run again"
from "this run went wrong":

- `ConfigError`: a registry, settings, checkpointer URL, data set, labels file or eval/tune option the
  user must fix before running. Raised before (or instead of) a run; nothing retried fixes it.
- `RunError`: a failure during a run, carrying the `ErrorSeverity` the router acts on (retry,
  replan, reclassify, stop).

The router never inspects exception types: nodes turn failures into an `ErrorRecord` with a
severity, and the router acts on severities alone. A configuration error that surfaces inside a
run is CRITICAL (the base's severity).

Every configuration error is also a `ValueError` (as each was before the families existed), and
`CheckpointerError` still a `RuntimeError`, so callers' `except ValueError` / `except RuntimeError`
keep working. `ModelUnavailableError` (a `RetriableError`) is defined in graph/models.py.

`describe` and `error_record` are how exceptions enter the state, so they are where error messages
are redacted (graph/redact.py): a model server that echoes the API key, a driver that echoes a
password, never puts it in an error record, an answer or a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, NotRequired

from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12 (Studio's schemas)

from graph.redact import Redactor, redact


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a registry."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ErrorSeverity(StrEnum):
    """What the router does with a failure, from mildest to gravest."""

    RETRIABLE = "retriable"
    """Run the same node (or plan step) again after an exponential backoff with jitter."""
    REPLANNING = "replanning"
    """Go back to the orchestrator with the validation error as context."""
    RECLASSIFICATION = "reclassification"
    """Go back to the classifier with the failure as context."""
    CRITICAL = "critical"
    """Stop: the error node explains what happened."""


SEVERITY_RANK: dict[ErrorSeverity, int] = {
    ErrorSeverity.RETRIABLE: 0,
    ErrorSeverity.REPLANNING: 1,
    ErrorSeverity.RECLASSIFICATION: 2,
    ErrorSeverity.CRITICAL: 3,
}


class RoutegraphError(Exception):
    """Base of everything routegraph raises; each subclass is a `ConfigError` or a `RunError`."""

    severity: ClassVar[ErrorSeverity] = ErrorSeverity.CRITICAL
    """What the router does if this reaches a node: CRITICAL unless a run error says otherwise."""


# Configuration: the user must fix something before running.


class ConfigError(RoutegraphError, ValueError):
    """Something the user configured or passed in cannot be used; the message says what and where."""


class MissingDependency(ConfigError):
    """An optional package a feature needs is not installed; the message names the command that
    installs it (an extra such as `routegraph[mpnet]`)."""


class RegistryError(ConfigError):
    """Every problem found in a registry, each with file, line, field and message."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid registry:\n" + "\n".join(f"  {p}" for p in problems))


class CheckpointerError(ConfigError, RuntimeError):
    """The configured checkpointer cannot be used (a malformed URL, an unreachable server)."""


class InvalidThreadId(ConfigError):
    """A thread id outside the documented pattern (graph/persistence/locks.py: printable, at most
    128 characters): refused before it reaches a checkpointer, which may not be able to store it."""


class MissingThreadId(InvalidThreadId):
    """A run (or a state read or update) of a graph with a checkpointer, without
    `config["configurable"]["thread_id"]`: the checkpointer keeps each conversation under its
    thread id. Raised before the run; nothing was done (graph/persistence/locks.py
    `ThreadSerialisedGraph`). LangGraph said only "Checkpointer requires one or more of the
    following 'configurable' keys" (a KeyError when `configurable` held other keys)."""


class DatasetError(ConfigError):
    """A data or labels file that cannot be used; the message names the file (and line)."""


class EvalError(ConfigError):
    """Bad input for an evaluation (data, labels, options, no chat model for cascade): exit code 2."""


class TuneError(ConfigError):
    """Labelled requests that cannot be used; the message names the file and line."""


# Run: a failure during a run, with the severity the router acts on.


class RunError(RoutegraphError):
    """A failure during a run; its `severity` tells the router what to do next."""


class ThreadBusy(RunError, TimeoutError):
    """Another turn held the thread longer than this one would wait for it (graph/persistence/locks.py).

    Raised before the run starts, so nothing was done: asking again later is safe.
    """


class RetriableError(RunError):
    severity = ErrorSeverity.RETRIABLE


class ModelOutputError(RetriableError):
    """A model answered with something that does not parse or violates the schema.

    Model output is untrusted input: asking again is the first remedy, bounded by `max_retries`.
    """


class ReclassificationError(RunError):
    severity = ErrorSeverity.RECLASSIFICATION


class NotApplicable(ReclassificationError):
    """The request does not fit this capability after all (e.g. no arithmetic in it)."""


class ReplanningError(RunError):
    severity = ErrorSeverity.REPLANNING


class MissingInput(ReplanningError):
    """A required input is absent: the plan must supply it (REPLANNING)."""


class CriticalError(RunError):
    severity = ErrorSeverity.CRITICAL


class UndeclaredRoute(CriticalError):
    """The router picked a node that the edge's path map (`ROUTES`) does not declare: a bug."""


class StopError(CriticalError):
    """A critical failure that ends the run with a specific stop_reason."""

    stop_reason = "error"


class RecursionLimitReached(StopError, RecursionError):
    """The caller's `recursion_limit` (LangGraph's bound on the steps of one call) ran out before the
    turn ended. `build_graph` sets one above the turn's own bound (`limits.max_steps`, which ends a
    turn with stop_reason `max_steps`); a lower one cut the run where it was, with no stop_reason.
    Raised to the caller in place of LangGraph's `GraphRecursionError` (a `RecursionError`, as this
    is); the message names the limit to pass and how to finish the turn (graph/persistence/locks.py
    `ThreadSerialisedGraph`)."""

    stop_reason = "max_steps"


class PolicyDenied(StopError):
    """A step was refused by the policy boundary (allowlist)."""

    stop_reason = "route_denied"


class BudgetExhausted(StopError):
    """A node wanted a model call after the turn's `max_llm_calls` were spent."""

    stop_reason = "max_llm_calls"


class ErrorRecord(TypedDict):
    """A failure as stored in the state: plain data, so checkpoints and Studio can show it."""

    node: str
    severity: str
    message: str
    step_id: str | None
    capability: str | None
    attempt: int
    stop_reason: NotRequired[str | None]


def error_record(
    node: str,
    exc: BaseException,
    *,
    attempt: int,
    severity: ErrorSeverity | None = None,
    step_id: str | None = None,
    capability: str | None = None,
    redactor: Redactor | None = None,
) -> ErrorRecord:
    """The failure as plain data for the state, its message redacted (see `describe`)."""
    return ErrorRecord(
        node=node,
        severity=(severity or severity_of(exc)).value,
        message=describe(exc, redactor),
        step_id=step_id,
        capability=capability,
        attempt=attempt,
        stop_reason=getattr(exc, "stop_reason", None),
    )


def severity_of(exc: BaseException) -> ErrorSeverity:
    """Severity of an exception raised outside any capability: unknown exceptions are CRITICAL."""
    if isinstance(exc, RoutegraphError):
        return exc.severity
    return ErrorSeverity.CRITICAL


def describe(exc: BaseException, redactor: Redactor | None = None) -> str:
    """`Type: message`, with every secret masked: key shapes, bearer tokens and URL passwords
    always, and the exact configured secrets when given their `redactor` (`Settings.redactor()`).
    Never raises: an exception whose `str` fails is named by its type."""
    try:
        text = str(exc).strip()
    except Exception:
        text = ""
    text = redactor.redact(text) if redactor is not None else redact(text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ContractViolation(CriticalError):
    """A capability (or node) broke its contract: a non-JSON output, a sync `execute`. CRITICAL:
    running it again gives the same answer."""


class FaultPlanError(ConfigError):
    """A fault plan that does not parse (`ROUTEGRAPH_FAULTS`)."""


class ModelUnavailableError(RetriableError):
    """The model did not answer: timeout, refused connection, rate limit or server error."""


class ModelCallError(CriticalError):
    """Any other failure of a model call (a 401, a bad request), its message redacted: the
    client's exception would carry what the server echoed, the API key included."""


class TurnTimeout(StopError):
    """The turn's `max_seconds` ran out while a node or step was working: the run stops."""

    stop_reason = "max_seconds"


class ApprovalUnanswered(StopError):
    """The human kept answering unclearly until the turn's step budget was spent."""

    stop_reason = "max_steps"
