"""A compile computes each text's lexical features once (issue 19), and what it compiles is the same
to the bit as before: the cached scorer's compile (`CachedScorer._compile_once`: the features
remembered, the head's rows written in place) is compared with `FewShotScorer`'s own, which
remembers nothing. Real encoders on the session's cache; guides written for these tests."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph.classifier import FewShotScorer, LabelGuide
from graph.classifier.compiled import CachedScorer, joined_into
from graph.classifier.encoders import LexicalEncoder, MiniLMEncoder, normalize, remembered_features
from graph.classifier.head import joined
from graph.classifier.prototypes import GuideVectors

GUIDES = [
    LabelGuide(
        "parcels",
        (
            "where is my parcel",
            "the courier says it was delivered but nothing came",
            "can I change the delivery address of an order already shipped",
            "track the package I sent to my sister",
        ),
        ("how much does a parcel to Norway cost",),
        "Tracks parcels and changes deliveries.",
    ),
    LabelGuide(
        "postage",
        (
            "how much does a parcel to Norway cost",
            "what is the cheapest way to send a heavy box",
            "do stamps for a postcard abroad cost more",
            "price of express postage for two kilos",
        ),
        description="Prices postage.",
    ),
    LabelGuide(
        "lockers",
        (
            "is there a parcel locker near the station",
            "my locker code does not work",
            "how long does a parcel wait in the locker",
            "the courier says it was delivered but nothing came",  # also a parcels example: multi-label
        ),
        description="Parcel lockers.",
    ),
]
OUT_OF_SCOPE = ("compile once test: what wine goes with mushroom risotto",)


def _scorers(cache: Path, *, by_length: bool) -> tuple[FewShotScorer, CachedScorer]:
    """The same scorer twice on one encoder: compiled as `FewShotScorer` compiles (no cache, nothing
    remembered) and as `CachedScorer` does (into `cache`)."""
    encoder = MiniLMEncoder(onnx_dir=Path(os.environ["ROUTEGRAPH_CACHE_DIR"]))
    encoder.bulk = by_length  # the first ask's batches by length, or in order (the fine-tuned compile's)
    plain = FewShotScorer(GUIDES, encoder, out_of_scope=OUT_OF_SCOPE)
    cached = CachedScorer(GUIDES, encoder, cache_dir=cache, out_of_scope=OUT_OF_SCOPE)
    return plain, cached


def _state(scorer: FewShotScorer) -> dict[str, Any]:
    vectors: GuideVectors = scorer._vectors
    state: dict[str, Any] = {
        f"v_{f.name}": np.asarray(getattr(vectors, f.name)) for f in fields(GuideVectors)
    }
    assert scorer._head is not None and scorer._held_out is not None and scorer.calibration is not None
    state["head_weights"], state["head_bias"] = scorer._head.weights, scorer._head.bias
    state["held_raw"], state["held_truth"] = scorer._held_out
    state["calibration"] = np.array([scorer.calibration.slope, scorer.calibration.midpoint])
    state["background"] = np.array(scorer._background)
    return state


@pytest.mark.parametrize("by_length", [True, False])
def test_the_cached_compile_is_the_plain_one_to_the_bit(tmp_path: Path, by_length: bool) -> None:
    plain, cached = _scorers(tmp_path, by_length=by_length)
    plain.compile()
    cached.compile()
    expected, got = _state(plain), _state(cached)
    assert expected.keys() == got.keys()
    for name in expected:
        assert expected[name].dtype == got[name].dtype and expected[name].shape == got[name].shape, name
        assert expected[name].tobytes() == got[name].tobytes(), name
    # What it saved reads back the same, and a request scores the same on all three.
    saved = CachedScorer(GUIDES, cached.encoder, cache_dir=tmp_path, out_of_scope=OUT_OF_SCOPE)
    saved.compile()
    assert saved._head is not None and cached._head is not None
    assert saved._head.weights.tobytes() == cached._head.weights.tobytes()
    asked = ["my parcel never turned up, can you find it", "what would posting a guitar cost"]
    assert plain.raw_scores(asked).tobytes() == cached.raw_scores(asked).tobytes()
    assert plain.raw_scores(asked).tobytes() == saved.raw_scores(asked).tobytes()


def test_each_text_s_lexical_features_are_computed_once_per_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[str] = []
    real = LexicalEncoder._computed_features

    def counted(self: LexicalEncoder, text: str) -> dict[int, float]:
        computed.append(text)
        return real(self, text)

    monkeypatch.setattr(LexicalEncoder, "_computed_features", counted)
    plain, cached = _scorers(tmp_path, by_length=True)
    plain.compile()  # FewShotScorer's own compile: the IDF and the head's rows read the guides each
    assert all(computed.count(t) >= 2 for t in plain._corpus())
    computed.clear()
    cached.compile()
    assert computed and len(computed) == len(set(computed))  # the IDF, head rows, curve: once each
    assert set(cached._corpus()) <= set(computed)
    # Requests are not remembered: the same text twice is computed twice.
    computed.clear()
    cached.raw_scores(["where is my parcel"])
    cached.raw_scores(["where is my parcel"])
    assert computed.count("where is my parcel") == 2


def test_remembered_features_are_the_computed_ones_and_forgotten_after() -> None:
    lexicon = LexicalEncoder()
    texts = ["send a box to Lisbon", "Send a box to Lisbon!", "send a box to Lisbon", ""]
    lexicon.fit(texts)
    plain = lexicon.encode(texts)
    with remembered_features():
        with remembered_features():  # nested: the outer memo
            first = lexicon._features(texts[0])
        assert lexicon._features(texts[0]) is first
        assert lexicon.encode(texts).tobytes() == plain.tobytes()
    assert lexicon._features(texts[0]) is not first and lexicon._features(texts[0]) == first


def test_lexical_rows_and_the_head_s_joined_rows_are_as_before() -> None:
    """`LexicalEncoder.encode` in place and `joined_into` give the old formulas' bits."""
    lexicon = LexicalEncoder()
    texts = ["where did my 2 parcels go", "price of stamps?", "", "locker 14 will not open, code 5521"]
    lexicon.fit(texts)
    counts = np.zeros((len(texts), lexicon.dim), dtype=np.float32)
    for row, text in enumerate(texts):  # one assignment per feature, as `_counts` did
        for h, v in lexicon._features(text).items():
            counts[row, h] = v
    rows = lexicon.encode(texts)
    assert rows.dtype == np.float32 and rows.tobytes() == normalize(counts * lexicon._idf).tobytes()
    dense = normalize(np.random.default_rng(7).normal(size=(len(texts), 384)).astype(np.float32))
    for share in (0.4, 0.15, 0.9):
        old, new = joined(dense, rows, share), joined_into(dense, rows, share)
        assert old.dtype == new.dtype and old.shape == new.shape and old.tobytes() == new.tobytes()


def test_a_saved_scorer_loads_the_head_s_idf_without_fitting_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm run loads the head's lexical IDF from the compiled file: fitting it again hashed every
    guide text's n-grams (about 0.2 s of CPU a warm ask for the shipped guides)."""
    _, cached = _scorers(tmp_path, by_length=True)
    cached.compile()
    assert cached._lexicon is not None
    fitted = cached._lexicon._idf

    def refit(self: LexicalEncoder, corpus: Any) -> None:
        raise AssertionError("the head's IDF was fitted again on load")

    monkeypatch.setattr(LexicalEncoder, "fit", refit)
    saved = CachedScorer(GUIDES, cached.encoder, cache_dir=tmp_path, out_of_scope=OUT_OF_SCOPE)
    saved.compile()
    assert saved._lexicon is not None
    assert saved._lexicon._idf.dtype == np.float32
    assert saved._lexicon._idf.tobytes() == fitted.tobytes()
    asked = ["my parcel never turned up, can you find it", "what would posting a guitar cost"]
    assert saved.raw_scores(asked).tobytes() == cached.raw_scores(asked).tobytes()
