"""Soak test: a mixed stream of turns, random faults, concurrent workers, workers killed and resumed.

What runs
    A fixed list of requests (demo arithmetic and clock questions, labelled support questions from
    tests/support_desk/data/support_routing.jsonl, and refund instructions for the seeded demo
    customers) is dealt out, with a seeded RNG, to threads of a few turns each. Each turn carries a
    fault plan (`configurable.routegraph_faults`) with probability `--fault-rate`: one node or
    capability raising, answering garbage or being slow (graph/faults.py). Turns that ask for
    approval are answered with `Command(resume=True)` or `False`, as planned.

    `--workers` processes (multiprocessing, spawn) build the graph on one data directory (the shipped
    registry, offline, lexical encoder) with the "sqlite" (or "postgres") checkpointer, and run their
    turns; some threads are shared by two workers, whose turns the per-thread lock serialises. The
    parent SIGKILLs a worker mid-run `--kills` times and starts a replacement for its unfinished turns:
    a turn that was started resumes with `graph.invoke(None, config)` (or the pending approval's
    answer) when its message is in the checkpoint, and is asked again when it is not.

Accounting
    Every worker appends JSON lines to its own file: `start` before a turn, `end` (stop_reason,
    seconds) after it. At the end the parent reads each thread's final checkpoint:

        runs lost        = turns started - turns ended (a resumed turn counts once)
        turns lost       = turns sent whose message (by its id, `<thread>/<turn>`) is not in the
                           thread's messages
        duplicate effects= refund rows beyond the first, per charge
        unfinished       = threads whose final checkpoint still has a next node

Run
    python -m benchmarks.soak --requests 1000 --fault-rate 0.1 [--checkpointer sqlite|postgres]
        [--workers 3] [--kills N] [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from capabilities.support_desk.db import SupportDB

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "tests" / "support_desk" / "data" / "support_routing.jsonl"

DEMO = ["what is 12*7", "what time is it in Tokyo?", "what is 3+4*2"]
REFUNDS = [
    # (request, answer to an approval): Omar's and Lukas's are under the $50 threshold.
    ("I'm omar@brightpath.co, refund my duplicate charge", True),
    ("I'm jane@acme.io, refund my duplicate charge", True),
    ("I'm jane@acme.io, refund my duplicate charge", False),
    ("I'm priya@nimbuslabs.dev, can I get a refund for CH-2023?", False),
    ("I'm lukas.becker@fjordsoft.de, refund CH-2034", True),
]
FAULT_TARGETS = [
    "classifier",
    "task_extraction",
    "orchestrator",
    "execute",
    "respond",
    "calculator",
    "billing",
    "refund",
    "approval",
]
FAULT_KINDS = [
    "raise_retriable",
    "raise_unknown",
    "raise_critical",
    "raise_replanning",
    "return_none",
    "return_list",
    "slow",
]
TURNS_PER_THREAD = 3
MAX_RESUMES = 10
DEADLINE_SECONDS = 900.0


@dataclass(frozen=True)
class Turn:
    thread: str
    index: int
    text: str
    approve: bool
    faults: str
    """A `FaultPlan.parse` text, "" for none."""


def requests_pool(limit: int = 20) -> list[tuple[str, bool]]:
    support: list[str] = []
    for line in ROUTING.read_text(encoding="utf-8").splitlines():
        if line.strip():
            support.append(json.loads(line)["text"])
        if len(support) >= limit:
            break
    return [(t, True) for t in DEMO] + [(t, True) for t in support] + REFUNDS


def make_turns(n: int, fault_rate: float, seed: int, prefix: str = "soak") -> list[Turn]:
    """`prefix` names this run's threads: a PostgreSQL database outlives a run, and a thread of an
    earlier run must not be continued (its message ids would be taken for this run's)."""
    rng = random.Random(seed)
    pool = requests_pool()
    turns = []
    for i in range(n):
        text, approve = rng.choice(pool)
        faults = ""
        if rng.random() < fault_rate:
            faults = f"{rng.choice(FAULT_TARGETS)}:{rng.choice(FAULT_KINDS)}"
        turns.append(Turn(f"{prefix}-{i // TURNS_PER_THREAD}", i % TURNS_PER_THREAD, text, approve, faults))
    return turns


def assign(turns: list[Turn], workers: int) -> list[list[Turn]]:
    """Threads round-robin over workers; every fourth thread is shared with the next worker."""
    tasks: list[list[Turn]] = [[] for _ in range(workers)]
    for turn in turns:
        number = int(turn.thread.rsplit("-", 1)[1])
        owner = number % workers
        if workers > 1 and number % 4 == 0 and turn.index % 2 == 1:
            owner = (owner + 1) % workers
        tasks[owner].append(turn)
    return tasks


def build(data_dir: Path, checkpointer: str, postgres_url: str | None) -> Any:
    from graph.builder import build_graph
    from graph.config.registry import Registry, default_registry
    from graph.config.settings import Settings

    path = default_registry()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["classifier"] = {**data["classifier"], "encoder": "lexical", "finetune": False}
    data["limits"] = {
        **(data.get("limits") or {}),
        "max_retries": 1,
        "retry_initial_delay": 0.0,
        "retry_max_delay": 0.0,
    }
    registry = Registry.from_dict(data, source=f"{path} (soak)")
    overrides: dict[str, object] = {"postgres_url": postgres_url} if postgres_url else {}
    settings = Settings.offline(data_dir, **overrides)
    return build_graph(registry=registry, settings=settings, checkpointer=checkpointer)  # type: ignore[arg-type]


def message_id(turn: Turn) -> str:
    """Each turn's message carries its own id: a thread may hold the same text twice, and a resumed
    turn must be told apart from an earlier turn with the same words (add_messages replaces, never
    duplicates, a message whose id is already in the thread)."""
    return f"{turn.thread}/{turn.index}"


def human_ids(values: dict[str, Any]) -> list[str]:
    return [str(m.id) for m in values.get("messages", []) if getattr(m, "type", "") == "human"]


def worker(
    data_dir: str, checkpointer: str, postgres_url: str | None, log: str, tasks: list[dict[str, Any]]
) -> None:
    """Run `tasks` (Turn dicts) in order, logging start/end lines to `log`; resume what was started."""
    from langchain_core.messages import HumanMessage
    from langgraph.types import Command

    from graph.errors import ThreadBusy
    from graph.faults import CONFIG_KEY, FaultPlan
    from graph.persistence.threads import unfinished_turn

    graph = build(Path(data_dir), checkpointer, postgres_url)
    with open(log, "a", encoding="utf-8") as out:

        def write(record: dict[str, Any]) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        for task in tasks:
            resumed = bool(task.pop("resume", False))
            turn = Turn(**task)
            config: dict[str, Any] = {
                "configurable": {"thread_id": turn.thread, CONFIG_KEY: FaultPlan.parse(turn.faults)}
            }
            write({"event": "start", "thread": turn.thread, "turn": turn.index, "pid": os.getpid()})
            started = time.monotonic()
            # The turn's own final state: re-reading the thread afterwards could see the next turn
            # of a worker that shares the thread (intake resets its stop_reason).
            final: Any = None
            for _attempt in range(50):
                try:
                    sent = resumed and message_id(turn) in human_ids(graph.get_state(config).values)
                    state = graph.get_state(config)
                    pending = any(t.interrupts for t in state.tasks)
                    if sent and (pending or unfinished_turn(graph, config)):
                        final = graph.invoke(Command(resume=turn.approve) if pending else None, config)
                    elif not sent:
                        # A turn another worker left cut off (killed) is finished first, as
                        # `routegraph ask` does: a new input would drop its message.
                        if unfinished_turn(graph, config):
                            graph.invoke(None, config)
                        final = graph.invoke(
                            {"messages": [HumanMessage(content=turn.text, id=message_id(turn))]}, config
                        )
                    for _ in range(MAX_RESUMES):
                        if not graph.get_state(config).next:
                            break
                        final = graph.invoke(Command(resume=turn.approve), config)
                    break
                except ThreadBusy:
                    time.sleep(0.05)
            values = final if isinstance(final, dict) else graph.get_state(config).values
            write(
                {
                    "event": "end",
                    "thread": turn.thread,
                    "turn": turn.index,
                    "stop_reason": values.get("control_stop_reason"),
                    "seconds": time.monotonic() - started,
                    "resumed": resumed,
                }
            )


def read_log(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by SIGKILL
    return records


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(
    requests: int,
    fault_rate: float,
    workers: int,
    kills: int,
    seed: int,
    checkpointer: str,
    postgres_url: str | None,
) -> dict[str, Any]:
    turns = make_turns(requests, fault_rate, seed, prefix=f"soak{os.getpid()}x{int(time.time())}")
    rng = random.Random(seed + 1)
    ctx = mp.get_context("spawn")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="routegraph-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        logs = Path(tmp) / "logs"
        logs.mkdir()
        SupportDB(data_dir / "support.sqlite").ensure()  # migrations and seed, once
        build(data_dir, checkpointer, postgres_url)  # checkpoint tables, once
        generation = 0
        procs: dict[int, tuple[Any, list[Turn]]] = {}

        def spawn(slot: int, tasks: list[Turn], resume: set[tuple[str, int]]) -> None:
            nonlocal generation
            generation += 1
            payload = [{**asdict(t), "resume": (t.thread, t.index) in resume} for t in tasks]
            proc = ctx.Process(
                target=worker,
                args=(
                    str(data_dir),
                    checkpointer,
                    postgres_url,
                    str(logs / f"w{slot}-{generation}.jsonl"),
                    payload,
                ),
                daemon=True,
            )
            proc.start()
            procs[slot] = (proc, tasks)

        for slot, tasks in enumerate(assign(turns, workers)):
            if tasks:
                spawn(slot, tasks, set())
        kill_at = sorted(rng.uniform(0.15, 0.75) * requests for _ in range(kills))
        killed = 0
        while any(p.is_alive() for p, _ in procs.values()):
            if time.monotonic() - began > DEADLINE_SECONDS:
                for p, _ in procs.values():
                    if p.is_alive():
                        p.kill()
                break
            time.sleep(0.05)
            if killed >= kills:
                continue
            records = read_log(logs)
            ended = {(r["thread"], r["turn"]) for r in records if r["event"] == "end"}
            if len(ended) < kill_at[killed]:
                continue
            open_by_pid = {
                r["pid"] for r in records if r["event"] == "start" and (r["thread"], r["turn"]) not in ended
            }
            victims = [s for s, (p, _) in procs.items() if p.is_alive() and p.pid in open_by_pid]
            if not victims:
                continue
            slot = rng.choice(victims)
            proc, tasks = procs[slot]
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            killed += 1
            after = read_log(logs)
            done = {(r["thread"], r["turn"]) for r in after if r["event"] == "end"}
            begun = {(r["thread"], r["turn"]) for r in after if r["event"] == "start"}
            remaining = [t for t in tasks if (t.thread, t.index) not in done]
            if remaining:
                spawn(slot, remaining, begun - done)
        for p, _ in procs.values():
            p.join()
        elapsed = time.monotonic() - began
        records = read_log(logs)
        result = account(turns, records, data_dir, checkpointer, postgres_url)
    result.update(
        {
            "benchmark": "soak",
            "requests": requests,
            "fault_rate": fault_rate,
            "workers": workers,
            "kills": killed,
            "seed": seed,
            "checkpointer": checkpointer,
            "seconds": round(elapsed, 2),
        }
    )
    return result


def account(
    turns: list[Turn],
    records: list[dict[str, Any]],
    data_dir: Path,
    checkpointer: str,
    postgres_url: str | None,
) -> dict[str, Any]:
    started = {(r["thread"], r["turn"]) for r in records if r["event"] == "start"}
    ends: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        if r["event"] == "end":
            ends.setdefault((r["thread"], r["turn"]), r)
    stop_reasons = Counter(str(r["stop_reason"]) for r in ends.values())
    seconds = [float(r["seconds"]) for r in ends.values()]

    graph = build(data_dir, checkpointer, postgres_url)
    turns_lost = 0
    unfinished = 0
    by_thread: dict[str, list[Turn]] = {}
    for t in turns:
        by_thread.setdefault(t.thread, []).append(t)
    for thread, sent in by_thread.items():
        state = graph.get_state({"configurable": {"thread_id": thread}})
        have = set(human_ids(state.values))
        turns_lost += sum(1 for t in sent if message_id(t) not in have)
        unfinished += bool(state.next)
    with sqlite3.connect(data_dir / "support.sqlite") as conn:
        rows = conn.execute("SELECT charge_id, count(*) FROM refunds GROUP BY charge_id").fetchall()
    duplicates = sum(int(n) - 1 for _, n in rows if int(n) > 1)
    return {
        "turns_sent": len(turns),
        "threads": len(by_thread),
        "runs_started": len(started),
        "runs_ended": len(ends),
        "stop_reasons": dict(sorted(stop_reasons.items())),
        "runs_lost": len(started - set(ends)),
        "turns_never_started": len({(t.thread, t.index) for t in turns} - started),
        "resumed_runs": sum(1 for r in ends.values() if r.get("resumed")),
        "turns_lost": turns_lost,
        "unfinished_threads": unfinished,
        "refund_rows": sum(int(n) for _, n in rows),
        "duplicate_side_effects": duplicates,
        "latency_s": {
            "p50": round(statistics.median(seconds), 3) if seconds else 0.0,
            "p95": round(percentile(seconds, 0.95), 3),
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"soak: {result['requests']} requests, fault rate {result['fault_rate']}, {result['workers']} workers, "
        f"{result['kills']} kills, {result['checkpointer']}, seed {result['seed']}, {result['seconds']} s",
        f"  runs started            {result['runs_started']}",
        f"  runs ended              {result['runs_ended']}",
    ]
    lines += [f"    {reason:<22}{n}" for reason, n in result["stop_reasons"].items()]
    lines += [
        f"  runs lost               {result['runs_lost']}   (target 0)",
        f"  turns never started     {result['turns_never_started']}",
        f"  resumed runs            {result['resumed_runs']}",
        f"  turns lost              {result['turns_lost']}   (target 0)",
        f"  unfinished threads      {result['unfinished_threads']}",
        f"  refund rows             {result['refund_rows']}",
        f"  duplicate side effects  {result['duplicate_side_effects']}   (target 0)",
        f"  latency p50 / p95       {result['latency_s']['p50']} s / {result['latency_s']['p95']} s",
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--fault-rate", type=float, default=0.1)
    p.add_argument("--checkpointer", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--postgres-url", default=os.environ.get("ROUTEGRAPH_POSTGRES_URL"))
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kills", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.requests < 1 or args.workers < 1 or args.kills < 0 or not 0 <= args.fault_rate <= 1:
        parser().error("--requests and --workers at least 1, --kills at least 0, --fault-rate in [0, 1]")
    if args.checkpointer == "postgres" and not args.postgres_url:
        parser().error("--checkpointer postgres needs --postgres-url or ROUTEGRAPH_POSTGRES_URL")
    url = args.postgres_url if args.checkpointer == "postgres" else None
    result = run(args.requests, args.fault_rate, args.workers, args.kills, args.seed, args.checkpointer, url)
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
