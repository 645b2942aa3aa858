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
    LangGraph's serializer by default (graph/persistence passes a `RedactingSerializer`).

    Raises:
        CheckpointerError: the directory cannot be made, or the file cannot be opened or is not a
            SQLite database (checked here, not at the first turn's first write).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only file system
        raise CheckpointerError(
            f"cannot make the directory {path.parent} for the checkpoint database: {_reason(exc)}"
        ) from None
    try:
        conn = sqlite3.connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise CheckpointerError(f"cannot open the checkpoint database {path}: {_reason(exc)}") from None
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # reads the header: garbage fails here
    except sqlite3.Error as exc:
        conn.close()
        raise CheckpointerError(
            f"cannot use the checkpoint database {path}: {_reason(exc)} (move it aside to start "
            "again with no threads)"
        ) from None
    saver = SqliteCheckpointer(conn, serde=serde)
    saver.path = path.resolve()
    return saver


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
