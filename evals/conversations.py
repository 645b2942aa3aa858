"""The multi-turn suite: follow-up routing accuracy over labelled conversations.

`python -m evals.conversations [--data FILE] [--split dev|heldout|heldout2|NAME|all] [--json]` runs each
conversation of tests/data/conversations.jsonl (its format: tests/data/conversations.md) on its own
thread of the real graph (offline: the few-shot scorer, the deterministic planner, the template
answers; a fresh data directory, so the support desk's database starts from its seed) and prints
follow-up routing accuracy (the turns after the first), first-turn accuracy and per-category figures.
An approval or confirmation question a turn asks is answered with the turn's `resume` (default no).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from graph.builder import build_graph
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.context import profiles
from graph.context.turns import routed_capabilities

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "conversations.jsonl"


@dataclass
class TurnResult:
    conversation: str
    category: str
    split: str
    index: int
    text: str
    expect: list[str]
    routed: list[str]
    routed_ok: bool
    answer_ok: bool
    answer: str
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.routed_ok and self.answer_ok


@dataclass
class Report:
    turns: list[TurnResult] = field(default_factory=list)
    seconds: float = 0.0

    def accuracy(self, rows: Sequence[TurnResult]) -> float | None:
        return round(sum(r.ok for r in rows) / len(rows), 4) if rows else None

    def summary(self) -> dict[str, Any]:
        follow = [t for t in self.turns if t.index > 0]
        first = [t for t in self.turns if t.index == 0]
        by_category: dict[str, list[TurnResult]] = defaultdict(list)
        by_split: dict[str, list[TurnResult]] = defaultdict(list)
        first_by_split: dict[str, list[TurnResult]] = defaultdict(list)
        for t in follow:
            by_category[t.category].append(t)
            by_split[t.split].append(t)
        for t in first:
            first_by_split[t.split].append(t)
        return {
            "followup_accuracy": self.accuracy(follow),
            "followup_turns": len(follow),
            "followup_routing_accuracy": round(sum(t.routed_ok for t in follow) / len(follow), 4)
            if follow
            else None,
            "first_turn_accuracy": self.accuracy(first),
            "conversations": len(first),
            "per_split": {
                k: {
                    "accuracy": self.accuracy(v),
                    "turns": len(v),
                    "first_turn_accuracy": self.accuracy(first_by_split[k]),
                    "first_turns": len(first_by_split[k]),
                }
                for k, v in sorted(by_split.items())
            },
            "per_category": {
                k: {"accuracy": self.accuracy(v), "turns": len(v)} for k, v in sorted(by_category.items())
            },
            "failures": [asdict(t) for t in follow if not t.ok],
            "first_turn_failures": [asdict(t) for t in first if not t.ok],
            "seconds": round(self.seconds, 1),
        }


def load(path: Path, split: str = "all") -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r.get("split", "dev") == split]


def _answer(state: dict[str, Any]) -> str:
    messages = state.get("messages") or []
    last = messages[-1] if messages else None
    return str(last.content) if last is not None and last.type == "ai" else ""


async def run_conversation(graph: Any, conv: dict[str, Any], registry: Registry) -> list[TurnResult]:
    config: dict[str, Any] = {"configurable": {"thread_id": f"eval-{conv['id']}"}}
    if conv.get("user"):
        config["configurable"]["user_id"] = conv["user"]
    out: list[TurnResult] = []
    for i, turn in enumerate(conv["turns"]):
        state = await graph.ainvoke({"messages": [HumanMessage(content=turn["text"])]}, config)
        for _ in range(5):  # answer approval / confirmation questions with the label's decision
            snapshot = await graph.aget_state(config)
            if not any(t.interrupts for t in snapshot.tasks):
                break
            state = await graph.ainvoke(Command(resume=bool(turn.get("resume", False))), config)
        routed = routed_capabilities(state, registry)
        expect, also = set(turn["expect"]), set(turn.get("also_ok") or [])
        routed_ok = expect <= set(routed) <= expect | also
        answer = _answer(state)
        why = []
        answer_ok = True
        if (want := turn.get("contains")) and want.lower() not in answer.lower():
            answer_ok = False
            why.append(f"answer lacks {want!r}")
        if (bad := turn.get("absent")) and bad.lower() in answer.lower():
            answer_ok = False
            why.append(f"answer has {bad!r}")
        if not routed_ok:
            why.append(f"routed to {routed}, expected {sorted(expect)}")
        out.append(
            TurnResult(
                conv["id"],
                conv["category"],
                conv.get("split", "dev"),
                i,
                turn["text"],
                sorted(expect),
                routed,
                routed_ok,
                answer_ok,
                answer[:300],
                "; ".join(why),
            )
        )
    return out


async def evaluate(
    conversations: Sequence[dict[str, Any]],
    *,
    data_dir: Path | None = None,
    registry_path: Path | None = None,
) -> Report:
    """Run every conversation on a fresh offline graph (its own data directory unless given)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rg-conversations-") as tmp:
        base = Settings.from_env()
        settings = Settings.offline(
            data_dir or Path(tmp),
            cache_dir=base.cache_dir,
            **({"registry": registry_path} if registry_path else {}),
        )
        registry = Registry.from_file(settings.registry)
        store = InMemoryStore()
        graph = build_graph(registry=registry, settings=settings, checkpointer="memory", store=store)
        report = Report()
        for conv in conversations:
            if conv.get("user") and conv.get("profile"):
                profile = profiles.Profile(user_id=conv["user"])
                for key, value in conv["profile"].items():
                    profile = profiles.set_field(profile, key, str(value))
                profiles.save(store, profile)
            report.turns += await run_conversation(graph, conv, registry)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.conversations", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="conversations JSONL")
    p.add_argument(
        "--split",
        default="all",
        help="dev, heldout, heldout2, any other split a data file names (e.g. heldout3), or all (default)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    # The registry ROUTEGRAPH_REGISTRY names, as `routegraph` reads it (`Settings.offline` reads no
    # environment: without this the variable was silently ignored and registry.yaml measured).
    report = asyncio.run(evaluate(load(args.data, args.split), registry_path=Settings.from_env().registry))
    summary = report.summary()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(
        f"follow-up routing accuracy: {summary['followup_accuracy']} over {summary['followup_turns']} turns "
        f"({summary['conversations']} conversations, {summary['seconds']} s)"
    )
    print(f"first turns: {summary['first_turn_accuracy']}")
    for name, row in summary["per_split"].items():
        print(
            f"  split {name:<22} {row['accuracy']}  ({row['turns']} turns; first turns "
            f"{row['first_turn_accuracy']} of {row['first_turns']})"
        )
    for name, row in summary["per_category"].items():
        print(f"  {name:<28} {row['accuracy']}  ({row['turns']} turns)")
    for f in summary["first_turn_failures"] + summary["failures"]:
        print(f"  FAIL {f['conversation']} turn {f['index']}: {f['text']!r}: {f['why']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
