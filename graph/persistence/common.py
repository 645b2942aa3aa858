"""What both checkpointers share: the URL variable, messages without passwords, async methods.

LangGraph's `SqliteSaver` and `PostgresSaver` are sync-only (their async twins are async-only); a
graph that is invoked both ways (CLI, notebooks, Studio) needs both, so `ThreadedAsyncSaver` runs the
sync methods in a worker thread. Each saver serialises access to its connection with its own lock.

Problems are reported as `CheckpointerError` (defined in graph/errors.py), a message for humans
naming `ROUTEGRAPH_POSTGRES_URL`, with any password masked by `redact`. sqlite.py and postgres.py
both import this module and not each other; graph/persistence/__init__.py picks one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

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
    return redact_text(url)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a driver's messages span several), for `CheckpointerError`."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
