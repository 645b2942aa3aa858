"""The scorer a long-lived process classifies with, swapped for the fine-tuned one when the
background fine-tune it started is done (issue 19; `deferred`).

A server (`langgraph dev`, `routegraph serve`, the Agent Server) or any Python caller that keeps a
compiled graph compiles its scorer once. In background mode that first compile is on the base
weights while a detached worker fine-tunes (`CachedScorer.pending`); the worker then saves the
fine-tuned scorer in the cache and writes `done` to its state file. `LiveScorer.current()` looks at
that file on each call, a `stat` when nothing changed, and once it says `done` (and the worker has
let go of its lock) builds a new scorer in a thread of its own, which loads the fine-tuned
compiled state from the cache, and puts it in place with one assignment. A request never waits
for the load and never sees a half-built scorer: it gets the old scorer or the new one, whole. A
new scorer that cannot be built, or that did not come up fine-tuned, is logged and the old one
kept (tried again only when the state file changes).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from graph.classifier.compiled import CachedScorer
from graph.classifier.deferred import Pending
from graph.classifier.scorer import FewShotScorer
from graph.redact import redact

log = logging.getLogger(__name__)
said = logging.getLogger("routegraph.classifier")
"""Shown at `--log-level INFO` (the server's log): when the live scorer changes."""

WARM_UP = "what can you do"
"""Scored by a new scorer before it is put in place: its model files open (or fail) here."""


class LiveScorer:
    """Holds the current scorer; `current()` returns it and swaps in the fine-tuned one when a
    background fine-tune of its guides has finished."""

    def __init__(self, build: Callable[[], FewShotScorer]) -> None:
        """`build`: a new, uncompiled scorer for the registry and settings (`build_scorer`)."""
        self._build = build
        self._scorer: FewShotScorer | None = None
        self._lock = threading.Lock()
        self._seen: int | None = None
        """The state file's modification time when it was last read: unchanged, nothing to read."""
        self._swap: threading.Thread | None = None
        self.swaps = 0
        """How many times a fine-tuned scorer was put in place (the dashboard, tests)."""

    def current(self) -> FewShotScorer:
        """The scorer to classify with now (built, not compiled, on the first call)."""
        scorer = self._scorer
        if scorer is None:
            with self._lock:
                if self._scorer is None:
                    self._scorer = self._build()
                scorer = self._scorer
        pending = getattr(scorer, "pending", None)  # set by a compile on base weights (`CachedScorer`)
        if isinstance(pending, Pending) and self._finished(pending):
            self._start_swap(scorer)
        return scorer

    def wait(self, timeout: float | None = None) -> None:
        """Until a swap under way has ended (tests, and a caller that wants the new scorer now)."""
        swap = self._swap
        if swap is not None:
            swap.join(timeout)

    def _finished(self, pending: Pending) -> bool:
        """Whether the worker's state file says `done` and the worker has let go of its lock; one
        `stat` per call while the file is unchanged."""
        try:
            stamp = os.stat(pending.state_file).st_mtime_ns
        except OSError:  # the worker has not written its state yet
            return False
        if stamp == self._seen:
            return False
        if pending.state().get("state") != "done" or not pending.weights.exists():
            self._seen = stamp
            return False
        if pending.running():  # `done` is written just before the lock is released: next call
            return False
        self._seen = stamp
        return True

    def _start_swap(self, old: FewShotScorer) -> None:
        with self._lock:
            if self._swap is not None and self._swap.is_alive():
                return
            self._swap = threading.Thread(
                target=self._replace, args=(old,), name="routegraph-scorer-swap", daemon=True
            )
            self._swap.start()

    def _replace(self, old: FewShotScorer) -> None:
        """Build and compile the new scorer (it loads from the cache what the worker saved), then
        put it in place; on any failure keep `old` and say why."""
        try:
            new = self._build()
            if isinstance(new, CachedScorer) and new.awaiting() is not None:
                # It would compile on base weights and start another worker: the cache is not as
                # the state file says (weights removed, guides edited since).
                raise RuntimeError("the fine-tuned weights are not ready to load")
            new.compile()
            new.score(WARM_UP)  # opens the encoder's session here, not in the first request
            weights = getattr(new, "weights", "")
            if weights != "fine-tuned":
                raise RuntimeError(f"the new scorer came up on {weights or 'unknown'} weights")
        except Exception as exc:
            reason = redact(" ".join(str(exc).split()) or type(exc).__name__)
            log.warning(
                "classifier: the fine-tuned scorer could not be loaded (%s); keeping the current one", reason
            )
            return
        with self._lock:
            if self._scorer is not old:  # replaced meanwhile: keep what is there
                return
            self._scorer = new
            self.swaps += 1
        said.info("classifier: now classifying with the fine-tuned weights of %s", new.encoder.identity)
