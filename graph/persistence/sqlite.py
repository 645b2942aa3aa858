"""Checkpointers usable from sync and async code alike: SQLite (embedded) and PostgreSQL (shared).

LangGraph's `SqliteSaver` and `PostgresSaver` are sync-only (their async twins are async-only); a
graph that is invoked both ways (CLI, notebooks, Studio) needs both, so the async methods run the
sync ones in a worker thread. Each saver serialises access to its connection with its own lock.

`connect_postgres(url)` checks the URL, connects, creates the tables once (under an advisory lock, so
processes starting together do not race) and returns a saver on a small connection pool that
reconnects after a server restart. Problems are reported as `CheckpointerError`, a message for
humans naming `ROUTEGRAPH_POSTGRES_URL`, with any password masked.
"""

from __future__ import annotations

import asyncio
import re
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
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.errors import CheckpointerError

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


class SqliteCheckpointer(ThreadedAsyncSaver, SqliteSaver):
    """LangGraph's SQLite saver with async methods: one file, one machine."""


def redact(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    url = re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", url)


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def connect_postgres(url: str, *, timeout: float = 10.0) -> BaseCheckpointSaver[str]:
    """A ready Postgres checkpointer on `url` (graph/persistence/postgres.py): tables created, connections pooled.

    Raises:
        CheckpointerError: the extra is not installed, the URL is malformed, the server cannot be
            reached or refuses us, or the tables cannot be created.
    """
    try:
        from graph.persistence.postgres import connect
    except ImportError:
        raise CheckpointerError(
            f"{URL_VARIABLE} is set but the PostgreSQL checkpointer is not installed: "
            "pip install 'routegraph[postgres]'"
        ) from None
    return connect(url, timeout=timeout)
