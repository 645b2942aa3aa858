"""Sentence encoders through onnxruntime and tokenizers: inference without torch.

A sentence-transformers model (its transformer, then mean pooling, then L2 normalisation) is
exported once (`export`, which needs torch) to a folder keyed by the weights' content: the
transformer as `model.onnx` (and `model.int8.onnx`, its weights dynamically quantised to int8),
its fast tokenizer as `tokenizer.json`, and what pooling needs in `meta.json`. `OnnxModel` then
reads that folder with onnxruntime and tokenizers only, and pools exactly as sentence-transformers
does: the mean of the token vectors under the attention mask, then unit length.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

EXPORT = 1
"""Part of every export folder's key: bumped when the export itself changes."""

Precision = Literal["fp32", "int8"]
"""`fp32`: the exported weights as trained; `int8`: dynamically quantised (onnxruntime.quantization)."""

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def complete(folder: Path) -> bool:
    return (folder / ".complete").exists()


class OnnxModel:
    """An exported transformer and its tokenizer: token vectors, summed per text, and sentence vectors."""

    def __init__(self, folder: Path, *, precision: Precision = "fp32", threads: int | None = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        meta = json.loads((folder / "meta.json").read_text())
        self.max_length = int(meta["max_seq_length"])
        self.dimension = int(meta["dimension"])
        self.mean_pooled = bool(meta["mean_pooled"])
        self.inputs: list[str] = list(meta["inputs"])
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no graph-optimisation notes on stderr
        path = quantized(folder) if precision == "int8" else folder / FILES["fp32"]
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
        self._lock = threading.Lock()

    def token_sums(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Per text, the sum of its token vectors under the attention mask (float64) and how many
        tokens that is: a mean pooling split in two, so pieces of a text can be pooled together."""
        sums: list[np.ndarray] = []
        sizes: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.array([e.type_ids for e in encoded], dtype=np.int64)
            with self._lock:  # one run at a time: the session has one thread of its own
                hidden = self.session.run(None, feed)[0]
            weights = mask.astype(np.float64)
            sums.append(np.einsum("bsd,bs->bd", hidden.astype(np.float64), weights))
            sizes.append(weights.sum(1))
        if not sums:
            return np.zeros((0, self.dimension)), np.zeros(0)
        return np.concatenate(sums), np.concatenate(sizes)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length sentence vectors, as `SentenceTransformer.encode(normalize_embeddings=True)`."""
        sums, sizes = self.token_sums(texts, batch_size)
        means = sums / np.maximum(sizes, 1e-9)[:, None]  # sentence-transformers clamps at 1e-9
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        return (means / np.maximum(norms, 1e-12)).astype(np.float32)  # as torch's F.normalize


def quantized(folder: Path) -> Path:
    """The int8 copy of an export, made once from its fp32 model (onnxruntime only, no torch):
    weights stored as int8 per output channel (per-tensor lost up to 0.13 of cosine on long texts), activations quantised on the fly (`quantize_dynamic`)."""
    target = folder / FILES["int8"]
    if target.exists():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = folder / f".{os.getpid()}-{threading.get_ident()}.int8.onnx"
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for static quantisation
    try:
        quantize_dynamic(folder / FILES["fp32"], tmp, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, target)
    finally:
        logging.getLogger().setLevel(quiet)
        tmp.unlink(missing_ok=True)
    return target


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


def export(model: Any, folder: Path) -> Path:
    """Export a SentenceTransformer's transformer to `folder` (atomically: another process sees
    it complete or not at all), with its tokenizer and what pooling needs."""
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
        try:
            # The tracer warns about Python branches on shapes (attention-mask code paths); the
            # export is checked against sentence-transformers by tests/test_onnx.py instead.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Hidden(),
                    tuple(sample[n] for n in names),
                    str(work / FILES["fp32"]),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes=dynamic,
                    opset_version=17,
                    dynamo=False,  # the TorchScript exporter: no onnxscript needed, and fast
                )
        finally:
            transformer.train(was_training)
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        meta = {
            "export": EXPORT,
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
    return folder
