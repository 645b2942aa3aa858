"""A/B experiments: the `experiments:` block, deterministic assignment and shares, the variant's
overlay applied per run by the real graph, traces that record the variant, and the statistics
(z-test, Fisher's exact test, Newcomb interval, McNemar) checked against scipy and statsmodels."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from scipy.stats import fisher_exact
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from graph.builder import build_graph
from graph.cli import main
from graph.config.registry import Registry
from graph.config.schema import ExperimentSpec
from graph.config.settings import Settings
from graph.errors import RegistryError
from graph.ops.experiments import assign, bucket, compare_experiment, runs_needed, two_proportions
from graph.ops.replay import mcnemar_test, paired
from graph.ops.store import TraceStore, open_store
from tests.conftest import BASE, registry_with

STRICT = {  # another guide set: the calculator's examples say arithmetic is not for it
    "capabilities": {
        "calculator": {
            "classifier_guide": {
                "examples": [
                    {"query": "average speed of a marathon runner"},
                    {"query": "what is 12*7?", "result": False},
                ]
            }
        }
    }
}


def experiment(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "strictness",
        "assign_by": "user",
        "variants": [{"name": "control", "share": 0.5}, {"name": "strict", "share": 0.5, "overlay": STRICT}],
    }
    spec.update(overrides)
    return spec


def run(graph: Any, text: str, thread: str, **configurable: Any) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread, **configurable}}
    return dict(graph.invoke({"messages": [HumanMessage(content=text)]}, config))


# -- the registry block ---------------------------------------------------------------------------


def test_the_experiments_block_is_validated() -> None:
    registry = registry_with(experiments=[experiment()])
    [spec] = registry.spec.experiments
    assert spec.name == "strictness" and [v.share for v in spec.variants] == [0.5, 0.5]
    bad_shares = experiment(variants=[{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}])
    with pytest.raises(RegistryError, match=r"add up to 0\.9"):
        registry_with(experiments=[bad_shares])
    bad_key = experiment(
        variants=[{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "overlay": {"limits": {}}}]
    )
    with pytest.raises(RegistryError, match="not limits"):
        registry_with(experiments=[bad_key])
    bad_value = experiment(
        variants=[
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "overlay": {"classifier": {"threshold": 3}}},
        ]
    )
    with pytest.raises(RegistryError, match=r"overlay leaves an invalid registry: classifier\.threshold"):
        registry_with(experiments=[bad_value])
    unknown_cap = experiment(
        variants=[
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "overlay": {"capabilities": {"nope": {"description": "x"}}}},
        ]
    )
    with pytest.raises(RegistryError, match="does not have: nope"):
        registry_with(experiments=[unknown_cap])
    with pytest.raises(RegistryError, match="one experiment runs at a time"):
        registry_with(experiments=[experiment(), experiment(name="other")])


def test_an_overlay_replaces_the_keys_it_names() -> None:
    registry = registry_with()
    variant = registry.with_overlay(
        {
            "classifier": {"threshold": 0.3},
            "capabilities": {"clock": {"classifier_guide": {"examples": [{"query": "time in Lima"}]}}},
        }
    )
    assert variant.spec.classifier.threshold == 0.3 and variant.spec.classifier.encoder == "lexical"
    assert [e.query for e in variant["clock"].classifier_guide.examples] == ["time in Lima"]
    assert len(registry["clock"].classifier_guide.examples) > 1  # the base is unchanged


# -- assignment -----------------------------------------------------------------------------------


def test_assignment_is_deterministic_and_honours_the_shares() -> None:
    spec = ExperimentSpec.model_validate(
        {
            "name": "three-way",
            "variants": [
                {"name": "a", "share": 0.5},
                {"name": "b", "share": 0.3},
                {"name": "c", "share": 0.2},
            ],
        }
    )
    ids = [f"user-{i}" for i in range(20_000)]
    first = [assign(spec, u) for u in ids]
    assert first == [assign(spec, u) for u in ids]  # same ids, same variants
    counts = Counter(first)
    for name, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        # 20,000 draws: the binomial standard deviation of a share is under 0.0036; 4 of them.
        assert abs(counts[name] / len(ids) - share) < 0.015, counts
    # Another experiment's name reshuffles the same ids (assignments are independent).
    other = ExperimentSpec.model_validate({**spec.model_dump(), "name": "another"})
    assert sum(assign(other, u) != v for u, v in zip(ids, first, strict=True)) > 5_000
    assert 0 <= bucket("x", "y") < 1 and bucket("x", "y") == bucket("x", "y") != bucket("x", "z")


# -- the graph runs each variant ------------------------------------------------------------------


def test_the_graph_applies_the_variants_overlay_per_run_and_traces_it(settings: Settings) -> None:
    registry = registry_with(experiments=[experiment()])
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    control = run(graph, "what is 12*7?", "t1", user_id="u1", variant="control")
    strict = run(graph, "what is 12*7?", "t2", user_id="u1", variant="strict")
    assert control["control_stop_reason"] == "success"
    assert strict["control_stop_reason"] == "clarify"  # the strict guide set turns arithmetic away
    store = open_store(settings)
    traces = {t["thread_id"]: t for t in store.traces()}
    assert (traces["t1"]["experiment"], traces["t1"]["variant"]) == ("strictness", "control")
    assert (traces["t2"]["experiment"], traces["t2"]["variant"]) == ("strictness", "strict")
    assert traces["t1"]["selected"] == ["calculator"] and traces["t2"]["selected"] == []
    # Without a named variant, the user's hash decides, the same way on every turn and thread.
    users = [f"user-{i}" for i in range(12)]
    for i, user in enumerate(users):
        state = run(graph, "what is 2+2?", f"h{i}", user_id=user)
        expected = assign(registry.spec.experiments[0], user)
        assert state["control_stop_reason"] == ("clarify" if expected == "strict" else "success")
    recorded = {t["user_id"]: t["variant"] for t in store.traces() if t["thread_id"].startswith("h")}
    assert recorded == {u: assign(registry.spec.experiments[0], u) for u in users}
    assert set(recorded.values()) == {"control", "strict"}


def test_assignment_by_thread_and_a_stopped_experiment(settings: Settings) -> None:
    graph = build_graph(
        registry=registry_with(experiments=[experiment(assign_by="thread")]),
        settings=settings,
        checkpointer="memory",
    )
    run(graph, "what is 1+1?", "thread-a", user_id="same-user")
    [trace] = open_store(settings).traces()
    assert trace["variant"] == assign(
        ExperimentSpec.model_validate(experiment(assign_by="thread")), "thread-a"
    )
    stopped = build_graph(
        registry=registry_with(experiments=[experiment(enabled=False)]),
        settings=settings,
        checkpointer="memory",
        traces="none",
    )
    assert run(stopped, "what is 1+1?", "t9", variant="strict")["control_stop_reason"] == "success"


# -- statistics, checked against scipy and statsmodels ---------------------------------------------


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(45, 100, 62, 100), (120, 400, 150, 410), (1, 10, 6, 9)])
def test_two_proportion_figures_equal_scipy_and_statsmodels(k1: int, n1: int, k2: int, n2: int) -> None:
    got = two_proportions(k1, n1, k2, n2)
    z, p = proportions_ztest([k2, k1], [n2, n1], alternative="two-sided")
    odds, p_fisher = fisher_exact([[k2, n2 - k2], [k1, n1 - k1]])
    low, high = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff")
    assert got["z"] == pytest.approx(z) and got["p_z"] == pytest.approx(p)
    assert got["p_fisher"] == pytest.approx(p_fisher) and got["odds_ratio"] == pytest.approx(odds)
    assert got["ci95"] == pytest.approx([low, high]) and got["difference"] == pytest.approx(k2 / n2 - k1 / n1)
    assert got["ci95"][0] < got["difference"] < got["ci95"][1]
    # Small counts are judged by Fisher's exact test, large ones by the z-test.
    assert got["test"] == ("fisher" if n1 < 20 else "z")


def test_known_values() -> None:
    # Fisher's tea-tasting table: p = 0.4857 (two-sided).
    assert two_proportions(1, 4, 3, 4)["p_fisher"] == pytest.approx(0.485714, abs=1e-6)
    # 45/100 vs 62/100: z = 2.404 by hand (pooled p 0.535), p = 0.0162.
    got = two_proportions(45, 100, 62, 100)
    assert got["z"] == pytest.approx(2.4091, abs=1e-3) and got["p_z"] == pytest.approx(0.01599, abs=1e-4)
    # Agresti's McNemar example: 794/86/150/570, chi-square with continuity correction 16.82.
    table = [[794, 86], [150, 570]]
    mine = mcnemar_test(table)
    theirs = mcnemar(table, exact=False, correction=True)
    assert (
        mine["statistic"] == pytest.approx(theirs.statistic) == pytest.approx(3969 / 236)
    )  # (|86 - 150| - 1)^2 / (86 + 150)
    assert mine["p"] == pytest.approx(theirs.pvalue) and mine["exact"] is False
    small = [[10, 2], [9, 4]]  # 11 discordant pairs: the exact binomial test
    assert mcnemar_test(small)["exact"] is True
    assert mcnemar_test(small)["p"] == pytest.approx(mcnemar(small, exact=True).pvalue)
    assert mcnemar_test(small)["p"] == pytest.approx(0.06543, abs=1e-5)
    # Power: 0.45 vs 0.62 needs about 134 runs per variant for 80% power at alpha 0.05.
    assert runs_needed(0.45, 0.62) == pytest.approx(134, abs=2)
    assert runs_needed(0.5, 0.5) is None


def test_paired_decisions_and_their_verdict() -> None:
    caps = [frozenset({"a"})] * 30
    before = [frozenset()] * 12 + [frozenset({"a"})] * 18
    after = [frozenset({"a"})] * 30
    result = paired([f"r{i}" for i in range(30)], caps, before, after)
    assert result["table"] == [[18, 0], [12, 0]]
    assert result["baseline"]["k"] == 18 and result["candidate"]["k"] == 30
    assert result["mcnemar"]["p"] == pytest.approx(mcnemar([[18, 0], [12, 0]], exact=True).pvalue)
    assert (
        result["verdict"]
        == f"candidate is better on feedback accuracy, p={result['mcnemar']['p']:.3g} (McNemar)"
    )
    same = paired(["x"], [frozenset({"a"})], [frozenset({"a"})], [frozenset({"a"})])
    assert same["verdict"] == "candidate and baseline route every judged request the same way"


# -- the comparison over the store ---------------------------------------------------------------


def fill(store: TraceStore, variant: str, n: int, good: int, *, success: int) -> None:
    for i in range(n):
        run_id = f"{variant}-{i}"
        store.write(
            {
                "run_id": run_id, "thread_id": run_id, "user_id": f"u-{variant}-{i}", "turn": 1,
                "started_at": 1000.0 + i, "ended_at": 1001.0 + i, "duration_ms": 5.0, "request": "x",
                "stop_reason": "success" if i < success else "clarify", "selected": ["a"] if i < success else [],
                "candidates": [], "plan": [], "steps": [], "approvals": [], "approval_wait_s": 0.0,
                "errors": [], "notes": [], "llm_calls": 0, "tokens": 0, "node_steps": 3, "timings_ms": {},
                "registry_fingerprint": "f", "experiment": "exp", "variant": variant,
            }
        )  # fmt: skip
        store.put_feedback(run_id, verdict="good" if i < good else "bad")


def test_compare_experiment_gives_the_tests_and_a_plain_verdict(tmp_path: Any) -> None:
    store = TraceStore.sqlite(tmp_path / "t.sqlite")
    fill(store, "control", 200, 120, success=150)
    fill(store, "b", 200, 150, success=152)
    result = compare_experiment(store, "exp")
    assert result["variants"] == ["control", "b"] and result["runs"] == {"control": 200, "b": 200}
    [c] = result["comparisons"]
    acc = c["accuracy"]
    _, p = proportions_ztest([150, 120], [200, 200])
    assert acc["p_z"] == pytest.approx(p) and acc["p"] == pytest.approx(p) and acc["significant"]
    assert acc["better"] == "b" and acc["verdict"] == f"b is better on feedback accuracy, p={p:.3g}"
    success = c["success"]
    assert not success["significant"] and success["runs_needed"] > 200
    assert success["verdict"].startswith("success rate: no significant difference yet")
    assert f"need ~{success['runs_needed'] - 200} more runs per variant" in success["verdict"]
    assert c["clarify"]["better"] is None  # 50 vs 48 clarified: no significant difference
    assert result["verdict"] == f"b vs control: b is better on feedback accuracy, p={p:.3g}"
    json.dumps(result, allow_nan=False)  # JSON-ready for the dashboard
    assert compare_experiment(store, "nothing")["verdict"] == "no traces of experiment 'nothing' yet"


def test_the_analytics_command_compares_an_experiment(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    settings = Settings.from_env()
    store = open_store(settings)
    fill(store, "control", 60, 30, success=40)
    fill(store, "b", 60, 50, success=41)
    store.close()
    registry = tmp_path / "registry.yaml"
    data = {
        **BASE,
        "experiments": [
            {"name": "exp", "variants": [{"name": "control", "share": 0.5}, {"name": "b", "share": 0.5}]}
        ],
    }
    registry.write_text(json.dumps(data))
    assert main(["analytics", "--since", "all", "--experiment", "exp", "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert "Experiment exp (traces since all): runs control 60, b 60" in out
    assert "Verdict: b vs control: b is better on feedback accuracy, p=" in out
    assert main(["analytics", "--since", "all", "--experiment", "exp", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["comparisons"][0]["accuracy"]["significant"] is True
    assert main(["analytics", "--since", "all", "--experiment", "absent"]) == 1
    assert Registry.from_file(registry).spec.experiments[0].assign_by == "user"
