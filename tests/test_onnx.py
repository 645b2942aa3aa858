"""The encoders through onnxruntime: the same vectors as sentence-transformers (torch), exports
keyed by the weights' content, and a warm `ask` that never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graph.classifier import onnx_runtime
from graph.classifier.clauses import clause_spans
from graph.classifier.encoders import HybridEncoder, MiniLMEncoder, MPNetEncoder, make_encoder
from graph.classifier.onnx_runtime import PLAIN, OnnxModel

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "What is 12*7 and what time is it in Tokyo?",
    "hi",
    "I was charged twice for order A-1042, please refund the second payment and tell me when it arrives",
    "¿Dónde está mi pedido? 🚚",
    "",
    "word " * 400,  # longer than the model's 256 tokens: truncated the same way
]

FP32_MIN_COSINE = 0.999
FUSED_MIN_COSINE = 0.9999
"""The fused graph computes what the plain export does, in another order of operations."""
INT8_MIN_COSINE = 0.99
"""int8 weights move the vectors (dynamic quantisation): the default recipe (the attention's
projections in int8, every other layer float) measured 0.9927-0.9991 on these texts (int8
everywhere: 0.97-0.996, which lost 0.017 of CLINC150 accuracy); the accuracy that matters is
measured on CLINC150 (README § Latency)."""
BLOCKWISE_MIN_COSINE = 0.998
"""The weight matrices outside the attention in int8 per block of 32 rows (`BLOCKWISE`), the
attention float: 0.9993 at the least over 150 CLINC150 texts, closer than the per-channel recipe."""


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


@pytest.fixture(scope="module")
def torch_encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_onnx_vectors_match_sentence_transformers(tmp_path: Path, torch_encoder: MiniLMEncoder) -> None:
    onnx = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32")
    expected = torch_encoder.encode(TEXTS)
    got = onnx.encode(TEXTS)
    assert got.shape == expected.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert cosines(got, expected).min() > FP32_MIN_COSINE
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx.exported() and (tmp_path / "onnx").is_dir()
    again = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32")
    assert np.allclose(again.encode(TEXTS), got, atol=1e-6)
    assert again._model is None  # found the export: the torch model was never loaded
    int8 = MiniLMEncoder(onnx_dir=tmp_path, precision="int8")
    assert int8.identity != onnx.identity  # embedding caches of one are never read by the other
    assert cosines(int8.encode(TEXTS), expected).min() > INT8_MIN_COSINE
    one_by_one = np.vstack([onnx.encode([text]) for text in TEXTS])  # the per-request path
    assert cosines(one_by_one, expected).min() > FP32_MIN_COSINE


def _ops(path: Path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]


def test_fused_graph_matches_the_plain_export_and_int8_quantises_the_layers_its_recipe_names(
    tmp_path: Path,
) -> None:
    """The fp32 model is onnxruntime's fused graph (one Attention per layer: the export's eager
    attention is what lets it fuse), computing the plain export's vectors; the int8 copy
    quantises the attention's projections per channel, as `QUANTIZE` says, and on a CPU with VNNI
    every other weight matrix per block (`BLOCKWISE`, `MatMulNBits`); the embeddings stay float."""
    encoder = MiniLMEncoder(onnx_dir=tmp_path)
    encoder.encode(["export it"])
    folder = encoder.onnx_folder()
    assert folder is not None
    # The files themselves (the process shares one session per model, maybe of another folder).
    fused = OnnxModel(folder, model=onnx_runtime.optimized(folder)).encode(TEXTS)
    ops = _ops(folder / onnx_runtime.OPTIMIZED)
    assert ops.count("Attention") == 6 and ops.count("SkipLayerNormalization") == 12, sorted(set(ops))
    assert "EmbedLayerNormalization" in ops and len(ops) < len(_ops(folder / PLAIN)) / 5
    plain = OnnxModel(folder, model=folder / PLAIN).encode(TEXTS)
    assert cosines(fused, plain).min() > FUSED_MIN_COSINE

    quantized = onnx_runtime.quantized(folder)
    assert quantized.name == f"model.{onnx_runtime.recipe('int8')}.onnx"
    vectors = OnnxModel(folder, model=quantized).encode(TEXTS)
    ops = _ops(quantized)
    assert ops.count("QAttention") == 6 and "Attention" not in ops
    blocks = 18 if onnx_runtime.blockwise() else 0  # 3 per layer: attention output, FFN in, out
    assert "MatMulInteger" not in ops and ops.count("MatMulNBits") == blocks
    assert ops.count("MatMul") == 18 - blocks  # the rest kept float
    assert "EmbedLayerNormalization" in ops and "QEmbedLayerNormalization" not in ops
    assert cosines(vectors, fused).min() > INT8_MIN_COSINE
    assert not np.allclose(vectors, fused, atol=1e-4)  # int8 did change the computation

    # Each part of the recipe on its own, whatever the CPU: its own file, the layers it names.
    attention = onnx_runtime.quantized(folder, blocks=())
    assert attention.name == "model.int8-attention.onnx"
    assert _ops(attention).count("QAttention") == 6 and _ops(attention).count("MatMul") == 18
    blockwise = onnx_runtime.quantized(folder, quantize=(), blocks=onnx_runtime.BLOCKWISE)
    assert blockwise.name == "model.b32-attention-attention_output-ffn_input-ffn_output.onnx"
    ops = _ops(blockwise)
    assert ops.count("Attention") == 6 and ops.count("MatMulNBits") == 18 and "MatMul" not in ops
    if onnx_runtime.int8_dot_product():  # int8 blocks computed in int8: where the CPU has VNNI
        assert cosines(OnnxModel(folder, model=blockwise).encode(TEXTS), fused).min() > BLOCKWISE_MIN_COSINE


def test_a_graph_the_optimizer_cannot_fuse_runs_unfused(tmp_path: Path) -> None:
    """When the optimizer fails (here: an export whose meta.json lacks the head count it needs),
    the plain export is linked in the fused graph's place, once, and encodes as before."""
    encoder = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32")
    expected = encoder.encode(TEXTS[:3])
    folder = encoder.onnx_folder()
    assert folder is not None
    (folder / onnx_runtime.OPTIMIZED).unlink(missing_ok=True)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["heads"]
    (folder / "meta.json").write_text(json.dumps(meta))
    chosen = onnx_runtime.optimized(folder)
    assert chosen.stat().st_ino == (folder / PLAIN).stat().st_ino  # the plain export, linked
    got = OnnxModel(folder).encode(TEXTS[:3])
    assert cosines(got, expected).min() > FUSED_MIN_COSINE


def test_onnx_span_pooling_matches_torch(tmp_path: Path, torch_encoder: MiniLMEncoder) -> None:
    texts = [t for t in TEXTS if t]
    spans = [clause_spans(t) for t in texts]
    assert any(spans)  # the clause path is exercised, not only whole texts
    onnx = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32").encode_spans(texts, spans)
    expected = torch_encoder.encode_spans(texts, spans)
    assert onnx.shape == expected.shape == (len(texts) + sum(map(len, spans)), 384)
    assert cosines(onnx, expected).min() > FP32_MIN_COSINE
    hybrid = HybridEncoder(MiniLMEncoder(onnx_dir=tmp_path))  # the default precision, int8
    hybrid.fit(texts)
    assert hybrid.encode_spans(texts, spans).shape[0] == onnx.shape[0]


def test_changed_weights_are_exported_again(tmp_path: Path) -> None:
    """A fine-tuned variant gets an export of its own (keyed by the fine-tune), whose vectors are
    its weights' and not the base model's."""
    import torch

    base = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32")
    before = base.encode(TEXTS[:3])
    changed = MiniLMEncoder(onnx_dir=tmp_path)
    model = changed.own_copy()
    with torch.no_grad():
        for p in model[0].auto_model.encoder.layer[-1].parameters():
            p.mul_(0.5)
    weights = tmp_path / "changed.pt"
    torch.save(model.state_dict(), weights)
    reference = model.encode(TEXTS[:3], normalize_embeddings=True)
    fresh = MiniLMEncoder(onnx_dir=tmp_path, precision="fp32")
    fresh.use_finetuned("changed-weights", weights)  # as a cached fine-tune is picked up
    assert fresh.onnx_folder() != base.onnx_folder() and not fresh.exported()
    after = fresh.encode(TEXTS[:3])
    assert fresh.exported()
    assert cosines(after, reference).min() > FP32_MIN_COSINE
    assert cosines(after, before).min() < 0.99  # not the base model's vectors
    tuned_int8 = MiniLMEncoder(onnx_dir=tmp_path, precision="int8")
    tuned_int8.use_finetuned("changed-weights", weights)
    assert tuned_int8.onnx_folder() == fresh.onnx_folder()  # the same export, quantised
    assert cosines(tuned_int8.encode(TEXTS[:3]), reference).min() > INT8_MIN_COSINE


def test_make_encoder_passes_the_onnx_cache(tmp_path: Path) -> None:
    encoder = make_encoder("minilm", onnx_dir=tmp_path, precision="fp32")
    assert isinstance(encoder, MiniLMEncoder) and encoder.onnx_dir == tmp_path
    assert encoder.precision == "fp32" and not encoder.loaded
    default = make_encoder("minilm", onnx_dir=tmp_path)
    assert isinstance(default, MiniLMEncoder) and default.precision == "int8"  # the default
    assert default.identity.endswith(":" + onnx_runtime.recipe("int8"))
    assert ("+b32-" in default.identity) == bool(onnx_runtime.blockwise())  # the CPU's recipe
    # Block-wise int8 is the default (session 15) wherever the CPU has VNNI and the quantiser is installed.
    assert onnx_runtime.BLOCKS_BY_DEFAULT
    assert bool(onnx_runtime.blockwise()) == (
        onnx_runtime.int8_dot_product() and onnx_runtime._block_quantiser()
    )
    assert encoder.identity == encoder.training_identity
    # mpnet: int8 (every weight matrix in blocks) where the CPU has VNNI, fp32 elsewhere; nothing loads.
    mpnet = make_encoder("mpnet", models_dir=tmp_path / "models", onnx_dir=tmp_path)
    assert isinstance(mpnet, MPNetEncoder) and not mpnet.loaded
    assert mpnet.precision == ("int8" if onnx_runtime.blockwise() else "fp32")
    assert make_encoder("mpnet", onnx_dir=tmp_path, precision="fp32").precision == "fp32"


def _ask(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-m", "graph.cli", "ask", "What is 12*7 and what time is it in Tokyo?"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_first_ask_shows_progress_then_warm_ask_imports_no_torch(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"),
        "ROUTEGRAPH_CACHE_DIR": str(tmp_path / "cache"),
        "LANGSMITH_TRACING": "false",
    }
    first = _ask(env)  # a fresh cache: fine-tunes, exports, compiles and says so meanwhile
    assert first.returncode == 0, first.stderr
    assert "· classifier: fine-tuning: pass 1/" in first.stderr
    assert "s left" in first.stderr and "· classifier: exporting the fine-tuned encoder" in first.stderr
    assert "Warning" not in first.stderr  # the exporter's tracer warnings are kept from the user
    warm = _ask(env, "-X", "importtime")
    assert warm.returncode == 0, warm.stderr
    assert "84" in warm.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in warm.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in imported  # the encoder did run, through onnxruntime
    heavy = {m for m in imported if m.split(".")[0] in {"torch", "sentence_transformers", "transformers"}}
    assert not heavy, sorted(heavy)[:10]


def test_compiled_scorer_loads_from_its_cache(tmp_path: Path) -> None:
    """A second compile reads the saved prototypes, head and curve: it embeds nothing (the
    embedding cache, deleted, is not written again) and scores exactly as the first."""
    from graph.classifier.compiled import CachedScorer
    from graph.classifier.guides import LabelGuide

    guides = [
        LabelGuide("weather", ("will it rain tomorrow", "weather in paris", "is it sunny today")),
        LabelGuide("refund", ("I want my money back", "refund my order", "charge me back for this")),
        LabelGuide("clock", ("what time is it in tokyo", "current time in london", "time now in new york")),
    ]
    requests = ["is it going to rain in rome and what time is it there", "give me a refund", "tell me a joke"]
    first = CachedScorer(guides, MiniLMEncoder(onnx_dir=tmp_path), cache_dir=tmp_path)
    expected = first.raw_scores(requests)
    assert len(list(tmp_path.glob("compiled-*.npz"))) == 1
    for cached in tmp_path.glob("embeddings-*.npy"):
        cached.unlink()
    again = CachedScorer(guides, MiniLMEncoder(onnx_dir=tmp_path), cache_dir=tmp_path)
    assert np.array_equal(again.raw_scores(requests), expected)
    assert again.calibration == first.calibration
    assert not list(tmp_path.glob("embeddings-*.npy"))  # nothing was embedded again
    changed = [*guides[:2], LabelGuide("clock", ("what time is it", "time in sydney", "clock in berlin"))]
    CachedScorer(changed, MiniLMEncoder(onnx_dir=tmp_path), cache_dir=tmp_path).compile()
    assert len(list(tmp_path.glob("compiled-*.npz"))) == 2  # other guides: compiled and saved anew
