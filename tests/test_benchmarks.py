"""Smoke tests of the benchmark scripts: tiny runs, JSON output, the figures they must report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import bench_llm_calls, bench_overhead, soak

STATS = {"p50", "p95", "mean"}


def run_json(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    result: dict[str, Any] = json.loads(out)
    return result


def test_bench_overhead_reports_every_config(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(bench_overhead.main, ["--n", "2", "--warmup", "1"], capsys)
    assert result["benchmark"] == "overhead"
    assert result["target_ratio"] == 3.0
    assert isinstance(result["meets_target"], bool)
    configs = {(c["checkpointer"], c["mode"]): c for c in result["configs"]}
    assert set(configs) == {("memory", "invoke"), ("sqlite", "invoke"), ("memory", "ainvoke")}
    for config in configs.values():
        assert config["samples"] == 2 * len(bench_overhead.REQUESTS)
        for key in ("total_ms", "classifier_ms", "capabilities_ms", "overhead_ms", "bare_chain_ms"):
            assert set(config[key]) == STATS
        assert config["bare_chain_ms"]["p50"] > 0
        assert set(config["ratio"]) == {"p50", "mean"}
        assert config["ratio"]["p50"] > 0
        assert config["unexpected_stop_reasons"] == []
        for row in config["per_request"]:
            # control_steps counts every node execution of the turn, intake included, but not the
            # `profile` node that ends every turn (nodes/profile.py: it counts no step)
            assert row["node_executions"] == row["control_steps"] + 1


def test_bench_llm_calls_one_classifier_call_for_20_capabilities(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        bench_llm_calls.main, ["--sizes", "5", "20", "--modes", "llm", "cascade", "--n", "3"], capsys
    )
    assert result["benchmark"] == "llm_calls"
    assert result["meets_target"] is True
    cases = {(c["mode"], c["capabilities"]): c for c in result["cases"]}
    assert set(cases) == {("llm", 5), ("llm", 20), ("cascade", 5), ("cascade", 20)}

    llm20 = cases[("llm", 20)]
    assert llm20["requests"] == 3
    assert llm20["classifier_calls_per_request"] == {"mean": 1.0, "max": 1, "total": 3}
    assert llm20["candidates_per_classifier_call"] == 20
    assert llm20["one_call_per_capability_reference"] == 20
    for row in llm20["per_request"]:
        assert row["calls_by_role"]["classifier"] == 1
        assert row["llm_calls"] == row["control_llm_calls"] == 4
        assert row["correct"]
    for case in cases.values():
        assert case["classifier_calls_per_request"]["max"] <= 1
        assert case["control_llm_calls_agree"] and case["replies_consumed_agree"]
        assert {"mean", "max"} <= set(case["llm_calls_per_request"])


def test_soak_loses_nothing_and_refunds_once(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        soak.main, ["--requests", "20", "--kills", "1", "--workers", "2", "--seed", "1"], capsys
    )
    assert result["benchmark"] == "soak"
    assert result["runs_started"] == result["runs_ended"] == 20
    assert result["runs_lost"] == 0
    assert result["duplicate_side_effects"] == 0
    assert result["kills"] == 1
    assert result["turns_lost"] == 0
    assert "None" not in result["stop_reasons"]  # every run ended with a named stop_reason
    assert set(result["latency_s"]) == {"p50", "p95"}


def test_latency_benchmark_reports_processes_and_encoders(
    capsys: pytest.CaptureFixture[str], shared_model_cache: Any
) -> None:
    from benchmarks import latency

    result = run_json(
        latency.main,
        [
            "--runs",
            "1",
            "--cold-runs",
            "0",
            "--cache-dir",
            str(shared_model_cache),
            "--queries",
            "3",
            "--encoders",
            "minilm",
            "--variants",
            "onnx-fp32",
            "onnx-int8",
        ],
        capsys,
    )
    assert result["benchmark"] == "latency"
    procs = result["processes"]
    assert procs["ask_cold"] is None  # --cold-runs 0
    assert procs["bytecode_compiled"] is True  # as scripts/setup leaves the checkout
    for key in ("baseline_import_langgraph", "cli_version", "ask_warm"):
        assert procs[key]["runs"] == 1 and procs[key]["wall_s"] > 0 and procs[key]["peak_mib"] > 0
    assert procs["ask_warm"]["ratio"] > 0 and "ratio" not in procs["baseline_import_langgraph"]
    assert isinstance(result["meets_target"], bool)
    rows = {(r["encoder"], r["runtime"]): r for r in result["classification"]}
    assert set(rows) == {("minilm", "onnx-fp32"), ("minilm", "onnx-int8")}
    for row in rows.values():
        assert row["queries"] == 3 and 0 < row["p50_ms"] <= row["p95_ms"]
