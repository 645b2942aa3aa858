"""Chat models per role, and the one door every model call goes through.

The door (`LLMGateway`) counts calls and tokens, enforces `max_llm_calls`, and treats every reply
as untrusted input: structured output is validated against a pydantic model, and anything that
does not validate becomes a RETRIABLE `ModelOutputError`.

Servers differ in what they support, so the door also adapts:
- a structured-output method the server clearly rejects (HTTP 4xx/5xx naming `response_format`,
  `json_schema` or tools, or NotImplementedError) is replaced by the next one in
  json_schema -> function_calling -> json_mode -> prompt, and remembered for the process;
- timeouts, refused connections and server errors become a RETRIABLE `ModelUnavailableError`;
- after `offline_after` consecutive failed calls of a role, `available(role)` turns False for
  `offline_seconds`, so the nodes take their offline path and note it (`offline_note`).

Every error that leaves the door, and every note about a failure, is redacted with the settings'
redactor (`Settings.redactor()`): a server whose 401 or 500 echoes the `Authorization` header
would otherwise put the API key into error records, notes, answers and checkpoints. Errors that are
not routegraph's become a `ModelCallError` (CRITICAL, as any unknown exception is) whose message is
the original's, redacted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from pydantic import BaseModel, SecretStr, ValidationError

from graph.config.schema import ROLES, ModelConfig, Role, StructuredOutputMethod
from graph.config.settings import KEY_SUFFIXES, Settings, is_key_variable
from graph.errors import (  # noqa: F401 (defined with every other error)
    BudgetExhausted,
    CriticalError,
    ModelCallError,
    ModelOutputError,
    ModelUnavailableError,
    RetriableError,
    RoutegraphError,
)

T = TypeVar("T", bound=BaseModel)


FALLBACK_METHOD: dict[str, StructuredOutputMethod] = {
    "json_schema": "function_calling",
    "function_calling": "json_mode",
    "json_mode": "prompt",
}
"""The method to try when a server rejects one; `prompt` works with any chat model."""

_REJECTION_HINTS: dict[str, tuple[str, ...]] = {
    "json_schema": ("response_format", "json_schema", "structured output", "structured_output"),
    "function_calling": ("tool", "function"),
    "json_mode": ("response_format", "json_object", "json mode"),
}
_REJECTION_STATUS = {400, 404, 405, 415, 422, 500, 501}


def uses_max_tokens(config: ModelConfig, base_url: str | None) -> bool:
    """Whether requests carry `max_tokens` (any OpenAI-compatible server) or `max_completion_tokens`."""
    if config.token_param != "auto":
        return config.token_param == "max_tokens"
    return bool(base_url) and "api.openai.com" not in (base_url or "")


@functools.cache
def _compat_chat_openai() -> Callable[..., BaseChatModel]:
    """ChatOpenAI that can send `max_tokens` as such.

    langchain-openai 1.x renames `max_tokens` to `max_completion_tokens` in every request (OpenAI
    deprecated the old name); llama.cpp's server and others only read `max_tokens` and would
    generate up to their own limit.
    """
    from langchain_openai import ChatOpenAI

    class CompatChatOpenAI(ChatOpenAI):
        send_max_tokens: bool = False
        """Send the token bound as `max_tokens` (Chat Completions only)."""

        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            if self.send_max_tokens and "messages" in payload and "max_completion_tokens" in payload:
                payload["max_tokens"] = payload.pop("max_completion_tokens")
            return payload

    return CompatChatOpenAI


def make_chat_model(config: ModelConfig, settings: Settings) -> BaseChatModel:
    """A LangChain chat model for one role's configuration."""
    if config.provider == "openai":
        base_url = config.base_url or settings.base_url
        if not is_key_variable(config.api_key_env):
            raise ValueError(
                f"api_key_env {config.api_key_env!r}: API keys are read from variables ending in "
                f"{' or '.join(KEY_SUFFIXES)} (Settings.from_env keeps no others)"
            )
        key = settings.api_key(config.api_key_env) or ("not-needed" if base_url else None)
        chat_model: BaseChatModel = _compat_chat_openai()(
            model=config.model,
            base_url=base_url,
            api_key=SecretStr(key) if key else None,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            timeout=config.timeout,
            max_retries=config.client_retries,
            send_max_tokens=uses_max_tokens(config, base_url),
        )
        return chat_model
    from langchain.chat_models import init_chat_model

    model: BaseChatModel = init_chat_model(
        config.model,
        model_provider=config.provider,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout,
    )
    return model


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def rejects_method(exc: BaseException, method: str) -> bool:
    """Whether `exc` says the server (or client) does not support this structured-output method."""
    if isinstance(exc, NotImplementedError):
        return True
    if _status(exc) not in _REJECTION_STATUS:
        return False
    text = f"{exc} {getattr(exc, 'body', '') or ''}".lower()
    return any(hint in text for hint in _REJECTION_HINTS.get(method, ()))


def is_unavailable(exc: BaseException) -> bool:
    """Transport and server failures worth retrying: timeouts, refused connections, 429, 5xx."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai is a dependency
        openai = None  # type: ignore[assignment]
    from langchain_core import exceptions as lc

    kinds: tuple[type[BaseException], ...] = (
        TimeoutError,
        ConnectionError,
        lc.ModelTimeoutError,
        lc.ModelConnectionError,
        lc.ModelRateLimitError,
        lc.ModelAPIError,
    )
    if openai is not None:
        kinds += (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)
    if isinstance(exc, kinds):
        return True
    status = _status(exc)
    return status is not None and (status >= 500 or status in {408, 409, 429})


@dataclass
class _Health:
    """Consecutive failures of one role, and since when it is offline (monotonic seconds)."""

    failures: int = 0
    offline_since: float | None = None
    last_error: str = ""


class ModelProvider:
    """Resolves the chat model of each role, lazily; explicit models (tests) take precedence.

    It also remembers, for the life of the graph, what it learned about each role's model: a
    structured-output method the server rejected, and the role's health (see `LLMGateway`).
    """

    def __init__(
        self,
        configs: Mapping[Role, ModelConfig],
        settings: Settings,
        *,
        enabled: bool,
        overrides: Mapping[str, BaseChatModel] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configs = dict(configs)
        self._settings = settings
        self._overrides = dict(overrides or {})
        self._cache: dict[str, BaseChatModel] = {}
        self._rejected: dict[Hashable, set[StructuredOutputMethod]] = {}
        self._health: dict[Role, _Health] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.enabled = enabled
        """Whether roles without an explicit model get one from their configuration."""
        self.redact = settings.redactor().redact
        """Masks secrets (the configured keys by value, every key shape) in errors and notes."""
        self.notes: list[str] = []
        """What was learned about the models (rejected methods), in order."""

    def config(self, role: Role) -> ModelConfig:
        return self._configs.get(role) or ModelConfig()

    def get(self, role: Role) -> BaseChatModel | None:
        if self.offline(role):
            return None
        return self.model(role)

    def model(self, role: Role) -> BaseChatModel | None:
        """The role's chat model, whatever its health."""
        if role in self._overrides:
            return self._overrides[role]
        if "default" in self._overrides:
            return self._overrides["default"]
        if not self.enabled:
            return None
        if role not in self._cache:
            self._cache[role] = make_chat_model(self._configs[role], self._settings)
        return self._cache[role]

    def _endpoint(self, role: Role) -> Hashable:
        """What a rejected method is a fact about: the configured endpoint and model (or the
        explicit model object), so one rejection serves every role that shares them."""
        if role in self._overrides or "default" in self._overrides:
            return id(self.model(role))
        config = self.config(role)
        return (config.provider, config.model, config.base_url or self._settings.base_url)

    def method(self, role: Role, model: BaseChatModel) -> StructuredOutputMethod:
        configured = self._configs[role].structured_output if role in self._configs else "auto"
        if configured == "auto":
            supports_tools = type(model).bind_tools is not BaseChatModel.bind_tools
            configured = "function_calling" if supports_tools else "prompt"
        rejected = self._rejected.get(self._endpoint(role), set())
        while configured in rejected and configured in FALLBACK_METHOD:
            configured = FALLBACK_METHOD[configured]
        return configured

    def reject_method(self, role: Role, method: StructuredOutputMethod, exc: BaseException) -> bool:
        """Remember that the role's endpoint rejects `method`; False when there is nothing to fall
        back to (or fallback is off), and the error stands."""
        if not self.config(role).structured_output_fallback or method not in FALLBACK_METHOD:
            return False
        with self._lock:
            self._rejected.setdefault(self._endpoint(role), set()).add(method)
            self.notes.append(
                f"{role}: the server rejected structured output via {method}; using {FALLBACK_METHOD[method]}"
            )
        return True

    # Health: consecutive failures, and the offline period that follows too many of them.

    def offline(self, role: Role) -> bool:
        """Whether the role's offline path is in force (too many failed calls, not long ago)."""
        with self._lock:
            health = self._health.get(role)
            if health is None or health.offline_since is None:
                return False
            if self._clock() - health.offline_since < self.config(role).offline_seconds:
                return True
            # Half-open: the next call tries the model again; one more failure closes it again.
            health.offline_since = None
            health.failures = self.config(role).offline_after - 1
            return False

    def record_failure(self, role: Role, exc: BaseException) -> bool:
        """Count a failed call; True when it turned the role offline."""
        with self._lock:
            health = self._health.setdefault(role, _Health())
            health.failures += 1
            health.last_error = self.redact(str(exc))[:300]
            if health.offline_since is None and health.failures >= self.config(role).offline_after:
                health.offline_since = self._clock()
                return True
            return False

    def record_success(self, role: Role) -> None:
        with self._lock:
            self._health.pop(role, None)

    def offline_note(self, role: Role) -> str | None:
        """Why the role is offline, for the turn's notes; None when it is not."""
        if not self.offline(role):
            return None
        health = self._health[role]
        return self.redact(
            f"{fallback_prefix(role)} offline after {health.failures} failed call(s) in a row "
            f"(last: {health.last_error}); its offline path was used"
        )

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
        """Whether the role has a model and is not in its offline period."""
        return self.provider.get(role) is not None

    def fallback_note(self, role: Role, exc: BaseException, *, last_attempt: bool) -> str | None:
        """After a failed call: the note to record when the node should take its offline path now
        (the role went offline, or this was the node's last attempt); None to raise and be retried.
        """
        if not isinstance(exc, ModelOutputError | ModelUnavailableError):
            return None
        if note := self.provider.offline_note(role):
            return note
        if last_attempt:
            return self.provider.redact(
                f"{fallback_prefix(role)} {exc} (last attempt); its offline path was used"
            )
        return None

    def offline_note(self, role: Role) -> str | None:
        """The note for a role whose model is configured but offline; None otherwise."""
        return self.provider.offline_note(role) if self.provider.model(role) is not None else None

    def _model(self, role: Role) -> BaseChatModel:
        model = self.provider.model(role)
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

    def _failed(self, role: Role, exc: BaseException) -> BaseException:
        """Record a failed call; transport failures become a RETRIABLE ModelUnavailableError,
        other foreign errors a CRITICAL ModelCallError; every message is redacted."""
        redact = self.provider.redact
        if isinstance(exc, ModelOutputError):
            text = str(exc)
            error: BaseException = exc if redact(text) == text else ModelOutputError(redact(text))
            self.provider.record_failure(role, error)
            return error
        if is_unavailable(exc):
            error = ModelUnavailableError(redact(f"{role}: {type(exc).__name__}: {exc}"))
            self.provider.record_failure(role, error)
            return error
        if isinstance(exc, RoutegraphError):  # ours (a budget, a policy): messages we wrote
            return exc
        return ModelCallError(redact(f"{role}: {type(exc).__name__}: {exc}"))

    async def text(self, role: Role, messages: Sequence[BaseMessage]) -> str:
        model = self._model(role)
        try:
            reply = await self._invoke(model, messages)
            self._count(reply)
            content = reply.content if isinstance(reply, AIMessage) else reply
            if isinstance(content, list):
                content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
            if not isinstance(content, str) or not content.strip():
                raise ModelOutputError(f"{role}: the model returned an empty answer")
        except Exception as exc:
            raise self._failed(role, exc) from exc
        self.provider.record_success(role)
        return content.strip()

    async def structured(self, role: Role, messages: Sequence[BaseMessage], schema: type[T]) -> T:
        model = self._model(role)
        while True:
            method = self.provider.method(role, model)
            try:
                result = await self._structured(role, model, method, messages, schema)
            except Exception as exc:
                if rejects_method(exc, method) and self.provider.reject_method(role, method, exc):
                    model = self._model(role)  # the budget is checked again for the next try
                    continue
                raise self._failed(role, exc) from exc
            self.provider.record_success(role)
            return result

    async def _structured(
        self,
        role: Role,
        model: BaseChatModel,
        method: StructuredOutputMethod,
        messages: Sequence[BaseMessage],
        schema: type[T],
    ) -> T:
        if method == "prompt":
            reply = await self._invoke(model, with_json_instruction(messages, schema))
            self._count(reply)
            return parse_json_reply(reply.content, schema, role)
        if method == "json_mode":  # JSON mode constrains the syntax only: the schema goes in the prompt
            messages = with_json_instruction(messages, schema)
        # The server gets the schema without size bounds (grammar-constrained servers unroll them
        # into rules: llama.cpp dies on a 2000-character bound); the answer is validated against
        # the full model here.
        runnable = model.with_structured_output(wire_schema(schema), method=method, include_raw=True)
        out = await self._invoke(runnable, messages)
        self._count(out.get("raw"))
        parsed = out.get("parsed")
        if out.get("parsing_error") or parsed is None:
            raw = out.get("raw")
            if method == "json_mode" and raw is not None and not out.get("parsing_error"):
                return parse_json_reply(raw.content, schema, role)
            raise ModelOutputError(f"{role}: structured output did not validate: {_why_unparsed(out)}")
        if isinstance(parsed, dict):  # json_mode returns a dict
            return _validate(parsed, schema, role)
        return parsed


SIZE_BOUNDS = frozenset({"maxLength", "maxItems", "maxProperties"})


def wire_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the server: the model's, without upper size bounds."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in SIZE_BOUNDS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    wire: dict[str, Any] = strip(schema.model_json_schema())
    wire.setdefault("title", schema.__name__)
    wire.setdefault("description", (schema.__doc__ or schema.__name__).strip())
    return wire


def _why_unparsed(out: Mapping[str, Any]) -> str:
    """What went wrong with a structured answer, for the error message."""
    if out.get("parsing_error") is not None:
        return str(out["parsing_error"])
    raw = out.get("raw")
    finish = (getattr(raw, "response_metadata", None) or {}).get("finish_reason")
    invalid = getattr(raw, "invalid_tool_calls", None)
    why = "a tool call with unparsable arguments" if invalid else "no tool call or JSON in the answer"
    if finish == "length":
        why += " (cut off by max_tokens)"
    return why


def fallback_prefix(role: Role) -> str:
    """How notes about a role's fallback to its offline path begin."""
    return f"model fallback ({role}):"


def add_notes(state_notes: Sequence[str] | None, *notes: str | None) -> list[str]:
    """The turn's notes with new ones appended; a role's fallback is noted once."""
    out = list(state_notes or [])
    for note in notes:
        if not note:
            continue
        head = note.split(":", 1)[0]
        if note.startswith("model fallback") and any(n.split(":", 1)[0] == head for n in out):
            continue
        out.append(note)
    return out


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
