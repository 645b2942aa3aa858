"""The compiled scorer on disk: prototypes, head, held-out rows and confidence curve, so a warm run
loads them instead of embedding the background requests and fitting again.

`CachedScorer` is a `FewShotScorer` whose compile first looks for its compiled state under the
cache directory, keyed by everything that state depends on: the encoder (its weights and
precision), the fine-tune, the guides, the out-of-scope requests, the scorer's options, and the
source of the modules that compute it. A miss compiles as `FewShotScorer` does and saves the result.

With `finetune_mode="background"` and no cached fine-tune for the guides, it compiles on the base
encoder instead (answering at once) and starts the fine-tune in a detached process (`deferred`),
whose compiled state the next run loads; `weights` says which weights a compiled scorer uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from graph.classifier import finetune as finetune_module
from graph.classifier.calibration import Calibration
from graph.classifier.deferred import FinetuneMode, Pending
from graph.classifier.encoders import LexicalEncoder, MiniLMEncoder, remembered_features, trainable
from graph.classifier.head import Head
from graph.classifier.prototypes import GuideVectors
from graph.classifier.scorer import FewShotScorer

log = logging.getLogger(__name__)
said = logging.getLogger("routegraph.classifier")
"""Shown at `--log-level INFO`: which weights the compiled scorer uses."""

COMPILED = 2
"""Part of the key: bumped when what is saved changes (2: the head's lexical IDF is saved, not
fitted again at each load)."""

_SOURCES = ("scorer", "prototypes", "head", "calibration", "background", "clauses", "guides", "thresholds")


def _source_digest() -> str:
    """The modules that compute the compiled state, hashed: edited code compiles again."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update((here / f"{name}.py").read_bytes())
    return digest.hexdigest()


class TimeLeft:
    """Says how long an encode of many texts has left (`MiniLMEncoder.on_batch`), from the token
    positions computed so far and still to compute: once it has run `after` seconds, then at most
    every `every` seconds, while `least` seconds or more are left."""

    def __init__(
        self, tell: Callable[[str], None], *, after: float = 1.0, every: float = 2.0, least: float = 1.0
    ) -> None:
        self.tell, self.after, self.every, self.least = tell, after, every, least
        self._started = self._told = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == 0:  # a new encode
            self._started, self._told = now, now - self.every
            return
        elapsed = now - self._started
        left = elapsed / done * (total - done)
        if elapsed >= self.after and now - self._told >= self.every and left >= self.least and done < total:
            self._told = now
            self.tell(f"encoding the guides on the base weights, about {max(1, round(left))} s left")


def joined_into(dense: np.ndarray, lexical: np.ndarray, share: float) -> np.ndarray:
    """`head.joined(dense, lexical, share)` to the bit, without its float64 copies: each half
    multiplied by its float64 scale and rounded to float32 as it is written."""
    out = np.empty((len(dense), dense.shape[1] + lexical.shape[1]), dtype=np.float32)
    width = dense.shape[1]
    np.multiply(np.sqrt(1.0 - share), dense, out=out[:, :width], casting="same_kind")
    np.multiply(np.sqrt(share), lexical, out=out[:, width:], casting="same_kind")
    return out


_UNDER_WAY: dict[Path, threading.Lock] = {}
"""The compiled states a scorer of this process is compiling (or loading) now, by path."""
_UNDER_WAY_LOCK = threading.Lock()


@contextmanager
def _compiling(path: Path) -> Iterator[None]:
    """Held while a scorer compiles (or loads) the state saved at `path`: a second scorer of this
    process asking for the same state meanwhile waits, then loads what the first saved, instead
    of compiling it again beside it (`routegraph ask`'s `compile_ahead` thread and the graph's
    scorer)."""
    with _UNDER_WAY_LOCK:
        lock = _UNDER_WAY.setdefault(path, threading.Lock())
    with lock:
        yield
    with _UNDER_WAY_LOCK:
        if _UNDER_WAY.get(path) is lock and not lock.locked():
            del _UNDER_WAY[path]


def _under_way(path: Path) -> bool:
    """Whether a scorer of this process is compiling the state saved at `path` now."""
    with _UNDER_WAY_LOCK:
        lock = _UNDER_WAY.get(path)
    return lock is not None and lock.locked()


Weights = Literal["", "base", "fine-tuned"]
"""What a compiled scorer encodes with: `fine-tuned` weights, the `base` ones (no fine-tune asked
for, none worth training, or one still running in the background), "" before compiling."""


@dataclass
class CachedScorer(FewShotScorer):
    """A `FewShotScorer` that saves its compiled state under `cache_dir` and loads it next time."""

    finetune_mode: FinetuneMode = "foreground"
    """What a compile does when the fine-tune is not cached (`deferred.FinetuneMode`); foreground
    unless told otherwise: a Python caller that compiles gets the fine-tuned scorer, and no process
    is started behind its back."""
    rebuild: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """How a background worker makes this scorer's encoder (`build_scorer` sets it: the encoder
    setting and its directories); without it, background mode fine-tunes in the foreground."""
    awaits_background: bool = field(default=True, compare=False, repr=False)
    """A foreground fine-tune waits for a background worker training the same weights
    (False in the worker itself, which holds that worker's lock)."""
    weights: Weights = field(default="", init=False, compare=False)
    pending: Pending | None = field(default=None, init=False, compare=False, repr=False)
    """The background fine-tune this scorer's compile on base weights started (or found running):
    what `live.LiveScorer` watches to swap in the fine-tuned scorer once it is done."""

    def compiled_key(self) -> str:
        """What the compiled state depends on (computed before compiling, from the settings)."""
        model = trainable(self.encoder)
        tune: object = None
        if (
            self.finetune is not None
            and model is not None
            and finetune_module.worth_training(self.guides, self.out_of_scope)
        ):
            tune = finetune_module.finetune_key(model, self.guides, self.finetune, self.out_of_scope)
        dense: list[object] = []
        if isinstance(model, MiniLMEncoder):
            dense = [model.training_identity, model.precision, model.onnx_dir is not None, model.identity]
        payload = [
            COMPILED,
            _source_digest(),
            type(self.encoder).__name__,
            getattr(self.encoder, "dense_share", None),
            dense,
            self.encoder.identity if model is None else None,
            tune,
            [[g.name, list(g.positives), list(g.negatives), g.description] for g in self.guides],
            list(self.out_of_scope),
            self.use_descriptions,
            self.split_clauses,
            self._head_weight,
            self._head_lexical,
            self.balance_guides,
            None if self.curve_examples is None else sorted(self.curve_examples),
            self.calibration is None,
        ]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]

    def _compile(self) -> None:
        pending = self._deferred()
        if pending is None:
            self._await_background()
            self._compile_cached()
            model = trainable(self.encoder)
            self.weights = "fine-tuned" if model is not None and model.weights_tag != "base" else "base"
        else:
            job = self._job(pending.key)
            with self._on_base_weights():
                path = self._compiled_path()
                if not path.exists() and not _under_way(path):  # else `compile_ahead` told it
                    self._tell_first_run()
                self._compile_cached()
            self.weights = "base"
            self.pending = pending
            # Started once the answer's own compile is done: on a small machine the worker's torch
            # import and training would otherwise slow the first answer down.
            note = pending.start(job)
            finetune_module.tell(self.progress, note)
            said.info("classifier: %s", note)  # the server's log, where no progress line is seen
        said.info("classifier: compiled on the %s weights of %s", self.weights, self.encoder.identity)

    def compile_ahead(self) -> bool:
        """The first ask's compile on the base weights, into the cache, before the graph's scorer
        asks for it: `routegraph ask` runs this on a thread of its own while LangGraph is imported
        and the graph built (imports that keep one core busy, and left the other idle). The graph's
        scorer then loads the saved state (waiting for it if it is still under way in this process,
        `_compile_cached`) and starts the background fine-tune, after the answer's compile as
        before. The same compile as `_compile` makes, so the same state to the bit. Nothing
        happens (False) unless a compile now would be on the base weights with a fine-tune to
        start, and that state is not cached."""
        if self.cache_dir is None or self._deferred() is None:
            return False
        with self._on_base_weights():
            if self._compiled_path().exists():
                return False
            self._tell_first_run()
            self._compile_cached()
        self.weights = "base"
        return True

    def _tell_first_run(self) -> None:
        finetune_module.tell(
            self.progress,
            f"first run on these guides: compiling on the base weights ({len(self._corpus())} guide "
            "texts); the fine-tune follows in the background",
        )

    def awaiting(self) -> Pending | None:
        """The background fine-tune a compile now would wait for (start, or find running) instead
        of loading the fine-tuned weights; None: a compile now loads or makes them."""
        return self._deferred()

    def _deferred(self) -> Pending | None:
        """The background fine-tune to start (or wait for) instead of fine-tuning now: only in
        background mode, for a fine-tune worth training whose weights are not ready."""
        model = trainable(self.encoder)
        if (
            self.finetune_mode != "background"
            or self.finetune is None
            or model is None
            or self.cache_dir is None
            or self.rebuild is None
            or not finetune_module.worth_training(self.guides, self.out_of_scope)
        ):
            return None
        pending = Pending(
            self.cache_dir, finetune_module.finetune_key(model, self.guides, self.finetune, self.out_of_scope)
        )
        return None if pending.ready() else pending

    def _await_background(self) -> None:
        """A fine-tune about to run in the foreground while a background worker trains the same
        weights (`routegraph prepare` right after a first `ask`): wait for the worker and load
        what it saved, instead of training the same weights twice side by side."""
        model = trainable(self.encoder)
        if not self.awaits_background or self.finetune is None or model is None or self.cache_dir is None:
            return
        pending = Pending(
            self.cache_dir, finetune_module.finetune_key(model, self.guides, self.finetune, self.out_of_scope)
        )
        if pending.running():
            finetune_module.tell(
                self.progress, f"waiting for the background fine-tune to finish (log: {pending.log})"
            )
            pending.wait()

    @contextmanager
    def _on_base_weights(self) -> Iterator[None]:
        """Compile as if no fine-tune were asked for. A curve and thresholds `routegraph tune` fitted
        were fitted on the fine-tuned scores: set aside (the curve is fitted on the guides, the
        registry's threshold applies), as for any other change of weights.

        A person waits for this compile: the guides are encoded in batches of similar length, on
        the free cores (`MiniLMEncoder.bulk`; on the shipped guides, with
        `classifier.labelled_examples`, the encoding takes a third of the CPU time), with the time
        left told as it goes (`TimeLeft`). The batches by length are part of the encoder's
        identity, so of this compile's key: the fine-tuned compile the background process makes,
        and its key, are as before."""
        finetune = self.finetune
        self.finetune, self.calibration, self.thresholds, self.default_threshold = None, None, {}, None
        model = trainable(self.encoder)
        if model is not None:
            model.bulk, model.on_batch = True, TimeLeft(lambda m: finetune_module.tell(self.progress, m))
        try:
            yield
        finally:
            self.finetune = finetune  # the key of the fine-tune the background process makes
            if model is not None:  # a request's clauses are encoded as they always were
                model.bulk, model.on_batch = False, None

    def _job(self, key: str) -> dict[str, Any]:
        """What the background worker builds: this scorer with its fine-tune, compiled in the
        foreground (the same compiled key as the next run computes)."""
        assert self.finetune is not None and self.cache_dir is not None
        calibration = self.calibration
        return {
            "key": key,
            "cache_dir": str(self.cache_dir),
            "encoder": self.rebuild,
            "guides": [
                {
                    "name": g.name,
                    "positives": list(g.positives),
                    "negatives": list(g.negatives),
                    "description": g.description,
                }
                for g in self.guides
            ],
            "finetune": vars(self.finetune),
            "out_of_scope": list(self.out_of_scope),
            "split_clauses": self.split_clauses,
            "balance_guides": self.balance_guides,
            "curve_examples": None if self.curve_examples is None else sorted(self.curve_examples),
            "use_descriptions": self.use_descriptions,
            "head_weight": self.head_weight,
            "calibration": None
            if calibration is None
            else {"slope": calibration.slope, "midpoint": calibration.midpoint},
        }

    def _compiled_path(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"compiled-{self.compiled_key()}.npz"

    def _compile_cached(self) -> None:
        if self.cache_dir is None:
            self._compile_once()
            return
        path = self._compiled_path()
        with _compiling(path):  # one compile of a state per process: another waits, then loads it
            if path.exists():
                try:
                    self._load_compiled(path)
                    return
                except (OSError, ValueError, KeyError) as exc:  # a damaged file: compile again
                    log.warning("%s: unreadable (%s), compiling again", path, exc)
            self._compile_once()
            self._save_compiled(path)

    def _head_rows(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """`FewShotScorer._head_rows` written into one float32 array: `head.joined` scales the
        16,384-wide lexical half in float64 (a 125 MB array for the shipped guides) and casts
        the joined rows after; here each half is scaled into its place (`joined_into`)."""
        if self._head_lexical <= 0 or not len(texts):
            return vectors
        return joined_into(vectors, self._lexical().encode(texts), self._head_lexical)

    def _compile_once(self) -> None:
        """`FewShotScorer._compile`, each text's lexical features computed once
        (`remembered_features`: the IDF, the head's rows, the calibration and the background's
        scores read the same texts); the compiled state is the same to the bit."""
        with remembered_features():
            super()._compile()

    def _load_compiled(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        # The encoder is set up as compiling would (IDF of a lexical half; the cached fine-tune,
        # which loads no weights), so requests are encoded as the saved guides were.
        corpus = [t for g in self.guides for t in (*g.positives, *g.negatives, g.description) if t]
        self.encoder.fit(corpus)
        model = trainable(self.encoder)
        if self.finetune and model is not None:
            finetune_module.finetune_encoder(
                model,
                self.guides,
                self.finetune,
                cache_dir=self.cache_dir,
                progress=self.progress,
                out_of_scope=self.out_of_scope,
            )
        if meta["identity"] != self.encoder.identity:
            raise ValueError("saved for another encoder state")
        vectors: dict[str, Any] = {f.name: arrays[f"v_{f.name}"] for f in fields(GuideVectors)}
        vectors["described"] = [int(i) for i in vectors["described"]]
        self._vectors = GuideVectors(**vectors)
        self._background = tuple(meta["background"])
        self._head = Head(arrays["head_weights"], arrays["head_bias"]) if "head_weights" in arrays else None
        if "lexicon_idf" in arrays:
            # The head's lexical IDF as saved: fitting it again on the guides cost a warm ask
            # about 0.2 s of CPU (every guide text's n-grams hashed) for the same array.
            lexicon = LexicalEncoder(dim=len(arrays["lexicon_idf"]))
            lexicon._idf = arrays["lexicon_idf"].astype(np.float32, copy=False)
            self._lexicon = lexicon
        self._held_out = (arrays["held_raw"], arrays["held_truth"]) if "held_raw" in arrays else None
        if self.calibration is None:
            self.calibration = Calibration(**meta["calibration"])
        self._compiled = True

    def _save_compiled(self, path: Path) -> None:
        assert self.calibration is not None
        meta = {
            "identity": self.encoder.identity,
            "background": list(self._background),
            "calibration": {"slope": self.calibration.slope, "midpoint": self.calibration.midpoint},
        }
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
        for f in fields(GuideVectors):
            arrays[f"v_{f.name}"] = np.asarray(getattr(self._vectors, f.name))
        if self._head is not None:
            arrays["head_weights"], arrays["head_bias"] = self._head.weights, self._head.bias
        if self._held_out is not None:
            arrays["held_raw"], arrays["held_truth"] = self._held_out
        if self._lexicon is not None:
            arrays["lexicon_idf"] = self._lexicon._idf
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{os.getpid()}-{path.name}")
        with tmp.open("wb") as out:
            np.savez(out, allow_pickle=False, **arrays)
        tmp.replace(path)
