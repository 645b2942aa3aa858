"""How the model layer copes with real servers (no network): a structured-output method the server
rejects is replaced and remembered, the token bound goes out as `max_tokens`, failures are retried a
bounded number of times and then each role's offline path takes over, with a note in the state."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from graph.config.schema import ModelConfig
from graph.config.settings import Settings
from graph.errors import ModelOutputError
from graph.models import (
    LLMGateway,
    ModelProvider,
    ModelUnavailableError,
    _compat_chat_openai,
    make_chat_model,
    rejects_method,
)
from nodes.task_extraction import ExtractedTask
from tests.conftest import SleepRecorder, answer, ask, fake, registry_with

TASK = {"task": "what is 6*7", "depends_on_history": False}


def server_error(status: int, message: str) -> openai.APIStatusError:
    """The exception the openai client raises for an HTTP error answer."""
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, request=request, json={"error": {"message": message}})
    kind = {400: openai.BadRequestError, 500: openai.InternalServerError}.get(status, openai.APIStatusError)
    return kind(message, response=response, body={"error": {"message": message}})


class StrictServerFake(GenericFakeChatModel):
    """Like llama.cpp's server: `response_format` json_schema fails with HTTP 500; tool calls work."""

    rejected: int = 0
    tool_calls: int = 0
    error: Any = None

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def with_structured_output(self, schema: Any, *, method: str = "function_calling", **kwargs: Any) -> Any:
        if method == "json_schema":

            def reject(_: Any) -> Any:
                self.rejected += 1
                raise self.error or server_error(500, "Error: response_format json_schema is not supported")

            return RunnableLambda(reject)
        self.tool_calls += 1
        return super().with_structured_output(schema, method=method, **kwargs)


def tool_call(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "call-1"}])


def provider_for(model: Any, **config: Any) -> ModelProvider:
    settings = Settings.offline(Path("/nonexistent"))
    configs = {role: ModelConfig(**config) for role in ModelProvider.roles()}
    return ModelProvider(configs, settings, enabled=True, overrides={"default": model})


async def extract(provider: ModelProvider) -> tuple[ExtractedTask, LLMGateway]:
    llm = LLMGateway(provider, used=0, budget=20)
    result = await llm.structured("task_extraction", [HumanMessage("six sevens?")], ExtractedTask)
    return result, llm


# --- a rejected structured-output method --------------------------------------------------------


async def test_json_schema_rejected_by_the_server_falls_back_to_function_calling_once() -> None:
    model = StrictServerFake(messages=itertools.cycle([tool_call("ExtractedTask", TASK)]))
    provider = provider_for(model, structured_output="json_schema")

    result, llm = await extract(provider)
    assert result == ExtractedTask(**TASK)
    assert model.rejected == 1 and llm.calls == 2  # the rejected request counts as a call
    assert provider.method("task_extraction", model) == "function_calling"
    assert "rejected structured output via json_schema" in provider.notes[0]

    result, llm = await extract(provider)  # remembered: json_schema is not tried again
    assert result.task == "what is 6*7"
    assert model.rejected == 1 and llm.calls == 1

    # ... by any role that uses the same model
    other = LLMGateway(provider, used=0, budget=20)
    assert (await other.structured("classifier", [HumanMessage("x")], ExtractedTask)).task == "what is 6*7"
    assert model.rejected == 1 and other.calls == 1


async def test_not_implemented_method_falls_back_too() -> None:
    model = StrictServerFake(messages=itertools.cycle([tool_call("ExtractedTask", TASK)]))
    model.error = NotImplementedError("json_schema")
    result, _ = await extract(provider_for(model, structured_output="json_schema"))
    assert result.task == "what is 6*7"


async def test_a_server_without_tools_ends_with_the_schema_in_the_prompt() -> None:
    class NoToolsFake(GenericFakeChatModel):
        def with_structured_output(self, schema: Any, *, method: str = "", **kwargs: Any) -> Any:
            def reject(_: Any) -> Any:
                raise server_error(400, f"'tools' and response_format are not supported ({method})")

            return RunnableLambda(reject)

    model = NoToolsFake(messages=itertools.cycle([AIMessage(content=json.dumps(TASK))]))
    provider = provider_for(model, structured_output="json_schema")
    result, _ = await extract(provider)
    assert result.task == "what is 6*7"
    assert provider.method("task_extraction", model) == "prompt"
    assert [n.split("via ")[1] for n in provider.notes] == [
        "json_schema; using function_calling",
        "function_calling; using json_mode",
        "json_mode; using prompt",
    ]


async def test_with_fallback_off_the_rejection_is_an_error() -> None:
    model = StrictServerFake(messages=itertools.cycle([tool_call("ExtractedTask", TASK)]))
    provider = provider_for(model, structured_output="json_schema", structured_output_fallback=False)
    with pytest.raises(ModelUnavailableError):  # a 5xx: retried by the router, not a method change
        await extract(provider)
    assert provider.method("task_extraction", model) == "json_schema"


def test_what_counts_as_a_rejection() -> None:
    assert rejects_method(server_error(500, "response_format json_schema not supported"), "json_schema")
    assert rejects_method(server_error(400, "Invalid schema for response_format 'X'"), "json_schema")
    assert rejects_method(NotImplementedError(), "function_calling")
    assert not rejects_method(server_error(500, "out of memory"), "json_schema")
    assert not rejects_method(server_error(401, "response_format: bad key"), "json_schema")
    assert not rejects_method(ValueError("response_format"), "json_schema")


# --- max_tokens on the wire, through the real ChatOpenAI client ---------------------------------


class FakeServer:
    """An OpenAI-compatible endpoint in an httpx transport: records request bodies, answers like
    llama.cpp (HTTP 500 for json_schema, a forced tool call otherwise)."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arguments = arguments

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if body.get("response_format", {}).get("type") == "json_schema":
            return httpx.Response(500, json={"error": {"message": "response_format json_schema: 500"}})
        name = body["tools"][0]["function"]["name"]
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(self.arguments)},
                }
            ],
        }
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
            },
        )


@pytest.mark.parametrize(
    ("base_url", "token_param", "sent"),
    [
        ("http://127.0.0.1:8765/v1", "auto", "max_tokens"),
        (None, "auto", "max_completion_tokens"),
        (None, "max_tokens", "max_tokens"),
        ("http://127.0.0.1:8765/v1", "max_completion_tokens", "max_completion_tokens"),
    ],
)
def test_the_token_bound_goes_out_in_the_field_the_endpoint_reads(
    base_url: str | None, token_param: str, sent: str
) -> None:
    config = ModelConfig(model="m", max_tokens=77, token_param=token_param)  # type: ignore[arg-type]
    model = make_chat_model(config, Settings.from_env({"OPENAI_API_KEY": "k"}, base_url=base_url))
    payload = model._get_request_payload([HumanMessage("hi")])  # type: ignore[attr-defined]
    other = {"max_tokens", "max_completion_tokens"} - {sent}
    assert payload[sent] == 77 and not other & set(payload)


async def test_the_real_client_falls_back_from_json_schema_and_sends_max_tokens() -> None:
    server = FakeServer(TASK)
    model = _compat_chat_openai()(
        model="gemma",
        base_url="http://127.0.0.1:9/v1",
        api_key="not-needed",
        max_tokens=64,
        max_retries=0,
        send_max_tokens=True,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    provider = provider_for(model, structured_output="json_schema")
    result, llm = await extract(provider)
    assert result.task == "what is 6*7"
    assert server.bodies[0]["response_format"]["type"] == "json_schema"
    assert server.bodies[1]["tool_choice"]["function"]["name"] == "ExtractedTask"
    # no size bounds on the wire (llama.cpp unrolls them into grammar rules and dies on big ones)
    assert "maxLength" not in json.dumps(server.bodies[1]["tools"])
    assert all(b["max_tokens"] == 64 and "max_completion_tokens" not in b for b in server.bodies)
    assert llm.calls == 2 and llm.tokens == 42  # the rejected request reported no usage


async def test_bounds_left_off_the_wire_are_still_enforced_here() -> None:
    server = FakeServer({"task": "x" * 2001})
    model = _compat_chat_openai()(
        model="m",
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    with pytest.raises(ModelOutputError, match="task"):
        await extract(provider_for(model, structured_output="function_calling"))


# --- bounded retries, then the offline path -----------------------------------------------------


def limits(**extra: Any) -> dict[str, Any]:
    return {"limits": {"max_retries": 2, "max_llm_calls": 50, **extra}}


def test_malformed_judgements_fall_back_to_the_embedding_scorer(make_graph: Callable[..., Any]) -> None:
    model = fake("I think calculator, probably", repeat=True)
    reg = registry_with(classifier={"mode": "llm"}, **limits())
    sleep = SleepRecorder()
    state = ask(make_graph(reg, models={"classifier": model}, sleep=sleep), "What is 12*7?")
    assert model.calls == 2 and len(sleep.delays) == 1
    assert state["control_stop_reason"] == "success" and "84" in answer(state)
    assert {c["source"] for c in state["planning_capabilities"]} <= {"always", "scorer"}
    assert any(n.startswith("model fallback (classifier)") for n in state["planning_notes"])


def test_malformed_plans_fall_back_to_the_deterministic_planner(make_graph: Callable[..., Any]) -> None:
    model = fake("Plan: do the calculator thing", repeat=True)
    state = ask(
        make_graph(registry_with(**limits()), models={"orchestrator": model}, sleep=SleepRecorder()), "12*7?"
    )
    # orchestrator mode auto: two failed calls, the role goes offline, the retry plans deterministically
    assert model.calls == 2
    assert state["control_stop_reason"] == "success" and "84" in answer(state)
    assert [s["capability"] for s in state["planning_plan"]] == ["calculator", "respond"]
    assert any(n.startswith("model fallback (orchestrator)") for n in state["planning_notes"])
    assert state["control_llm_calls"] == 2


def test_an_empty_answer_falls_back_to_the_template(make_graph: Callable[..., Any]) -> None:
    model = fake("   ", repeat=True)
    state = ask(
        make_graph(registry_with(**limits()), models={"respond": model}, sleep=SleepRecorder()), "12*7?"
    )
    assert model.calls == 2
    assert state["control_stop_reason"] == "success" and answer(state) == "12*7 = 84."
    assert any(n.startswith("model fallback (respond)") for n in state["planning_notes"])


def test_with_one_attempt_the_first_failure_falls_back(make_graph: Callable[..., Any]) -> None:
    model = fake("nope", repeat=True)
    reg = registry_with(limits={"max_retries": 0})
    state = ask(make_graph(reg, models={"task_extraction": model}), "what is 2+2")
    assert model.calls == 1
    assert state["control_stop_reason"] == "success" and "2+2 = 4" in answer(state)
    assert "last attempt" in " ".join(state["planning_notes"])


def test_with_one_attempt_a_failed_plan_falls_back_to_the_deterministic_planner(
    make_graph: Callable[..., Any],
) -> None:
    model = fake("nope", repeat=True)
    reg = registry_with(limits={"max_retries": 0})
    state = ask(make_graph(reg, models={"orchestrator": model}), "12*7?")
    assert model.calls == 1
    assert state["control_stop_reason"] == "success" and "84" in answer(state)
    assert any(
        n.startswith("model fallback (orchestrator)") and "last attempt" in n for n in state["planning_notes"]
    )


class TimingOut(GenericFakeChatModel):
    calls: int = 0

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise openai.APITimeoutError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))


def test_timeouts_are_retried_then_the_role_goes_offline(make_graph: Callable[..., Any]) -> None:
    model = TimingOut(messages=iter([]))
    sleep = SleepRecorder()
    models = {"task_extraction": model, "respond": model}
    state = ask(make_graph(registry_with(**limits()), models=models, sleep=sleep), "what is 2+2")
    assert state["control_stop_reason"] == "success" and "2+2 = 4" in answer(state)
    assert model.calls == 4  # two per role
    notes = " ".join(state["planning_notes"])
    assert "model fallback (task_extraction)" in notes and "model fallback (respond)" in notes
    assert "APITimeoutError" in notes


def test_a_spent_call_budget_in_respond_still_answers_with_a_stop_reason(
    make_graph: Callable[..., Any],
) -> None:
    model = TimingOut(messages=iter([]))
    reg = registry_with(limits={"max_retries": 2, "max_llm_calls": 1})
    state = ask(make_graph(reg, models={"respond": model}, sleep=SleepRecorder()), "what is 2+2")
    assert model.calls == 1  # the retry would be a second call: over the budget, so none is made
    assert state["control_stop_reason"] == "success" and "2+2 = 4" in answer(state)
    assert any("model fallback (respond)" in n and "model calls" in n for n in state["planning_notes"])


def test_a_good_answer_resets_the_count(make_graph: Callable[..., Any]) -> None:
    good = AIMessage(content=json.dumps({"task": "what is 2+2"}))
    model = GenericFakeChatModel(messages=iter([AIMessage("junk"), good, AIMessage("junk"), good]))
    graph = make_graph(registry_with(**limits()), models={"task_extraction": model}, sleep=SleepRecorder())
    for thread in ("a", "b"):  # one failure per turn never reaches offline_after: 2
        state = ask(graph, "two plus two?", thread=thread)
        assert state["task_current"] == "what is 2+2"
        assert not state["planning_notes"]


async def test_the_offline_period_ends_and_one_call_tries_the_model_again() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    replies: Iterator[AIMessage] = iter([AIMessage("junk")] * 3 + [AIMessage(json.dumps(TASK))])
    model = GenericFakeChatModel(messages=replies)
    settings = Settings.offline(Path("/nonexistent"))
    configs = {r: ModelConfig(offline_after=2, offline_seconds=60) for r in ModelProvider.roles()}
    provider = ModelProvider(configs, settings, enabled=True, overrides={"default": model}, clock=clock)
    llm = LLMGateway(provider, used=0, budget=20)
    for _ in range(2):
        with pytest.raises(Exception, match="no JSON"):
            await llm.structured("task_extraction", [HumanMessage("x")], ExtractedTask)
    assert not llm.available("task_extraction") and llm.available("respond")
    assert "offline after 2 failed call(s)" in (llm.offline_note("task_extraction") or "")
    now[0] = 61.0
    assert llm.available("task_extraction")  # half-open: one more failure closes it again
    with pytest.raises(Exception, match="no JSON"):
        await llm.structured("task_extraction", [HumanMessage("x")], ExtractedTask)
    assert not llm.available("task_extraction")
    now[0] = 200.0
    result = await llm.structured("task_extraction", [HumanMessage("x")], ExtractedTask)
    assert result.task == "what is 6*7" and llm.offline_note("task_extraction") is None


async def test_json_mode_puts_the_schema_in_the_prompt() -> None:
    class JsonModeFake(GenericFakeChatModel):
        seen: list[Any] = Field(default_factory=list)

        def with_structured_output(self, schema: Any, *, method: str = "", **kwargs: Any) -> Any:
            assert method == "json_mode"

            def run(messages: Any) -> dict[str, Any]:
                self.seen.append(messages)
                return {"raw": AIMessage(json.dumps(TASK)), "parsed": TASK, "parsing_error": None}

            return RunnableLambda(run)

    model = JsonModeFake(messages=iter([]))
    result, _ = await extract(provider_for(model, structured_output="json_mode"))
    assert result.task == "what is 6*7"
    assert "JSON schema" in model.seen[0][0].content


async def test_a_tool_call_cut_off_by_max_tokens_says_so() -> None:
    cut = AIMessage(
        content="",
        invalid_tool_calls=[{"name": "ExtractedTask", "args": '{"task": "what is', "id": "c", "error": None}],
        response_metadata={"finish_reason": "length"},
    )
    model = StrictServerFake(messages=itertools.cycle([cut]))
    with pytest.raises(ModelOutputError, match=r"unparsable arguments \(cut off by max_tokens\)"):
        await extract(provider_for(model, structured_output="function_calling"))
