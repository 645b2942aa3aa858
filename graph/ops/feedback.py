"""Feedback on a turn, stored with its trace (the `feedback` table, one row per run id).

The same function behind `routegraph feedback RUN_ID ...`, `POST /feedback` and Python:

    from graph.ops import give_feedback, open_store
    give_feedback(open_store(settings), run_id, correct=["billing"], note="it was about an invoice")

Verdicts: `good` (the routing was right), `bad` (it was wrong, the right capabilities unknown),
`correct` (the right capabilities are these: `correct=[...]`), `out_of_scope` (no capability should
have taken it). A later word on the same run replaces the earlier one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal

from graph.errors import ConfigError
from graph.ops.store import VERDICTS, TraceStore
from graph.redact import Redactor

Verdict = Literal["good", "bad", "correct", "out_of_scope"]
NOTE_LIMIT = 2000


class FeedbackError(ConfigError):
    """Feedback that cannot be stored: an unknown run id, verdict or capability."""


def give_feedback(
    store: TraceStore,
    run_id: str,
    *,
    verdict: Verdict | None = None,
    correct: Sequence[str] = (),
    note: str | None = None,
    source: str = "python",
    capabilities: Collection[str] | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Store feedback on the turn `run_id`; returns the stored feedback.

    `correct` alone implies the verdict `correct`. `capabilities`: the names a correction may use
    (the registry's); None accepts any. The note is redacted (`redactor`, default: secret shapes).

    Raises:
        FeedbackError: no trace has this run id, or the verdict, capabilities or note are invalid.
    """
    names = [_storable(c.strip()) for c in correct if c.strip()]
    if verdict is None:
        verdict = "correct" if names else None
    if verdict not in VERDICTS:
        raise FeedbackError(
            f"a verdict is needed: one of {', '.join(VERDICTS)} (or capabilities to correct to)"
        )
    if verdict == "correct" and not names:
        raise FeedbackError("`correct` needs the capabilities that should have taken the request")
    if verdict != "correct" and names:
        raise FeedbackError(f"capabilities are given only with `correct`, not with `{verdict}`")
    if capabilities is not None and (unknown := [n for n in names if n not in capabilities]):
        raise FeedbackError(
            f"unknown capability {', '.join(unknown)}: one of {', '.join(sorted(capabilities))}"
        )
    if note is not None and len(note) > NOTE_LIMIT:
        raise FeedbackError(f"the note is longer than {NOTE_LIMIT} characters")
    if not _could_be_a_run_id(run_id) or store.get(run_id) is None:
        raise FeedbackError(
            f"no trace of run {_shown(run_id)} (the run id is printed by `routegraph ask --json`)"
        )
    clean = (redactor or Redactor()).redact(_storable(note)) if note else None
    store.put_feedback(run_id, verdict=verdict, correct=names, note=clean, source=source)
    return {"run_id": run_id, "verdict": verdict, "correct": names, "note": clean, "source": source}


RUN_ID_LIMIT = 128
"""The longest run id looked up: ours are 32 hex digits, LangGraph's a uuid."""


def _could_be_a_run_id(run_id: str) -> bool:
    """A run id the trace store could hold: printable, at most `RUN_ID_LIMIT` characters, valid
    Unicode (a lone surrogate, what invalid UTF-8 on a command line becomes, cannot be stored or
    looked up, and is no run's id)."""
    return 0 < len(run_id) <= RUN_ID_LIMIT and run_id.isprintable() and _storable(run_id) == run_id


def _storable(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (SQLite and PostgreSQL refuse them)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _shown(run_id: str) -> str:
    """The run id for a message: escaped, and shortened past 64 characters."""
    text = _storable(run_id)
    return repr(text if len(text) <= 64 else text[:64] + "...")
