"""Fine-tune the MiniLM encoder on the classifier guides, once per guide content (cached on disk).

Each capability starts as the mean embedding of its examples (its description, where no other
capability shares it, counts as one more); encoder and prototypes are then
trained together so that an example is closer to its own capability's prototype than to any
other (softmax cross-entropy over scaled cosines; sigmoid per capability when an example belongs
to several, each capability's bias started between its examples' cosines and the others'). Only
the top transformer layers train (`FineTune.train_layers`), on batches of texts of similar length:
a first run's fine-tune then takes a fraction of the time and memory of training all 22 M weights
(README "Latency"). The adapted weights are saved under the cache directory, keyed by the base
model, the guides, the settings (the recipe included) and the training's version, so a changed
guide or recipe trains again and an unchanged one loads.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.classifier.encoders import MiniLMEncoder
from graph.classifier.guides import LabelGuide
from graph.classifier.head import COSINE_SCALE
from graph.classifier.onnx_runtime import complete, export, exportable
from graph.progress import emit

if TYPE_CHECKING:
    import torch

TRAINING = 4
"""Part of the cache key: bumped when the training itself changes (2: multi-label biases start at
the boundary; 3: descriptions are examples too; 4: only the top layers train, on batches
of similar lengths), so
weights an older version trained are not reused, nor curves `routegraph tune` fitted on them."""


@dataclass
class FineTune:
    """Adapt the encoder to the guides before scoring (MiniLM only), cached by content hash.

    Every field is part of the fine-tune cache key and of the tune fingerprint (`vars`, in field
    order): a field added or reordered trains again and sets fitted curves aside."""

    epochs: int = 3
    """Passes over the examples (at least, for multi-label guides)."""
    min_steps: int = 400
    """Multi-label guides: optimizer steps, at least. A sigmoid per capability learns from few
    positives each, and a few hundred examples make only a few steps a pass: more passes help
    there, while single-label guides (one softmax over all examples) keep `epochs`, as more
    passes over many examples made them worse (CHANGELOG)."""
    max_epochs: int = 60
    """The most passes `min_steps` may ask for (a guide set of a few dozen examples)."""
    learning_rate: float = 3e-5
    batch_size: int = 32
    train_layers: int = 2
    """The top transformer layers trained; the embeddings and the layers below stay as they are
    (0: all layers train). Backward passes and optimizer state then cover a sixth of MiniLM's
    weights, for the same held-out accuracy (README "Latency": measured against all layers)."""
    scale: float = COSINE_SCALE
    seed: int = 0

    def passes(self, examples: int, *, multi_label: bool) -> int:
        """How many times the training passes over `examples` texts."""
        if not multi_label:
            return self.epochs
        steps_per_pass = max(1, math.ceil(examples / self.batch_size))
        return max(self.epochs, min(self.max_epochs, math.ceil(self.min_steps / steps_per_pass)))


def _examples(
    guides: Sequence[LabelGuide], out_of_scope: Sequence[str] = ()
) -> tuple[list[str], list[set[int]]]:
    """Every example text with the capabilities it belongs to; then each capability's description
    where it is its own (a description several guides share, like "domain: banking", tells them
    apart no more than it is an example of one); then the out-of-scope requests, belonging to none.
    """
    owners: dict[str, set[int]] = {}
    for i, guide in enumerate(guides):
        for text in guide.positives:
            owners.setdefault(text, set()).add(i)
    texts = sorted(owners)
    described: dict[str, list[int]] = {}
    for i, guide in enumerate(guides):
        if guide.description:
            described.setdefault(guide.description, []).append(i)
    descriptions = sorted(d for d, who in described.items() if len(who) == 1 and d not in owners)
    # A guide's own text (an example or its description) stays its own, as in the scorer.
    outside = sorted(set(out_of_scope) - set(owners) - {g.description for g in guides})
    return (
        [*texts, *descriptions, *outside],
        [*(owners[t] for t in texts), *({described[d][0]} for d in descriptions), *(set() for _ in outside)],
    )


def finetune_key(
    encoder: MiniLMEncoder,
    guides: Sequence[LabelGuide],
    spec: FineTune,
    out_of_scope: Sequence[str] = (),
) -> str:
    texts, owners = _examples(guides, out_of_scope)
    payload = [
        encoder.training_identity,
        [g.name for g in guides],
        texts,
        [sorted(o) for o in owners],
        vars(spec),
        TRAINING,
    ]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]


def worth_training(guides: Sequence[LabelGuide], out_of_scope: Sequence[str] = ()) -> bool:
    """Whether `finetune_encoder` trains on these guides: at least two capabilities with texts of
    their own, and about two examples per capability or more (with about one, or descriptions
    alone, there is nothing to learn that generalises)."""
    if len(guides) < 2 or len({t for g in guides for t in g.positives}) < 2 * len(guides):
        return False
    _, owners = _examples(guides, out_of_scope)
    return len({j for o in owners for j in o}) >= 2


def boundary_biases(
    embedded: torch.Tensor, prototypes: torch.Tensor, targets: torch.Tensor, scale: float
) -> torch.Tensor:
    """Each capability's sigmoid bias, halfway between its examples' mean cosine and the other
    texts' (a zero bias with scaled cosines calls nearly every text a positive of every capability,
    and the first training steps then go into pulling all cosines down)."""
    import torch

    cos = torch.nn.functional.normalize(embedded, dim=1) @ torch.nn.functional.normalize(prototypes, dim=1).T
    pos = (cos * targets).sum(0) / targets.sum(0).clamp(min=1)
    neg = (cos * (1 - targets)).sum(0) / (1 - targets).sum(0).clamp(min=1)
    return -scale * (pos + neg) / 2


BUCKET = 8
"""Batches drawn together and cut by text length (`_batches`)."""


def _batches(order: list[int], lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """`order` (shuffled) cut into batches of similar lengths: every `BUCKET` batches' worth of texts
    sorted by length, then cut, then all batches shuffled. A batch is padded to its longest text,
    and a few long descriptions spread over every batch made each pass several times longer."""
    batches: list[list[int]] = []
    for start in range(0, len(order), size * BUCKET):
        window = sorted(order[start : start + size * BUCKET], key=lambda i: lengths[i])
        batches += [window[i : i + size] for i in range(0, len(window), size)]
    rng.shuffle(batches)
    return batches


def tell(progress: Callable[[str], None] | None, message: str) -> None:
    """To the caller's `progress`, and to the graph's progress stream when compiling inside a run
    (`routegraph ask` prints it in place of a silent `· classifier`)."""
    if progress is not None:
        progress(message)
    # Inside a run LangGraph is imported; outside one (`routegraph ask`'s compile ahead, on a
    # thread of its own while the main thread imports LangGraph) there is no stream to write to,
    # and importing it from two threads at once could meet a half-imported module.
    if "langgraph.config" in sys.modules:
        emit("classifier_progress", message=message)


def finetune_encoder(
    encoder: MiniLMEncoder,
    guides: Sequence[LabelGuide],
    spec: FineTune,
    *,
    cache_dir: Path | None,
    progress: Callable[[str], None] | None = None,
    out_of_scope: Sequence[str] = (),
) -> bool:
    """Adapt `encoder` in place; returns True when it trained, False when it loaded from the cache.

    `out_of_scope` requests belong to no capability: with single-label guides they form one more
    class during training (its prototype is then dropped), with multi-label ones every sigmoid
    learns them as a negative."""
    if not worth_training(guides, out_of_scope):
        return False
    texts, owners = _examples(guides, out_of_scope)
    examples = sum(1 for o in owners if o)
    key = finetune_key(encoder, guides, spec, out_of_scope)
    path = cache_dir / f"finetune-{key}.pt" if cache_dir else None
    if path is not None and path.exists():
        # Cached: the weights load only if they must be exported (or encoded with torch).
        encoder.use_finetuned(key, path)
        if not encoder.exported():
            tell(progress, "exporting the fine-tuned encoder to ONNX (once, a few seconds)")
        return False

    # On the graph's stream only (`routegraph ask`): loading torch takes seconds, which the terminal
    # otherwise shows as a silent `· classifier`. `progress` callers count the passes.
    emit("classifier_progress", message="loading the encoder to fine-tune it (first run only, then cached)")
    import torch

    _export_base(encoder)
    model = encoder.own_copy()
    trained = _trained_parameters(model, spec.train_layers)
    # One thread, as the encoder was loaded with (`MiniLMEncoder.threads`): on this project's
    # shared 2-core machine two threads made a pass six times slower, not faster.
    _train(model, texts, owners, examples, trained, spec, progress)
    _release_freed_memory()
    encoder.weights_tag = key
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
    if encoder.onnx_dir is not None:
        tell(progress, "exporting the fine-tuned encoder to ONNX (once, a few seconds)")
    return True


def _export_base(encoder: MiniLMEncoder) -> None:
    """The base weights' ONNX export, while they are loaded anyway (a few seconds): when the guides
    change later, the first run answers on the base weights at once (`deferred`) instead of
    importing torch to export them."""
    folder = encoder.onnx_folder()
    if folder is None or encoder.weights_tag != "base" or complete(folder):
        return
    model = encoder.model
    if exportable(model):
        export(model, folder)


def _release_freed_memory() -> None:
    """Hand the training's freed buffers back to the system (glibc keeps them otherwise), so the
    ONNX export that follows grows from there instead of adding to the training's peak."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:  # not glibc: nothing to hand back this way
        pass


def _trained_parameters(model: Any, layers: int) -> list[Any]:
    """The parameters fine-tuning moves: those of the top `layers` transformer layers (all of them
    for `layers` <= 0 or a model whose layers are not found); the others are frozen, so backward
    passes stop below the top layers and the optimizer keeps no state for them."""
    blocks = getattr(getattr(getattr(model[0], "auto_model", None), "encoder", None), "layer", None)
    if layers <= 0 or blocks is None:
        return [p for p in model.parameters()]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trained = [p for block in list(blocks)[-layers:] for p in block.parameters()]
    for parameter in trained:
        parameter.requires_grad_(True)
    return trained


def _train(
    model: Any,
    texts: list[str],
    owners: list[set[int]],
    examples: int,
    trained: list[Any],
    spec: FineTune,
    progress: Callable[[str], None] | None,
) -> None:
    import torch

    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    multi = any(len(o) > 1 for o in owners)
    outside = len(texts) - examples
    # Capabilities without a single text to train on (no examples, a shared description) are left
    # out: they have no prototype to start from. Single-label: out-of-scope requests are one more
    # softmax class, trained and then dropped.
    column = {j: i for i, j in enumerate(sorted({j for o in owners for j in o}))}
    count = len(column) + (1 if outside and not multi else 0)
    targets = torch.zeros(len(texts), count)
    for row, owner in enumerate(owners):
        if owner:
            targets[row, sorted(column[j] for j in owner)] = 1.0
        elif count > len(column):
            targets[row, count - 1] = 1.0
    with torch.no_grad():
        # The torch model (not the ONNX export of these base weights, which would cost an export).
        base = torch.nn.functional.normalize(model.encode(texts, convert_to_tensor=True).float(), dim=1)
        protos = torch.stack([base[targets[:, j] > 0].mean(0) for j in range(count)])
    prototypes = torch.nn.Parameter(torch.nn.functional.normalize(protos, dim=1))
    bias = torch.nn.Parameter(torch.zeros(count))
    if multi:
        with torch.no_grad():
            bias.copy_(boundary_biases(base, prototypes, targets, spec.scale))
    optimizer = torch.optim.AdamW(
        [
            {"params": trained, "lr": spec.learning_rate},
            {"params": [prototypes, bias], "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    model.train()
    order = list(range(len(texts)))
    passes = spec.passes(len(texts), multi_label=multi)
    started = time.perf_counter()
    for done in range(passes):
        left = (time.perf_counter() - started) / done * (passes - done) if done else None
        eta = " (first run only, then cached)" if left is None else f", about {left:.0f} s left"
        tell(progress, f"fine-tuning: pass {done + 1}/{passes} over {len(texts)} examples{eta}")
        rng.shuffle(order)
        for batch in _batches(order, [len(t) for t in texts], spec.batch_size, rng):
            features = model.preprocess([texts[i] for i in batch])
            embedded = torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=1)
            logits = spec.scale * embedded @ torch.nn.functional.normalize(prototypes, dim=1).T
            if multi:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits + bias, targets[batch])
            else:
                loss = torch.nn.functional.cross_entropy(logits, targets[batch].argmax(1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
