"""Checkpointers: which one a graph gets (`resolve_checkpointer`), and the way in to each.

SQLite (sqlite.py) is embedded: one file, one machine. PostgreSQL (postgres.py, the `postgres`
extra) is shared by every process and machine that uses the database; `connect_postgres` imports it
on first use, so a process without `ROUTEGRAPH_POSTGRES_URL` never loads psycopg. Both build on
common.py and neither imports the other: this module is the one place that chooses.

Concurrent turns on one thread are serialised by locks.py (`thread_lock`, `serialise_threads`),
next to the checkpoints they protect.

Every saver made here writes through `RedactingSerializer` (common.py) with the settings' redactor:
no configured secret (API key, database password) reaches a checkpoint. A saver passed in is used as
given, with its own serializer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from graph.errors import CheckpointerError
from graph.persistence import sqlite
from graph.persistence.common import URL_EXAMPLE, URL_VARIABLE, RedactingSerializer
from graph.persistence.locks import (
    DEFAULT_TURN_WAIT,
    athread_lock,
    check_thread_id,
    serialise_threads,
    thread_lock,
)

__all__ = [
    "DEFAULT_TURN_WAIT",
    "CheckpointerOption",
    "RedactingSerializer",
    "athread_lock",
    "check_thread_id",
    "connect_postgres",
    "resolve_checkpointer",
    "serialise_threads",
    "thread_lock",
]

if TYPE_CHECKING:
    from graph.config.settings import Settings

CheckpointerOption = BaseCheckpointSaver | Literal["auto", "sqlite", "postgres", "memory", "none"]
"""`auto` (the default): `postgres` when `ROUTEGRAPH_POSTGRES_URL` is set, else `sqlite`;
`sqlite`: a file in the data directory; `postgres`: the database at `settings.postgres_url`, shared
by every process and machine that uses it; `memory`: in-process (tests); `none`: no checkpointer,
for hosts that bring their own (the LangGraph server)."""


def resolve_checkpointer(option: CheckpointerOption, settings: Settings) -> BaseCheckpointSaver | None:
    """The checkpointer `option` names (a saver is used as given); None for `none`.

    Raises:
        CheckpointerError: `postgres` without a URL, an unusable URL or server, or an unknown option.
    """
    if isinstance(option, BaseCheckpointSaver):
        return option
    serde = RedactingSerializer(settings.redactor())
    if option == "memory":
        return InMemorySaver(serde=serde)
    if option == "none":
        return None
    if option == "auto":
        option = "postgres" if settings.postgres_url else "sqlite"
    if option == "postgres":
        if not settings.postgres_url:
            raise CheckpointerError(
                f'checkpointer="postgres" needs a PostgreSQL URL: set {URL_VARIABLE} (e.g. {URL_EXAMPLE})'
            )
        return connect_postgres(settings.postgres_url, serde=serde)
    if option != "sqlite":
        raise CheckpointerError(
            f"unknown checkpointer {option!r}: auto, sqlite, postgres, memory, none or a saver"
        )
    return sqlite.connect(Path(settings.checkpoint_file), serde=serde)


def connect_postgres(
    url: str, *, timeout: float = 10.0, serde: RedactingSerializer | None = None
) -> BaseCheckpointSaver[str]:
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
            "pip install 'routegraph[postgres]' (in a checkout: ROUTEGRAPH_EXTRAS=postgres ./scripts/setup)"
        ) from None
    return connect(url, timeout=timeout, serde=serde)
