"""Progress events on LangGraph's custom stream: what a person watching a run wants to see.

Every event is a small dict with an `event` key: `node` (a node started), `capability_started`,
`capability_finished`, `retry`, `classifier_progress` (long compile work on a first run: fine-tuning
passes with the time left, the ONNX export), `approval_waiting` (once per pause: not again when the approval node
re-runs on resume). Stream them with
`graph.stream(..., stream_mode="custom")` (or `["custom", "values"]`); `routegraph ask` prints them.
Outside a streaming run the writer is a no-op.
"""

from __future__ import annotations

from typing import Any


def emit(event: str, **fields: Any) -> None:
    # Imported here: this module is imported by the settings (through the retry policy), and
    # `routegraph --version` or `validate` must not pay for LangGraph (and LangSmith) to start.
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run
        return
    writer({"event": event, **fields})


def describe(event: dict[str, Any]) -> str:
    """One line for a person."""
    kind = event.get("event")
    if kind == "node":
        return f"· {event['node']}"
    if kind == "capability_started":
        return f"→ {event['capability']} started"
    if kind == "capability_finished":
        extra = f": {event['error']}" if event.get("error") else ""
        return f"← {event['capability']} {event['status']} in {event['duration_ms']:.0f} ms{extra}"
    if kind == "retry":
        return f"↻ retrying {event['target']} (attempt {event['attempt']}) after {event['delay']:.2f} s"
    if kind == "classifier_progress":
        return f"· classifier: {event['message']}"
    if kind == "approval_waiting":
        return f"⏸ waiting for approval: {', '.join(event['steps'])}"
    return str(event)


class ProgressPrinter:
    """Prints progress events: one updating line on a terminal, plain lines otherwise."""

    def __init__(self, stream: Any, *, live: bool) -> None:
        self.stream = stream
        self.live = live
        self._width = 0

    def __call__(self, event: dict[str, Any]) -> None:
        line = describe(event)
        if self.live:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
