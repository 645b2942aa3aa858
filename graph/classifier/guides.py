"""What the classifier learns from: one `LabelGuide` per routable capability."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graph.config.registry import CapabilityInfo


@dataclass(frozen=True)
class LabelGuide:
    """What the scorer knows about one capability."""

    name: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    description: str = ""


def guides_from_registry(capabilities: Sequence[CapabilityInfo]) -> list[LabelGuide]:
    """The guides of registered capabilities; a description is the capability's description and
    its guide's instructions together."""
    out = []
    for cap in capabilities:
        guide = cap.classifier_guide
        desc = " ".join(x for x in (cap.description, guide.instructions) if x)
        out.append(LabelGuide(cap.name, tuple(guide.positives), tuple(guide.negatives), desc))
    return out


def example_owners(guides: Sequence[LabelGuide]) -> tuple[list[str], dict[str, list[int]]]:
    """Every positive example in guide order, and for each text the guides that give it (a text
    in several guides is a positive of each of them)."""
    texts = [t for g in guides for t in g.positives]
    owners: dict[str, list[int]] = {}
    for i, guide in enumerate(guides):
        for text in guide.positives:
            owners.setdefault(text, []).append(i)
    return texts, owners
