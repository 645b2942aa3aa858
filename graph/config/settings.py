"""Runtime settings: where data lives, which registry, whether and how chat models are reached.

`Settings.from_env()` is the one reader of the environment, called by the entry points (the CLI,
graph/app.py for the LangGraph server); everything else is given a `Settings` and never looks at
`os.environ`, so two graphs with different settings live in one process and tests need no
environment patching. Secrets (API keys, a database password) never appear in a repr or a dump, and
`Settings.redactor()` masks them (and every secret shape, graph/redact.py) wherever they would be
shown or stored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from graph.config.schema import ModelsConfig
from graph.redact import Redactor, url_secrets

LLMSwitch = Literal["auto", "on", "off"]
"""`auto` follows registry.yaml's `models.enabled`; `on` / `off` force chat models on or off."""

KEY_SUFFIXES = ("_KEY", "_TOKEN")
"""Environment variables kept as API keys: a registry's `api_key_env` must end in one of these."""


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "routegraph"


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def is_key_variable(name: str) -> bool:
    """Whether `Settings.from_env` keeps this variable as an API key."""
    return name.endswith(KEY_SUFFIXES)


def redact_url(url: str) -> str:
    """The URL (or libpq `key=value` string) with its password masked, malformed URLs too."""
    return _redactor(frozenset(url_secrets(url))).redact(url)


NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off", "empty", "not-needed"})
"""Values of `_KEY` / `_TOKEN` variables that are flags or placeholders, not keys: masking every
"true" or "EMPTY" (vLLM's usual dummy key) in answers would hide words, not secrets."""


@functools.lru_cache(maxsize=32)
def _redactor(secrets: frozenset[str]) -> Redactor:
    """One `Redactor` per set of secrets: building one compiles a regex; settings are rebuilt often."""
    return Redactor(secrets)


def _secret_values(keys: Iterable[str], urls: Iterable[str | None]) -> frozenset[str]:
    found = {key for key in keys if key.strip().lower() not in NOT_SECRETS}
    for url in urls:
        if url:
            found.update(url_secrets(url))
    return frozenset(found)


class Settings(BaseModel):
    """Where routegraph keeps its files, which registry it serves and how it reaches models.

    API keys: `from_env` keeps every variable whose name ends in `_KEY` or `_TOKEN` (e.g.
    `OPENAI_API_KEY`, `VLLM_API_KEY`) in `api_keys`, where a registry's `api_key_env` finds it; no
    other variable is kept. Built by hand, pass them: `Settings(data_dir=..., api_keys={...})`.
    """

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    """Directory for the checkpoint database, capability data and caches (`ROUTEGRAPH_DATA_DIR`)."""
    registry: Path | None = None
    """registry.yaml to use (`ROUTEGRAPH_REGISTRY`); None: the shipped one (`default_registry()`)."""
    checkpoint_path: Path | None = None
    """SQLite checkpoint file (`ROUTEGRAPH_CHECKPOINT`); defaults to `data_dir/checkpoints.sqlite`."""
    base_url: str | None = None
    """OpenAI-compatible endpoint for roles without their own (`ROUTEGRAPH_BASE_URL`, `OPENAI_BASE_URL`)."""
    cache_dir: Path | None = None
    """Embedding and fine-tune caches (`ROUTEGRAPH_CACHE_DIR`); defaults to `data_dir/cache`."""
    llm: LLMSwitch = "auto"
    """Force chat models on or off (`ROUTEGRAPH_LLM`)."""
    faults: str = ""
    """A fault plan for testing recovery (`ROUTEGRAPH_FAULTS`, e.g. `classifier:raise_retriable`;
    see graph/faults.py); empty: no faults."""
    finetune: Literal["auto", "background", "foreground", "off"] = "auto"
    """Without a cached fine-tune for the guides (`ROUTEGRAPH_FINETUNE`): `background` answers with
    the base encoder and fine-tunes in a detached process for the next run; `foreground` fine-tunes
    before the first answer; `off` never fine-tunes. `auto`: background for `routegraph ask` and
    the server (`for_serving`), foreground for everything else (prepare, eval, tune, Python)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    """Level of routegraph's own log lines (`ROUTEGRAPH_LOG_LEVEL`, `--log-level`): DEBUG, INFO, WARNING, ..."""
    log_format: Literal["text", "json"] = "text"
    """Log lines as text or one JSON object each (`ROUTEGRAPH_LOG_FORMAT`), with run, thread and node."""
    otel_endpoint: str | None = None
    """OTLP/HTTP endpoint for a span per node (`OTEL_EXPORTER_OTLP_ENDPOINT`; the `otel` extra)."""
    postgres_url: str | None = Field(default=None, repr=False)
    """PostgreSQL URL for checkpoints (`ROUTEGRAPH_POSTGRES_URL`); when set, the default checkpointer
    uses it. Dumped with its password masked; not in the repr."""
    api_keys: dict[str, SecretStr] = Field(default_factory=dict, repr=False, exclude=True)
    """API keys by variable name (see the class docstring); never in a repr or a dump."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `env` (default: `os.environ`, read here and nowhere else); `overrides` win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "data_dir": _path(env.get("ROUTEGRAPH_DATA_DIR")) or _default_data_dir(env),
            "registry": _path(env.get("ROUTEGRAPH_REGISTRY")),
            "checkpoint_path": _path(env.get("ROUTEGRAPH_CHECKPOINT")),
            "base_url": env.get("ROUTEGRAPH_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            "cache_dir": _path(env.get("ROUTEGRAPH_CACHE_DIR")),
            "llm": env.get("ROUTEGRAPH_LLM", "auto") or "auto",
            "postgres_url": env.get("ROUTEGRAPH_POSTGRES_URL") or None,
            "faults": env.get("ROUTEGRAPH_FAULTS", ""),
            "finetune": (env.get("ROUTEGRAPH_FINETUNE") or "auto").lower(),
            "log_level": (env.get("ROUTEGRAPH_LOG_LEVEL") or "WARNING").upper(),
            "log_format": (env.get("ROUTEGRAPH_LOG_FORMAT") or "text").lower(),
            "otel_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            "api_keys": {name: value for name, value in env.items() if value and is_key_variable(name)},
        }
        values.update(overrides)
        return cls.model_validate(values)

    @classmethod
    def offline(cls, data_dir: Path, **overrides: object) -> Settings:
        """Settings that never use a chat model and read no environment (tests, benchmarks)."""
        return cls.model_validate({"data_dir": data_dir, "llm": "off", **overrides})

    @field_serializer("postgres_url")
    def _masked_url(self, url: str | None) -> str | None:
        return redact_url(url) if url else url

    def redactor(self) -> Redactor:
        """The redaction layer for these settings: every secret shape, plus the exact values this
        process was given (every API key, the passwords in `postgres_url` and `base_url`, with
        the fragments a driver echoes), which have no shape to recognise them by."""
        keys = (secret.get_secret_value() for secret in self.api_keys.values())
        return _redactor(_secret_values(keys, (self.postgres_url, self.base_url)))

    def for_serving(self) -> Settings:
        """These settings where a person or a client waits for the answer (`routegraph ask`, the
        server): an `auto` fine-tune runs in the background."""
        return self.model_copy(update={"finetune": "background"}) if self.finetune == "auto" else self

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def checkpoint_file(self) -> Path:
        return self.checkpoint_path or self.data_dir / "checkpoints.sqlite"

    def api_key(self, variable: str) -> str | None:
        """The key a registry names by its variable (`api_key_env`); None when it was not set."""
        secret = self.api_keys.get(variable)
        return secret.get_secret_value() if secret is not None else None

    def llm_enabled(self, models: ModelsConfig) -> bool:
        """Whether chat models are on: forced by `llm`, else registry `models.enabled`, else a key or URL."""
        if self.llm != "auto":
            return self.llm == "on"
        if models.enabled != "auto":
            return models.enabled == "always"
        return bool(self.api_key(models.default.api_key_env) or self.base_url or models.default.base_url)
