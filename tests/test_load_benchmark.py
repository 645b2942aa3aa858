"""The load benchmark runs end to end with tiny numbers and reports what it promises."""

from __future__ import annotations

import json

from benchmarks import load


def test_the_load_benchmark_reports_every_policy_at_every_concurrency(capsys: object) -> None:
    result = load.run(requests=30, concurrency=(1, 4), fast_ms=0.5, slow_ms=3)
    rows = {(r["policy"], r["concurrency"]) for r in result["rows"]}
    assert rows == {(p, c) for p in load.POLICIES for c in (1, 4)}
    for row in result["rows"]:
        assert row["throughput_rps"] > 0 and row["p50_ms"] <= row["p95_ms"]
        assert 0 < row["error_rate"] < 1  # the failing instance fails, the others answer
        assert abs(sum(row["share"].values()) + row["errors"].get("overloaded", 0) / 30 - 1) < 0.01
    assert "round_robin" in load.table(result)
    assert load.main(["--requests", "12", "--concurrency", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert len(printed["rows"]) == len(load.POLICIES)
