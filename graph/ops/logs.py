"""Structured logs: every line carries the run id, the thread id and the node.

Built on structlog over the standard library's logging (the graph's modules log with
`logging.getLogger("routegraph...")`, as do the libraries): `node_context` binds `run_id`,
`thread_id` and `node` in a context variable for the length of a node, and the `ProcessorFormatter`
made by `formatter()` merges them into each record, as JSON (`ROUTEGRAPH_LOG_FORMAT=json`: one
object a line) or text. structlog is imported when the first line is formatted, not before: its
import brings rich and pygments (structlog.dev's tracebacks), about 0.1 s of every `routegraph`
call that logs nothing. The redaction layer still applies: the CLI's handler carries the
`RedactingFilter` (graph/redact.py) and the formatter redacts the merged fields too.

Levels: `--log-level` / `ROUTEGRAPH_LOG_LEVEL` set the `routegraph` loggers' level (default
WARNING); other libraries keep theirs, so DEBUG shows routegraph's own lines, not every HTTP call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Literal

from graph.redact import Redactor

LogFormat = Literal["text", "json"]
"""`text`: one readable line (`logger: LEVEL: message run_id=... thread_id=... node=...`); `json`:
one JSON object with a timestamp."""
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CORRELATION = ("run_id", "thread_id", "node")


def correlation_ids(state: Mapping[str, Any] | None, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The turn's run id (the state's `control_run_id`, else the server's), thread id and user id."""
    config = config or {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    run_id = (state or {}).get("control_run_id") or metadata.get("run_id") or configurable.get("run_id")
    return {"run_id": str(run_id) if run_id else None, "thread_id": configurable.get("thread_id")}


_BOUND: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "routegraph_log_context", default=None
)
"""What `node_context` bound (a context variable: each thread and task sees its own, and a node's
threads started with `contextvars.copy_context` see their node's)."""


@contextlib.contextmanager
def node_context(
    node: str, state: Mapping[str, Any] | None, config: Mapping[str, Any] | None
) -> Iterator[None]:
    """Bind the run id, thread id and node name to every log line emitted inside."""
    token = _BOUND.set({**(_BOUND.get() or {}), **correlation_ids(state, config), "node": node})
    try:
        yield
    finally:
        _BOUND.reset(token)


def _merge_bound(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog's `merge_contextvars` for `node_context`: a field the line sets itself wins."""
    for key, value in (_BOUND.get() or {}).items():
        event.setdefault(key, value)
    return event


def _defaults(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in CORRELATION:
        event.setdefault(key, None)
    record = event.get("_record")
    # The redacting filter turned the traceback into (redacted) text: keep it on the line.
    if record is not None and getattr(record, "exc_text", None) and "exc_info" not in event:
        event["exception"] = record.exc_text
    return event


def _text(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    """`logger: LEVEL: message key=value ...`: the CLI's line as before, with the context after it
    (run, thread and node first; fields without a value left out)."""
    event = dict(event)
    head = f"{event.pop('logger', '')}: {str(event.pop('level', '')).upper()}: {event.pop('event', '')}"
    event.pop("timestamp", None)
    exception = event.pop("exception", None)
    keys = [k for k in CORRELATION if k in event] + sorted(k for k in event if k not in CORRELATION)
    fields = " ".join(f"{k}={event[k]}" for k in keys if event[k] is not None)
    line = f"{head} {fields}" if fields else head
    return f"{line}\n{exception}" if exception else line


class _Deferred(logging.Formatter):
    """`formatter()`'s structlog `ProcessorFormatter`, made when the first record is formatted."""

    def __init__(self, fmt: LogFormat, redactor: Redactor | None) -> None:
        super().__init__()
        self._fmt_name: LogFormat = fmt
        self._redactor = redactor
        self._made: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._made is None:
            self._made = _processor_formatter(self._fmt_name, self._redactor)
        return self._made.format(record)


def formatter(fmt: LogFormat = "text", redactor: Redactor | None = None) -> logging.Formatter:
    """A stdlib formatter rendering records with their context (run, thread, node) as `fmt`
    (structlog's, made on the first record)."""
    return _Deferred(fmt, redactor)


def _processor_formatter(fmt: LogFormat, redactor: Redactor | None) -> logging.Formatter:
    import structlog

    def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return (redactor or Redactor()).redact_value(dict(event))

    chain: list[Any] = [
        _merge_bound,
        _defaults,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = structlog.processors.JSONRenderer(default=str) if fmt == "json" else _text
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
    )


def level_number(level: str | int | None) -> int:
    """`DEBUG`, `info`, 10, ... as a logging level (default WARNING); ValueError otherwise."""
    if level is None or level == "":
        return logging.WARNING
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: {', '.join(LEVELS)}")
    return int(logging.getLevelName(name))


def set_level(level: str | int | None) -> int:
    """Set the `routegraph` loggers' level; returns the previous one."""
    logger = logging.getLogger("routegraph")
    previous = logger.level
    logger.setLevel(level_number(level))
    return previous


@contextlib.contextmanager
def structured(
    handlers: list[logging.Handler],
    *,
    level: str | int | None,
    fmt: LogFormat,
    redactor: Redactor | None = None,
) -> Iterator[None]:
    """For a command's duration: `handlers` format with `formatter(fmt)`, routegraph logs at `level`."""
    previous_formatters = [h.formatter for h in handlers]
    previous_level = set_level(level)
    for handler in handlers:
        handler.setFormatter(formatter(fmt, redactor))
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous_formatters, strict=True):
            handler.setFormatter(old)
        logging.getLogger("routegraph").setLevel(previous_level)
