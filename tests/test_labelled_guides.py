"""Labelled requests as guide examples: `classifier.labelled_examples` (graph/config/labelled.py),
the shipped support file, and benchmarks/labelled_guides.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from benchmarks.labelled_guides import main
from evals.datasets import read_rows
from graph.config.registry import Registry
from graph.errors import RegistryError

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "tests" / "support_desk" / "data"
SHIPPED = ROOT / "capabilities" / "support_desk" / "data" / "labelled_examples.jsonl"
DEVELOPMENT_SETS = [
    "support_dev.jsonl",
    "support_heldout.jsonl",
    "support_heldout2.jsonl",
    "support_heldout3.jsonl",
    "support_heldout4.jsonl",
    "support_heldout5.jsonl",
    "support_heldout9.jsonl",
    "support_heldout11.jsonl",
    "support_heldout13.jsonl",
]
"""The sets the shipped file is made from (HELDOUT.md): development sets, no longer measured blind."""
MEASURING_SETS = [
    "support_routing.jsonl",
    "support_heldout6.jsonl",
    "support_heldout7.jsonl",
    "support_heldout10.jsonl",
    "support_heldout12.jsonl",
    "support_heldout14.jsonl",
    "support_heldout16.jsonl",
]
"""Sets that must never become examples: the pinned one the guides were written from and the blind ones
(6, 7, 10, 12, 14, 16). Sets 9 and 11, the development twins of 10 and 12, became examples in session 19,
once their twins had measured what the rule fixes carried; set 13, the twin of 14, in session 20. Not set 8: one of its rows, "accnt status for c-1010 pls", is
word for word a row a development set's writer wrote independently earlier, so it is an example."""


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _registry(tmp_path: Path, entries: list[str]) -> Registry:
    data = yaml.safe_load((ROOT / "registry.yaml").read_text(encoding="utf-8"))
    data["classifier"]["labelled_examples"] = entries
    file = tmp_path / "registry.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return Registry.from_file(file)


def test_single_label_and_out_of_scope_rows_become_examples_and_nothing_else(tmp_path: Path) -> None:
    plain = _registry(tmp_path, [])
    known = plain["billing"].classifier_guide.positives[0]
    _write(
        tmp_path / "labelled.jsonl",
        [
            {"text": "the invoice for march looks doubled to me", "labels": ["billing"]},
            {"text": "Ordered a pizza, where is it", "labels": ["out_of_scope"]},
            {"text": "no labels at all is out of scope too", "labels": []},
            {"text": "refund CH-2003 and tell me about the outage", "labels": ["refund", "incidents"]},
            {"text": known, "labels": ["billing"]},
            {"text": "  The invoice for March looks doubled to me ", "labels": ["billing"]},
        ],
    )
    registry = _registry(tmp_path, ["labelled.jsonl"])  # relative to the registry file
    added = registry["billing"].classifier_guide.examples[len(plain["billing"].classifier_guide.examples) :]
    assert [(e.query, e.result, e.reason) for e in added] == [
        ("the invoice for march looks doubled to me", True, "labelled: labelled.jsonl:1")
    ]
    outside = registry.spec.classifier.out_of_scope_examples
    assert outside[len(plain.spec.classifier.out_of_scope_examples) :] == (
        "Ordered a pizza, where is it",
        "no labels at all is out of scope too",
    )
    for name in ("refund", "incidents", "account"):
        assert registry[name].classifier_guide == plain[name].classifier_guide
    # What overlays apply to is the registry as written: loading it again adds nothing twice,
    # and `labelled_examples: []` is the hand-written guides alone.
    assert registry.data["classifier"]["labelled_examples"] == ["labelled.jsonl"]
    again = registry.with_overlay({})
    assert again["billing"].classifier_guide == registry["billing"].classifier_guide
    assert again.spec.classifier.out_of_scope_examples == outside
    off = registry.with_overlay({"classifier": {"labelled_examples": []}})
    assert off["billing"].classifier_guide == plain["billing"].classifier_guide
    assert off.spec.classifier.out_of_scope_examples == plain.spec.classifier.out_of_scope_examples


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ([{"text": "hello", "labels": ["weather"]}], "labelled.jsonl:1: label 'weather' is not a capability of this registry"),
        ([{"text": "hello", "labels": ["respond"]}], "label 'respond' is always active"),
        ([{"labels": ["billing"]}], 'labelled.jsonl:1: a row is an object with a non-empty "text"'),
        ([{"text": "x", "labels": "billing"}], '"labels" is a list of capability names'),
    ],
)
def test_a_row_the_registry_cannot_use_is_a_registry_problem(
    tmp_path: Path, rows: list[dict[str, object]], said: str
) -> None:
    _write(tmp_path / "labelled.jsonl", rows)
    with pytest.raises(RegistryError) as caught:
        _registry(tmp_path, ["labelled.jsonl"])
    message = str(caught.value)
    assert said in message
    assert "classifier.labelled_examples[0]" in message or "labelled_examples" in message


def test_a_missing_file_or_broken_line_is_reported_with_where(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"cannot read .*nowhere\.jsonl"):
        _registry(tmp_path, ["nowhere.jsonl"])
    (tmp_path / "broken.jsonl").write_text('{"text": "fine", "labels": ["billing"]}\n{not json\n', encoding="utf-8")
    with pytest.raises(RegistryError, match=r"broken\.jsonl:2: not JSON"):
        _registry(tmp_path, ["broken.jsonl"])
    with pytest.raises(RegistryError, match="No module named"):
        _registry(tmp_path, ["no_such_package_here:data/x.jsonl"])


def test_many_bad_rows_are_summarised_not_listed(tmp_path: Path) -> None:
    _write(tmp_path / "labelled.jsonl", [{"text": f"row {i}", "labels": ["nope"]} for i in range(9)])
    with pytest.raises(RegistryError) as caught:
        _registry(tmp_path, ["labelled.jsonl"])
    message = str(caught.value)
    assert message.count("label 'nope'") == 5
    assert "and 4 more problems in this file" in message


def test_the_shipped_file_loads_from_the_package() -> None:
    registry = Registry.from_file(ROOT / "registry.yaml", learned=False)
    assert registry.spec.classifier.labelled_examples == ("capabilities.support_desk:data/labelled_examples.jsonl",)
    reasons = [e.reason for e in registry["billing"].classifier_guide.examples]
    assert any(r.startswith("labelled: labelled_examples.jsonl:") for r in reasons)


def test_the_shipped_file_is_the_development_sets_and_no_measuring_set() -> None:
    shipped = [json.loads(line) for line in SHIPPED.read_text(encoding="utf-8").splitlines()]
    expected = [
        (row.text, sorted(row.labels) or ["out_of_scope"], name)
        for name in DEVELOPMENT_SETS
        for row in read_rows(SUPPORT / name)
    ]
    assert [(r["text"], sorted(r["labels"]), r["source"]) for r in shipped] == expected
    texts = {r["text"].strip().lower() for r in shipped}
    for name in MEASURING_SETS:
        path = SUPPORT / name
        if path.exists():
            leaked = [row.text for row in read_rows(path) if row.text.strip().lower() in texts]
            assert not leaked, f"{name} rows are among the shipped examples: {leaked[:3]}"


def test_benchmark_refuses_what_it_cannot_compare(tmp_path: Path) -> None:
    data = _write(tmp_path / "x.jsonl", [{"text": "hi", "labels": ["out_of_scope"], "split": "test"}])
    assert main(["--add", str(data), "--eval", str(data)]) == 2
    _registry(tmp_path, [])  # writes tmp_path/registry.yaml without labelled examples
    assert main(["--registry", str(tmp_path / "registry.yaml"), "--eval", str(data)]) == 2  # nothing to add
    assert main(["--registry", str(tmp_path / "registry.yaml")]) == 2  # nothing to evaluate
    assert main(["--write", str(tmp_path / "out.jsonl")]) == 2


def test_benchmark_writes_rows_with_their_source(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [{"text": "hi there", "labels": [], "split": "test"}])
    b = _write(tmp_path / "b.jsonl", [{"text": "my invoice", "labels": ["billing"], "split": "test"}])
    out = tmp_path / "out.jsonl"
    assert main(["--add", str(a), str(b), "--write", str(out)]) == 0
    assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == [
        {"text": "hi there", "labels": ["out_of_scope"], "source": "a.jsonl"},
        {"text": "my invoice", "labels": ["billing"], "source": "b.jsonl"},
    ]


def test_the_curve_is_fitted_on_the_hand_written_examples() -> None:
    from graph.classifier.build import curve_examples

    on = Registry.from_file(ROOT / "registry.yaml", learned=False)  # the labelled file is on
    shipped = on.with_overlay({"classifier": {"labelled_examples": []}})
    assert curve_examples(shipped) is None  # nothing labelled: every example counts
    chosen = curve_examples(on)
    assert chosen is not None
    written = {q for c in shipped.routable for q in c.classifier_guide.positives}
    assert chosen == written  # the authors' positives, none of the 513 labelled ones
    assert len({q for c in on.routable for q in c.classifier_guide.positives}) > len(written) + 500


def test_the_scorer_fits_its_curve_on_the_examples_it_is_given() -> None:
    from graph.classifier.encoders import LexicalEncoder
    from graph.classifier.guides import LabelGuide
    from graph.classifier.scorer import FewShotScorer

    clean = {
        "clock": ("what time is it in Tokyo", "current time in Paris", "time in Lima now"),
        "calculator": ("what is 12 times 7", "add 5 and 9", "divide 100 by 4"),
    }
    noisy = tuple(f"uh so like the thing {i} we talked about, sums maybe" for i in range(12))
    guides = [LabelGuide("clock", clean["clock"]), LabelGuide("calculator", clean["calculator"] + noisy)]
    every = FewShotScorer(guides, LexicalEncoder())
    every.compile()
    written = FewShotScorer(
        guides, LexicalEncoder(), curve_examples=frozenset(clean["clock"] + clean["calculator"])
    )
    written.compile()
    assert every.calibration is not None and written.calibration is not None
    assert written.calibration != every.calibration
    # The noisy rows scored low held out and pulled the curve right; without them it sits left.
    assert written.calibration.midpoint < every.calibration.midpoint


def test_identifiers_in_labelled_rows_get_stand_ins_of_the_same_shape() -> None:
    from graph.config.labelled import stand_ins

    text = "I'm lukas.becker@fjordsoft.de, refund CH-2034 ($36) and check c1004, customer number is 1007"
    varied = stand_ins(text)
    assert varied == stand_ins(text), "the same row gets the same stand-ins on every load"
    for written in ("lukas.becker@fjordsoft.de", "CH-2034", "$36", "c1004", "1007"):
        assert written not in varied
    assert re.fullmatch(
        r"I'm [\w.]+@[\w.-]+, refund CH-[1-9]\d{3} \(\$[1-9]\d\) and check c[1-9]\d{3}, customer number is [1-9]\d{3}",
        varied,
    ), varied
    for amount, shape in (("30 dollars", r"[1-9]\d dollars"), ("USD 4,860.00", r"USD [1-9],\d{3}\.00"), ("125 bucks", r"[1-9]\d\d bucks")):
        assert re.fullmatch(shape, stand_ins(amount)), stand_ins(amount)
    # Numbers that carry the need stay: an error code, a duration, a year, an operand, a time.
    for kept in ("500 errors on POST /v2/projects", "429 with Retry-After 30 seconds", "since 2025", "12*7", "9am in Tokyo"):
        assert stand_ins(kept) == kept


def test_labelled_rows_join_with_their_stand_ins_and_load_twice_the_same(tmp_path: Path) -> None:
    from graph.config.labelled import stand_ins

    row = "why was jane@acme.io billed $125 twice on INV-3002"
    _write(tmp_path / "labelled.jsonl", [{"text": row, "labels": ["billing"]}])
    registry = _registry(tmp_path, ["labelled.jsonl"])
    added = [e.query for e in registry["billing"].classifier_guide.examples if e.reason.startswith("labelled: ")]
    assert added == [stand_ins(row)] and "jane@acme.io" not in added[0] and "INV-3002" not in added[0]
    assert registry.with_overlay({})["billing"].classifier_guide == registry["billing"].classifier_guide


def test_cross_validation_refuses_a_held_set_that_is_not_a_development_set(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.labelled_cv import main as cv

    assert cv(["--sets", "support_dev", "support_heldout", "--hold", "support_heldout6"]) == 2
    assert "held sets must be among --sets: support_heldout6" in capsys.readouterr().err
