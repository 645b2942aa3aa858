"""Clauses: the pieces of a request that are scored on their own, so one message can select several
capabilities ("play some jazz and set a timer")."""

from __future__ import annotations

import re

_CLAUSE_SPLIT = re.compile(
    r"[?!;.]+\s+|[?!;]+$|[()]|:\s+|\s+(?:and also|also|and then|and|plus|as well as)\s+|,\s+(?=\w+\s+\w+)",
    re.I,
)

CLAUSES = 2
"""Part of the tune fingerprint when clauses are split: bumped when the splitting changes (2: a
single word followed by punctuation is a clause, other lone words join a neighbour), so curves
fitted on the old clauses are set aside."""


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's clauses (not the whole text itself): pieces of at least two
    words, and single words followed by punctuation ("Yes, ...", "Hi, ...", "No. ...", "Thanks!").

    A dialogue act often takes one word in front of the request ("Yes, refund the £27"): as a
    clause of its own it is scored on its own, so `affirm` or `greet` can be selected next to the
    request. Any other lone word ("cats and dogs", "cancel my order and refund", an e-mail address
    after the question) stays with the clause next to it, so the clauses cover every word: MiniLM
    pools the request's own vector from them, and a word in no clause would be dropped from it.
    """
    spans: list[list[int]] = []
    start = 0
    lone: int | None = None  # where a leading lone word starts, until the next clause takes it
    for sep in [*_CLAUSE_SPLIT.finditer(text), None]:
        end = sep.start() if sep is not None else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        left, right = start + lead, start + len(piece.rstrip())
        punctuated = sep is not None and sep.group()[:1] in ",.!?;:"
        if right > left:
            if len(text[left:right].split()) >= 2 or punctuated:
                spans.append([left if lone is None else lone, right])
                lone = None
            elif spans:
                spans[-1][1] = right  # a lone word stays with the clause before it
            elif lone is None:
                lone = left
        if sep is not None:
            start = sep.end()
    if lone is not None:
        spans.append([lone, len(text.rstrip())])
    return [(a, b) for a, b in spans if text[a:b] != text.strip()]


def clauses(text: str) -> list[str]:
    """The whole text, then its clauses (`clause_spans`)."""
    return [text, *(text[a:b] for a, b in clause_spans(text))]
