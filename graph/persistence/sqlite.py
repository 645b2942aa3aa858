"""The SQLite checkpointer: one file, one machine; the default when no PostgreSQL URL is set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.errors import CheckpointerError
from graph.persistence.common import ThreadedAsyncSaver

# CheckpointerError is re-exported: graph.cli and docs/deployment.md import it from here.
__all__ = ["CheckpointerError", "SqliteCheckpointer", "connect"]


class SqliteCheckpointer(ThreadedAsyncSaver, SqliteSaver):
    """LangGraph's SQLite saver with async methods: one file, one machine."""

    path: Path | None = None
    """The database file (`connect` sets it): where graph/persistence/locks.py keeps thread locks."""


def connect(path: Path, *, serde: SerializerProtocol | None = None) -> SqliteCheckpointer:
    """A checkpointer on the SQLite file at `path`, its directory created if missing; `serde`:
    LangGraph's serializer by default (graph/persistence passes a `RedactingSerializer`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saver = SqliteCheckpointer(sqlite3.connect(path, check_same_thread=False), serde=serde)
    saver.path = path.resolve()
    return saver
