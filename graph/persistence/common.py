"""What both checkpointers share: the URL variable, messages without passwords, async methods, and
a serializer that keeps the configured secrets out of checkpoints.

LangGraph's `SqliteSaver` and `PostgresSaver` are sync-only (their async twins are async-only); a
graph that is invoked both ways (CLI, notebooks, Studio) needs both, so `ThreadedAsyncSaver` runs the
sync methods in a worker thread. Each saver serialises access to its connection with its own lock.

Problems are reported as `CheckpointerError` (defined in graph/errors.py), a message for humans
naming `ROUTEGRAPH_POSTGRES_URL`, with any password masked by `url_redactor(url)`: libpq quotes
fragments of a malformed URL's password with nothing around them to recognise (`invalid
percent-encoded token: "s%zzecret"`), so every message built from a driver error goes through a
`Redactor` that knows the URL's secrets by value. sqlite.py and postgres.py both import this module
and not each other; graph/persistence/__init__.py picks one.

`RedactingSerializer` is LangGraph's serializer with one more duty: nothing it writes contains a
known secret (the settings' API keys and URL passwords, `Settings.redactor()`), so a capability or
a model error that copies a key into the state does not persist it. Its cost is one substring test
per secret on each serialized value; only a value that holds a secret is decoded and rewritten.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graph.redact import MASK, Redactor, url_secrets
from graph.redact import redact as redact_text

URL_VARIABLE = "ROUTEGRAPH_POSTGRES_URL"
URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DBNAME"


class ThreadedAsyncSaver(BaseCheckpointSaver[str]):
    """The async checkpointer methods, each running its sync twin in a worker thread."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )


def redact(url: str) -> str:
    """The URL with its password masked, for messages and logs (graph/redact.py, malformed URLs too)."""
    return url_redactor(url).redact(url) if url else redact_text(url)


@functools.lru_cache(maxsize=16)
def url_redactor(url: str) -> Redactor:
    """Masks every secret shape and, by value, what `url` can leak (its password and the fragments
    a driver quotes from a malformed one): for every message built from a driver error."""
    return Redactor(url_secrets(url))


_MSGPACK_OPTIONS = ormsgpack.OPT_NON_STR_KEYS


GLUED_MIN = 12
"""Known secrets at least this long are masked even inside a longer word (`xsk-abc...y`); shorter
ones only where they stand alone, as `Redactor` does: a database password "postgres" must not
turn every "postgresql" into "***ql"."""


class RedactingSerializer(JsonPlusSerializer):
    """LangGraph's `JsonPlusSerializer` that never writes a known secret.

    A subclass rather than a wrapper, so LangGraph's msgpack allowlist (`LANGGRAPH_STRICT_MSGPACK`)
    still applies to it. `dumps_typed` serializes as usual and looks for each secret's bytes in the
    result (a substring test: cheap, and it misses nothing). A hit (rare) is decoded, every string
    holding a secret is redacted (`Redactor`, context kept: `key=***`; a long secret glued to
    other letters too), and the value re-encoded. If decoding fails, the secrets' bytes are
    overwritten with `*` in place (same length, so the encoding stays valid). Reading is
    LangGraph's, unchanged.
    """

    def __init__(self, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redactor = redactor
        self.secrets: tuple[str, ...] = tuple(sorted(redactor.secrets, key=len, reverse=True))
        self._long = tuple(s for s in self.secrets if len(s) >= GLUED_MIN)
        self._needles = tuple(s.encode("utf-8", "replace") for s in self.secrets)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = super().dumps_typed(obj)
        if self._needles and self._holds_secret(data):
            data = self._scrub(kind, data)
        return kind, data

    def redact_text(self, text: str) -> str:
        """`text` itself when it holds no known secret, else redacted (also for values a saver
        stores outside the serializer: PostgreSQL keeps string channels inline)."""
        if not any(secret in text for secret in self.secrets):
            return text
        text = self.redactor.redact(text)
        for secret in self._long:
            text = text.replace(secret, MASK)
        return text

    def _holds_secret(self, data: bytes | bytearray) -> bool:
        return any(needle in data for needle in self._needles)

    def _scrub(self, kind: str, data: bytes) -> bytes:
        if kind == "msgpack":
            try:
                return self._scrub_msgpack(data)
            except Exception:  # never leak, never fail a write: overwrite in place below
                pass
        data = bytes(data)  # raw bytes (or undecodable msgpack): no strings to redact one by one
        for needle in self._needles:
            data = data.replace(needle, b"*" * len(needle))
        return data

    def _scrub_msgpack(self, data: bytes) -> bytes:
        value = ormsgpack.unpackb(data, ext_hook=self._scrub_ext, option=_MSGPACK_OPTIONS)
        return ormsgpack.packb(self._walk(value), option=_MSGPACK_OPTIONS)

    def _scrub_ext(self, code: int, payload: bytes) -> ormsgpack.Ext:
        # An extension (a message, a Send, a dataclass) holds its own msgpack document.
        if self._holds_secret(payload):
            payload = self._scrub_msgpack(payload)
        return ormsgpack.Ext(code, payload)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, bytes):
            for needle in self._needles:
                value = value.replace(needle, MASK.encode())
            return value
        return value


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a driver's messages span several), for `CheckpointerError`."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
