"""The PostgreSQL checkpointer (the `postgres` extra), imported only when a URL is configured.

`graph.persistence.connect_postgres(url)` is the way in: it imports this module on first use, so a
process without `ROUTEGRAPH_POSTGRES_URL` never loads psycopg.

Every message built from a driver error goes through `url_redactor(url)`: libpq quotes pieces of a
malformed URL's password bare (`could not translate host name "ss@localhost"`), which no shape rule
can see; the redactor knows them by value.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from graph.errors import CheckpointerError
from graph.persistence.common import (
    URL_EXAMPLE,
    URL_VARIABLE,
    RedactingSerializer,
    ThreadedAsyncSaver,
    one_line,
    url_redactor,
)

# The pool logs every failed reconnection attempt; without logging configured, Python would print
# each one on stderr. The error that ends the wait is raised (and the CLI prints it on one line).
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


class PostgresCheckpointer(ThreadedAsyncSaver, PostgresSaver):
    """LangGraph's Postgres saver with async methods; `connect_postgres(url)` builds one."""

    url: str = ""
    """The database URL (`connect` sets it): graph/persistence/locks.py opens its own session on it
    to hold a thread's advisory lock for a turn."""

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """LangGraph's `put`, with string channels redacted too: PostgresSaver stores them inline
        in the checkpoint row, without the serializer."""
        serde = self.serde
        if isinstance(serde, RedactingSerializer) and serde.secrets:
            values = checkpoint["channel_values"]
            clean = {k: serde.redact_text(v) if isinstance(v, str) else v for k, v in values.items()}
            if any(clean[k] is not values[k] for k in values):
                checkpoint = {**checkpoint, "channel_values": clean}
        return super().put(config, checkpoint, metadata, new_versions)

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


def connect(
    url: str, *, timeout: float = 10.0, serde: RedactingSerializer | None = None
) -> PostgresCheckpointer:
    """A ready Postgres checkpointer on `url`: tables created, connections pooled.

    Raises:
        CheckpointerError: the extra is not installed, the URL is malformed, the server cannot be
            reached or refuses us, or the tables cannot be created. Its message never holds the
            password, nor any piece of it the driver quoted, and it is raised outside the driver's
            exception, so no `__context__` carries the driver's message either.
    """
    mask = url_redactor(url).redact
    where = mask(url)

    def refused(what: str, problem: str) -> CheckpointerError:
        return CheckpointerError(mask(f"{URL_VARIABLE}: {what} {where}: {problem}"))

    problem: str | None = None
    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        problem = one_line(exc)
    if problem is not None:
        raise CheckpointerError(
            mask(f"{URL_VARIABLE} is not a valid PostgreSQL URL ({problem}); expected {URL_EXAMPLE}")
        )
    options: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": 0,
        "row_factory": dict_row,
        "connect_timeout": max(1, round(timeout)),
    }
    conn: psycopg.Connection[DictRow] | None = None
    try:
        conn = psycopg.Connection.connect(url, **options)
    except psycopg.Error as exc:
        problem = one_line(exc)
    if conn is None:
        raise refused("cannot connect to PostgreSQL at", problem or "no connection")
    try:
        with conn:
            # One process creates or migrates the tables at a time; the others wait for it. They
            # poll rather than block in pg_advisory_lock: a statement waiting there is a transaction
            # that the holder's CREATE INDEX CONCURRENTLY would wait for in turn (a deadlock).
            while not conn.execute(
                "SELECT pg_try_advisory_lock(hashtext('routegraph checkpoint setup')) AS got"
            ).fetchone()["got"]:  # type: ignore[index]
                time.sleep(0.05)
            PostgresSaver(conn).setup()
            conn.execute("SELECT pg_advisory_unlock(hashtext('routegraph checkpoint setup'))")
    except psycopg.Error as exc:
        problem = one_line(exc)
    if problem is not None:
        raise refused("cannot create the checkpoint tables in", problem)
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
        problem = one_line(exc)
    if problem is not None:
        raise refused("cannot open a connection pool to", problem)
    saver = PostgresCheckpointer(pool, serde=serde)
    saver.url = url
    return saver
