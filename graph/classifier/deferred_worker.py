"""The background fine-tune (`deferred`): `python -m graph.classifier.deferred_worker JOB`.

Started detached by a run that answered with the base encoder. Holds the key's lock for the whole
job (one fine-tune per key at a time; the OS releases it if the process dies), fine-tunes, exports
to ONNX and compiles the scorer into the cache exactly as a foreground compile would, then records
`done`, or `failed` with the reason (the next run's progress line shows it). Runs at a lower CPU
priority, so the user's next requests are not slowed by it more than they must be.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from graph.classifier.calibration import Calibration
from graph.classifier.compiled import CachedScorer
from graph.classifier.deferred import Pending
from graph.classifier.encoders import make_encoder
from graph.classifier.finetune import FineTune
from graph.classifier.guides import LabelGuide


class Terminated(BaseException):
    """The worker was asked to stop (SIGTERM, SIGHUP, SIGINT): recorded as `failed` with the signal's
    name, instead of the interpreter ending at once with nothing in the log and the state left
    `running` (a test run's clean-up, a service manager, a shutdown)."""


def _stop(signum: int, _frame: object) -> None:
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", flush=True)


def build(job: dict[str, Any]) -> CachedScorer:
    """The scorer the job describes, compiling in the foreground (the same key as the run's)."""
    cache = Path(job["cache_dir"])
    spec = job["encoder"]
    encoder = make_encoder(
        spec["name"],
        base_url=spec.get("base_url"),
        models_dir=Path(spec["models_dir"]) if spec.get("models_dir") else None,
        onnx_dir=cache,
    )
    scorer = CachedScorer(
        [
            LabelGuide(g["name"], tuple(g["positives"]), tuple(g["negatives"]), g["description"])
            for g in job["guides"]
        ],
        encoder,
        cache_dir=cache,
        finetune=FineTune(**job["finetune"]),
        split_clauses=job["split_clauses"],
        use_descriptions=job["use_descriptions"],
        head_weight=job["head_weight"],
        balance_guides=job.get("balance_guides", True),
        curve_examples=None if job.get("curve_examples") is None else frozenset(job["curve_examples"]),
        out_of_scope=tuple(job["out_of_scope"]),
        finetune_mode="foreground",
        awaits_background=False,  # the lock it would wait for is this process's own
    )
    scorer.progress = _say
    if job.get("calibration") is not None:
        scorer.calibration = Calibration(**job["calibration"])
    return scorer


def main(argv: list[str]) -> int:
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text())
    pending = Pending(Path(job["cache_dir"]), job["key"])
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _stop)
    try:
        lock = FileLock(pending.lock, timeout=2)
        lock.acquire()
    except Timeout:
        _say("another process is fine-tuning these guides: nothing to do")
        return 0
    try:
        if pending.weights.exists() and pending.state().get("state") == "done":
            _say("already fine-tuned: nothing to do")
            return 0
        attempts = int(pending.state().get("attempts") or 0) + 1
        started = time.time()
        pending.write_state(state="running", pid=os.getpid(), started=started, attempts=attempts, error=None)
        _say(f"background fine-tune started (attempt {attempts}, key {job['key']})")
        try:
            if hasattr(os, "nice"):
                os.nice(10)
            build(job).compile()
        except BaseException as exc:  # recorded for the next run, then the process ends
            reason = " ".join(str(exc).split()) or type(exc).__name__
            pending.write_state(
                state="failed", finished=time.time(), error=f"{type(exc).__name__}: {reason}"[:300]
            )
            _say(f"background fine-tune failed: {type(exc).__name__}: {reason}")
            return 1
        pending.write_state(state="done", finished=time.time(), error=None, attempts=0)
        _say(f"background fine-tune done in {time.time() - started:.1f} s: the next run uses it")
        return 0
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
