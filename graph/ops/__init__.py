"""Operations: per-turn traces, structured logs, feedback, analytics, health checks, HTTP extras.

Two layers (.importlinter): the store, the trace writer, metrics, logs, feedback and analytics sit
beside the other engine parts (nodes write traces through them); doctor, the HTTP app and the CLI
commands sit on top, next to the entry points. Importing `graph.ops` is cheap: names load on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from graph.ops.analytics import analytics
    from graph.ops.doctor import doctor
    from graph.ops.feedback import FeedbackError, give_feedback
    from graph.ops.store import TraceStore, open_store

__all__ = ["FeedbackError", "TraceStore", "analytics", "doctor", "give_feedback", "open_store"]

__getattr__, __dir__ = exports(
    globals(),
    {
        "analytics": "graph.ops.analytics",
        "doctor": "graph.ops.doctor",
        "FeedbackError": "graph.ops.feedback",
        "give_feedback": "graph.ops.feedback",
        "TraceStore": "graph.ops.store",
        "open_store": "graph.ops.store",
    },
)
