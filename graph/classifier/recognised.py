"""Requests a capability recognises by their shape (`Capability.recognises`), whatever the scorer
made of their words: "1380 - 275 - 415?" or "3.5 * 42 for the skip hire days" hold arithmetic the
few-shot encoder cannot tell from any other numbers, while the calculator can parse it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from graph.classifier.clauses import clause_spans
from graph.config.registry import CapabilityInfo, Registry

_CONTEXT = re.compile(r"\s*\(follow-up to:.*\)\s*$", re.I | re.S)
"""The earlier request a follow-up task carries (graph/context/followups.py `appended`): not the
user's words, and the follow-up's capability is pinned anyway."""


def recognising(registry: Registry, task: str, names: Sequence[str]) -> list[str]:
    """Those of `names` (capabilities the router may pick) that recognise the task's own words."""
    own = _CONTEXT.sub("", task)
    out = []
    for name in names:
        try:
            cap = registry[name]
            if cap.instance.recognises(own) and _guide_agrees(cap):
                out.append(name)
        except Exception:  # a recogniser that fails recognises nothing
            continue
    return out


def _guide_agrees(cap: CapabilityInfo) -> bool:
    """Whether the capability's guide leaves requests of the recognised shape to it: no negative
    example of its guide is one it recognises. A guide (or an A/B variant's overlay) that says "what
    is 12*7?" is not for the calculator has the last word over the calculator's own recogniser."""
    return not any(
        not ex.result and cap.instance.recognises(ex.query) for ex in cap.classifier_guide.examples
    )


def with_recognised(
    registry: Registry, task: str, names: Sequence[str], chosen: set[str], limit: int
) -> set[str]:
    """`chosen` with the capabilities that recognise the request: alone when the scorer chose
    nothing; beside its picks (up to `limit` capabilities) for the first of the whole request and
    its clauses that no pick recognises ("Calc: 365*7. Time: Oslo.": the calculator beside the
    clock; "365 / 4 ... and the time in Tashkent": the clock recognises the time, not the
    arithmetic of the first clause). A request a pick recognises in full adds nothing."""
    others = [n for n in names if n not in chosen]
    if not chosen:
        found = recognising(registry, task, others)
    else:
        own = _CONTEXT.sub("", task)
        found = []
        for piece in (task, *(own[a:b] for a, b in clause_spans(own))):
            if recognising(registry, piece, sorted(chosen)):
                continue  # a pick explains this piece
            if found := recognising(registry, piece, others):
                break
    if not found:
        return chosen
    room = max(0, limit - len(chosen))
    return chosen | set(found[:room])


def known_names(registry: Registry, task: str) -> list[str]:
    """The names of our own records the task's own words give (`Capability.known_names`: a
    customer by full name, "my uncle omar haddad"): who the request is about, like an e-mail address."""
    own = _CONTEXT.sub("", task)
    out: list[str] = []
    for cap in registry.routable:
        try:
            out += [n for n in cap.instance.known_names(own) if n not in out]
        except Exception:  # a capability that fails to tell knows no name
            continue
    return out


def without_names(task: str, names: Sequence[str]) -> str:
    """The task without the given names (any case): "Sofia Rossi wants to know ..." -> " wants to know ..."."""
    for name in names:
        task = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", task, flags=re.I)
    return task


__all__ = ["known_names", "recognising", "with_recognised", "without_names"]
