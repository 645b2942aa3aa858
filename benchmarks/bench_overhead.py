"""Framework overhead of one offline `ask`, against a bare LangGraph chain of the same length.

What is measured
    The routegraph graph is built once per configuration, offline (`Settings.offline(tmpdir)`, no
    chat model), with the shipped registry.yaml. For each request of a fixed list (one- and
    two-capability requests, and one out-of-scope request that ends in `clarify`) it is invoked N
    times, each time on a fresh thread id, and the wall time of the whole `invoke` call is taken.
    From the final state:

        classifier   = control_timings_ms["classifier"]
        capabilities = control_timings_ms["capabilities"]   (sum over the plan's steps)
        overhead     = total - classifier - capabilities

    So the overhead is everything but classification and the capabilities' own work: graph
    execution, checkpointing, routing, intake, task extraction, planning and the final answer.

    The baseline, in the same run: a plain `StateGraph` over a one-field TypedDict whose N trivial
    nodes (`count += 1`) run in a line, compiled with the same kind of checkpointer (an
    `InMemorySaver`, or LangGraph's `SqliteSaver` on a file in a temporary directory). Its length
    equals the node executions of the routegraph request it is paired with (`control_steps`); the
    number is confirmed once per request by streaming the run's tasks. Every timed routegraph invoke is
    paired with one bare-chain invoke of the same length, in an order shuffled with `--seed`, so
    both see the same machine conditions.

    ratio = overhead / bare-chain time, given for the medians (p50) and for the means.
    The target from the issue: a framework overhead under 3x a bare chain of as many nodes.

    Configurations: sync `invoke` with the "memory" and "sqlite" checkpointers, plus `ainvoke`
    with "memory" (async nodes in the bare chain there) to show the async path works.

Caveats
    Two-capability requests run their steps in parallel: "capabilities" sums both durations, so
    their overhead is slightly understated. Graph construction (`build_graph`) is not timed.

Run
    .venv/bin/python -m benchmarks.bench_overhead [--n 50] [--warmup 5] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from graph.builder import build_graph
from graph.config.settings import Settings

TARGET_RATIO = 3.0

REQUESTS: tuple[tuple[str, str], ...] = (
    ("What is 12*7 and what time is it in Tokyo?", "success"),
    ("what's 15% of 240", "success"),
    ("time in New York", "success"),
    ("calculate 1540 / 11", "success"),
    ("What's the square root of 144 and the current time in London?", "success"),
    ("add 345 and 1289", "success"),
    ("what day is it in Auckland right now", "success"),
    ("how much is 2 to the power of 10, and what time is it in UTC?", "success"),
    ("tell me the local time in Paris", "success"),
    ("Write me a poem about the sea", "clarify"),
)
"""(request, expected stop_reason)."""

Checkpointer = Literal["memory", "sqlite"]
Mode = Literal["invoke", "ainvoke"]


@dataclass(frozen=True)
class Config:
    checkpointer: Checkpointer
    mode: Mode

    @property
    def label(self) -> str:
        return f"{self.checkpointer}/{self.mode}"


DEFAULT_CONFIGS = (Config("memory", "invoke"), Config("sqlite", "invoke"), Config("memory", "ainvoke"))


# --- the bare chain ---------------------------------------------------------------------------


class BareState(TypedDict):
    count: int


def bare_step(state: BareState) -> dict[str, int]:
    return {"count": state["count"] + 1}


async def abare_step(state: BareState) -> dict[str, int]:
    return {"count": state["count"] + 1}


def bare_chain(length: int, checkpointer: BaseCheckpointSaver, *, use_async: bool) -> Any:
    """`length` trivial nodes in a line: START -> n0 -> n1 -> ... -> END."""
    builder = StateGraph(BareState)
    names = [f"n{i}" for i in range(length)]
    for name in names:
        if use_async:
            builder.add_node(name, abare_step)
        else:
            builder.add_node(name, bare_step)
    for a, b in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(a, b)
    return builder.compile(checkpointer=checkpointer)


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 4),
        "p95": round(percentile(values, 95), 4),
        "mean": round(statistics.fmean(values), 4),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b > 0 else math.inf


# --- one configuration ------------------------------------------------------------------------


@dataclass
class Samples:
    total: list[float] = field(default_factory=list)
    classifier: list[float] = field(default_factory=list)
    capabilities: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)


@dataclass
class RequestInfo:
    text: str
    expected: str
    stop_reason: str | None
    control_steps: int
    node_executions: int
    samples: Samples = field(default_factory=Samples)


def _thread() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def _record(info: RequestInfo, state: dict[str, Any], total_ms: float, bare_ms: float) -> None:
    timings = state.get("control_timings_ms") or {}
    classifier = float(timings.get("classifier", 0.0))
    capabilities = float(timings.get("capabilities", 0.0))
    s = info.samples
    s.total.append(total_ms)
    s.classifier.append(classifier)
    s.capabilities.append(capabilities)
    s.overhead.append(total_ms - classifier - capabilities)
    s.bare.append(bare_ms)


def _count_tasks(graph: Any, text: str) -> int:
    """Node executions of one run, counted from the task stream (intake and `Send` tasks included)."""
    finished = 0
    for chunk in graph.stream({"messages": [HumanMessage(content=text)]}, _thread(), stream_mode="tasks"):
        if isinstance(chunk, dict) and "result" in chunk:
            finished += 1
    return finished


def _checkpointers(
    config: Config, tmp: Path, stack: ExitStack
) -> tuple[Any, Callable[[], BaseCheckpointSaver]]:
    """The routegraph checkpointer option, and a factory for the bare chains' checkpointer."""
    if config.checkpointer == "memory":
        return "memory", InMemorySaver
    bare_conn = sqlite3.connect(tmp / "bare.sqlite", check_same_thread=False)
    stack.callback(bare_conn.close)
    saver = SqliteSaver(bare_conn)
    return "sqlite", lambda: saver


def run_config(
    config: Config,
    *,
    n: int,
    warmup: int,
    seed: int,
    requests: Sequence[tuple[str, str]],
    cache: Path | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="routegraph-bench-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        option, bare_saver = _checkpointers(config, tmp, stack)
        graph = build_graph(settings=Settings.offline(tmp, cache_dir=cache), checkpointer=option)
        if config.checkpointer == "sqlite":
            conn = graph.checkpointer.conn  # type: ignore[union-attr]
            stack.callback(conn.close)
        use_async = config.mode == "ainvoke"

        infos: list[RequestInfo] = []
        for text, expected in requests:
            state = graph.invoke({"messages": [HumanMessage(content=text)]}, _thread())
            infos.append(
                RequestInfo(
                    text=text,
                    expected=expected,
                    stop_reason=state.get("control_stop_reason"),
                    control_steps=int(state.get("control_steps", 0)),
                    node_executions=_count_tasks(graph, text),
                )
            )
        chains = {
            length: bare_chain(length, bare_saver(), use_async=use_async)
            for length in sorted({i.node_executions for i in infos})
        }

        rng = random.Random(seed)
        schedule = [(i, True) for i in range(len(infos)) for _ in range(warmup)]
        timed = [(i, False) for i in range(len(infos)) for _ in range(n)]
        rng.shuffle(timed)
        schedule += timed
        orders = [rng.random() < 0.5 for _ in schedule]
        if use_async:
            asyncio.run(_run_async(graph, chains, infos, schedule, orders))
        else:
            _run_sync(graph, chains, infos, schedule, orders)
    return _config_result(config, infos)


def _check_bare(out: dict[str, Any], length: int) -> None:
    if out["count"] != length:
        raise RuntimeError(f"the bare chain of {length} nodes ran {out['count']} of them")


def _run_sync(
    graph: Any,
    chains: dict[int, Any],
    infos: list[RequestInfo],
    schedule: list[tuple[int, bool]],
    orders: list[bool],
) -> None:
    def routegraph_once(info: RequestInfo) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        state = graph.invoke({"messages": [HumanMessage(content=info.text)]}, _thread())
        return state, (time.perf_counter() - started) * 1000

    def bare_once(info: RequestInfo) -> float:
        started = time.perf_counter()
        out = chains[info.node_executions].invoke({"count": 0}, _thread())
        elapsed = (time.perf_counter() - started) * 1000
        _check_bare(out, info.node_executions)
        return elapsed

    for (index, is_warmup), bare_first in zip(schedule, orders, strict=True):
        info = infos[index]
        if bare_first:
            bare_ms = bare_once(info)
            state, total_ms = routegraph_once(info)
        else:
            state, total_ms = routegraph_once(info)
            bare_ms = bare_once(info)
        if not is_warmup:
            _record(info, state, total_ms, bare_ms)


async def _run_async(
    graph: Any,
    chains: dict[int, Any],
    infos: list[RequestInfo],
    schedule: list[tuple[int, bool]],
    orders: list[bool],
) -> None:
    async def routegraph_once(info: RequestInfo) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        state = await graph.ainvoke({"messages": [HumanMessage(content=info.text)]}, _thread())
        return state, (time.perf_counter() - started) * 1000

    async def bare_once(info: RequestInfo) -> float:
        started = time.perf_counter()
        out = await chains[info.node_executions].ainvoke({"count": 0}, _thread())
        elapsed = (time.perf_counter() - started) * 1000
        _check_bare(out, info.node_executions)
        return elapsed

    for (index, is_warmup), bare_first in zip(schedule, orders, strict=True):
        info = infos[index]
        if bare_first:
            bare_ms = await bare_once(info)
            state, total_ms = await routegraph_once(info)
        else:
            state, total_ms = await routegraph_once(info)
            bare_ms = await bare_once(info)
        if not is_warmup:
            _record(info, state, total_ms, bare_ms)


def _config_result(config: Config, infos: list[RequestInfo]) -> dict[str, Any]:
    every = Samples()
    per_request = []
    for info in infos:
        s = info.samples
        for name in ("total", "classifier", "capabilities", "overhead", "bare"):
            getattr(every, name).extend(getattr(s, name))
        overhead, bare = summarize(s.overhead), summarize(s.bare)
        per_request.append(
            {
                "request": info.text,
                "stop_reason": info.stop_reason,
                "expected_stop_reason": info.expected,
                "control_steps": info.control_steps,
                "node_executions": info.node_executions,
                "total_ms": summarize(s.total),
                "classifier_ms": summarize(s.classifier),
                "capabilities_ms": summarize(s.capabilities),
                "overhead_ms": overhead,
                "bare_chain_ms": bare,
                "ratio_p50": ratio(overhead["p50"], bare["p50"]),
                "ratio_mean": ratio(overhead["mean"], bare["mean"]),
            }
        )
    overhead, bare = summarize(every.overhead), summarize(every.bare)
    ratios = {"p50": ratio(overhead["p50"], bare["p50"]), "mean": ratio(overhead["mean"], bare["mean"])}
    return {
        "checkpointer": config.checkpointer,
        "mode": config.mode,
        "samples": len(every.total),
        "mean_node_executions": round(statistics.fmean(i.node_executions for i in infos), 2),
        "total_ms": summarize(every.total),
        "classifier_ms": summarize(every.classifier),
        "capabilities_ms": summarize(every.capabilities),
        "overhead_ms": overhead,
        "bare_chain_ms": bare,
        "ratio": ratios,
        "meets_target": max(ratios.values()) < TARGET_RATIO,
        "unexpected_stop_reasons": [
            {"request": i.text, "expected": i.expected, "got": i.stop_reason}
            for i in infos
            if i.stop_reason != i.expected
        ],
        "per_request": per_request,
    }


# --- the cost of traces -----------------------------------------------------------------------

TRACE_TARGET = 0.10
"""Writing a trace may add at most 10% to the per-request time (issue 21)."""


def trace_cost(
    *, n: int, warmup: int, seed: int, requests: Sequence[tuple[str, str]], cache: Path | None = None
) -> dict[str, Any]:
    """The same requests through two graphs built alike (SQLite checkpointer, sync `invoke`), one
    writing a trace per turn (the default: traces.sqlite in its data directory) and one with
    `traces="none"`, invoked in pairs in a shuffled order (which goes first is random too), so
    both see the same machine conditions. Reported: the medians of the whole `invoke` time and
    `added = median(with) / median(without) - 1`, overall and per request."""
    with tempfile.TemporaryDirectory(prefix="routegraph-bench-traces-") as tmpdir:
        tmp = Path(tmpdir)
        graphs = {
            "with": build_graph(settings=Settings.offline(tmp / "with", cache_dir=cache), checkpointer="sqlite"),
            "without": build_graph(
                settings=Settings.offline(tmp / "without", cache_dir=cache), checkpointer="sqlite", traces="none"
            ),
        }
        times: dict[str, dict[str, list[float]]] = {k: {t: [] for t, _ in requests} for k in graphs}
        rng = random.Random(seed)
        schedule = [(t, True) for t, _ in requests for _ in range(warmup)]
        timed = [(t, False) for t, _ in requests for _ in range(n)]
        rng.shuffle(timed)
        for text, is_warmup in schedule + timed:
            order = ["with", "without"] if rng.random() < 0.5 else ["without", "with"]
            for kind in order:
                started = time.perf_counter()
                graphs[kind].invoke({"messages": [HumanMessage(content=text)]}, _thread())
                if not is_warmup:
                    times[kind][text].append((time.perf_counter() - started) * 1000)
        written = len(list((tmp / "with").glob("traces.sqlite")))
        for graph in graphs.values():
            conn = getattr(graph.checkpointer, "conn", None)
            if conn is not None:
                conn.close()
    every = {k: [x for v in per.values() for x in v] for k, per in times.items()}
    with_p50, without_p50 = statistics.median(every["with"]), statistics.median(every["without"])
    added = with_p50 / without_p50 - 1
    return {
        "checkpointer": "sqlite",
        "mode": "invoke",
        "samples_per_side": len(every["with"]),
        "trace_file_written": bool(written),
        "with_traces_ms_p50": with_p50,
        "without_traces_ms_p50": without_p50,
        "added_p50": added,
        "target": TRACE_TARGET,
        "meets_target": added <= TRACE_TARGET,
        "per_request": [
            {
                "request": t,
                "with_traces_ms_p50": statistics.median(times["with"][t]),
                "without_traces_ms_p50": statistics.median(times["without"][t]),
                "added_p50": statistics.median(times["with"][t]) / statistics.median(times["without"][t]) - 1,
            }
            for t, _ in requests
        ],
    }


def trace_table(r: dict[str, Any]) -> str:
    lines = [
        f"trace writing ({r['checkpointer']}/{r['mode']}, {r['samples_per_side']} invokes a side, medians): "
        f"with {r['with_traces_ms_p50']:.3f} ms, without {r['without_traces_ms_p50']:.3f} ms, "
        f"added {r['added_p50']:+.1%} (target <= {r['target']:.0%}: {'yes' if r['meets_target'] else 'NO'})",
    ]
    for q in r["per_request"]:
        lines.append(
            f"  {q['request'][:62]:<62} {q['with_traces_ms_p50']:>8.3f} {q['without_traces_ms_p50']:>8.3f} "
            f"{q['added_p50']:>+7.1%}"
        )
    return "\n".join(lines)


# --- output -----------------------------------------------------------------------------------


def _fmt(stats: dict[str, float]) -> str:
    return f"{stats['p50']:7.3f} {stats['p95']:7.3f} {stats['mean']:7.3f}"


def table(result: dict[str, Any]) -> str:
    lines = [
        f"routegraph framework overhead per offline ask: n={result['n']} per request, "
        f"{len(result['requests'])} requests, warmup={result['warmup']}, seed={result['seed']}",
        "times in ms as p50 / p95 / mean; overhead = total - classifier - capabilities; "
        f"target ratio < {TARGET_RATIO:g}",
        "",
        f"{'config':<16} {'nodes':>5}  {'total':^23}  {'classifier':^23}  {'capabilities':^23}  "
        f"{'overhead':^23}  {'bare chain':^23}  {'ratio p50':>9} {'ratio mean':>10}  ok",
    ]
    for c in result["configs"]:
        lines.append(
            f"{c['checkpointer'] + '/' + c['mode']:<16} {c['mean_node_executions']:>5.1f}  "
            f"{_fmt(c['total_ms'])}  {_fmt(c['classifier_ms'])}  {_fmt(c['capabilities_ms'])}  "
            f"{_fmt(c['overhead_ms'])}  {_fmt(c['bare_chain_ms'])}  "
            f"{c['ratio']['p50']:>9.2f} {c['ratio']['mean']:>10.2f}  {'yes' if c['meets_target'] else 'NO'}"
        )
    for c in result["configs"]:
        lines += ["", f"per request, {c['checkpointer']}/{c['mode']} (p50 ms):"]
        lines.append(
            f"  {'request':<62} {'stop':<8} {'nodes':>5} {'total':>8} {'overhead':>8} {'bare':>7} {'ratio':>6}"
        )
        for r in c["per_request"]:
            stop = r["stop_reason"] or "-"
            if stop != r["expected_stop_reason"]:
                stop += "!"
            lines.append(
                f"  {r['request'][:62]:<62} {stop:<8} {r['node_executions']:>5} "
                f"{r['total_ms']['p50']:>8.3f} {r['overhead_ms']['p50']:>8.3f} "
                f"{r['bare_chain_ms']['p50']:>7.3f} {r['ratio_p50']:>6.2f}"
            )
    if "traces" in result:
        lines += ["", trace_table(result["traces"])]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_overhead",
        description="Framework overhead per offline ask vs a bare LangGraph chain of as many nodes.",
    )
    p.add_argument("--n", type=int, default=50, help="timed invocations per request (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed invocations per request first (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled invocation order (default 0)")
    p.add_argument(
        "--config",
        action="append",
        choices=[c.label for c in DEFAULT_CONFIGS],
        help="checkpointer/mode to run; repeat for several (default: all)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    p.add_argument(
        "--traces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also compare sqlite/invoke with and without trace writing, side by side (default: on)",
    )
    return p


def run(
    n: int, warmup: int, seed: int, configs: Sequence[Config], cache: Path | None = None
) -> dict[str, Any]:
    """`cache`: the encoder cache to share (the fine-tuned MiniLM), instead of one per configuration."""
    return {
        "benchmark": "overhead",
        "n": n,
        "warmup": warmup,
        "seed": seed,
        "target_ratio": TARGET_RATIO,
        "requests": [text for text, _ in REQUESTS],
        "configs": [
            run_config(config, n=n, warmup=warmup, seed=seed, requests=REQUESTS, cache=cache)
            for config in configs
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.n < 1 or args.warmup < 0:
        parser().error("--n must be at least 1 and --warmup at least 0")
    labels = args.config or [c.label for c in DEFAULT_CONFIGS]
    configs = [c for c in DEFAULT_CONFIGS if c.label in labels]
    cache = Settings.from_env().cache
    result = run(args.n, args.warmup, args.seed, configs, cache=cache)
    result["meets_target"] = all(c["meets_target"] for c in result["configs"])
    if args.traces:
        result["traces"] = trace_cost(n=args.n, warmup=args.warmup, seed=args.seed, requests=REQUESTS, cache=cache)
        result["meets_target"] = result["meets_target"] and result["traces"]["meets_target"]
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
