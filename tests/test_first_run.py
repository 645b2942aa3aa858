"""The first run's fine-tune (issue 19 item 3): only the top transformer layers train, on batches of
similar lengths, and the cache key names the recipe, so weights an older recipe trained are never
reused."""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest

from graph.classifier.encoders import MiniLMEncoder
from graph.classifier.finetune import FineTune, _batches, finetune_encoder, finetune_key
from graph.classifier.guides import LabelGuide

GUIDES = [
    LabelGuide(
        "calculator",
        ("what is 7 times 8", "calculate 81 / 9", "add 12 and 30", "how much is 20% of 50"),
        description="Arithmetic on numbers the user gives.",
    ),
    LabelGuide(
        "clock",
        ("what time is it in Lisbon", "current time in Chicago", "what day is it in Cairo", "date in Rome"),
        description="The current time or date in a city.",
    ),
    LabelGuide(
        "weather",
        ("will it rain in Oslo tomorrow", "weather in Paris", "is it cold in Boston", "forecast for Lima"),
        description="Weather and forecasts for a place.",
    ),
]


def test_batches_cover_every_text_once_grouped_by_length() -> None:
    draw = random.Random(1)
    lengths = [draw.randint(5, 400) for _ in range(300)]
    order = list(range(300))
    random.Random(0).shuffle(order)
    batches = _batches(order, lengths, 32, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(1 <= len(b) <= 32 for b in batches)
    # Within one bucket of 8 batches, each batch holds a length range the others do not overlap.
    bucket = set(order[: 32 * 8])
    inside = [b for b in batches if set(b) <= bucket]
    assert len(inside) == 8
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in inside)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    # Padding: the mean longest-text-per-batch is well below that of unsorted batches.
    plain = [order[i : i + 32] for i in range(0, 300, 32)]
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded < 0.8 * sum(max(lengths[i] for i in b) * len(b) for b in plain)
    assert batches == _batches(order, lengths, 32, random.Random(0))  # deterministic for a seed


def test_the_recipe_is_part_of_the_cache_key() -> None:
    encoder = MiniLMEncoder()
    spec = FineTune()
    assert spec.train_layers == 2
    keys = {
        finetune_key(encoder, GUIDES, spec),
        finetune_key(encoder, GUIDES, replace(spec, train_layers=0)),
        finetune_key(encoder, GUIDES, replace(spec, train_layers=1)),
        finetune_key(encoder, GUIDES, replace(spec, epochs=2)),
    }
    assert len(keys) == 4


@pytest.mark.parametrize("layers", [2])
def test_only_the_top_layers_move(tmp_path: Path, layers: int) -> None:
    """A real fine-tune of MiniLM: the embeddings and the lower layers keep the base weights bit
    for bit, the top `layers` change, and the saved weights load as the next run's encoder."""
    import torch

    encoder = MiniLMEncoder()
    base = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    progress: list[str] = []
    spec = FineTune(train_layers=layers, learning_rate=1e-4)
    assert finetune_encoder(encoder, GUIDES, spec, cache_dir=tmp_path, progress=progress.append)
    tuned = encoder.model.state_dict()
    total = len(encoder.model[0].auto_model.encoder.layer)
    top = {f"encoder.layer.{i}." for i in range(total - layers, total)}
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed, "nothing trained"
    assert all(any(t in k for t in top) for k in changed), sorted(changed)[:5]
    assert any("embeddings" in k for k in base) and not any("embeddings" in k for k in changed)
    assert all(p.requires_grad for p in encoder.model.parameters())  # left as it was found
    assert any(m.startswith("fine-tuning: pass 1/3") for m in progress)

    again = MiniLMEncoder()
    assert not finetune_encoder(again, GUIDES, spec, cache_dir=tmp_path)  # loaded from the cache
    assert again.weights_tag == encoder.weights_tag
    loaded = again.model.state_dict()
    assert all(torch.equal(loaded[k], tuned[k]) for k in tuned)


def test_prepare_builds_the_classifier_so_the_first_ask_loads_it(tmp_path: Path) -> None:
    """`routegraph prepare` (run by ./scripts/setup) fine-tunes, exports and compiles ahead of time,
    with progress; the first `ask` afterwards finds everything cached."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    env |= {"PYTHONPATH": str(root), "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"), "ROUTEGRAPH_LLM": "off"}
    env["ROUTEGRAPH_CACHE_DIR"] = os.environ["ROUTEGRAPH_CACHE_DIR"]  # the session's: the suite trains once

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "graph.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=900,
            check=False,
        )

    prepared = run("prepare")
    assert prepared.returncode == 0, prepared.stderr
    assert "routegraph prepare: ready in" in prepared.stderr and "Traceback" not in prepared.stderr
    asked = run("ask", "What is 12*7 and what time is it in Tokyo?")
    assert asked.returncode == 0, asked.stderr
    assert "84" in asked.stdout
    assert "fine-tuning" not in asked.stderr and "exporting" not in asked.stderr  # all cached
