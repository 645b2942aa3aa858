"""LLM calls per request with many capabilities: the classifier judges them all in ONE call.

What is measured
    Registries of 5, 10 and 20 synthetic capabilities (`benchmarks/synthetic.py`: one real Capability
    subclass, a deterministic digest of its inputs, three positive and one negative guide example
    each) plus `respond` and `clarify`, with classifier mode "llm" and orchestrator mode "llm".
    Every role gets its own scripted chat model, a `GenericFakeChatModel` from
    `langchain_core.language_models.fake_chat_models` subclassed to count its `_generate` calls and
    keep the prompts it saw. It has no `bind_tools`, so routegraph asks for structured output with
    the "prompt" method and the scripted replies are JSON objects valid for
    `nodes.task_extraction.ExtractedTask`, `nodes.classifier.Classification` (a judgement of EVERY
    capability in the registry) and `nodes.planning.Plan`; the respond model answers plain text.

    Each request of a fixed list (one- and two-capability requests, all about the first five
    topics so that they fit every registry size, and one out-of-scope request that ends in
    `clarify`) runs once on a freshly built graph with fresh models whose scripts hold exactly one
    reply per role. Per request: calls per role counted by the models, the same total read from
    the final state (`control_llm_calls`), the scripted replies consumed, the number of candidates
    listed in the classifier's prompt, and whether the selected capabilities are the expected ones.

    The target: at most ONE classifier call per request, whatever the number of capabilities
    (the older design made one call per capability: 20 calls for 20 capabilities; that figure is a
    reference, not measured here).

    Cascade mode (classifier mode "cascade") is run too: the offline few-shot scorer decides where
    it is confident, and one LLM call judges only the candidates whose confidence lies within
    `cascade_band` of the threshold; the table shows how many classifier calls happen and how many
    candidates they judge.

    The confidences the scripted classifier gives irrelevant capabilities are drawn from a
    `random.Random(--seed)`, so runs are reproducible.

Run
    .venv/bin/python -m benchmarks.bench_llm_calls [--sizes 5 10 20] [--modes llm cascade] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from benchmarks.synthetic import TOPICS, synthetic_registry
from graph.builder import build_graph
from graph.config.registry import Registry
from graph.config.settings import Settings
from nodes.classifier import CapabilityJudgement, Classification
from nodes.planning import Plan, PlannedStep
from nodes.task_extraction import ExtractedTask

ROLES = ("task_extraction", "classifier", "orchestrator", "respond")
SIZES = (5, 10, 20)
MODES = ("llm", "cascade")
MAX_CLASSIFIER_CALLS = 1
MIN_SIZE = 5


@dataclass(frozen=True)
class Request:
    text: str
    targets: tuple[tuple[str, str], ...]
    """(capability, item) pairs the request needs; empty: out of scope, ends in clarify."""

    @property
    def capabilities(self) -> list[str]:
        return sorted(name for name, _ in self.targets)


REQUESTS: tuple[Request, ...] = (
    Request("What's the weather in Oslo tomorrow?", (("weather", "Oslo"),)),
    Request("Convert 250 dollars to euros", (("currency", "250 USD to EUR"),)),
    Request("Translate 'see you soon' to Italian", (("translator", "see you soon -> Italian"),)),
    Request("How is Nvidia stock doing today?", (("stocks", "NVDA"),)),
    Request(
        "What's the Nvidia stock price, and the latest news about chips?",
        (("stocks", "NVDA"), ("news", "chips")),
    ),
    Request(
        "Will it rain in Dublin tomorrow, and how many pounds is 80 euros?",
        (("weather", "Dublin"), ("currency", "80 EUR to GBP")),
    ),
    Request("Give me today's headlines", (("news", "today"),)),
    Request("Tell me a bedtime story about dragons", ()),
)


class CountingFakeChatModel(GenericFakeChatModel):
    """A scripted chat model that counts its calls and keeps the prompts it was given."""

    role: str = ""
    calls: int = 0
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        self.prompts.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted_replies(request: Request, registry: Registry, rng: random.Random) -> dict[str, list[AIMessage]]:
    """One reply per role, as a well-behaved model would give them for this request."""
    wanted = dict(request.targets)
    judgements = [
        CapabilityJudgement(
            name=cap.name,
            relevant=cap.name in wanted,
            confidence=0.93 if cap.name in wanted else round(rng.uniform(0.02, 0.15), 3),
            reason="the task asks for it" if cap.name in wanted else "not what the task asks",
        )
        for cap in registry.routable
    ]
    steps = [PlannedStep(capability=name, inputs={"item": item}) for name, item in request.targets]
    steps.append(PlannedStep(capability="respond", depends_on=list(range(len(steps)))))
    answer = "Here is what I found: " + (", ".join(wanted) or "nothing") + "."
    return {
        "task_extraction": [AIMessage(content=ExtractedTask(task=request.text).model_dump_json())],
        "classifier": [AIMessage(content=Classification(judgements=judgements).model_dump_json())],
        "orchestrator": [AIMessage(content=Plan(steps=steps).model_dump_json())],
        "respond": [AIMessage(content=answer)],
    }


_CANDIDATE_LINE = re.compile(r"^- ([a-z][a-z0-9_]*): ", re.M)


def candidates_in_prompt(prompt: list[BaseMessage]) -> int:
    """How many capabilities a classifier prompt lists (lines `- name: description`)."""
    text = "\n".join(m.content for m in prompt if isinstance(m, HumanMessage) and isinstance(m.content, str))
    return len(_CANDIDATE_LINE.findall(text.split("Candidates:", 1)[-1]))


def run_request(request: Request, registry: Registry, rng: random.Random, tmp: Path) -> dict[str, Any]:
    scripts = scripted_replies(request, registry, rng)
    models = {
        role: CountingFakeChatModel(role=role, messages=iter(replies)) for role, replies in scripts.items()
    }
    graph = build_graph(
        registry=registry,
        settings=Settings.offline(tmp),
        checkpointer="memory",
        models=models,
    )
    started = time.perf_counter()
    state = graph.invoke(
        {"messages": [HumanMessage(content=request.text)]},
        {"configurable": {"thread_id": uuid.uuid4().hex}},
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    calls = {role: models[role].calls for role in ROLES}
    consumed = {role: len(scripts[role]) - len(list(models[role].messages)) for role in ROLES}
    selected = sorted(
        c["name"]
        for c in state.get("planning_capabilities") or []
        if c["selected"] and c["source"] != "always"
    )
    judged_by_llm = [c["name"] for c in state.get("planning_capabilities") or [] if c["source"] == "llm"]
    return {
        "request": request.text,
        "expected_capabilities": request.capabilities,
        "selected_capabilities": selected,
        "correct": selected == request.capabilities,
        "stop_reason": state.get("control_stop_reason"),
        "llm_calls": sum(calls.values()),
        "calls_by_role": calls,
        "replies_consumed": consumed,
        "control_llm_calls": int(state.get("control_llm_calls", 0)),
        "classifier_candidates_per_call": [candidates_in_prompt(p) for p in models["classifier"].prompts],
        "judged_by_llm": len(judged_by_llm),
        "wall_ms": round(elapsed_ms, 3),
    }


def run_case(mode: str, size: int, requests: Sequence[Request], seed: int, tmp: Path) -> dict[str, Any]:
    registry = synthetic_registry(size, classifier_mode=mode, orchestrator_mode="llm")
    rng = random.Random(f"{seed}:{mode}:{size}")
    rows = [run_request(r, registry, rng, tmp) for r in requests]
    classifier_calls = [r["calls_by_role"]["classifier"] for r in rows]
    candidates = [n for r in rows for n in r["classifier_candidates_per_call"]]
    return {
        "mode": mode,
        "capabilities": size,
        "requests": len(rows),
        "llm_calls_per_request": {
            "mean": round(statistics.fmean(r["llm_calls"] for r in rows), 3),
            "max": max(r["llm_calls"] for r in rows),
        },
        "classifier_calls_per_request": {
            "mean": round(statistics.fmean(classifier_calls), 3),
            "max": max(classifier_calls),
            "total": sum(classifier_calls),
        },
        "calls_by_role_per_request": {
            role: round(statistics.fmean(r["calls_by_role"][role] for r in rows), 3) for role in ROLES
        },
        "candidates_per_classifier_call": round(statistics.fmean(candidates), 2) if candidates else 0,
        "control_llm_calls_agree": all(r["control_llm_calls"] == r["llm_calls"] for r in rows),
        "replies_consumed_agree": all(r["replies_consumed"] == r["calls_by_role"] for r in rows),
        "correct_selections": sum(r["correct"] for r in rows),
        "one_call_per_capability_reference": size,
        "meets_target": max(classifier_calls) <= MAX_CLASSIFIER_CALLS,
        "wall_ms_mean": round(statistics.fmean(r["wall_ms"] for r in rows), 3),
        "per_request": rows,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"LLM calls per request, scripted fake chat models, {result['requests']} requests per row, "
        f"seed={result['seed']}",
        f"target: at most {MAX_CLASSIFIER_CALLS} classifier call per request (the one-call-per-capability "
        "design would make as many as there are capabilities)",
        "",
        f"{'mode':<8} {'caps':>4}  {'LLM calls/req':>13} {'max':>4}  {'classifier/req':>14} {'max':>4}  "
        f"{'old design':>10}  {'extract':>7} {'orch':>5} {'respond':>7}  {'cands/call':>10}  "
        f"{'state agrees':>12}  {'correct':>7}  {'ms/req':>7}  ok",
    ]
    for c in result["cases"]:
        roles = c["calls_by_role_per_request"]
        agree = c["control_llm_calls_agree"] and c["replies_consumed_agree"]
        lines.append(
            f"{c['mode']:<8} {c['capabilities']:>4}  {c['llm_calls_per_request']['mean']:>13.2f} "
            f"{c['llm_calls_per_request']['max']:>4}  {c['classifier_calls_per_request']['mean']:>14.2f} "
            f"{c['classifier_calls_per_request']['max']:>4}  {c['one_call_per_capability_reference']:>10}  "
            f"{roles['task_extraction']:>7.2f} {roles['orchestrator']:>5.2f} {roles['respond']:>7.2f}  "
            f"{c['candidates_per_classifier_call']:>10.1f}  {'yes' if agree else 'NO':>12}  "
            f"{c['correct_selections']:>3}/{c['requests']:<3}  {c['wall_ms_mean']:>7.1f}  "
            f"{'yes' if c['meets_target'] else 'NO'}"
        )
    cascade = [c for c in result["cases"] if c["mode"] == "cascade"]
    for c in cascade:
        lines += ["", f"cascade, {c['capabilities']} capabilities, per request:"]
        lines.append(f"  {'request':<66} {'classifier calls':>16} {'judged by LLM':>13}  selected")
        for r in c["per_request"]:
            lines.append(
                f"  {r['request'][:66]:<66} {r['calls_by_role']['classifier']:>16} {r['judged_by_llm']:>13}  "
                f"{', '.join(r['selected_capabilities']) or '-'}{'' if r['correct'] else ' (expected: ' + (', '.join(r['expected_capabilities']) or '-') + ')'}"
            )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_llm_calls",
        description="LLM calls per request for registries of many capabilities (scripted fake models).",
    )
    p.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="registry sizes (default: 5 10 20)"
    )
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="classifier modes")
    p.add_argument(
        "--n",
        type=int,
        default=len(REQUESTS),
        help=f"requests from the fixed list (default: all {len(REQUESTS)})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the scripted confidences (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    return p


def run(sizes: Sequence[int], modes: Sequence[str], requests: Sequence[Request], seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="routegraph-bench-") as tmpdir:
        cases = [run_case(mode, size, requests, seed, Path(tmpdir)) for mode in modes for size in sizes]
    llm_cases = [c for c in cases if c["mode"] == "llm"]
    return {
        "benchmark": "llm_calls",
        "seed": seed,
        "requests": len(requests),
        "target_classifier_calls_per_request": MAX_CLASSIFIER_CALLS,
        "meets_target": all(c["meets_target"] for c in llm_cases),
        "cases": cases,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not 1 <= args.n <= len(REQUESTS):
        p.error(f"--n must be between 1 and {len(REQUESTS)}")
    if any(not MIN_SIZE <= s <= len(TOPICS) for s in args.sizes):
        p.error(
            f"--sizes must be between {MIN_SIZE} (the requests use the first {MIN_SIZE} topics) and {len(TOPICS)}"
        )
    result = run(args.sizes, args.modes, REQUESTS[: args.n], args.seed)
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
