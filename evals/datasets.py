"""Labelled routing data sets (the shared JSONL format) turned into real registries, seeded.

One line per request: `{"text": ..., "labels": [...], "split": "train" | "val" | "test"}`;
`out_of_scope` marks a request that no capability should take (it is never a capability); a
`<name>.labels.json` next to the file may map each label to a description.

`prepare(dataset, shots=K, seed=S)` fixes everything a run depends on, so that routegraph and any
peer see exactly the same data: K train examples per label drawn with `random.Random(seed)` (a row
with several labels is a candidate example for each of them), the rows to tune thresholds on
(`val` with the out-of-scope train rows not drawn as examples; else a seeded slice of the train
rows not used as shots; none when neither has an in-scope row), and the test rows
(`test` only, never tuned on). `Prepared.registry_dict(...)` builds a registry with one
`LabelCapability` per label, named by a valid capability name (`label_names` maps both ways).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.capability import Capability, RunContext
from graph.errors import DatasetError

OUT_OF_SCOPE = "out_of_scope"
SPLITS = ("train", "val", "test")
RESERVED = frozenset({"respond", "clarify"})
"""Names of the always-active capabilities every evaluation registry has."""
MAX_TUNING_ROWS = 2000
TUNING_SHARE = 0.2
"""Without a `val` split, at most this share of the train rows (and MAX_TUNING_ROWS) is held out to tune on."""


class LabelCapability(Capability):
    """One label of an evaluation data set as a capability: executing it just names the label."""

    description = "A label of an evaluation data set."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        label = str(self.options.get("label", ""))
        return {"label": label, "summary": label}


@dataclass(frozen=True)
class Row:
    text: str
    labels: tuple[str, ...]
    """The row's labels without `out_of_scope`: empty for an out-of-scope request."""
    split: str
    line: int


@dataclass(frozen=True)
class Dataset:
    path: Path
    rows: tuple[Row, ...]
    descriptions: Mapping[str, str]
    """Label -> description, from the labels file (empty without one)."""
    labels_path: Path | None

    @property
    def labels(self) -> list[str]:
        """Every label of the data or the labels file except `out_of_scope`, sorted."""
        found = {label for row in self.rows for label in row.labels}
        return sorted(found | (set(self.descriptions) - {OUT_OF_SCOPE}))

    @property
    def multi_label(self) -> bool:
        return any(len(row.labels) > 1 for row in self.rows)

    def split(self, name: str) -> list[Row]:
        return [row for row in self.rows if row.split == name]

    def description(self, label: str) -> str:
        """The label's description, or the label itself as words ("BookTool" -> "Book Tool")."""
        given = self.descriptions.get(label, "").strip()
        if given:
            return given
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
        return re.sub(r"[_\-\s]+", " ", words).strip() or label


def default_labels_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.stem + ".labels.json")


def load_dataset(path: str | Path, labels_path: str | Path | None = None) -> Dataset:
    """Read a data file (and its labels file: the given one, else `<stem>.labels.json` if present)."""
    data_path = Path(path)
    rows = tuple(read_rows(data_path))
    if labels_path is not None:
        labels_file: Path | None = Path(labels_path)
        descriptions = _read_labels(Path(labels_path))
    else:
        candidate = default_labels_path(data_path)
        labels_file = candidate if candidate.is_file() else None
        descriptions = _read_labels(candidate) if labels_file else {}
    return Dataset(data_path, rows, descriptions, labels_file)


def read_rows(path: Path) -> list[Row]:
    """The rows of a data file (`DatasetError` names the file and line of the first bad one)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rows.append(_parse_row(line, path, number))
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def _parse_row(line: str, path: Path, number: int) -> Row:
    where = f"{path}:{number}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise DatasetError(f"{where}: not a data row (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object with text, labels and split")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{where}: 'text' must be a non-empty string")
    labels = data.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
        raise DatasetError(f"{where}: 'labels' must be a list of non-empty strings")
    split = data.get("split")
    if split not in SPLITS:
        raise DatasetError(f"{where}: 'split' must be one of {', '.join(SPLITS)} (got {split!r})")
    own = tuple(dict.fromkeys(x for x in labels if x != OUT_OF_SCOPE))
    return Row(text=_valid_unicode(text.strip()), labels=own, split=split, line=number)


def _valid_unicode(text: str) -> str:
    """A JSON `\\udcff` escape is a lone surrogate, which no encoder, tokenizer or file takes:
    U+FFFD instead, as the graph's intake does with a request."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _read_labels(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such labels file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the labels file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise DatasetError(f"{path}: expected a JSON object mapping each label to a description")
    return dict(data)


def label_names(labels: Sequence[str]) -> dict[str, str]:
    """A valid, unique capability name (`^[a-z][a-z0-9_]*$`) for every label.

    "BookTool" -> "book_tool", "is-bot?" -> "is_bot"; a name starting with a digit gets a `l_`
    prefix, and clashes (also with respond and clarify) a numeric suffix.
    """
    out: dict[str, str] = {}
    taken = set(RESERVED)
    for label in labels:
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", label).lower()
        base = re.sub(r"[^a-z0-9]+", "_", base).strip("_") or "label"
        if not base[0].isalpha():
            base = "l_" + base
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        out[label] = name
    return out


@dataclass(frozen=True)
class Prepared:
    """Everything one evaluation run depends on, fixed by the data, `shots` and `seed`."""

    dataset: Dataset
    shots: int
    seed: int
    names: Mapping[str, str]
    """Label -> capability name."""
    examples: Mapping[str, tuple[str, ...]]
    """Label -> its guide examples (train shots, or its description when it has no train rows)."""
    description_only: tuple[str, ...]
    out_of_scope: tuple[str, ...]
    """Train rows no label applies to (up to `shots` of them): the registry's
    `classifier.out_of_scope_examples`."""
    tuning: tuple[Row, ...]
    """The rows thresholds are tuned on: `val` and the out-of-scope train rows not drawn as
    examples, or a slice of the train rows (`tuning_source`)."""
    tuning_source: str
    """`val`, `train-slice` or `none` (also when those rows are all out of scope)."""
    test: tuple[Row, ...]
    test_total: int
    """Test rows in the file (`test` is a seeded sample of them under `--limit`)."""
    max_labels: int
    """Most labels on one train or val row (never looks at test rows)."""
    labels_of: Mapping[str, str] = field(init=False)
    """Capability name -> label."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels_of", {v: k for k, v in self.names.items()})

    @property
    def labels(self) -> list[str]:
        return list(self.names)

    @property
    def multi_label(self) -> bool:
        return self.dataset.multi_label

    @property
    def shot_count(self) -> int:
        return sum(len(v) for k, v in self.examples.items() if k not in self.description_only)

    def truth(self, row: Row) -> list[str]:
        """A row's labels as capability names."""
        return [self.names[label] for label in row.labels]

    def registry_dict(
        self,
        *,
        encoder: str = "minilm",
        mode: str = "embedding",
        finetune: bool = True,
        split_clauses: bool = True,
        threshold: float | None = None,
        max_capabilities: int | None = None,
        cascade_band: float | None = None,
    ) -> dict[str, Any]:
        """A registry (as registry.yaml would parse) with one capability per label."""
        classifier: dict[str, Any] = {
            "mode": mode,
            "encoder": encoder,
            "finetune": finetune,
            "split_clauses": split_clauses,
            "max_capabilities": max_capabilities or max(4, self.max_labels),
            # Rows with several labels in one sentence (NLU++): any capability above its threshold.
            "selection": "free" if self.max_labels > 1 else "per_clause",
        }
        if self.out_of_scope:
            classifier["out_of_scope_examples"] = list(self.out_of_scope)
        if threshold is not None:
            classifier["threshold"] = float(threshold)
        if cascade_band is not None:
            classifier["cascade_band"] = float(cascade_band)
        capabilities: list[dict[str, Any]] = [
            {"name": "respond", "class": "capabilities.respond:Respond"},
            {"name": "clarify", "class": "capabilities.clarify:Clarify"},
        ]
        for label, name in self.names.items():
            description = self.dataset.description(label)
            capabilities.append(
                {
                    "name": name,
                    "class": "evals.datasets:LabelCapability",
                    "description": description,
                    "options": {"label": label},
                    "classifier_guide": {
                        "instructions": "",
                        "examples": [{"query": q, "result": True} for q in self.examples[label]],
                    },
                }
            )
        return {"version": 1, "classifier": classifier, "capabilities": capabilities}


def prepare(dataset: Dataset, *, shots: int, seed: int = 0, limit: int | None = None) -> Prepared:
    """Draw the shots, the tuning rows and the test rows for one run (deterministic for a seed)."""
    if shots < 1:
        raise DatasetError("shots must be at least 1")
    labels = dataset.labels
    if not labels:
        raise DatasetError(f"{dataset.path}: no labels other than {OUT_OF_SCOPE}")
    train = dataset.split("train")
    rng = random.Random(seed)
    examples: dict[str, tuple[str, ...]] = {}
    description_only: list[str] = []
    used: set[int] = set()
    for label in labels:
        candidates = [i for i, row in enumerate(train) if label in row.labels]
        if not candidates:
            examples[label] = (dataset.description(label),)
            description_only.append(label)
            continue
        picked = rng.sample(candidates, min(shots, len(candidates)))
        used.update(picked)
        examples[label] = tuple(train[i].text for i in picked)
    # Out of scope is drawn like one more label: `shots` of its train rows at most.
    outside = [i for i, row in enumerate(train) if not row.labels]
    chosen = sorted(rng.sample(outside, min(shots, len(outside))))
    used.update(chosen)
    out_of_scope = tuple(dict.fromkeys(train[i].text for i in chosen))

    val = dataset.split("val")
    if val:
        # The out-of-scope train rows not drawn as examples are tuning rows too: a recall asked of
        # the threshold (`--min-oos-recall`) is held by its 95% lower bound on the tuning rows, and
        # CLINC150's val has 100 out-of-scope rows, its train 90 more (README "out-of-scope decision").
        spare = [train[i] for i in outside if i not in used]
        tuning, source = [*val, *spare], "val"
    else:
        rest = [row for i, row in enumerate(train) if i not in used]
        size = min(len(rest), MAX_TUNING_ROWS, math.floor(TUNING_SHARE * len(train)))
        tuning = [rest[i] for i in sorted(random.Random(seed + 1).sample(range(len(rest)), size))]
        source = "train-slice" if tuning else "none"

    if not any(row.labels for row in tuning):
        # Only out-of-scope rows (e.g. every labelled train row is a shot): there is nothing to
        # calibrate on, and thresholds fitted on them would reject everything.
        tuning, source = [], "none"

    test = dataset.split("test")
    if not test:
        raise DatasetError(f"{dataset.path}: no test rows")
    total = len(test)
    if limit is not None and limit < total:
        keep = sorted(random.Random(seed + 2).sample(range(total), max(0, limit)))
        test = [test[i] for i in keep]
    max_labels = max((len(row.labels) for row in (*train, *val)), default=1)
    return Prepared(
        dataset=dataset,
        shots=shots,
        seed=seed,
        names=label_names(labels),
        examples=examples,
        description_only=tuple(description_only),
        out_of_scope=out_of_scope,
        tuning=tuple(tuning),
        tuning_source=source,
        test=tuple(test),
        test_total=total,
        max_labels=max_labels,
    )
