"""Load benchmark of the specialist pools: every assignment policy, side by side with round-robin.

    python -m benchmarks.load [--requests 500] [--concurrency 1,4,16] [--json]

One pool of three instances of a cheap capability: `healthy` (answers in `--fast-ms`), `slow`
(answers in `--slow-ms`) and `failing` (fails after `--fast-ms`). Each request leases an instance
through the pool API (`Pools.acquire` / `release`, as the runner does), runs the capability object
and gives it back. For each policy and concurrency: throughput, p50/p95 latency (queue wait
included), error rate (failed steps and `overloaded`), and each instance's share of the requests.
The pool's health check is on (3 consecutive failures rest an instance for `--cooldown` seconds),
as in production; runs stop by themselves (no network, no server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

import numpy as np

from graph.capability import Capability, RunContext
from graph.config.registry import Registry
from graph.config.schema import PoolPolicy
from graph.pools import Overloaded, Pools

POLICIES: tuple[PoolPolicy, ...] = ("round_robin", "weighted", "least_in_flight", "performance")


class Worker(Capability):
    """Sleeps `delay_ms`, then answers, or fails when `fail` is set."""

    name = "worker"
    description = "Do a small piece of work."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        await asyncio.sleep(float(self.options.get("delay_ms", 1)) / 1000)
        if self.options.get("fail"):
            raise ConnectionError("the failing instance failed")
        return {"summary": "done"}


def registry(policy: PoolPolicy, *, fast_ms: float, slow_ms: float, cooldown: float) -> Registry:
    return Registry.from_dict(
        {
            "version": 1,
            "classifier": {"encoder": "lexical"},
            "capabilities": [
                {
                    "name": "worker",
                    "class": "benchmarks.load:Worker",
                    "classifier_guide": {"examples": [{"query": "do the work", "result": True}]},
                    "pool": {
                        "policy": policy,
                        "capacity": 4,
                        "queue_size": 64,
                        "queue_wait": 2.0,
                        "unhealthy_after": 3,
                        "cooldown": cooldown,
                        "instances": [
                            {"name": "healthy", "options": {"delay_ms": fast_ms}, "weight": 3},
                            {"name": "slow", "options": {"delay_ms": slow_ms}, "weight": 1},
                            {"name": "failing", "options": {"delay_ms": fast_ms, "fail": True}, "weight": 1},
                        ],
                    },
                }
            ],
        },
        source="<benchmarks.load>",
    )


async def one_run(pools: Pools, requests: int, concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = Counter[str]()
    served = Counter[str]()
    ctx = RunContext(task="do the work")

    async def request() -> None:
        async with gate:
            started = time.perf_counter()
            try:
                lease = await pools.acquire("worker")
            except Overloaded:
                errors["overloaded"] += 1
                latencies.append(time.perf_counter() - started)
                return
            ran = time.perf_counter()
            impl = lease.instance.impl
            assert impl is not None
            ok = True
            try:
                await impl.execute(impl.parse_inputs(ctx.task, {}, {}), ctx)
            except ConnectionError:
                ok = False
                errors["failed"] += 1
            pools.release(lease, ok=ok, seconds=time.perf_counter() - ran)
            served[lease.instance.name] += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(request() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "throughput_rps": round(requests / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "error_rate": round(sum(errors.values()) / requests, 4),
        "errors": dict(errors),
        "share": {name: round(served[name] / requests, 3) for name in ("healthy", "slow", "failing")},
        "seconds": round(elapsed, 2),
    }


def run(
    *,
    requests: int = 500,
    concurrency: tuple[int, ...] = (1, 4, 16),
    policies: tuple[PoolPolicy, ...] = POLICIES,
    fast_ms: float = 1.0,
    slow_ms: float = 10.0,
    cooldown: float = 0.5,
) -> dict[str, Any]:
    """Every policy at every concurrency, each on a fresh pool; returns the figures."""
    rows = []
    for c in concurrency:
        for policy in policies:
            pools = Pools(registry(policy, fast_ms=fast_ms, slow_ms=slow_ms, cooldown=cooldown))
            rows.append({"policy": policy, "concurrency": c, **asyncio.run(one_run(pools, requests, c))})
    return {
        "requests": requests,
        "instances": {"healthy": f"{fast_ms:g} ms", "slow": f"{slow_ms:g} ms", "failing": f"fails in {fast_ms:g} ms"},
        "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    head = f"{'conc':>4} {'policy':<16} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'errors':>7}  share healthy/slow/failing"
    lines = [f"{result['requests']} requests per row; instances: {result['instances']}", head]
    for r in result["rows"]:
        s = r["share"]
        lines.append(
            f"{r['concurrency']:>4} {r['policy']:<16} {r['throughput_rps']:>8.1f} {r['p50_ms']:>7.2f} "
            f"{r['p95_ms']:>7.2f} {r['error_rate']:>7.1%}  {s['healthy']:.2f}/{s['slow']:.2f}/{s['failing']:.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated (default: 1,4,16)")
    p.add_argument("--fast-ms", type=float, default=1.0)
    p.add_argument("--slow-ms", type=float, default=10.0)
    p.add_argument("--cooldown", type=float, default=0.5, help="seconds an unhealthy instance rests")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    result = run(
        requests=args.requests,
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        fast_ms=args.fast_ms,
        slow_ms=args.slow_ms,
        cooldown=args.cooldown,
    )
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
