"""The first ask's compile on the base weights (issue 19: <= 8 s): the guides are encoded in
batches of similar length, which only that compile does; its key says so, and the fine-tuned
compile the background worker makes (and its key) stay as they were. Real encoders throughout,
on the session's cache (the base export is made once per test run)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph.classifier.build import build_scorer, compile_ahead
from graph.classifier.compiled import CachedScorer, TimeLeft
from graph.classifier.deferred import Pending
from graph.classifier.deferred_worker import build
from graph.classifier.encoders import LexicalEncoder, MiniLMEncoder, trainable
from graph.classifier.finetune import finetune_key
from graph.cli import AHEAD, BLAS_THREAD_TIMEOUT, _Ahead, _compile_ahead, abandoned_work, quiet_blas_threads
from graph.config.registry import Registry
from graph.config.settings import Settings

# Written for these tests: short and long, so a batch in their order pads a lot.
TEXTS = [
    "hi",
    "Could you tell me, in as much detail as you can manage, why the invoice we received for the "
    "spring quarter lists three seats we removed back in February and never used again?",
    "refund",
    "what's the time in Reykjavik",
    "our dashboards have been timing out since the deploy this morning and the status page says "
    "everything is fine, which it clearly is not",
    "seats?",
    "How much would forty seats on the yearly plan come to with the volume discount?",
    "thanks",
    "is there an outage",
    "Please move the renewal date of our subscription to the first of next month if that is possible",
    "ok",
    "I would like the money back for the second charge on the card ending 4411, it went through twice",
]

REGISTRY = """\
version: 1
classifier:
  encoder: minilm
  finetune: true
  out_of_scope_examples: ["first ask compile test: recommend a good lasagne recipe"]
capabilities:
  - {name: respond, class: "capabilities.respond:Respond", always_active: true}
  - {name: clarify, class: "capabilities.clarify:Clarify", always_active: true}
  - {name: calculator, class: "capabilities.calculator:Calculator"}
  - {name: clock, class: "capabilities.clock:Clock"}
"""


@pytest.fixture
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(onnx_dir=Path(os.environ["ROUTEGRAPH_CACHE_DIR"]))


def test_by_length_batches_give_each_text_its_own_row_with_less_padding(encoder: MiniLMEncoder) -> None:
    runtime = encoder.runtime()
    assert runtime is not None
    told: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    rows = {}
    for by_length in (True, False):
        rows[by_length] = runtime.encode(
            TEXTS,
            4,
            by_length=by_length,
            on_batch=lambda done, total, k=by_length: told[k].append((done, total)),
        )
    alone = np.vstack([runtime.encode([t]) for t in TEXTS])  # a request's own path: no batch at all
    for vectors in rows.values():
        similar = vectors @ alone.T
        assert (similar.argmax(1) == np.arange(len(TEXTS))).all()  # each row is its own text's
        assert np.diag(similar).min() > 0.98  # int8: a batch moves a vector a little
    # Told before the first batch and after each one, up to every token position computed.
    for calls in told.values():
        assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == calls[0][1]
        assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == 1 + len(TEXTS) // 4
    # Batches of similar length compute far fewer padded positions than the texts' own order.
    assert told[True][0][1] < 0.75 * told[False][0][1]


def test_batches_in_order_are_encoded_as_before(encoder: MiniLMEncoder) -> None:
    """The in-order path (a fine-tuned compile's) is byte for byte the old one: each batch padded to
    its longest text by the tokenizer, run as it is."""
    runtime = encoder.runtime()
    assert runtime is not None
    sums, sizes = runtime.token_sums(TEXTS, 5)
    expected_sums, expected_sizes = [], []
    for start in range(0, len(TEXTS), 5):
        batch = runtime.tokenizer.encode_batch(TEXTS[start : start + 5])
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in runtime.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in batch], dtype=np.int64)
        hidden = runtime.session.run(None, feed)[0]
        weights = mask.astype(np.float64)
        expected_sums.append(np.einsum("bsd,bs->bd", hidden.astype(np.float64), weights))
        expected_sizes.append(weights.sum(1))
    assert sums.tobytes() == np.concatenate(expected_sums).tobytes()
    assert sizes.tobytes() == np.concatenate(expected_sizes).tobytes()


def test_the_base_weights_compile_goes_by_length_and_the_fine_tuned_key_stays(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    registry = Registry.from_file(path)
    cache = Path(os.environ["ROUTEGRAPH_CACHE_DIR"])
    settings = Settings.offline(tmp_path, cache_dir=cache, finetune="background")
    scorer = build_scorer(registry, settings)
    assert isinstance(scorer, CachedScorer) and scorer.finetune is not None
    model = trainable(scorer.encoder)
    assert model is not None
    identity, key = model.identity, scorer.compiled_key()  # what the fine-tuned compile is keyed by
    job = scorer._job(finetune_key(model, scorer.guides, scorer.finetune, scorer.out_of_scope))
    with scorer._on_base_weights():
        assert model.bulk and model.identity == f"{identity}:by-length"
        base_key = scorer.compiled_key()
        scorer._compile_cached()
    assert (cache / f"compiled-{base_key}.npz").exists() and base_key != key
    # Afterwards the encoder is the plain one again (a request's clauses go in their order), and
    # the next run and the background worker key the fine-tuned compile as before.
    assert not model.bulk and model.on_batch is None and model.identity == identity
    assert build_scorer(registry, settings).compiled_key() == key
    worker = build(job)
    worker_model = trainable(worker.encoder)
    assert worker.compiled_key() == key and worker_model is not None and not worker_model.bulk
    # `ROUTEGRAPH_FINETUNE=off` compiles on the base weights in their order, under its own key.
    off = build_scorer(registry, Settings.offline(tmp_path, cache_dir=cache, finetune="off"))
    assert off.compiled_key() not in (key, base_key)
    # The two compiles on the base weights differ only a little: the same best capability.
    off.compile()
    asked = ["what's 17 times 23", "what time is it in Lima right now"]
    assert (scorer.raw_scores(asked).argmax(1) == off.raw_scores(asked).argmax(1)).all()


def test_time_left_is_told_from_the_positions_still_to_encode(encoder: MiniLMEncoder) -> None:
    runtime = encoder.runtime()
    assert runtime is not None
    lines: list[str] = []
    runtime.encode(TEXTS * 4, 4, by_length=True, on_batch=TimeLeft(lines.append, after=0, every=0, least=0))
    assert lines and all(
        line.startswith("encoding the guides on the base weights, about ") and line.endswith(" s left")
        for line in lines
    )
    quiet: list[str] = []  # the defaults: nothing for an encode that is over within a second
    runtime.encode(TEXTS, 4, by_length=True, on_batch=TimeLeft(quiet.append))
    assert quiet == []


def test_lexical_idf_is_counted_from_the_features() -> None:
    """The document frequencies come from each text's features, not a dense matrix: the same IDF,
    hash collisions included (a small space forces many)."""
    corpus = [*TEXTS, "", "refund refund refund", "Refund!"]
    for dim in (64, 1 << 14):
        lexicon = LexicalEncoder(dim)
        lexicon.fit(corpus)
        counts = np.zeros((len(corpus), dim), dtype=np.float32)
        for row, text in enumerate(corpus):
            for h, v in lexicon._features(text).items():
                counts[row, h] = v
        df = (counts > 0).sum(axis=0)
        expected = (np.log((1 + len(corpus)) / (1 + df)) + 1.0).astype(np.float32)
        assert lexicon._idf.tobytes() == expected.tobytes()


def test_batches_on_several_threads_are_the_same_rows(encoder: MiniLMEncoder) -> None:
    runtime = encoder.runtime()
    assert runtime is not None
    texts = TEXTS * 3
    alone = runtime.token_sums(texts, 4, by_length=True)
    together = runtime.token_sums(texts, 4, by_length=True, workers=3)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(alone, together, strict=True))


def _fresh_cache(tmp_path: Path, name: str) -> Path:
    """A cache with nothing in it but the base export (the session's, linked): a first ask's."""
    shared = MiniLMEncoder(onnx_dir=Path(os.environ["ROUTEGRAPH_CACHE_DIR"]))
    assert shared.runtime() is not None  # exported once per test run
    folder = shared.onnx_folder()
    assert folder is not None
    cache = tmp_path / name
    (cache / "onnx").mkdir(parents=True)
    (cache / "onnx" / folder.name).symlink_to(folder)
    return cache


def _saved(path: Path) -> dict[str, bytes]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].tobytes() for k in data.files}


class _Encodes:
    """How many texts onnxruntime encodes (`OnnxModel.token_sums`), per call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from graph.classifier.onnx_runtime import OnnxModel

        self.calls: list[int] = []
        real = OnnxModel.token_sums

        def counted(runtime: OnnxModel, texts: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(len(texts))
            return real(runtime, texts, *args, **kwargs)

        monkeypatch.setattr(OnnxModel, "token_sums", counted)


def test_the_compile_ahead_is_the_first_ask_s_compile_and_the_graph_s_scorer_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY.replace("lasagne recipe", "lasagne recipe (ahead)"))
    registry = Registry.from_file(path)
    started: list[str] = []  # the background worker is not spawned here: tests/test_background_finetune.py
    monkeypatch.setattr(Pending, "start", lambda pending, job: started.append(job["key"]) or "started")
    encodes = _Encodes(monkeypatch)

    # The first ask's compile as the graph's scorer makes it (on main too), in a cache of its own.
    first = Settings.offline(tmp_path, cache_dir=_fresh_cache(tmp_path, "a"), finetune="background")
    reference = build_scorer(registry, first)
    assert isinstance(reference, CachedScorer)
    with reference._on_base_weights():
        expected = reference._compiled_path()
        reference._compile_cached()
    one_compile = list(encodes.calls)
    assert one_compile

    # Ahead, in a fresh cache: the same state to the bit, told as the turn would tell it, no worker.
    cache = _fresh_cache(tmp_path, "b")
    settings = Settings.offline(tmp_path, cache_dir=cache, finetune="background")
    lines: list[str] = []
    encodes.calls.clear()
    assert compile_ahead(registry, settings, lines.append)
    assert encodes.calls == one_compile and started == []
    assert lines[0].startswith("first run on these guides: compiling on the base weights")
    saved = cache / expected.name
    assert _saved(saved) == _saved(expected)
    assert not compile_ahead(registry, settings, lines.append)  # cached: nothing to do

    # The graph's scorer loads it, encodes nothing to compile, and starts the fine-tune once.
    encodes.calls.clear()
    scorer = build_scorer(registry, settings)
    assert isinstance(scorer, CachedScorer)
    scorer.compile()
    assert encodes.calls == [] and scorer.weights == "base" and len(started) == 1
    assert scorer.pending is not None and started == [scorer.pending.key]


def test_a_scorer_compiling_what_another_thread_compiles_waits_and_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY.replace("lasagne recipe", "lasagne recipe (at once)"))
    registry = Registry.from_file(path)
    monkeypatch.setattr(Pending, "start", lambda pending, job: "started")
    encodes = _Encodes(monkeypatch)
    alone = Settings.offline(tmp_path, cache_dir=_fresh_cache(tmp_path, "alone"), finetune="background")
    assert compile_ahead(registry, alone)
    one_compile = sorted(encodes.calls)
    encodes.calls.clear()
    settings = Settings.offline(tmp_path, cache_dir=_fresh_cache(tmp_path, "cache"), finetune="background")
    ahead = threading.Thread(target=compile_ahead, args=(registry, settings))
    ahead.start()
    scorer = build_scorer(registry, settings)  # the graph's, asking while the thread compiles
    scorer.compile()
    ahead.join()
    # One compile between them, whichever came first; the other loaded what it saved.
    assert sorted(encodes.calls) == one_compile and scorer.weights == "base"


HEAD_FIT = """
import hashlib, sys
import numpy as np
from graph.classifier.head import fit_head
rng = np.random.default_rng(19)
x = rng.normal(size=(600, 700)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
y = np.zeros((600, 6), dtype=np.float32)
y[np.arange(600), np.arange(600) % 6] = 1.0
a, b = fit_head(x @ x.T, y, y.copy(), np.ones(600, dtype=np.float32))
print(hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest())
"""


def _child(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_blas_threads_that_sleep_train_the_head_to_the_bit() -> None:
    """`routegraph` makes numpy's OpenBLAS threads sleep once their work is done (`quiet_blas_threads`):
    they split the work as before, so the head's training gives the same bits."""
    assert _child(HEAD_FIT) == _child(HEAD_FIT, OPENBLAS_THREAD_TIMEOUT=BLAS_THREAD_TIMEOUT)


def test_the_command_line_sets_the_blas_thread_timeout_unless_given() -> None:
    code = (
        "import os, sys\nimport graph.cli as cli\nsys.argv = ['routegraph', '--version']\n"
        "loaded = 'numpy' in sys.modules\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), loaded)"
    )
    assert _child(code).splitlines()[-1] == f"{BLAS_THREAD_TIMEOUT} False"  # set before numpy loads
    assert _child(code, OPENBLAS_THREAD_TIMEOUT="12").splitlines()[-1] == "12 False"
    environ: dict[str, str] = {}
    quiet_blas_threads(environ)
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": BLAS_THREAD_TIMEOUT}


def test_a_compile_ahead_left_behind_is_abandoned_work(tmp_path: Path) -> None:
    """Bad input ends `ask` before its turn: `main` exits without waiting for the compile ahead."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name=f"{AHEAD}classifier", daemon=True)
    thread.start()
    try:
        assert f"{AHEAD}classifier" in abandoned_work()
    finally:
        release.set()
        thread.join()
    assert f"{AHEAD}classifier" not in abandoned_work()
    # Its lines wait until the request is known to be valid: bad input is refused in one line.
    lines: list[str] = []
    ahead = _Ahead(lines.append)
    ahead.progress("first run on these guides")
    assert lines == []
    ahead.show()
    ahead.progress("about 3 s left")
    assert lines == ["· classifier: first run on these guides", "· classifier: about 3 s left"]
    # Only a first ask in background mode compiles ahead.
    registry = Registry.from_file(Path("registry.yaml"))
    for mode in ("foreground", "off"):
        settings = Settings.offline(tmp_path, finetune=mode)
        assert _compile_ahead(registry, settings, quiet=True) is None
