"""Runtime settings: where data lives and whether chat models are used. Read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from graph.config.schema import ModelsConfig

LLMSwitch = Literal["auto", "on", "off"]
"""`auto` follows registry.yaml's `models.enabled`; `on` / `off` force chat models on or off."""


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "routegraph"


class Settings(BaseModel):
    """Where routegraph keeps its files and how it reaches models."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    """Directory for the checkpoint database and caches (`ROUTEGRAPH_DATA_DIR`)."""
    checkpoint_path: Path | None = None
    """SQLite checkpoint file (`ROUTEGRAPH_CHECKPOINT`); defaults to `data_dir/checkpoints.sqlite`."""
    base_url: str | None = None
    """OpenAI-compatible endpoint for roles without their own (`ROUTEGRAPH_BASE_URL`, `OPENAI_BASE_URL`)."""
    cache_dir: Path | None = None
    """Embedding and fine-tune caches (`ROUTEGRAPH_CACHE_DIR`); defaults to `data_dir/cache`."""
    llm: LLMSwitch = "auto"
    """Force chat models on or off (`ROUTEGRAPH_LLM`)."""
    postgres_url: str | None = None
    """PostgreSQL URL for checkpoints (`ROUTEGRAPH_POSTGRES_URL`); when set, the default checkpointer uses it."""
    env: dict[str, str] = {}
    """The environment the settings were read from (API keys are looked up here)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {
            "data_dir": Path(env["ROUTEGRAPH_DATA_DIR"])
            if env.get("ROUTEGRAPH_DATA_DIR")
            else _default_data_dir(env),
            "checkpoint_path": Path(env["ROUTEGRAPH_CHECKPOINT"])
            if env.get("ROUTEGRAPH_CHECKPOINT")
            else None,
            "base_url": env.get("ROUTEGRAPH_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            "cache_dir": Path(env["ROUTEGRAPH_CACHE_DIR"]) if env.get("ROUTEGRAPH_CACHE_DIR") else None,
            "llm": env.get("ROUTEGRAPH_LLM", "auto") or "auto",
            "postgres_url": env.get("ROUTEGRAPH_POSTGRES_URL") or None,
            "env": env,
        }
        values.update(overrides)
        return cls.model_validate(values)

    @classmethod
    def offline(cls, data_dir: Path, **overrides: object) -> Settings:
        """Settings that never use a chat model, whatever the environment says (tests, benchmarks)."""
        cache = os.environ.get("ROUTEGRAPH_CACHE_DIR")
        values: dict[str, object] = {
            "data_dir": data_dir,
            "llm": "off",
            "cache_dir": Path(cache) if cache else None,
        }
        return cls.model_validate({**values, **overrides})

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def checkpoint_file(self) -> Path:
        return self.checkpoint_path or self.data_dir / "checkpoints.sqlite"

    def llm_enabled(self, models: ModelsConfig) -> bool:
        """Whether chat models are on: forced by `llm`, else registry `models.enabled`, else a key or URL."""
        if self.llm != "auto":
            return self.llm == "on"
        if models.enabled != "auto":
            return models.enabled == "always"
        return bool(self.env.get(models.default.api_key_env) or self.base_url or models.default.base_url)
