"""Chat models per role, and the one door every model call goes through.

The door (`LLMGateway`) counts calls and tokens, enforces `max_llm_calls`, and treats every reply
as untrusted input: structured output is validated against a pydantic model, and anything that
does not validate becomes a RETRIABLE `ModelOutputError`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from pydantic import BaseModel, SecretStr, ValidationError

from capabilities.schema import ROLES, ModelConfig, Role, StructuredOutputMethod
from graph.errors import BudgetExhausted, ModelOutputError
from graph.settings import Settings

T = TypeVar("T", bound=BaseModel)


def make_chat_model(config: ModelConfig, settings: Settings) -> BaseChatModel:
    """A LangChain chat model for one role's configuration."""
    if config.provider == "openai":
        from langchain_openai import ChatOpenAI

        base_url = config.base_url or settings.base_url
        key = settings.env.get(config.api_key_env) or ("not-needed" if base_url else None)
        return ChatOpenAI(
            model=config.model,
            base_url=base_url,
            api_key=SecretStr(key) if key else None,
            temperature=config.temperature,
            max_tokens=config.max_tokens,  # type: ignore[call-arg]
            timeout=config.timeout,
            max_retries=1,
        )
    from langchain.chat_models import init_chat_model

    model: BaseChatModel = init_chat_model(
        config.model,
        model_provider=config.provider,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout,
    )
    return model


class ModelProvider:
    """Resolves the chat model of each role, lazily; explicit models (tests) take precedence."""

    def __init__(
        self,
        configs: Mapping[Role, ModelConfig],
        settings: Settings,
        *,
        enabled: bool,
        overrides: Mapping[str, BaseChatModel] | None = None,
    ) -> None:
        self._configs = dict(configs)
        self._settings = settings
        self._overrides = dict(overrides or {})
        self._cache: dict[str, BaseChatModel] = {}
        self.enabled = enabled
        """Whether roles without an explicit model get one from their configuration."""

    def get(self, role: Role) -> BaseChatModel | None:
        if role in self._overrides:
            return self._overrides[role]
        if "default" in self._overrides:
            return self._overrides["default"]
        if not self.enabled:
            return None
        if role not in self._cache:
            self._cache[role] = make_chat_model(self._configs[role], self._settings)
        return self._cache[role]

    def method(self, role: Role, model: BaseChatModel) -> StructuredOutputMethod:
        configured = self._configs[role].structured_output if role in self._configs else "auto"
        if configured != "auto":
            return configured
        supports_tools = type(model).bind_tools is not BaseChatModel.bind_tools
        return "function_calling" if supports_tools else "prompt"

    @staticmethod
    def roles() -> tuple[Role, ...]:
        return ROLES


class LLMGateway:
    """Model calls for one node execution: counted, budgeted, validated."""

    def __init__(self, provider: ModelProvider, *, used: int, budget: int) -> None:
        self.provider = provider
        self.used_before = used
        self.budget = budget
        self.calls = 0
        self.tokens = 0

    def available(self, role: Role) -> bool:
        return self.provider.get(role) is not None

    def _model(self, role: Role) -> BaseChatModel:
        model = self.provider.get(role)
        if model is None:
            raise RuntimeError(f"no chat model configured for role {role!r}")
        if self.used_before + self.calls >= self.budget:
            raise BudgetExhausted(f"{role}: the turn's {self.budget} model calls are spent")
        return model

    async def _invoke(self, runnable: Any, messages: Sequence[BaseMessage]) -> Any:
        self.calls += 1
        # The sync client in a worker thread: no event loop is blocked, and no async HTTP
        # client is shared between the event loops of sync and async invocations.
        return await asyncio.to_thread(runnable.invoke, list(messages))

    def _count(self, message: Any) -> None:
        usage = getattr(message, "usage_metadata", None)
        if usage:
            self.tokens += int(usage.get("total_tokens", 0))

    async def text(self, role: Role, messages: Sequence[BaseMessage]) -> str:
        reply = await self._invoke(self._model(role), messages)
        self._count(reply)
        content = reply.content if isinstance(reply, AIMessage) else reply
        if isinstance(content, list):
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        if not isinstance(content, str) or not content.strip():
            raise ModelOutputError(f"{role}: the model returned an empty answer")
        return content.strip()

    async def structured(self, role: Role, messages: Sequence[BaseMessage], schema: type[T]) -> T:
        model = self._model(role)
        method = self.provider.method(role, model)
        if method == "prompt":
            reply = await self._invoke(model, with_json_instruction(messages, schema))
            self._count(reply)
            return parse_json_reply(reply.content, schema, role)
        runnable = model.with_structured_output(schema, method=method, include_raw=True)
        out = await self._invoke(runnable, messages)
        self._count(out.get("raw"))
        parsed = out.get("parsed")
        if out.get("parsing_error") or parsed is None:
            raise ModelOutputError(f"{role}: structured output did not validate: {out.get('parsing_error')}")
        if isinstance(parsed, dict):  # json_mode returns a dict
            return _validate(parsed, schema, role)
        return parsed


def with_json_instruction(messages: Sequence[BaseMessage], schema: type[BaseModel]) -> list[BaseMessage]:
    """The messages with the JSON instruction added to the leading system message (or as one)."""
    instruction = json_instruction(schema)
    if messages and isinstance(messages[0], SystemMessage):
        return [SystemMessage(content=f"{messages[0].text}\n\n{instruction}"), *messages[1:]]
    return [SystemMessage(content=instruction), *messages]


def json_instruction(schema: type[BaseModel]) -> str:
    return (
        "Reply with one JSON object and nothing else. It must validate against this JSON schema:\n"
        + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )


def parse_json_reply(content: Any, schema: type[T], role: str) -> T:
    """Find the JSON object in a reply (bare, fenced or surrounded by prose) and validate it."""
    text = content if isinstance(content, str) else json.dumps(content)
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1)
    start = text.find("{")
    if start < 0:
        raise ModelOutputError(f"{role}: no JSON object in the model's reply: {text[:120]!r}")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ModelOutputError(f"{role}: malformed JSON from the model: {exc.msg}") from exc
    return _validate(data, schema, role)


def _validate(data: Any, schema: type[T], role: str) -> T:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ModelOutputError(
            f"{role}: the model's output violates the schema at {where}: {first['msg']}"
        ) from exc
