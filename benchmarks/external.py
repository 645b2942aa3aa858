"""The external-service benchmark: the `incidents` capability reading a status page that is
healthy, down, hanging or flapping, with its circuit breaker and without, side by side in one run.

What is measured
    The status page (`python -m capabilities.support_desk.status_page --fault-control`) runs as a
    subprocess on 127.0.0.1 over a fresh demo database; the benchmark sets its faults through
    `POST /_faults`. The capability is the shipped class, loaded through a registry (by import path)
    with `status_url` pointing at the server, the TTL cache off (`cache_ttl: 0`, so every request
    asks the service) and a short policy: 2 attempts, 0.3 s read timeout, breaker threshold 3,
    cool-down 1 s. `breaker: false` is the same client with the breaker disabled.

    For each scenario and configuration: one healthy warm-up request (the service was up earlier,
    so a stale answer exists), then the faults, then N requests one after another, `--interval`
    apart, each given `--step-timeout` seconds as the runner would. Per request: its latency, and
    where its answer came from (live, stale, embedded_db) or that none came within the timeout.

        served      answers within the step timeout (any source) / N
        live        fresh answers from the service / N
        p50, p95    latency of a request, milliseconds
        sent        requests that reached the status page (its own count): the load a failing
                    service gets

    Scenarios: healthy; down (every request answered 503); dropped (connections closed without a
    reply); hanging (answers after 5 s, past the read timeout); flapping (503 and healthy in turns
    of 0.5 s).

Run
    .venv/bin/python -m benchmarks.external [--requests 20] [--interval 0.1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from graph.capability.base import Capability, RunContext
from graph.config.registry import Registry

SCENARIOS: dict[str, dict[str, Any]] = {
    "healthy": {"mode": "healthy", "latency": 0.0, "flap_seconds": 0.0},
    "down": {"mode": "error", "latency": 0.0, "flap_seconds": 0.0},
    "dropped": {"mode": "drop", "latency": 0.0, "flap_seconds": 0.0},
    "hanging": {"mode": "healthy", "latency": 5.0, "flap_seconds": 0.0},
    "flapping": {"mode": "error", "latency": 0.0, "flap_seconds": 0.5},
}
HEALTHY = SCENARIOS["healthy"]
POLICY = {
    "attempts": 2,
    "connect_timeout": 0.3,
    "read_timeout": 0.3,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "cache_ttl": 0,
    "failure_threshold": 3,
    "cool_down": 1.0,
}
QUERY = "is the API down?"


class StatusPageProcess:
    """The status page as a subprocess on a free port, with fault control."""

    def __init__(self, db: Path) -> None:
        module = "capabilities.support_desk.status_page"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", "--db", str(db), "--fault-control"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "status page on " not in line:
            self.process.kill()
            raise RuntimeError(f"the status page did not start: {line!r}")
        self.url = line.split("status page on ", 1)[1].split("/api/", 1)[0].strip()

    def faults(self, **values: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/_faults", json=values, timeout=5)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def incidents(url: str, db: Path, *, breaker: bool) -> Capability:
    """The shipped incidents capability, loaded by import path as the registry does."""
    entry = {
        "name": "incidents",
        "class": "capabilities.support_desk.incidents:Incidents",
        "options": {"db": str(db), "status_url": url, "status_service": {**POLICY, "breaker": breaker}},
    }
    registry = Registry.from_dict(
        {
            "version": 1,
            "classifier": {"encoder": "lexical"},
            "capabilities": [
                {"name": "respond", "class": "capabilities.respond:Respond"},
                {"name": "clarify", "class": "capabilities.clarify:Clarify"},
                entry,
            ],
        },
        source="<benchmark>",
    )
    return registry["incidents"].instance


async def one(cap: Capability, data_dir: Path, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            out = await cap.execute(
                cap.parse_inputs(QUERY, {}, {}), RunContext(task=QUERY, data_dir=data_dir)
            )
        source = str(out["external"]["status_page"]["source"])
    except TimeoutError:
        source = "timeout"
    except Exception:
        source = "error"
    return (time.perf_counter() - started) * 1000, source


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def run_case(
    page: StatusPageProcess, db: Path, data_dir: Path, scenario: str, breaker: bool, args: argparse.Namespace
) -> dict[str, Any]:
    cap = incidents(page.url, db, breaker=breaker)
    page.faults(**HEALTHY)
    asyncio.run(one(cap, data_dir, args.step_timeout))  # warm-up: a good answer to fall back on
    before = page.faults(**SCENARIOS[scenario])
    latencies: list[float] = []
    sources: dict[str, int] = {}
    for _ in range(args.requests):
        ms, source = asyncio.run(one(cap, data_dir, args.step_timeout))
        latencies.append(ms)
        sources[source] = sources.get(source, 0) + 1
        time.sleep(args.interval)
    after = page.faults(**HEALTHY)
    n = args.requests
    served = n - sources.get("timeout", 0) - sources.get("error", 0)
    return {
        "scenario": scenario,
        "breaker": breaker,
        "requests": n,
        "served": round(served / n, 3),
        "live": round(sources.get("live", 0) / n, 3),
        "sources": dict(sorted(sources.items())),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "sent": after["received"] - before["received"],
        "breaker_state": cap.status_page.breaker_report()["state"],  # type: ignore[attr-defined]
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rg-external-") as tmp:
        db = Path(tmp) / "support.sqlite"
        page = StatusPageProcess(db)
        try:
            rows = [
                run_case(page, db, Path(tmp), scenario, breaker, args)
                for scenario in SCENARIOS
                for breaker in (True, False)
            ]
        finally:
            page.stop()
    return {
        "benchmark": "external",
        "requests_per_case": args.requests,
        "interval_s": args.interval,
        "step_timeout_s": args.step_timeout,
        "policy": POLICY,
        "cases": rows,
    }


def table(result: dict[str, Any]) -> str:
    head = f"{'scenario':<10} {'breaker':<8} {'served':>7} {'live':>6} {'p50 ms':>8} {'p95 ms':>8} {'sent':>5}  sources"
    lines = [head, "-" * len(head)]
    for r in result["cases"]:
        sources = ", ".join(f"{k} {v}" for k, v in r["sources"].items())
        lines.append(
            f"{r['scenario']:<10} {'on' if r['breaker'] else 'off':<8} {r['served']:>7.0%} {r['live']:>6.0%}"
            f" {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['sent']:>5}  {sources}"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.external", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=20, help="requests per scenario and configuration")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between requests")
    p.add_argument(
        "--step-timeout", type=float, default=2.0, help="seconds a request may take (a step's timeout)"
    )
    p.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
