"""The model paths, driven by scripted fake chat models (no network): every role, malformed output,
schema violations, cascade, plan validation loops and the model-call budget."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from tests.conftest import SleepRecorder, answer, ask, fake, guide, registry_with

LLM = {"classifier": {"mode": "llm"}, "orchestrator": {"mode": "llm"}}
TASK = {"task": "What is 12*7 and what time is it in Tokyo?", "depends_on_history": False}
CLASSIFIED = {
    "judgements": [
        {"name": "calculator", "relevant": True, "confidence": 0.95, "reason": "arithmetic"},
        {"name": "clock", "relevant": True, "confidence": 0.9, "reason": "time in Tokyo"},
    ]
}
PLAN = {
    "steps": [
        {"capability": "calculator", "inputs": {"expression": "12*7"}},
        {"capability": "clock", "inputs": {"timezone": "Asia/Tokyo"}},
        {"capability": "respond", "depends_on": [0, 1]},
    ]
}


def test_every_role_through_a_model_with_one_classifier_call(make_graph: Any) -> None:
    models = {
        "task_extraction": fake(TASK),
        "classifier": fake(CLASSIFIED),
        "orchestrator": fake(PLAN),
        "respond": fake("12*7 is 84, and in Tokyo it is evening."),
    }
    state = ask(make_graph(registry_with(**LLM), models=models), "12*7? also time in tokyo")
    assert state["control_stop_reason"] == "success"
    assert answer(state) == "12*7 is 84, and in Tokyo it is evening."
    assert state["task_current"] == TASK["task"]
    assert {m: f.calls for m, f in models.items()} == dict.fromkeys(models, 1)
    assert state["control_llm_calls"] == 4
    prompt = models["classifier"].prompts[0][-1].content
    assert "calculator" in prompt and "clock" in prompt  # all candidates judged in one call
    steps = {s["capability"]: s for s in state["planning_plan"]}
    assert steps["calculator"]["inputs"] == {"expression": "12*7"}
    outputs = {r["capability"]: r["output"] for r in state["execution_results"].values()}
    assert outputs["calculator"]["calculation"] == 84 and outputs["clock"]["timezone"] == "Asia/Tokyo"


def test_names_the_model_invents_are_ignored(make_graph: Any) -> None:
    reply = {
        "judgements": [
            {"name": "rm_rf", "relevant": True, "confidence": 1.0},
            {"name": "clock", "relevant": True, "confidence": 0.8},
        ]
    }
    state = ask(
        make_graph(registry_with(classifier={"mode": "llm"}), models={"classifier": fake(reply)}),
        "time in Tokyo",
    )
    names = {c["name"] for c in state["planning_capabilities"]}
    assert "rm_rf" not in names
    assert state["control_stop_reason"] == "success"


def test_schema_violation_is_retried_then_accepted(make_graph: Any) -> None:
    bad = {"judgements": [{"name": "clock", "relevant": True, "confidence": 7}]}
    classifier = fake(bad, CLASSIFIED)
    state = ask(
        make_graph(
            registry_with(classifier={"mode": "llm"}),
            models={"classifier": classifier},
            sleep=SleepRecorder(),
        ),
        "12*7 and time in Tokyo",
    )
    assert classifier.calls == 2
    assert state["control_stop_reason"] == "success"
    assert state["control_llm_calls"] == 2


def test_malformed_output_forever_falls_back_to_the_offline_extraction(make_graph: Any) -> None:
    model = fake("Sure! Here is the task: {task: oops", repeat=True)
    reg = registry_with(limits={"max_retries": 2, "max_llm_calls": 50})
    sleep = SleepRecorder()
    state = ask(make_graph(reg, models={"task_extraction": model}, sleep=sleep), "what is 2+2")
    # Retried once (offline_after: 2 failed calls), then the deterministic extraction took over.
    assert model.calls == 2 and len(sleep.delays) == 1
    assert state["control_stop_reason"] == "success"
    assert state["task_current"] == "what is 2+2" and "2+2 = 4" in answer(state)
    notes = " ".join(state["planning_notes"])
    assert "model fallback (task_extraction)" in notes
    assert "malformed JSON" in notes or "no JSON" in notes


def test_malformed_plans_forever_end_with_max_retries_when_the_planner_must_use_the_model(
    make_graph: Any,
) -> None:
    model = fake("Sure! Here is the plan: {steps: oops", repeat=True)
    reg = registry_with(orchestrator={"mode": "llm"}, limits={"max_retries": 2, "max_llm_calls": 50})
    state = ask(make_graph(reg, models={"orchestrator": model}, sleep=SleepRecorder()), "what is 2+2")
    assert state["control_stop_reason"] == "max_retries"
    assert model.calls == 3
    assert "malformed JSON" in answer(state) or "no JSON" in answer(state)


def test_json_wrapped_in_prose_and_fences_is_accepted(make_graph: Any) -> None:
    reply = 'Here you go:\n```json\n{"task": "what is 2+2", "depends_on_history": false}\n```\nHope it helps'
    state = ask(make_graph(models={"task_extraction": fake(reply)}), "uh, two plus two?")
    assert state["task_current"] == "what is 2+2"
    assert "2+2 = 4" in answer(state)


def test_cascade_makes_no_call_when_confident(make_graph: Any) -> None:
    classifier = fake(CLASSIFIED, repeat=True)
    reg = registry_with(classifier={"mode": "cascade", "cascade_band": 0.1})
    state = ask(
        make_graph(reg, models={"classifier": classifier}), "What is 12*7 and what time is it in Tokyo?"
    )
    assert classifier.calls == 0
    assert all(c["source"] in {"always", "scorer"} for c in state["planning_capabilities"])


def test_cascade_asks_the_model_only_about_uncertain_candidates(make_graph: Any) -> None:
    from graph.classifier.encoders import LexicalEncoder
    from graph.classifier.scorer import FewShotScorer, guides_from_registry

    text = "tell me the joke of the day"
    scorer = FewShotScorer(guides_from_registry(registry_with().routable), LexicalEncoder())
    distance = {s.name: abs(s.confidence - 0.5) for s in scorer.score(text)}
    assert distance["clock"] < distance["calculator"]  # clock is the closer call
    band = (distance["clock"] + distance["calculator"]) / 2  # uncertain: clock only
    classifier = fake({"judgements": [{"name": "clock", "relevant": False, "confidence": 0.9}]})
    reg = registry_with(classifier={"mode": "cascade", "cascade_band": band})
    state = ask(make_graph(reg, models={"classifier": classifier}), text)
    assert classifier.calls == 1
    prompt = classifier.prompts[0][-1].content
    assert "- clock:" in prompt and "- calculator:" not in prompt
    assert state["control_stop_reason"] == "clarify"
    sources = {c["name"]: c["source"] for c in state["planning_capabilities"]}
    assert sources["clock"] == "llm" and sources["calculator"] == "scorer"


def test_plan_with_unknown_capability_reclassifies_until_the_limit(make_graph: Any) -> None:
    plan = {"steps": [{"capability": "teleport"}, {"capability": "respond"}]}
    orchestrator = fake(plan, repeat=True)
    reg = registry_with(orchestrator={"mode": "llm"}, limits={"max_reclassifications": 2})
    state = ask(make_graph(reg, models={"orchestrator": orchestrator}), "what is 12*7")
    assert state["control_stop_reason"] == "max_reclassifications"
    assert state["control_reclassifications"] == 2
    assert orchestrator.calls == 3
    assert "teleport" in answer(state)


def test_plan_missing_inputs_is_sent_back_for_replanning_with_the_error(
    make_graph: Any, tmp_path: Any
) -> None:
    from tests.testcaps import make_db

    db = str(make_db(tmp_path / "db.sqlite"))
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": db},
        "classifier_guide": guide("find alice"),
    }
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": db},
        "classifier_guide": guide("pay alice 20 dollars", "send money to bob"),
    }
    bad = {"steps": [{"capability": "payout", "inputs": {"amount": 20}}, {"capability": "respond"}]}
    good = {
        "steps": [
            {"capability": "lookup"},
            {"capability": "payout", "inputs": {"amount": 20}, "depends_on": [0]},
            {"capability": "respond"},
        ]
    }
    orchestrator = fake(bad, good)
    state = ask(
        make_graph(
            registry_with(lookup, payout, orchestrator={"mode": "llm"}), models={"orchestrator": orchestrator}
        ),
        "pay alice 20 dollars",
    )
    assert state["control_replans"] == 1
    assert "customer_id" in orchestrator.prompts[1][-1].content  # the validation error went back
    assert state["control_stop_reason"] == "success"

    forever = fake(bad, repeat=True)
    state = ask(
        make_graph(
            registry_with(lookup, payout, orchestrator={"mode": "llm"}, limits={"max_replans": 1}),
            models={"orchestrator": forever},
        ),
        "pay alice 20 dollars",
    )
    assert state["control_stop_reason"] == "max_replans"


def test_plan_not_ending_in_respond_is_fixed(make_graph: Any) -> None:
    plan = {"steps": [{"capability": "respond"}, {"capability": "calculator"}, {"capability": "calculator"}]}
    state = ask(
        make_graph(registry_with(orchestrator={"mode": "llm"}), models={"orchestrator": fake(plan)}),
        "what is 12*7",
    )
    assert [s["capability"] for s in state["planning_plan"]] == ["calculator", "respond"]
    notes = " ".join(state["planning_notes"])
    assert "appended respond" in notes and "repeat" in notes
    assert state["control_stop_reason"] == "success"


def test_plan_with_a_capability_outside_the_allowlist_is_denied(make_graph: Any) -> None:
    plan = {"steps": [{"capability": "calculator"}, {"capability": "respond"}]}
    reg = registry_with(
        orchestrator={"mode": "llm"}, policy={"allowed_capabilities": ["respond", "clarify", "clock"]}
    )
    state = ask(make_graph(reg, models={"orchestrator": fake(plan)}), "what time is it in Tokyo")
    assert state["control_stop_reason"] == "route_denied"


def test_model_call_budget_is_enforced(make_graph: Any) -> None:
    models = {
        "task_extraction": fake(TASK),
        "classifier": fake(CLASSIFIED),
        "orchestrator": fake(PLAN),
        "respond": fake("x"),
    }
    state = ask(
        make_graph(registry_with(**LLM, limits={"max_llm_calls": 2}), models=models), "12*7 and Tokyo time"
    )
    assert state["control_stop_reason"] == "max_llm_calls"
    assert state["control_llm_calls"] == 2
    assert models["orchestrator"].calls == 0


class ToolCallingFake(GenericFakeChatModel):
    """A fake that 'supports' tools: structured output then goes through function calling."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def test_function_calling_structured_output(make_graph: Any) -> None:
    call = AIMessage(
        content="", tool_calls=[{"name": "ExtractedTask", "args": {"task": "what is 6*7"}, "id": "c1"}]
    )
    bad = AIMessage(
        content="",
        tool_calls=[{"name": "ExtractedTask", "args": {"depends_on_history": "maybe"}, "id": "c0"}],
    )
    model = ToolCallingFake(messages=iter([bad, call]))
    state = ask(make_graph(models={"task_extraction": model}, sleep=SleepRecorder()), "six sevens?")
    assert state["task_current"] == "what is 6*7"
    assert "6*7 = 42" in answer(state)
    assert state["control_llm_calls"] == 2


def test_a_default_model_serves_every_role(make_graph: Any) -> None:
    replies = itertools.cycle([AIMessage(content='{"task": "what is 1+1"}')])
    model = GenericFakeChatModel(messages=replies)
    state = ask(
        make_graph(
            registry_with(classifier={"mode": "embedding"}, orchestrator={"mode": "deterministic"}),
            models={"default": model},
        ),
        "1+1?",
    )
    # The respond role also uses it: its answer is the model's text.
    assert state["task_current"] == "what is 1+1" and answer(state) == '{"task": "what is 1+1"}'
