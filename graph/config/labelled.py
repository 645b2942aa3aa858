"""Labelled requests as guide examples: a registry's `classifier.labelled_examples`.

Each entry names a JSON Lines file in the shared data format (evals/datasets.py: one
`{"text": ..., "labels": [...]}` per line; other keys are ignored): a path relative to the registry
file, an absolute path, or `package.module:relative/path` for a file shipped inside a package (the
shipped registry's form, which works in a source checkout and from an installed wheel alike).

What each row adds (`expand`):

- one label naming a routable capability: a positive example of that capability's guide;
- `["out_of_scope"]` (or no labels): an out-of-scope example (`classifier.out_of_scope_examples`,
  negatives of every capability);
- several labels: nothing (which clause needs which capability is not labelled).

Before a row joins, its identifiers get stand-ins (`stand_ins`): e-mail addresses, ids with a
letter prefix (`CH-2034`, `c1004`, `INV-3034`), long numbers after "customer", "account", "#" and
the like, and money amounts (`$36`, `30 dollars`, `USD 36.00`) are replaced by others of the same
shape, the same for the same row on every load. Labelled requests are about the customers and
charges of whoever wrote them: without stand-ins the classifier learns that "$36" or
"lukas.becker@..." means billing because several billing rows named them, and a refund request about
the same charge reads as billing (session 16). Numbers that carry the need (a 429 or a 500, "30
seconds", a year) are kept.

Texts a guide or the out-of-scope list already has (case and surrounding space aside) are skipped,
and so are repeats: loading a registry that already carries the rows (an overlay that copied its
guides) adds nothing. A label that names no capability, a label of an always-active capability, a
file that cannot be read or a line that is not a JSON object with a non-empty `text` is a registry
problem, reported with the file and line.

Why: the classifier routes by similarity to its examples, and routing generalises to new wordings
as the examples get more varied. A capability's author writes a handful; labelled requests written
by other people (support tickets, corrected traffic, evaluation sets) add the variety. Session 14
measured it on a support set written by a fifth person who saw none of them (README "Status").
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

OUT_OF_SCOPE = "out_of_scope"
LABELLED = "labelled: "
"""How an example added from a labelled file begins its `reason` (`labelled: FILE:LINE`): the
classifier fits its confidence curve on the other, hand-written examples (graph/classifier/build.py)."""
MAX_FILE_BYTES = 4_000_000
"""A labelled file larger than this is refused (the shipped one is about 100 kB)."""
MAX_ROWS = 20_000
_PACKAGE_PATH = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<path>[^:]+)$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PREFIXED_ID = re.compile(r"\b(?P<prefix>[A-Za-z]{1,4})(?P<sep>-?)(?P<digits>\d{3,})\b")
_NAMED_NUMBER = re.compile(
    r"(?P<lead>(?:#|\b(?:customer|client|account|acct|no\.|number|id|ref|reference|invoice|order)"
    r"(?:\s+(?:number|no\.?|id|is))*\s*[#:]?\s*))"
    r"(?P<digits>\d{3,})\b",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    r"(?P<before>(?:[$€£]|\b(?:usd|eur|gbp)\b)\s?)(?P<digits>\d{1,3}(?:,\d{3})+|\d+)"
    r"|(?P<digits2>\d{1,3}(?:,\d{3})+|\d+)(?=(?:\.\d{1,2})?\s?(?:\$|€|£|\b(?:dollars?|bucks|usd|eur|euros?|quid)\b))",
    re.IGNORECASE,
)
_LOCAL_PARTS = ("alex", "sam.rivera", "billing", "k.osei", "finance", "noor", "j.moreau", "ops", "lin.wei", "maria")
_DOMAINS = ("example.com", "northwind.io", "hollow-pine.co", "quartzlab.dev", "verdant.de", "tidewater.co.uk")


@dataclass
class Expansion:
    """What the labelled files add: positives per capability (text, where from) and out-of-scope texts."""

    positives: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    out_of_scope: list[str] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    """(index of the entry in `labelled_examples`, message)."""


def locate(entry: str, base_dir: Path | None) -> Path:
    """The file an entry names: `module:path` inside that package, else a path (relative to
    `base_dir`, the registry file's folder, or the working directory)."""
    match = _PACKAGE_PATH.match(entry)
    if match and not Path(entry).exists():
        root = importlib.resources.files(match["module"])
        return Path(str(root.joinpath(match["path"])))
    path = Path(entry).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _digits_like(digits: str, rng: random.Random) -> str:
    """Random digits in `digits`' shape: the same count and thousands commas, no leading zero."""
    out = []
    first = True
    for ch in digits:
        if ch.isdigit():
            out.append(str(rng.randint(1, 9) if first else rng.randint(0, 9)))
            first = False
        else:
            out.append(ch)
    return "".join(out)


def stand_ins(text: str) -> str:
    """`text` with its e-mail addresses, prefixed ids, numbered references and money amounts
    replaced by others of the same shape (the module's docstring); the same text always gets the
    same stand-ins."""
    rng = random.Random(hashlib.sha256(text.encode("utf-8")).digest())
    text = _EMAIL.sub(lambda m: f"{rng.choice(_LOCAL_PARTS)}@{rng.choice(_DOMAINS)}", text)
    text = _PREFIXED_ID.sub(lambda m: m["prefix"] + m["sep"] + _digits_like(m["digits"], rng), text)
    text = _NAMED_NUMBER.sub(lambda m: m["lead"] + _digits_like(m["digits"], rng), text)
    return _AMOUNT.sub(
        lambda m: m["before"] + _digits_like(m["digits"], rng) if m["before"] else _digits_like(m["digits2"], rng),
        text,
    )


def read_rows(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, text, labels) of each row; raises ValueError saying what is wrong and where."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    rows: list[tuple[int, str, tuple[str, ...]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(rows) >= MAX_ROWS:
            raise ValueError(f"{path} has more than {MAX_ROWS:,} rows")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise ValueError(f"{path}:{number}: a row is an object with a non-empty \"text\"")
        labels = row.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path}:{number}: \"labels\" is a list of capability names")
        rows.append((number, row["text"].strip(), tuple(labels)))
    return rows


def expand(
    entries: Iterable[str],
    *,
    base_dir: Path | None,
    routable: Iterable[str],
    other: Iterable[str],
    known: Mapping[str, Iterable[str]],
    known_out_of_scope: Iterable[str],
) -> Expansion:
    """Read the files `entries` name and sort their rows into examples (the module's docstring).

    `routable`: the capabilities rows may name; `other`: capabilities they may not (always active,
    terminal); `known`: each capability's guide texts and `known_out_of_scope` the registry's list,
    skipped when a row repeats them."""
    allowed = set(routable)
    refused = set(other)
    seen = {name: {t.strip().lower() for t in texts} for name, texts in known.items()}
    seen_outside = {t.strip().lower() for t in known_out_of_scope}
    result = Expansion()
    for i, entry in enumerate(entries):
        try:
            path = locate(entry, base_dir)
            rows = read_rows(path)
        except (ValueError, ModuleNotFoundError, TypeError) as exc:
            result.problems.append((i, str(exc)))
            continue
        for number, written, labels in rows:
            text = stand_ins(written)
            names = [x for x in labels if x != OUT_OF_SCOPE]
            unknown = [x for x in names if x not in allowed]
            if unknown:
                why = "always active (the classifier never routes to it)" if unknown[0] in refused else "not a capability of this registry"
                result.problems.append((i, f"{path.name}:{number}: label {unknown[0]!r} is {why}"))
                continue
            key = text.lower()
            if not names:
                if key not in seen_outside:
                    seen_outside.add(key)
                    result.out_of_scope.append(text)
            elif len(names) == 1 and key not in seen.setdefault(names[0], set()):
                seen[names[0]].add(key)
                result.positives.setdefault(names[0], []).append((text, f"{path.name}:{number}"))
    return result
