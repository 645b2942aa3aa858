"""Sentence encoders through onnxruntime and tokenizers: inference without torch.

A sentence-transformers model (its transformer, then mean pooling, then L2 normalisation) is
exported once (`export`, which needs torch) to a folder keyed by the weights' content: the
transformer as `model.onnx`, its fast tokenizer as `tokenizer.json`, and what pooling needs in
`meta.json`. Two copies are derived from that export once, with onnxruntime only (no torch):
`model.opt2.onnx`, the graph with onnxruntime's transformer fusions (attention, LayerNorm with its
residual, GELU with its bias: `optimized`; mpnet's attention, which adds a relative position bias,
by `fuse_biased_attention`), the `fp32` model; and `model.*.onnx`, that graph with int8 weights
(`quantized`): MiniLM's fused attention per output channel and its other weight matrices per block
of 32 rows where the CPU has VNNI; mpnet's weight matrices per output channel with the activations
quantised per token (`TOKENWISE`). `OnnxModel`
reads the folder and pools exactly as sentence-transformers does: the mean of the token vectors
under the attention mask, then unit length.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

EXPORT = 2
"""Part of every export folder's key: bumped when the export itself changes (2: exported with
eager attention, which onnxruntime's optimizer fuses into one `Attention` node per layer)."""

Precision = Literal["fp32", "int8"]
"""`fp32`: the exported weights as trained, on the fused graph; `int8`: the fused graph with int8
weights: the attention's projections dynamically quantised per channel (`QUANTIZE`), and, on a CPU
with VNNI (`BLOCKS_BY_DEFAULT`, `blockwise`), every other weight matrix per block (`BLOCKWISE`); see
`quantized`."""

PLAIN = "model.onnx"
OPTIMIZED = "model.opt2.onnx"
"""The fused fp32 graph (2: mpnet's attention fused too, `fuse_biased_attention`; session 16). Its
name changes with what `optimized` makes, so an export's older fused graph is not read as this one."""
BERT_FUSED = "model.opt.onnx"
"""The graph with the BERT rules' fusions only (`optimized(folder, attention=False)`): session 15's
fused graph, kept for the benchmark's `onnx-fp32-bert` variant."""
QUANTIZE = ("attention",)
"""The layers `quantized` makes int8 (kinds in `LAYERS`): the attention's query, key and value
projections, in every transformer layer. Quantising more (the attention's output, the
feed-forward layers) was faster but lost CLINC150 accuracy (README § Latency: measured). Never the
products of two activations (attention scores, in a graph whose attention is not fused: mpnet),
never the embeddings."""
PROBES = (
    "What is 12*7 and what time is it in Tokyo?",
    "hi",
    "I was charged twice for order A-1042, please refund the second payment",
)
"""Texts an optimised graph must encode as the plain export does before it is used."""


BLOCKWISE: tuple[str, ...] = ("attention", "attention_output", "ffn_input", "ffn_output")
"""The layers whose weight matrices (MatMul nodes) `quantized` makes int8 in blocks of `BLOCK`
input rows, each block its own scale (`MatMulNBits`, 8 bits, onnxruntime's weight-only quantiser),
computed in int8 on the fly (`accuracy_level` 4: the activations quantised per block too). A scale
per block of 32 follows the weights far more closely than one per output channel: the feed-forward
layers, whose per-channel int8 copy lost CLINC150 accuracy, keep MiniLM's vectors within cosine
0.999 of fp32 this way, and they are 80% of its time (README § Latency, round 3: measured). A
MatMul named here is not also quantised per channel (`QUANTIZE`): mpnet's unfused attention
projections go in blocks; MiniLM's are inside its fused `Attention` node, which stays per channel.
Empty on a CPU without int8 dot-product instructions (`int8_dot_product`), where onnxruntime
would compute these blocks in float, three times slower than fp32 here."""
BLOCK = 32
"""Rows per block of `BLOCKWISE` weights (32: the closest vectors of 32, 64, 128 measured)."""

TOKENWISE: dict[str, float] = {
    "attention": 0.8,
    "attention_output": 0.5,
    "ffn_input": 0.5,
    "ffn_output": 0.5,
}
"""mpnet's int8 recipe (`quantized(..., tokens=...)`, `encoders.MPNET_INT8`): the weight matrices of
these layers int8 per output channel, their inputs quantised on the fly (onnxruntime's
`DynamicQuantizeMatMul`, an int8 matrix product twice as fast here as `MatMulNBits`' blocks), after
two exact rescalings that keep that per-tensor quantiser close: each input column divided by a
smoothing factor folded into the weights' rows (SmoothQuant: max|x|^alpha / max|w|^(1 - alpha),
alpha per layer kind as given, max|x| from `CALIBRATION`), and each row (token) divided by its
largest magnitude, multiplied back after the product (`_tokenwise`). mpnet's `<s>` and `</s>`
tokens carry activations 20-50 times the others' in a few channels: quantised per tensor, every
other token's values fell to a few levels (cosine 0.86 to fp32's vectors); per token and smoothed,
0.9939 at the least (0.9906 in a padded batch), 0.9985 on average over 150 CLINC150 requests
(CHANGELOG, "Session 16: mpnet latency": measured, with the alphas tried)."""
TOKENWISE_VERSION = 1
"""Part of the token-wise recipe's name: bumped when `_tokenwise` or `CALIBRATION` change."""
CALIBRATION = (
    *PROBES,
    "book me a flight to Paris next Friday",
    "what's my account balance",
    "set an alarm for 7 am",
    "How do I reset my password?",
    "translate 'good morning' into German",
    "is it going to rain tomorrow",
    "cancel my subscription",
    "who wrote Pride and Prejudice?",
    "ok thanks, bye",
    "play some jazz",
    "my card was declined at the store, why?",
    "Summarise this document in three bullet points",
)
"""Texts whose activations set `TOKENWISE`'s smoothing factors (the largest magnitude per input
column): fixed, so a recipe's int8 copy is the same on every machine."""


@functools.cache
def int8_dot_product() -> bool:
    """Whether the CPU has the int8 dot-product instructions (VNNI: AVX512-VNNI or AVX-VNNI) that
    onnxruntime's block-wise int8 kernels use; read from /proc/cpuinfo (False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_vnni", "avx_vnni"))


@functools.cache
def _block_quantiser() -> bool:
    """Whether onnxruntime's block-wise quantiser can be imported (it needs `onnx_ir`, a dependency
    an install may lack): without it the int8 recipe stays the attention-only one."""
    import importlib.util

    return importlib.util.find_spec("onnx_ir") is not None


BLOCKS_BY_DEFAULT = True
"""Whether the default int8 recipe adds `BLOCKWISE` (where the CPU and the install allow it). On
since session 15: MiniLM's `score()` CPU p50 3.76 ms against 4.60 ms for the attention-only recipe
(1.22x; 1.37x wall, one interleaved run), CLINC150 in-scope accuracy within 0.0012 at the same
threshold and out-of-scope recall, the support and conversation dev sets equal or better, and the
pinned secondary how-to that kept it opt-in in session 13 now kept (README § Latency, round 3).
mpnet follows (`encoders.mpnet_precision`: int8 blocks where this is on). Off, or on a CPU without
VNNI: the attention-only recipe (`quantized(folder, blocks=())`, the benchmark's
`onnx-int8-attention`); routing then differs slightly from a VNNI machine's (its own cache key)."""


def blockwise() -> tuple[str, ...]:
    """`BLOCKWISE` when `BLOCKS_BY_DEFAULT`, on a CPU with VNNI where the block-wise quantiser is
    installed; nothing elsewhere."""
    return BLOCKWISE if BLOCKS_BY_DEFAULT and int8_dot_product() and _block_quantiser() else ()


SMALL_BATCH = 8
"""Up to this many texts (a request and its clauses) are tokenised one by one (`OnnxModel._padded`)."""


BULK_WORKERS = 4
"""At most this many threads run the batches of a first run's compile at once (`bulk_workers`)."""


def bulk_workers() -> int:
    """Threads for the batches of a compile a person waits for: the cores this process may use, at
    most `BULK_WORKERS` (each runs one batch on one core; more hold more activations at once)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(BULK_WORKERS, cores))


def recipe(
    precision: Precision,
    quantize: Sequence[str] | None = None,
    blocks: Sequence[str] | None = None,
    tokens: Sequence[str] = (),
) -> str:
    """Names what a precision computes: part of the encoder's identity (and so of every cache key)
    and of the int8 file's name, so vectors of one recipe are never read as another's. `tokens`:
    the layers quantised token-wise (`TOKENWISE`; none by default)."""
    if precision == "fp32":
        return "fp32"
    quantize, blocks, tokens = _plan(quantize, blocks, tokens)
    parts = ["int8-" + "-".join(sorted(quantize))] if quantize else []
    if tokens:
        parts.append(f"tok{TOKENWISE_VERSION}-" + "-".join(sorted(tokens)))
    if blocks:
        parts.append(f"b{BLOCK}-" + "-".join(sorted(blocks)))
    return "+".join(parts) or "int8-"


Int8Recipe = dict[str, tuple[str, ...]]
"""`quantized`'s keywords (`quantize`, `blocks`, `tokens`) for an encoder whose int8 recipe is not
the default (mpnet: `encoders.MPNET_INT8`); empty for the default."""


def complete(folder: Path) -> bool:
    return (folder / ".complete").exists()


class OnnxModel:
    """An exported transformer and its tokenizer: token vectors, summed per text, and sentence vectors."""

    def __init__(
        self,
        folder: Path,
        *,
        precision: Precision = "fp32",
        threads: int | None = 1,
        model: Path | None = None,
        int8: Int8Recipe | None = None,
    ) -> None:
        """`model`: a model file other than the precision's (the unfused export, for a benchmark);
        `int8`: the int8 recipe, when not the default (`quantized`'s keywords)."""
        from tokenizers import Tokenizer

        self.folder = folder
        meta = json.loads((folder / "meta.json").read_text())
        self.max_length = int(meta["max_seq_length"])
        self.dimension = int(meta["dimension"])
        self.mean_pooled = bool(meta["mean_pooled"])
        self.inputs: list[str] = list(meta["inputs"])
        path = model or (quantized(folder, **(int8 or {})) if precision == "int8" else optimized(folder))
        self.session = session(path, threads)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = int(meta["pad_id"])
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=str(meta["pad_token"]))
        self._lock = threading.Lock()

    def token_sums(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        *,
        by_length: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
        workers: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per text, the sum of its token vectors under the attention mask (float64) and how many
        tokens that is: a mean pooling split in two, so pieces of a text can be pooled together.

        Batches of `batch_size` texts in their order, each padded to its longest. `by_length`:
        batches of texts of similar length (in order of their token counts), the rows returned in
        the texts' order: far less padding to compute (the shipped guides: 15,462 token positions
        instead of 43,798, a third of the time), and vectors that move a little (cosine 0.997 at
        the least on those guides), since an int8 graph quantises its activations per batch.
        `on_batch(done, total)`: told the token positions computed and to compute, before the first
        batch (0) and after each one. `workers`: batches run on that many threads at once (each
        batch computes what it computes alone: the same rows, sooner where cores are free)."""
        if len(texts) == 1:
            return self._one(texts[0])
        if not texts:
            return np.zeros((0, self.dimension)), np.zeros(0)
        if by_length:
            encoded = self._tokenized(list(texts))
            order = sorted(range(len(texts)), key=lambda i: sum(encoded[i].attention_mask))  # stable
            batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
            feeds = [self._feed([encoded[i] for i in batch]) for batch in batches]
        else:
            feeds = [
                self._padded(list(texts[start : start + batch_size]))
                for start in range(0, len(texts), batch_size)
            ]
        sums: list[np.ndarray] = []
        sizes: list[np.ndarray] = []
        positions = sum(feed["input_ids"].size for feed in feeds)
        done = 0
        if on_batch is not None:
            on_batch(done, positions)
        for feed, hidden in zip(feeds, self._runs(feeds, workers), strict=True):
            mask = feed["attention_mask"]
            weights = mask.astype(np.float64)
            sums.append(np.einsum("bsd,bs->bd", hidden.astype(np.float64), weights))
            sizes.append(weights.sum(1))
            done += feed["input_ids"].size
            if on_batch is not None:
                on_batch(done, positions)
        total, counts = np.concatenate(sums), np.concatenate(sizes)
        if by_length:
            rows = np.empty(len(order), dtype=np.intp)
            rows[np.array(order, dtype=np.intp)] = np.arange(len(order))
            total, counts = total[rows], counts[rows]
        return total, counts

    def _runs(self, feeds: Sequence[dict[str, np.ndarray]], workers: int) -> Iterator[np.ndarray]:
        """The token vectors of each feed, in order: one run at a time (the session has one thread
        of its own), or on `workers` threads at once (onnxruntime runs one session from several)."""
        if workers <= 1 or len(feeds) < 2:
            for feed in feeds:
                with self._lock:
                    yield self.session.run(None, feed)[0]
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="onnx-batches") as pool:
            yield from pool.map(lambda feed: self.session.run(None, feed)[0], feeds)

    def _tokenized(self, texts: list[str]) -> list[Any]:
        """The tokenizer's encodings of `texts` (padded by `encode_batch` to the longest: `_feed`
        reads each one's own tokens from its attention mask). A request's few clauses are
        tokenised one by one: `encode_batch` hands them to the tokenizer's thread pool, whose
        wake-ups cost 4 ms at the 95th percentile on this loaded machine (and 28 ms on average
        under cProfile) against 0.1 ms for `encode` each (README § Latency, round 3)."""
        if len(texts) > SMALL_BATCH:
            return list(self.tokenizer.encode_batch(texts))
        return [self.tokenizer.encode(t) for t in texts]

    def _padded(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The session's inputs for a batch, padded on the right to its longest text."""
        return self._feed(self._tokenized(texts))

    def _feed(self, encoded: Sequence[Any]) -> dict[str, np.ndarray]:
        """The session's inputs for these encodings, padded on the right to the longest."""
        lengths = [sum(e.attention_mask) for e in encoded]
        width = max(lengths)
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        types = np.zeros((len(encoded), width), dtype=np.int64)
        for row, (e, n) in enumerate(zip(encoded, lengths, strict=True)):
            ids[row, :n] = e.ids[:n]
            mask[row, :n] = e.attention_mask[:n]
            types[row, :n] = e.type_ids[:n]
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = types
        return feed

    def _one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """`token_sums` of one text (the graph's per-request path): no padding, so every token is
        under the mask and the sum needs no weights."""
        encoded = self.tokenizer.encode(text)
        ids = np.array([encoded.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)  # one segment: all zeros, as the tokenizer says
        with self._lock:
            hidden = self.session.run(None, feed)[0]
        return hidden[0].sum(0, dtype=np.float64)[None], np.array([float(ids.shape[1])])

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        *,
        by_length: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
        workers: int = 1,
    ) -> np.ndarray:
        """Unit-length sentence vectors, as `SentenceTransformer.encode(normalize_embeddings=True)`
        (`by_length`, `on_batch`, `workers`: see `token_sums`)."""
        sums, sizes = self.token_sums(
            texts, batch_size, by_length=by_length, on_batch=on_batch, workers=workers
        )
        means = sums / np.maximum(sizes, 1e-9)[:, None]  # sentence-transformers clamps at 1e-9
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        return (means / np.maximum(norms, 1e-12)).astype(np.float32)  # as torch's F.normalize


def session(path: Path, threads: int | None = 1) -> Any:
    """An onnxruntime CPU session on `path`: `threads` for the operators (None: onnxruntime's
    default, a thread per core), one for the graph, every graph optimisation, and threads that
    sleep when idle instead of spinning (on a shared machine a spinning pool takes CPU from the
    other processes, and from the request that comes next)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no graph-optimisation notes on stderr
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The optimizer and the quantiser log advice and progress through the root logger and
    `onnxruntime.*` loggers: errors only, meanwhile."""
    loggers = [
        logging.getLogger(),
        *(
            logging.getLogger(n)
            for n in (
                "onnxruntime",
                "onnx_model",
                "fusion_base",
                "onnxruntime.quantization.matmul_nbits_quantizer",
            )
        ),
    ]
    levels = [x.level for x in loggers]
    for x in loggers:
        x.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for x, level in zip(loggers, levels, strict=True):
            x.setLevel(level)


def _derive(folder: Path, name: str, make: Callable[[Path], None]) -> Path:
    """`folder/name`, made once by `make(tmp)` and renamed into place (another process sees the
    file complete or not at all)."""
    target = folder / name
    if target.exists():
        return target
    tmp = folder / f".{os.getpid()}-{threading.get_ident()}.{name}"
    try:
        with _quiet():
            make(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _probe(folder: Path, path: Path) -> np.ndarray:
    """Mean-pooled, unit-length vectors of `PROBES` through the model at `path`: one at a time,
    then as one batch padded on the right (the attention mask's path)."""
    from tokenizers import Tokenizer

    meta = json.loads((folder / "meta.json").read_text())
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    runner = session(path)
    encoded = [tokenizer.encode(text).ids for text in PROBES]
    width = max(len(e) for e in encoded)
    ids = np.full((len(encoded), width), int(meta["pad_id"]), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, : len(e)], mask[row, : len(e)] = e, 1
    rows = []
    for batch, weights in [
        *((ids[i : i + 1, : len(e)], mask[i : i + 1, : len(e)]) for i, e in enumerate(encoded)),
        (ids, mask),
    ]:
        feed = {"input_ids": batch, "attention_mask": weights, "token_type_ids": np.zeros_like(batch)}
        hidden = runner.run(None, {k: v for k, v in feed.items() if k in meta["inputs"]})[0]
        means = (hidden * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)
        rows.extend(means / np.linalg.norm(means, axis=1, keepdims=True))
    return np.array(rows)


def optimized(folder: Path, attention: bool = True) -> Path:
    """The fp32 model: the export with onnxruntime's transformer fusions (`optimize_model`,
    BERT rules, which also fuse mpnet's LayerNorms and GELUs; then `fuse_biased_attention` for
    mpnet's attention; `attention` False: not that, `BERT_FUSED`), made once. Used only if it
    encodes `PROBES` as the plain export does, one at a time and as a padded batch (cosine >
    0.9999); otherwise the plain export is linked in its place, so the check is not repeated."""
    plain = folder / PLAIN

    def make(tmp: Path) -> None:
        from onnxruntime.transformers.optimizer import optimize_model

        meta = json.loads((folder / "meta.json").read_text())
        try:
            fused = optimize_model(
                str(plain),
                model_type="bert",
                num_heads=int(meta["heads"]),
                hidden_size=int(meta["dimension"]),
                opt_level=0,  # fusions only: what onnxruntime adds at load time stays portable
            )
            if attention:
                fuse_biased_attention(fused.model)
            fused.save_model_to_file(str(tmp))
            agrees = bool((_probe(folder, tmp) * _probe(folder, plain)).sum(1).min() > 0.9999)
        except Exception as exc:  # an architecture the fusion rules do not know: run it unfused
            log.warning("onnxruntime could not optimise %s (%s): running the plain export", folder.name, exc)
            agrees = False
        if not agrees:
            tmp.unlink(missing_ok=True)
            os.link(plain, tmp)

    return _derive(folder, OPTIMIZED if attention else BERT_FUSED, make)


def _graph_maps(graph: Any) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, Any]]:
    """A graph's producers (by output name), consumers (by input name) and initializers."""
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return producer, consumers, {i.name: i for i in graph.initializer}


def _sort_and_prune(graph: Any) -> None:
    """Drops the nodes (and initializers) no graph output depends on any longer, then puts the
    nodes in an order where each comes after its inputs' producers (ONNX's rule)."""
    keep = list(graph.node)
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in keep for i in n.input} | outputs
        alive = [n for n in keep if any(o in used for o in n.output)]
        if len(alive) == len(keep):
            break
        keep = alive
    used = {i for n in keep for i in n.input}
    initializers = [i for i in graph.initializer if i.name in used]
    available = {i.name for i in graph.input} | {i.name for i in initializers} | {""}
    ordered: list[Any] = []
    while keep:
        ready = [n for n in keep if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the graph has a cycle or an input nothing produces")
        ordered += ready
        for n in ready:
            available.update(n.output)
        ready_ids = {id(n) for n in ready}
        keep = [n for n in keep if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def fuse_biased_attention(model: Any) -> int:
    """Rewrites each self-attention that onnxruntime's BERT rules left unfused because it adds a
    bias to its scores (mpnet's relative position bias, then the attention mask) as one
    `MultiHeadAttention` node (onnxruntime's contrib op): the query, key and value projections stay
    MatMul nodes of their own (their biases go into the fused node), and the position bias plus
    the mask is added once for all layers, as the node's `attention_bias` (batch, heads, tokens,
    tokens). The pattern, per layer, as torch.onnx.export traces MPNet's eager attention:
    `Softmax(MatMul(q, k^T) / sqrt(d) + position_bias + mask) @ v`, q, k and v each
    `Transpose(Reshape(Add(MatMul(x, W), b)))` of one input x, the product transposed back and
    reshaped to (batch, tokens, hidden). Returns how many were fused (0 where there is none, as in
    MiniLM's graph, whose attention the BERT rules fuse already); `model` is changed in place."""
    from onnx import helper, numpy_helper

    graph = model.graph
    producer, consumers, initializers = _graph_maps(graph)

    def made_by(name: str, op: str) -> Any:
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    def perm(node: Any) -> tuple[int, ...]:
        return tuple(next((a.ints for a in node.attribute if a.name == "perm"), ()))

    def scalar(name: str) -> float | None:
        if name in initializers:
            value = numpy_helper.to_array(initializers[name])
        elif (node := made_by(name, "Constant")) is not None and node.attribute:
            value = numpy_helper.to_array(node.attribute[0].t)
        else:
            return None
        return float(value.reshape(-1)[0]) if value.size == 1 else None

    def projection(name: str, order: tuple[int, ...]) -> tuple[Any, str, list[Any]] | None:
        """The MatMul, bias and the nodes between them and the heads' layout (`order`)."""
        transpose = made_by(name, "Transpose")
        if transpose is None or perm(transpose) != order:
            return None
        reshape = made_by(transpose.input[0], "Reshape")
        add = reshape is not None and made_by(reshape.input[0], "Add")
        if not add:
            return None
        biases = [i for i in add.input if i in initializers]
        others = [i for i in add.input if i not in initializers]
        matmul = len(biases) == 1 and len(others) == 1 and made_by(others[0], "MatMul")
        if not matmul or matmul.input[1] not in initializers:
            return None
        return matmul, biases[0], [transpose, reshape, add]

    removed: set[int] = set()
    added: list[Any] = []
    summed: dict[tuple[str, str], str] = {}
    fused = 0
    for softmax in list(graph.node):
        if softmax.op_type != "Softmax":
            continue
        masked = made_by(softmax.input[0], "Add")
        if masked is None:
            continue
        biased = next((producer[i] for i in masked.input if (made_by(i, "Add"))), None)
        if biased is None:
            continue
        scaled = next((producer[i] for i in biased.input if made_by(i, "Div")), None)
        if scaled is None:
            continue
        mask = next(i for i in masked.input if i != biased.output[0])
        position = next(i for i in biased.input if i != scaled.output[0])
        divisor = scalar(scaled.input[1])
        scores = made_by(scaled.input[0], "MatMul")
        users = consumers.get(softmax.output[0], [])
        if divisor is None or scores is None or len(users) != 1 or users[0].op_type != "MatMul":
            continue
        weighted = users[0]
        q = projection(scores.input[0], (0, 2, 1, 3))
        k = projection(scores.input[1], (0, 2, 3, 1))
        v = projection(weighted.input[1], (0, 2, 1, 3))
        after = consumers.get(weighted.output[0], [])
        if q is None or k is None or v is None or len(after) != 1 or after[0].op_type != "Transpose":
            continue
        back = after[0]
        merged = consumers.get(back.output[0], [])
        if perm(back) != (0, 2, 1, 3) or len(merged) != 1 or merged[0].op_type != "Reshape":
            continue
        if len({q[0].input[0], k[0].input[0], v[0].input[0]}) != 1:
            continue
        hidden = int(numpy_helper.to_array(initializers[q[0].input[1]]).shape[1])
        head_size = round(divisor**2)
        if head_size <= 0 or abs(divisor**2 - head_size) > 1e-3 or hidden % head_size:
            continue
        if (position, mask) not in summed:  # the same for every layer: added once
            name = f"/attention_bias_{len(summed)}"
            added.append(helper.make_node("Add", [position, mask], [name], name=name))
            summed[position, mask] = name
        bias = np.concatenate([numpy_helper.to_array(initializers[p[1]]) for p in (q, k, v)])
        bias_name = q[0].name.rsplit("/", 2)[0] + "/qkv_bias"
        graph.initializer.append(numpy_helper.from_array(bias.astype(np.float32), bias_name))
        added.append(
            helper.make_node(
                "MultiHeadAttention",
                [q[0].output[0], k[0].output[0], v[0].output[0], bias_name, "", summed[position, mask]],
                [merged[0].output[0]],
                name=softmax.name.rsplit("/", 1)[0] + "/MultiHeadAttention",
                domain="com.microsoft",
                num_heads=hidden // head_size,
                scale=1.0 / divisor,
            )
        )
        for node in [*q[2], *k[2], *v[2], scores, scaled, biased, masked, softmax, weighted, back, merged[0]]:
            removed.add(id(node))
        fused += 1
    if not fused:
        return 0
    kept = [n for n in graph.node if id(n) not in removed]
    del graph.node[:]
    graph.node.extend([*kept, *added])
    _sort_and_prune(graph)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return fused


LAYERS = {
    "attention": (
        "/attention/self/query/",
        "/attention/self/key/",
        "/attention/self/value/",
        "/attn/q/",
        "/attn/k/",
        "/attn/v/",
    ),
    "attention_output": ("/attention/output/dense/", "/attention/attn/o/"),
    "ffn_input": ("/intermediate/dense/",),
    "ffn_output": ("/output/dense/",),
}
"""Layer kinds `QUANTIZE` can name, by the node names torch.onnx.export gives BERT and mpnet
(`/inner/encoder/layer.3/intermediate/dense/MatMul`); a fused `Attention` node is `attention`."""


def _kind(node: Any) -> str | None:
    """Which of `LAYERS` a node computes (None: none of them)."""
    if node.op_type == "Attention":
        return "attention"
    name = str(node.name)
    for kind, parts in LAYERS.items():
        if kind == "ffn_output" and "/attention/" in name:
            continue
        if any(part in name for part in parts):
            return kind
    return None


def _plan(
    quantize: Sequence[str] | None, blocks: Sequence[str] | None, tokens: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """`quantized`'s layer kinds with their defaults, each in one scheme only: token-wise first,
    then blocks, then per channel."""
    tokens = tuple(sorted(tokens))
    blocks = tuple(sorted(b for b in (blockwise() if blocks is None else blocks) if b not in tokens))
    quantize = tuple(sorted(q for q in (QUANTIZE if quantize is None else quantize) if q not in tokens))
    return quantize, blocks, tokens


def quantized(
    folder: Path,
    quantize: Sequence[str] | None = None,
    blocks: Sequence[str] | None = None,
    tokens: Sequence[str] = (),
) -> Path:
    """The int8 copy of the fp32 (fused) model, made once: the layers `quantize` names (default
    `QUANTIZE`) get int8 weights per output channel (per-tensor int8 lost up to 0.13 of cosine),
    their inputs quantised on the fly (`quantize_dynamic`); the weight matrices of the layers
    `blocks` names (default `blockwise()`) get int8 weights per block of `BLOCK` rows
    (`MatMulNBits`); those of the layers `tokens` names (none by default; mpnet: `TOKENWISE`)
    int8 per output channel with their inputs smoothed and quantised per token (`_tokenwise`);
    every other node stays float."""
    quantize, blocks, tokens = _plan(quantize, blocks, tokens)

    def make(tmp: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source = optimized(folder)
        model = onnx.load(str(source), load_external_data=False)
        graph = model.graph
        weights = {w.name for w in graph.initializer}

        def weighted(kinds: Sequence[str], ops: Sequence[str]) -> list[str]:
            return [
                n.name
                for n in graph.node
                if n.op_type in ops
                and len(n.input) > 1
                and n.input[1] in weights  # a weight matrix, not a product of two activations
                and _kind(n) in kinds
            ]

        by_token = weighted(tokens, ("MatMul",))
        in_blocks = [n for n in weighted(blocks, ("MatMul",)) if n not in set(by_token)]
        taken = set(by_token) | set(in_blocks)  # blocks before per channel: the closer of the two
        chosen = [n for n in weighted(quantize, ("Attention", "MatMul")) if n not in taken]
        if not chosen and not in_blocks and not by_token:  # onnxruntime would read [] as "every node"
            log.warning(
                "%s: no layer to quantise in %s: the int8 copy is the fp32 model", folder.name, quantize
            )
            os.link(source, tmp)
            return
        # quantize_dynamic writes `<source>-inferred.onnx` next to its input and deletes it after:
        # two processes quantising one export at once read each other's half-written file ("Failed
        # to find proper ai.onnx domain"). Each works on its own hard link in its own directory.
        private = Path(tempfile.mkdtemp(dir=folder, prefix=".quantize-"))
        try:
            own = private / source.name
            os.link(source, own)
            if by_token:
                _tokenwise(folder, own, private / "tokens.onnx", by_token)
                own = private / "tokens.onnx"
            if chosen or by_token:
                quantize_dynamic(
                    own,
                    private / "dynamic.onnx",
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    nodes_to_quantize=[*by_token, *chosen],
                    # The fused operators' outputs have no type that ONNX's shape inference knows.
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
                own = private / "dynamic.onnx"
            if in_blocks:
                _quantize_blocks(own, private / "blocks.onnx", in_blocks)
                own = private / "blocks.onnx"
            os.replace(own, tmp)
        finally:
            shutil.rmtree(private, ignore_errors=True)

    return _derive(folder, f"model.{recipe('int8', quantize, blocks, tokens)}.onnx", make)


def _tokenwise(folder: Path, source: Path, target: Path, nodes: Sequence[str]) -> None:
    """Prepares `nodes` (MatMuls with a weight matrix, of the kinds in `TOKENWISE`) for a
    per-tensor activation quantiser with two exact rescalings, written from `source` to `target`:
    per input column, x / s and s * W (SmoothQuant: s = max|x|^a / max|w|^(1 - a), max|x| over
    `CALIBRATION`, a = `TOKENWISE[kind]`), a `Mul` before the MatMul; per row (token), x divided by
    its largest magnitude and the product multiplied back by it (`Abs`, `ReduceMax`, `Div`, `Mul`).
    MatMuls of one input (a layer's query, key and value) share both. The products are the fp32
    ones up to rounding (the caller checks nothing; `quantized`'s tests compare vectors)."""
    import onnx
    import onnxruntime
    from onnx import helper, numpy_helper
    from tokenizers import Tokenizer

    model = onnx.load(str(source))
    graph = model.graph
    _, _, initializers = _graph_maps(graph)
    chosen = set(nodes)
    groups: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.name in chosen:
            groups.setdefault(node.input[0], []).append(node)

    # The largest magnitude of each input column over the calibration texts, in fp32.
    outputs = len(graph.output)
    for name in groups:
        graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    runner = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    del graph.output[outputs:]
    meta = json.loads((folder / "meta.json").read_text())
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    largest: dict[str, np.ndarray] = {}
    for text in CALIBRATION:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        values = runner.run(list(groups), {k: v for k, v in feed.items() if k in meta["inputs"]})
        for name, value in zip(groups, values, strict=True):
            seen = np.abs(value.reshape(-1, value.shape[-1])).max(0)
            largest[name] = np.maximum(largest[name], seen) if name in largest else seen
    del runner

    graph.initializer.append(numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "/tokenwise/floor"))
    added = []
    for name, group in groups.items():
        alpha = TOKENWISE[_kind(group[0]) or ""]
        matrices = [numpy_helper.to_array(initializers[n.input[1]]) for n in group]
        columns = np.max([np.abs(w).max(1) for w in matrices], axis=0)
        smooth = np.maximum(largest[name], 1e-5) ** alpha / np.maximum(columns, 1e-5) ** (1 - alpha)
        smooth = np.clip(smooth, 1e-2, 1e3).astype(np.float32)
        base = group[0].name.rsplit("/", 1)[0] + "/tokenwise"
        graph.initializer.append(numpy_helper.from_array(1 / smooth, base + "/smooth"))
        added += [
            helper.make_node("Mul", [name, base + "/smooth"], [base + "/smoothed"], name=base + "/Mul"),
            helper.make_node("Abs", [base + "/smoothed"], [base + "/abs"], name=base + "/Abs"),
            helper.make_node(
                "ReduceMax", [base + "/abs"], [base + "/max"], name=base + "/ReduceMax", axes=[-1], keepdims=1
            ),
            helper.make_node(
                "Max", [base + "/max", "/tokenwise/floor"], [base + "/scale"], name=base + "/Max"
            ),
            helper.make_node("Div", [base + "/smoothed", base + "/scale"], [base + "/x"], name=base + "/Div"),
        ]
        for node, matrix in zip(group, matrices, strict=True):
            initializers[node.input[1]].CopyFrom(
                numpy_helper.from_array((matrix * smooth[:, None]).astype(np.float32), node.input[1])
            )
            out = node.output[0]
            node.input[0] = base + "/x"
            node.output[0] = out + "/scaled"
            added.append(
                helper.make_node(
                    "Mul", [out + "/scaled", base + "/scale"], [out], name=node.name + "/Rescale"
                )
            )
    graph.node.extend(added)
    _sort_and_prune(graph)
    onnx.save(model, str(target))


def _quantize_blocks(source: Path, target: Path, nodes: Sequence[str]) -> None:
    """`nodes` (MatMuls with a weight matrix) as `MatMulNBits`: 8-bit symmetric weights per block
    of `BLOCK` rows, computed in int8 (`accuracy_level` 4); onnxruntime's weight-only quantiser.
    It takes every MatMul it is not told to leave (`nodes_to_include` only adds to those), so every
    other MatMul is excluded by name."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(source))
    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in set(nodes)]
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=others, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)


def mean_pooled(model: Any) -> bool:
    """Whether a SentenceTransformer's sentence vector is the mean of its token vectors (then
    normalised, or not: vectors are normalised here either way)."""
    pooling = next((m for m in model if type(m).__name__ == "Pooling"), None)
    if pooling is None:
        return False
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers 5: "mean", "cls", ...
    if mode is not None:
        return bool(mode == "mean" or mode == ["mean"] or mode == ("mean",))
    config = pooling.get_config_dict()  # older releases: one flag per mode
    return bool(config.get("pooling_mode_mean_tokens")) and not any(
        value
        for key, value in config.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )


def exportable(model: Any) -> bool:
    """Whether `OnnxModel` reproduces this SentenceTransformer: a transformer, mean pooling and
    (at most) normalisation, nothing else (a dense layer, say, would be left out)."""
    kinds = [type(m).__name__ for m in model]
    return mean_pooled(model) and kinds[0] == "Transformer" and set(kinds[1:]) <= {"Pooling", "Normalize"}


def export(model: Any, folder: Path, int8: Int8Recipe | None = None) -> Path:
    """Export a SentenceTransformer's transformer to `folder` (atomically: another process sees
    it complete or not at all), with its tokenizer and what pooling needs; then its fused graph and
    its int8 copy (`int8`: the encoder's recipe, when not the default), in a child process."""
    import torch

    if complete(folder):
        return folder
    transformer = model[0].auto_model
    tokenizer = model.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class Hidden(torch.nn.Module):
        """The transformer called by keyword (its positional order changes between releases)."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".exporting-"))
    try:
        # Two texts of different lengths: the trace sees padding under the attention mask.
        sample = tokenizer(
            ["a short one", "and a somewhat longer second text"], padding=True, return_tensors="pt"
        )
        axes = {"batch": 0, "tokens": 1}
        dynamic = {n: {i: a for a, i in axes.items()} for n in [*names, "last_hidden_state"]}
        was_training = transformer.training
        transformer.eval()
        # Eager attention: traced as the plain matrix products that onnxruntime's optimizer fuses
        # into one Attention node per layer (torch's fused SDPA is traced as a graph it does not
        # recognise). The same weights and the same vectors; the model is restored after.
        attention = getattr(transformer.config, "_attn_implementation", None)
        switch = getattr(transformer, "set_attn_implementation", None)
        if switch is not None and attention not in (None, "eager"):
            switch("eager")
        try:
            # The tracer warns about Python branches on shapes (attention-mask code paths); the
            # export is checked against sentence-transformers by tests/test_onnx.py instead.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Hidden(),
                    tuple(sample[n] for n in names),
                    str(work / PLAIN),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes=dynamic,
                    opset_version=17,
                    dynamo=False,  # the TorchScript exporter: no onnxscript needed, and fast
                )
        finally:
            transformer.train(was_training)
            if switch is not None and attention not in (None, "eager"):
                switch(attention)
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        meta = {
            "export": EXPORT,
            "heads": int(transformer.config.num_attention_heads),
            "max_seq_length": int(model.max_seq_length),
            "dimension": int(transformer.config.hidden_size),
            "mean_pooled": mean_pooled(model),
            "inputs": names,
            "pad_id": int(tokenizer.pad_token_id or 0),
            "pad_token": str(tokenizer.pad_token),
        }
        (work / "meta.json").write_text(json.dumps(meta, indent=1))
        (work / ".complete").touch()
        try:
            os.replace(work, folder)
        except OSError:
            if not complete(folder):  # not another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    derive_variants(folder, int8)
    return folder


def derive_variants(folder: Path, int8: Int8Recipe | None = None) -> None:
    """Build the fused graph and the int8 copy (of the recipe `int8`, when not the default) of a new
    export now, in a child process, rather than
    in the first run that opens it: `quantize_dynamic` alone peaks near 750 MiB, which a first ask
    on base weights (`deferred`) would otherwise pay, and the child's memory is returned when it
    exits instead of adding to the exporting process's own peak. A failure is only logged: the
    variants are then derived where they are first needed, as before."""
    import subprocess
    import sys

    try:
        # Run from the directory that holds the `graph` package: `-m` puts it on the child's path
        # whether or not routegraph is installed.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "graph.classifier.onnx_runtime",
                str(folder.resolve()),
                json.dumps(int8 or {}),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=Path(__file__).resolve().parents[2],
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not derive the ONNX variants of %s: %s", folder, exc)
        return
    if done.returncode != 0:
        log.warning("could not derive the ONNX variants of %s: %s", folder, done.stderr.strip()[-300:])


if __name__ == "__main__":  # python -m graph.classifier.onnx_runtime FOLDER [RECIPE]: derive_variants' child
    import sys

    optimized(Path(sys.argv[1]))
    quantized(Path(sys.argv[1]), **(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
