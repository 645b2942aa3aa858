"""The hybrid head: the linear head reads lexical n-grams next to the sentence embedding
(`FewShotScorer.head_lexical`), while the prototypes stay the encoder's."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from graph.classifier import FewShotScorer, LabelGuide
from graph.classifier.compiled import CachedScorer
from graph.classifier.encoders import HybridEncoder, LexicalEncoder, MiniLMEncoder
from graph.classifier.head import HEAD_LEXICAL, Head, joined, sparse_lexical
from tests.test_routing import GUIDES

SAMPLE = Path(__file__).parent.parent / "evals" / "data" / "clinc150_sample.jsonl"

LABELS = (
    "calendar",
    "date",
    "change_volume",
    "whisper_mode",
    "what_is_your_name",
    "user_name",
    "confirm_reservation",
    "restaurant_reservation",
    "weather",
    "replacement_card_duration",
    "ingredient_substitution",
    "shopping_list_update",
)
"""Pairs of CLINC150 intents a sentence embedding confuses: they share a topic and differ in a few
words ("calendar" / "date", "volume" / "whisper")."""

QUERIES = {
    "what is tuesday's calendar like": "calendar",
    "i want your volume decreased please": "change_volume",
    "what may i call you": "what_is_your_name",
    "give me your name so i can use you": "what_is_your_name",
    "can you confirm that i have a reservation for february 21 at 6 o'clock": "confirm_reservation",
    "what's the weather like today": "weather",
    "can i use apples instead of oranges in this recipe": "ingredient_substitution",
}
"""Held-out requests of the sample (its val and test rows), never guide examples."""


def _clinc_guides() -> list[LabelGuide]:
    shots: dict[str, list[str]] = defaultdict(list)
    held_out = set()
    for line in SAMPLE.read_text().splitlines():
        row = json.loads(line)
        if row["labels"][0] not in LABELS:
            continue
        if row["split"] == "train":
            shots[row["labels"][0]].append(row["text"])
        else:
            held_out.add(row["text"])
    assert set(QUERIES) <= held_out, "the requests are the sample's held-out rows"
    return [LabelGuide(label, tuple(shots[label])) for label in LABELS]


def _routed(scorer: FewShotScorer) -> dict[str, str]:
    raw = scorer.raw_scores(list(QUERIES))
    return {q: scorer.labels[int(i)] for q, i in zip(QUERIES, raw.argmax(1), strict=True)}


def test_lexical_features_in_the_head_route_near_intents_minilm_confuses() -> None:
    """MiniLM (its published weights, no fine-tuning) with 10 examples per intent: the head that
    also reads word and character n-grams routes every request right; the same head on the
    embedding alone sends most of them to the look-alike intent."""
    guides = _clinc_guides()
    encoder = MiniLMEncoder()
    hybrid = _routed(FewShotScorer(guides, encoder, split_clauses=False))
    dense = _routed(FewShotScorer(guides, encoder, split_clauses=False, head_lexical=0.0))
    assert hybrid == QUERIES
    wrong = {q for q, label in dense.items() if label != QUERIES[q]}
    assert len(wrong) >= 4, dense


def test_the_head_reads_lexical_features_only_for_dense_encoders() -> None:
    """Dense encoders get `HEAD_LEXICAL`; `lexical` and `hybrid` are lexical already."""
    assert HEAD_LEXICAL > 0
    assert FewShotScorer(GUIDES, MiniLMEncoder())._head_lexical == HEAD_LEXICAL
    assert FewShotScorer(GUIDES, LexicalEncoder())._head_lexical == 0.0
    assert FewShotScorer(GUIDES, HybridEncoder(MiniLMEncoder()))._head_lexical == 0.0
    with pytest.raises(ValueError, match="head_lexical"):
        FewShotScorer(GUIDES, LexicalEncoder(), head_lexical=1.0)


def test_the_hybrid_head_is_wider_than_the_encoder_and_scores_the_same_after_a_cache_load(
    tmp_path: Path,
) -> None:
    """The compiled head keeps its lexical rows; a scorer loaded from the compiled cache refits the
    lexical IDF on the same guides and scores exactly as the one that compiled. The share is part
    of the cache key: another share compiles again."""
    texts = ["will it snow in Oslo tomorrow", "put on some jazz and set a timer", "hello there"]
    first = CachedScorer(GUIDES, LexicalEncoder(), cache_dir=tmp_path, head_lexical=0.4)
    plain = FewShotScorer(GUIDES, LexicalEncoder(), head_lexical=0.0).compile()
    expected = first.raw_scores(texts)
    assert first._head is not None and plain._head is not None
    assert first._head.weights.shape[0] == 2 * plain._head.weights.shape[0]
    assert len(list(tmp_path.glob("compiled-*.npz"))) == 1
    again = CachedScorer(GUIDES, LexicalEncoder(), cache_dir=tmp_path, head_lexical=0.4)
    assert np.array_equal(again.raw_scores(texts), expected)
    other = CachedScorer(GUIDES, LexicalEncoder(), cache_dir=tmp_path, head_lexical=0.2)
    assert other.compiled_key() != again.compiled_key()
    other.compile()
    assert len(list(tmp_path.glob("compiled-*.npz"))) == 2
    assert not np.array_equal(other.raw_scores(texts), expected)


def test_the_head_reads_lexical_features_sparse_with_the_same_scores() -> None:
    """Scoring reads each request's few hundred lexical features (`sparse_lexical`, `Head.joined`),
    not its 16k-wide row: the same probabilities as the dense rows the head was trained on."""
    lexicon = LexicalEncoder()
    lexicon.fit([t for g in GUIDES for t in g.positives])
    texts = ["will it rain in Rome", "play jazz", ""]
    dense = lexicon.encode(texts)
    sparse = sparse_lexical(lexicon, texts)
    for row, (index, value) in zip(dense, sparse, strict=True):
        rebuilt = np.zeros_like(row)
        np.add.at(rebuilt, index, value)
        assert np.allclose(rebuilt, row, atol=1e-6)
    rng = np.random.default_rng(0)
    embedded = rng.normal(size=(3, 8)).astype(np.float32)
    head = Head(rng.normal(size=(8 + lexicon.dim, 4)).astype(np.float32) * 0.1, np.zeros(4, np.float32))
    assert np.allclose(head.joined(embedded, sparse, 0.4), head(joined(embedded, dense, 0.4)), atol=1e-5)
