"""Learning from feedback: corrected turns become guide examples, measured on feedback not learned from.

`learn(store, registry, settings, since=...)`:

1. Takes the traces whose feedback says what was right (graph/ops/replay.py `truth`: `good`,
   `correct CAPS`, `out_of_scope`), one item per distinct request (the latest feedback wins).
2. Splits the requests into a learn set and a held-out set: by a stable hash of the request text
   (default, `holdout` of them held out; identical requests always fall on the same side, so a
   request repeated in the traffic is never learned from and tested on), or by time (`split="time"`:
   the newest `holdout` share held out).
3. Routes the learn set offline with the current registry; each request it still routes wrong
   becomes examples: a positive example of the right capability (when one capability was right),
   a negative example of each capability wrongly selected, or an out-of-scope example
   (`classifier.out_of_scope_examples`) when none was right. At most `max_per_capability` new
   examples per capability, the most frequent requests first; requests already in a guide are skipped.
4. The patch is a registry overlay (graph/config/registry.py `merge_overlay`): the changed
   capabilities' whole `classifier_guide` (old examples plus new) and the whole out-of-scope list.
5. Routes the held-out requests offline with and without the patch and compares them
   (accuracy with Wilson intervals, the paired 2x2 table and McNemar's test, replay.py `paired`).

`improves` is true only when the patched registry is right on more held-out requests than the
current one; `routegraph learn --apply` refuses any other patch. Applied, the overlay is written
to `registry.learned.yaml` beside the registry (`learned_file`), which `Registry.from_file` merges
on every load: registry.yaml stays as its author wrote it, and deleting the file undoes the patch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.experiments import bucket
from graph.ops.replay import Progress, paired, route_offline, routing_text, truth
from graph.ops.store import TraceStore

Split = Literal["hash", "time"]


@dataclass(frozen=True)
class Item:
    """One distinct request with feedback: what was right, how often it came, when it was last seen."""

    text: str
    right: frozenset[str]
    count: int
    last_seen: float
    run_id: str


def items_from(traces: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Distinct requests with a known right answer (the latest feedback on each wins)."""
    counts: Counter[str] = Counter()
    latest: dict[str, tuple[float, frozenset[str], str]] = {}
    for trace in traces:
        right = truth(trace)
        text = routing_text(trace).strip()
        if right is None or not text:
            continue
        counts[text] += 1
        at = float((trace.get("feedback") or {}).get("created_at") or trace["started_at"])
        if text not in latest or at >= latest[text][0]:
            latest[text] = (at, right, str(trace["run_id"]))
    return [Item(t, r, counts[t], at, run) for t, (at, r, run) in latest.items()]


def split_items(
    items: Sequence[Item], *, holdout: float, by: Split = "hash"
) -> tuple[list[Item], list[Item]]:
    """(learn, held out): by a stable hash of the text, or the newest `holdout` share by time."""
    if by == "time":
        ordered = sorted(items, key=lambda i: (i.last_seen, i.text))
        cut = len(ordered) - round(len(ordered) * holdout)
        return ordered[:cut], ordered[cut:]
    held = [i for i in items if bucket("learn-holdout", i.text) < holdout]
    return [i for i in items if bucket("learn-holdout", i.text) >= holdout], held


def propose(
    registry: Registry,
    items: Sequence[Item],
    decided: Sequence[frozenset[str]],
    *,
    max_per_capability: int = 25,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The examples to add for the requests routed wrong (`decided` != right), and the overlay."""
    known = {e.query.strip().lower() for c in registry for e in c.classifier_guide.examples}
    known |= {t.strip().lower() for t in registry.spec.classifier.out_of_scope_examples}
    routable = {c.name for c in registry.routable}
    additions: list[dict[str, Any]] = []
    taken: Counter[str] = Counter()
    ranked = sorted(zip(items, decided, strict=True), key=lambda p: (-p[0].count, p[0].text))
    for item, chosen in ranked:
        if chosen == item.right or item.text.lower() in known:
            continue
        why = f"feedback on run {item.run_id}"
        if not item.right:
            if taken["(out of scope)"] < max_per_capability:
                additions.append({"kind": "out_of_scope", "capability": None, "query": item.text, "why": why})
                taken["(out of scope)"] += 1
            continue
        if len(item.right) == 1:
            [cap] = item.right
            if cap in routable and cap not in chosen and taken[cap] < max_per_capability:
                additions.append({"kind": "positive", "capability": cap, "query": item.text, "why": why})
                taken[cap] += 1
        for cap in sorted(chosen - item.right):
            if cap in routable and taken[cap] < max_per_capability:
                additions.append({"kind": "negative", "capability": cap, "query": item.text, "why": why})
                taken[cap] += 1
    return additions, overlay_for(registry, additions)


def overlay_for(registry: Registry, additions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The registry overlay that adds these examples (whole guides and lists: overlays replace)."""
    overlay: dict[str, Any] = {}
    caps: dict[str, Any] = {}
    for cap in registry.routable:
        new = [a for a in additions if a["capability"] == cap.name]
        if not new:
            continue
        guide = cap.classifier_guide.model_dump(mode="json")
        guide["examples"] = list(guide["examples"]) + [
            {"query": a["query"], "result": a["kind"] == "positive", "reason": f"learned: {a['why']}"}
            for a in new
        ]
        caps[cap.name] = {"classifier_guide": guide}
    if caps:
        overlay["capabilities"] = caps
    out = [a["query"] for a in additions if a["kind"] == "out_of_scope"]
    if out:
        overlay["classifier"] = {
            "out_of_scope_examples": [*registry.spec.classifier.out_of_scope_examples, *out]
        }
    return overlay


def learn(
    store: TraceStore,
    registry: Registry,
    settings: Settings,
    *,
    since: float | None = None,
    until: float | None = None,
    holdout: float = 0.3,
    split: Split = "hash",
    max_per_capability: int = 25,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Propose a patch from the feedback and measure it on the held-out feedback (module docstring)."""
    items = items_from(store.traces(since=since, until=until))
    learn_set, held = split_items(items, holdout=holdout, by=split)
    decided = route_offline(registry, settings, [i.text for i in learn_set], progress=progress)
    additions, overlay = propose(registry, learn_set, decided, max_per_capability=max_per_capability)
    result: dict[str, Any] = {
        "since": since,
        "split": split,
        "holdout": holdout,
        "feedback_requests": len(items),
        "learn_requests": len(learn_set),
        "learn_misrouted": sum(d != i.right for d, i in zip(decided, learn_set, strict=True)),
        "holdout_requests": len(held),
        "additions": additions,
        "overlay": overlay,
        "evaluation": None,
        "held_out": [{"text": i.text, "labels": sorted(i.right) or ["out_of_scope"]} for i in held],
    }
    if not additions:
        result.update(improves=False, reason="nothing to learn: the learn set is routed as its feedback says")
        return result
    if not held:
        result.update(improves=False, reason="no held-out feedback to measure the patch on")
        return result
    patched = registry.with_overlay(overlay, source=f"{registry.source} + learned patch")
    texts = [i.text for i in held]
    before = route_offline(registry, settings, texts, progress=progress)
    after = route_offline(patched, settings, texts, progress=progress)
    evaluation = paired(texts, [i.right for i in held], before, after, names=("before", "after"))
    result["evaluation"] = evaluation
    gain = evaluation["after"]["k"] - evaluation["before"]["k"]
    result["improves"] = gain > 0
    result["reason"] = (
        f"held-out accuracy {evaluation['before']['k']}/{len(held)} -> {evaluation['after']['k']}/{len(held)}"
        + ("" if gain > 0 else ": the patch does not improve it")
    )
    return result


def format_diff(additions: Sequence[Mapping[str, Any]]) -> str:
    """The patch as diff lines: `+ billing  positive  "the request"`."""
    lines = []
    for a in additions:
        where = a["capability"] or "out_of_scope_examples"
        lines.append(f"+ {where:<22} {a['kind']:<12} {a['query']!r}")
    return "\n".join(lines)
