"""The Capability base class: one subclass and a few lines of registry.yaml add a capability.

Besides the class, the execute contract's run-time helpers live here: `DAEMON_THREADS` (the
default executor of the event loops the framework creates, whose threads nothing waits for),
`json_problem` (what the runner checks a capability's output with) and `to_json` (strict JSON for
whoever prints a state).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypedDict

from graph.capability.guides import ClassifierGuide, OrchestratorGuide
from graph.errors import (
    ContractViolation,  # noqa: F401 (defined with every other error)
    ErrorSeverity,
    MissingInput,
    ReclassificationError,
    RoutegraphError,
)

T = TypeVar("T")
JSONValue = Any
"""A JSON-serialisable value (the state is checkpointed and shown in Studio)."""


LOOP_CLOSING = threading.Lock()
"""Held while the framework closes one of its event loops (`nodes.base.close_loop`), and while a
`DAEMON_THREADS` result is handed to a loop: the hand-over then sees the loop either open or
closed, never half-closed (a wake-up written to a closing loop's socket is SIGPIPE, which kills
a process that does not ignore it, as `routegraph ask` does not)."""


class _QuietFuture(concurrent.futures.Future[T]):
    """A future whose done-callbacks may find their event loop closed, and say nothing.

    asyncio chains a loop future to it (`run_in_executor`); when the caller gave up (a step's
    deadline) and its loop is closed, the late result has nowhere to go: that is expected, and
    `concurrent.futures` would otherwise log a traceback for it.
    """

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[T]], object]) -> None:
        def call(future: concurrent.futures.Future[T]) -> None:
            # "Event loop is closed": the waiter is gone.
            with LOOP_CLOSING, contextlib.suppress(RuntimeError):
                fn(future)

        super().add_done_callback(call)


class DaemonThreads(concurrent.futures.ThreadPoolExecutor):
    """Runs every call on a new daemon thread, and never waits for one.

    `asyncio.to_thread` uses a `ThreadPoolExecutor`, whose threads are joined when the event loop
    closes (`asyncio.run`) and again when the interpreter exits: a call blocked for 30 s holds up
    both, even after the step that made it has timed out. A daemon thread nothing joins lets a
    timed-out step be abandoned and a process exit promptly. A thread per call costs about 0.1 ms.
    (A `ThreadPoolExecutor` subclass only because `loop.set_default_executor` accepts no other.)
    `run_blocking` (`Capability.blocking`) does the same without an executor.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: _QuietFuture[T] = _QuietFuture()
        name = _name(fn)

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # delivered to the caller, whatever it is
                future.set_exception(_deliverable(exc, name))
            else:
                future.set_result(result)

        threading.Thread(target=work, name=f"routegraph-blocking:{name}", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: a call still running belongs to a caller that gave up on it."""


def _name(fn: Callable[..., Any]) -> str:
    """What a blocking call is called in a message (`asyncio.to_thread` wraps it in
    `partial(context.run, fn, ...)`)."""
    inner: Any = fn
    while isinstance(inner, functools.partial):
        is_run = getattr(inner.func, "__qualname__", "") == "Context.run" and inner.args
        inner = inner.args[0] if is_run else inner.func
    return str(getattr(inner, "__qualname__", None) or type(inner).__name__)


def _deliverable(exc: BaseException, name: str) -> BaseException:
    """`exc`, or a RuntimeError for a StopIteration: asyncio cannot raise StopIteration into a future
    (a TypeError in a callback, and the caller waits until its deadline), the conversion a
    coroutine gets too (PEP 479)."""
    if isinstance(exc, StopIteration):
        error = RuntimeError(f"{name} raised StopIteration")
        error.__cause__ = exc
        return error
    return exc


DAEMON_THREADS = DaemonThreads()
"""The default executor (`asyncio.to_thread`, `run_in_executor(None, ...)`) of the event loops the
framework creates (a capability's own loop, a node's loop in a sync run)."""


def json_problem(value: object) -> str | None:
    """Why `value` is not a JSON object (a dict with str keys, strict JSON values), or None.

    Strict: NaN and Infinity are not JSON, and an integer must fit the checkpoint's 64 bits
    (msgpack): checkpoints, Studio and `ask --json` must be able to hold the value.
    """
    if not isinstance(value, dict):
        return f"returned {describe_value(value)}"
    if bad := [k for k in value if not isinstance(k, str)]:
        return f"returned a dict with a {type(bad[0]).__name__} key {bad[0]!r}"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"returned a value that is not JSON: {exc}"
    if (big := _huge_int(value)) is not None:
        return f"returned an integer a checkpoint cannot hold (more than 64 bits): {str(big)[:20]}..."
    return None


_INT_RANGE = range(-(2**63), 2**64)


def _huge_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in _INT_RANGE else value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return next((big for item in value if (big := _huge_int(item)) is not None), None)
    return None


def describe_value(value: object) -> str:
    """`None`, or the type and a short repr: how an error message names a value it did not want."""
    if value is None:
        return "None"
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__} ({shown})"


def to_json(value: object, **kwargs: Any) -> str:
    """`value` as strict JSON text (see `jsonable`): `json.dumps` would write bare NaN/Infinity,
    which JSON parsers other than Python's reject."""
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def jsonable(value: Any, *, depth: int = 0) -> Any:
    """`value` as data JSON can hold: NaN and Infinity become None (null), tuples and sets lists,
    mapping keys strings, anything else its `str`, so `json.dumps(..., allow_nan=False)` cannot
    fail and redaction (`redact_value`) sees every string."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 100:
        return str(value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): jsonable(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth=depth + 1) for v in value]
    return str(value)


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking code on a daemon thread and await its result, in the caller's context.

    Not `asyncio.to_thread`: its pool's threads are joined at loop and interpreter shutdown, so
    a call that hangs would hold up the end of the run (and the CLI's exit) after the step or node
    that made it had already timed out. The result is handed over under a lock, and only while
    the caller still waits: a loop that is closing is never woken (see `LOOP_CLOSING`).
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()
    lock = threading.Lock()
    waiting = [True]

    def settle(result: T | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        result, error = None, None
        try:
            result = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # delivered to the caller, whatever it is
            error = _deliverable(exc, _name(fn))
        with lock:
            if waiting[0]:
                loop.call_soon_threadsafe(settle, result, error)

    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    threading.Thread(target=work, name=f"routegraph-blocking:{name}", daemon=True).start()
    try:
        return await answer
    finally:
        with lock:
            waiting[0] = False


class NotMine(ReclassificationError):
    """A capability's own say: "not mine, ask `suggest`" (`needs_reroute`). Raised by
    `Capability.not_mine`.

    RECLASSIFICATION: the step fails with the suggestion in its result (`reroute`); the classifier
    then selects the suggested capability instead of this one (when it is registered, allowed and
    not already ruled out this turn), bounded by `limits.max_reclassifications` like any other
    reclassification.
    """

    def __init__(self, capability: str, suggest: str | None, reason: str) -> None:
        target = f"try {suggest}" if suggest else "no suggestion"
        super().__init__(f"{capability} says this is not its request ({reason}); {target}")
        self.capability = capability
        self.suggest = suggest
        self.reason = reason

    def reroute(self) -> dict[str, str | None]:
        """The suggestion as a step result carries it (`output["reroute"]`)."""
        return {"from": self.capability, "to": self.suggest, "reason": self.reason}


class SuggestedAction(TypedDict):
    """A side effect a capability's result makes the natural next step, put in its output under
    `"suggests"` ("this charge is a duplicate, eligible for a refund": the refund). The graph keeps it
    on offer (`approval_offer`) when the turn did not run it: a go-ahead from the user in the next
    turns ("yes, do it", "go ahead with CH-2013") runs `capability` for the same request, under the
    same side-effect policy and approval as any other step. Nothing runs on the suggestion alone."""

    capability: str
    """The registry name of the capability to run (one with `side_effects`)."""
    question: str
    """What it would do, as a question ("Refund $30.00 to Omar Haddad for CH-2013?")."""


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
        """Do the work; return a JSON object (a dict with str keys and JSON values, no NaN),
        keyed by what the capability provides.

        The contract, checked by `routegraph validate` where it can be (an `async def`, the class's
        `name` equal to its registry entry's) and by the runner where it cannot (the output):
        a violation fails the step with a message naming the capability.

        Each call runs on an event loop of its own, in a daemon thread the runner abandons when
        the step's `timeout` (or the turn's `max_seconds`) runs out: the step is then recorded
        as timed out and whatever the call produces later is dropped. Do not keep loop-bound
        objects (an async client, say) across calls. Do blocking work (files, sqlite3, CPU-heavy
        code) through `await self.blocking(fn, ...)`: the LangGraph dev server rejects blocking
        calls on an event loop. Side effects must be idempotent by `ctx.step_id`: an abandoned
        call may still finish its work, and the step is retried.
        """

    def not_mine(self, *, suggest: str | None = None, reason: str) -> NoReturn:
        """Hand the request back to the router: it is not for this capability, `suggest` names the
        capability that should take it (a registry name) and `reason` says why, for the notes and
        the answer. Raises `NotMine`; nothing after it runs."""
        raise NotMine(self.name, suggest, reason)

    @staticmethod
    async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking code on a daemon thread, keeping the event loop free (`run_blocking`)."""
        return await run_blocking(fn, *args, **kwargs)

    def recognises(self, text: str) -> bool:
        """Whether the request's shape alone makes it this capability's ("1380 - 275 - 415?" is
        arithmetic whatever the words around it): the classifier selects a capability that recognises
        a request its scorer selected nothing for, and adds it beside a pick that does not
        (graph/classifier/recognised.py). False by default: most needs are told by their words."""
        return False

    def known_names(self, text: str) -> list[str]:
        """The names in the request of records this capability looks up by name (a support desk's
        customer by full name: "my uncle omar haddad"), as written: what the request says it is
        about, not what it needs. The classifier reads a request naming one as addressed to us (not
        another company's service), like an e-mail address or a customer id. None by default."""
        return []

    def summarize(self, output: Mapping[str, JSONValue]) -> str:
        """One or two sentences for the offline template answer."""
        return str(output.get("summary") or output)

    def suggested_action(self, output: Mapping[str, JSONValue]) -> SuggestedAction | None:
        """The side effect this output suggests as the next step (`output["suggests"]`, a
        `SuggestedAction`), or None: none, or not that shape."""
        found = output.get("suggests")
        if not isinstance(found, Mapping):
            return None
        name, question = found.get("capability"), found.get("question")
        if not isinstance(name, str) or not name or not isinstance(question, str) or not question:
            return None
        return SuggestedAction(capability=name, question=question)

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
