"""`benchmarks.latency`'s per-query figures (issue 19, round 3): the CPU time next to the wall time,
the previous int8 recipe as a variant of its own, and `--session-levers` (onnxruntime's session
options and the tokenizer's paths, side by side). Real encoders on the session's model cache; a
few requests, so the figures mean nothing here: what is checked is that each is measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import latency


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert latency.main([*argv, "--json"]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_classification_rows_have_cpu_time_and_the_previous_recipe(
    capsys: pytest.CaptureFixture[str], shared_model_cache: Path
) -> None:
    result = _run(
        [
            "--classification-only",
            "--cache-dir",
            str(shared_model_cache),
            "--queries",
            "3",
            "--encoders",
            "minilm",
            "--variants",
            "onnx-int8-attention",
            "onnx-int8-blocks",
        ],
        capsys,
    )
    rows = result["classification"]
    assert isinstance(rows, list)
    assert [r["runtime"] for r in rows] == ["onnx-int8-attention", "onnx-int8-blocks"]
    for row in rows:
        assert row["cpu_p50_ms"] > 0 and row["encode_p50_ms"] > 0 and row["queries"] == 3
        assert "speedup_vs_onnx-int8-attention" in row


def test_session_levers_time_every_option_and_the_tokenizer(
    capsys: pytest.CaptureFixture[str], shared_model_cache: Path
) -> None:
    result = _run(
        ["--session-levers", "--cache-dir", str(shared_model_cache), "--queries", "3", "--runs", "1"],
        capsys,
    )
    assert result["benchmark"] == "latency-session-levers"
    assert str(result["model"]).startswith("model.int8-")  # the default recipe's file
    rows = result["session"]
    assert isinstance(rows, list)
    assert [r["lever"] for r in rows] == list(latency.SESSION_LEVERS)
    assert rows[0]["speedup"] == 1.0
    for row in rows:
        assert row["run_p50_ms"] > 0 and row["cpu_p50_ms"] >= 0
    tokenizer = result["tokenizer_p50_ms"]
    assert isinstance(tokenizer, dict) and len(tokenizer) == 4 and all(v > 0 for v in tokenizer.values())
