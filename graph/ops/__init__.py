"""Operations: per-turn traces, structured logs, feedback, analytics, health checks, HTTP extras.

Two layers (.importlinter): the store, the trace writer, metrics, logs, feedback and analytics sit
beside the other engine parts (nodes write traces through them); doctor, the HTTP app and the CLI
commands sit on top, next to the entry points. Importing `graph.ops` is cheap: names load on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from graph.ops.analytics import analytics as routing_analytics
    from graph.ops.doctor import doctor as health_checks
    from graph.ops.experiments import compare_experiment
    from graph.ops.feedback import FeedbackError, give_feedback
    from graph.ops.learn import learn as learn_from_feedback
    from graph.ops.replay import replay as replay_feedback
    from graph.ops.store import TraceStore, open_store
    from graph.ops.traffic import demo_traffic

# `routing_analytics`, `health_checks`, `learn_from_feedback`, `replay_feedback`: the functions
# `analytics`, `doctor`, `learn` and `replay` under names that their modules do not shadow once imported.
__all__ = [
    "FeedbackError",
    "TraceStore",
    "compare_experiment",
    "demo_traffic",
    "give_feedback",
    "health_checks",
    "learn_from_feedback",
    "open_store",
    "replay_feedback",
    "routing_analytics",
]

__getattr__, __dir__ = exports(
    globals(),
    {
        "routing_analytics": "graph.ops.analytics:analytics",
        "health_checks": "graph.ops.doctor:doctor",
        "compare_experiment": "graph.ops.experiments",
        "demo_traffic": "graph.ops.traffic",
        "learn_from_feedback": "graph.ops.learn:learn",
        "replay_feedback": "graph.ops.replay:replay",
        "FeedbackError": "graph.ops.feedback",
        "give_feedback": "graph.ops.feedback",
        "TraceStore": "graph.ops.store",
        "open_store": "graph.ops.store",
    },
)
