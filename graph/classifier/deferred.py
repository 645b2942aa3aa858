"""The fine-tune deferred to a background process (issue 19 item 3): a first `routegraph ask` whose
guides have no cached fine-tune answers at once with the base encoder, and a detached process
(`python -m graph.classifier.deferred_worker JOB`) fine-tunes, exports and compiles the scorer into
the cache, so the next run uses it.

Files under the cache directory, named by the fine-tune key (`finetune_key`):
`finetune-KEY.lock` (held by the running worker: one fine-tune per key at a time, `filelock`),
`finetune-KEY.json` (the worker's state: running, done or failed, its pid, attempts and error),
`finetune-KEY.log` (its output) and `finetune-KEY.job.json` (what to build: guides, encoder, settings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

FinetuneMode = Literal["background", "foreground", "off"]
"""`background`: without a cached fine-tune, score with the base encoder and fine-tune in a
detached process for the next run (`routegraph ask`, the server); `foreground`: fine-tune before
the first answer (`routegraph prepare`, eval, tune, Python callers); `off`: the base encoder always."""

MAX_ATTEMPTS = 3
"""Background fine-tunes started for one key that failed or died before one is no longer started
(`routegraph prepare` then fine-tunes in the foreground and shows why)."""


@dataclass(frozen=True)
class Pending:
    """The background fine-tune of one key under one cache directory."""

    cache_dir: Path
    key: str

    @property
    def weights(self) -> Path:
        """The fine-tuned weights `finetune_encoder` saves (their existence means: trained)."""
        return self.cache_dir / f"finetune-{self.key}.pt"

    @property
    def lock(self) -> Path:
        return self.cache_dir / f"finetune-{self.key}.lock"

    @property
    def state_file(self) -> Path:
        return self.cache_dir / f"finetune-{self.key}.json"

    @property
    def log(self) -> Path:
        return self.cache_dir / f"finetune-{self.key}.log"

    @property
    def job(self) -> Path:
        return self.cache_dir / f"finetune-{self.key}.job.json"

    def running(self) -> bool:
        """Whether a worker holds the lock (the lock is the OS's: a killed worker releases it)."""
        if not self.lock.exists():
            return False
        try:
            with FileLock(self.lock, timeout=0):
                return False
        except Timeout:
            return True
        except OSError:  # an unreadable lock file: nobody can be holding it usefully
            return False

    def wait(self, timeout: float = 3600) -> None:
        """Until no worker holds the lock (at most `timeout` seconds: then the caller goes on)."""
        try:
            with FileLock(self.lock, timeout=timeout):
                return
        except (Timeout, OSError):
            return

    def ready(self) -> bool:
        """Trained and no longer being worked on (the export and compile that follow are done).

        Not ready: weights saved by a worker that was killed (or crashed) before it recorded `done`,
        still `running` in its state with its lock free. The weights are written first, then the
        ONNX export and the compile, then `done`: a worker killed in between left the export or
        the compile unfinished, and taking its weights as ready would leave that state `running`
        for good, start no worker again, and have the next ask export in the foreground (a
        long-lived server would never swap to the fine-tuned scorer, which waits for `done`)."""
        if not self.weights.exists() or self.running():
            return False
        return self.state().get("state") != "running"

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, **fields: Any) -> None:
        data = {**self.state(), **fields}
        tmp = self.state_file.with_name(f".{os.getpid()}-{self.state_file.name}")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_file)

    def start(self, job: dict[str, Any]) -> str:
        """Start the worker unless one is running (or it failed `MAX_ATTEMPTS` times); returns the
        progress line that says so. Never raises: a fine-tune that cannot start leaves the base
        weights answering, and the line says why."""
        if self.running():
            started = self.state().get("started")
            since = f"started {time.time() - started:.0f} s ago, " if isinstance(started, int | float) else ""
            return (
                f"using base weights; fine-tuning for the next run in the background ({since}log: {self.log})"
            )
        state = self.state()
        before = ""
        if state.get("state") == "failed":
            before = f"the last background fine-tune failed ({state.get('error') or 'no reason given'}); "
        elif state.get("state") == "running":  # its lock is free: it was killed or crashed
            before = "the last background fine-tune stopped before it finished; "
        attempts = int(state.get("attempts") or 0)
        if before and attempts >= MAX_ATTEMPTS:
            return (
                f"using base weights; {before}not started again after {attempts} attempts: "
                f"`routegraph prepare` fine-tunes in the foreground and shows why (log: {self.log})"
            )
        try:
            self._spawn(job)
        except OSError as exc:
            return f"using base weights; the background fine-tune could not start ({exc})"
        return f"using base weights; {before}fine-tuning for the next run in the background (log: {self.log})"

    def _spawn(self, job: dict[str, Any]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.job.with_name(f".{os.getpid()}-{self.job.name}")
        tmp.write_text(json.dumps(job))
        tmp.replace(self.job)
        with self.log.open("ab") as log:
            subprocess.Popen(  # this interpreter, a module of this package, a job file we wrote
                [sys.executable, "-m", "graph.classifier.deferred_worker", str(self.job)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed with the terminal's process group (Ctrl-C)
                close_fds=True,
            )
