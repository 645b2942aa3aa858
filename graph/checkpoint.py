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
import logging
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

URL_VARIABLE = "ROUTEGRAPH_POSTGRES_URL"
URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DBNAME"


class CheckpointerError(RuntimeError):
    """The configured checkpointer cannot be used (a malformed URL, an unreachable server)."""


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


try:  # the `postgres` extra: langgraph-checkpoint-postgres, psycopg[binary,pool]
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - exercised only without the extra
    POSTGRES_AVAILABLE = False
else:
    POSTGRES_AVAILABLE = True
    # The pool logs every failed reconnection attempt; without logging configured, Python would print
    # each one on stderr. The error that ends the wait is raised (and the CLI prints it on one line).
    logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

    class PostgresCheckpointer(ThreadedAsyncSaver, PostgresSaver):
        """LangGraph's Postgres saver with async methods; `connect_postgres(url)` builds one."""

        def latest_threads(self, limit: int) -> list[CheckpointTuple]:
            """The newest root checkpoint of the `limit` most recently updated threads, newest first."""
            with self._cursor() as cur:
                cur.execute(
                    "SELECT thread_id, max(checkpoint_id) AS checkpoint_id FROM checkpoints "
                    "WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY 2 DESC LIMIT %s",
                    (limit,),
                )
                rows = cur.fetchall()
            items = []
            for row in rows:
                config: RunnableConfig = {
                    "configurable": {
                        "thread_id": row["thread_id"],
                        "checkpoint_ns": "",
                        "checkpoint_id": row["checkpoint_id"],
                    }
                }
                if (item := self.get_tuple(config)) is not None:
                    items.append(item)
            return items

        def close(self) -> None:
            """Close the connection pool (the saver cannot be used afterwards)."""
            if isinstance(self.conn, ConnectionPool):
                self.conn.close()


def connect_postgres(url: str, *, timeout: float = 10.0) -> PostgresCheckpointer:
    """A ready Postgres checkpointer on `url`: tables created, connections pooled.

    Raises:
        CheckpointerError: the extra is not installed, the URL is malformed, the server cannot be
            reached or refuses us, or the tables cannot be created.
    """
    if not POSTGRES_AVAILABLE:
        raise CheckpointerError(
            f"{URL_VARIABLE} is set but the PostgreSQL checkpointer is not installed: "
            "pip install 'routegraph[postgres]'"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise CheckpointerError(
            f"{URL_VARIABLE} is not a valid PostgreSQL URL ({_reason(exc)}); expected {URL_EXAMPLE}"
        ) from None
    connect_timeout = max(1, round(timeout))
    options: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": 0,
        "row_factory": dict_row,
        "connect_timeout": connect_timeout,
    }
    where = redact(url)
    try:
        conn: psycopg.Connection[DictRow] = psycopg.Connection.connect(url, **options)
    except psycopg.Error as exc:
        raise CheckpointerError(
            f"{URL_VARIABLE}: cannot connect to PostgreSQL at {where}: {_reason(exc)}"
        ) from None
    try:
        with conn:
            # One process creates or migrates the tables at a time; the others wait for it.
            conn.execute("SELECT pg_advisory_lock(hashtext('routegraph checkpoint setup'))")
            PostgresSaver(conn).setup()
            conn.execute("SELECT pg_advisory_unlock(hashtext('routegraph checkpoint setup'))")
    except psycopg.Error as exc:
        raise CheckpointerError(
            f"{URL_VARIABLE}: cannot create the checkpoint tables in {where}: {_reason(exc)}"
        ) from None
    pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
        url,
        connection_class=psycopg.Connection[DictRow],
        kwargs=options,
        min_size=1,
        max_size=2,
        open=False,
        check=ConnectionPool.check_connection,
        name="routegraph-checkpoints",
        timeout=timeout,
        num_workers=1,
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except Exception as exc:
        pool.close()
        raise CheckpointerError(
            f"{URL_VARIABLE}: cannot open a connection pool to {where}: {_reason(exc)}"
        ) from None
    return PostgresCheckpointer(pool)
