"""The trace store: one interface over SQLite (default) and PostgreSQL, with versioned migrations.

Where it lives follows the checkpoints: PostgreSQL when `ROUTEGRAPH_POSTGRES_URL` is set (the same
database, tables of its own), else `traces.sqlite` next to the checkpoint file in the data
directory. `open_store(settings)` picks; `TraceStore.sqlite(path)` / `TraceStore.postgres(url)`
name one.

Migrations are numbered SQL files in graph/ops/migrations/ (`0001_traces.sql`, ...), written in
SQL both databases accept. Each is applied once, in a transaction with its `schema_version` row;
concurrent processes take a lock first (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock),
so two servers starting together migrate once. Rows come back as dicts, JSON columns decoded.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from graph.errors import ConfigError
from graph.persistence.common import url_redactor

if TYPE_CHECKING:
    from graph.config.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
JSON_COLUMNS = frozenset(
    {"selected", "candidates", "plan", "steps", "approvals", "errors", "notes", "timings_ms", "correct"}
)
TRACE_COLUMNS = (
    "run_id", "thread_id", "user_id", "turn", "started_at", "ended_at", "duration_ms", "request", "task",
    "stop_reason", "selected", "top_capability", "top_score", "candidates", "plan", "steps", "approvals",
    "approval_wait_s", "errors", "notes", "llm_calls", "tokens", "node_steps", "timings_ms",
    "registry_fingerprint", "experiment", "variant",
)  # fmt: skip
"""The columns of `traces`, in the order `write` inserts them (migrations/0001_traces.sql)."""
Dialect = Literal["sqlite", "postgres"]
VERDICTS = ("good", "bad", "correct", "out_of_scope")


class TraceStoreError(ConfigError, RuntimeError):
    """The trace store cannot be opened, migrated or read (its message names where, no password)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        lines = [line for line in self.sql.splitlines() if not line.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The numbered migrations (`NNNN_name.sql`), in order."""
    found = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text(encoding="utf-8")))
    return found


LATEST = max(m.version for m in migrations())
"""The schema version this code writes (doctor checks a store is at it)."""


class TraceStore:
    """Traces and feedback in one database; thread-safe (one connection behind a lock).

    Opened lazily: the first call connects and migrates. A lost PostgreSQL connection is dropped
    and opened again on the next call.
    """

    def __init__(self, dialect: Dialect, target: str) -> None:
        self.dialect: Dialect = dialect
        self.target = target
        """The SQLite path or the PostgreSQL URL."""
        self._conn: Any = None
        self._lock = threading.Lock()

    @classmethod
    def sqlite(cls, path: Path) -> TraceStore:
        return cls("sqlite", str(path))

    @classmethod
    def postgres(cls, url: str) -> TraceStore:
        return cls("postgres", url)

    @property
    def where(self) -> str:
        """Where the store is, for messages: the file, or the URL with its password masked."""
        if self.dialect == "sqlite":
            return self.target
        return url_redactor(self.target).redact(self.target)

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = Path(self.target)
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        import psycopg

        return psycopg.connect(self.target, autocommit=True, connect_timeout=10)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """The open, migrated connection, held under the lock."""
        with self._lock:
            if self._conn is None:
                try:
                    conn = self._connect()
                    self._migrate(conn)
                except Exception as exc:
                    raise TraceStoreError(self._message("cannot open the trace store at", exc)) from None
                self._conn = conn
            try:
                yield self._conn
            except Exception:
                if self.dialect == "postgres" and getattr(self._conn, "closed", False):
                    self._conn = None
                raise

    def _message(self, what: str, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self.dialect == "postgres":
            text = url_redactor(self.target).redact(text)
        return f"{what} {self.where}: {text}"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(sql), tuple(params))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    # -- migrations -----------------------------------------------------------------------------

    def _migrate(self, conn: Any) -> list[int]:
        applied: list[int] = []
        if self.dialect == "postgres":
            conn.execute("SELECT pg_advisory_lock(hashtext('routegraph trace migrations'))")
        try:
            self._execute(
                conn,
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
            )
            for migration in migrations():
                self._execute(conn, "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
                try:
                    done = self._execute(
                        conn, "SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)
                    ).fetchone()
                    if not done:
                        for statement in migration.statements():
                            self._execute(conn, statement)
                        self._execute(
                            conn,
                            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                            (migration.version, migration.name, time.time()),
                        )
                        applied.append(migration.version)
                except BaseException:
                    self._execute(conn, "ROLLBACK")
                    raise
                self._execute(conn, "COMMIT")
        finally:
            if self.dialect == "postgres":
                conn.execute("SELECT pg_advisory_unlock(hashtext('routegraph trace migrations'))")
        return applied

    def schema_version(self) -> int:
        """The highest migration applied (`LATEST` once the store has been opened)."""
        with self._session() as conn:
            row = self._execute(conn, "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(row[0])

    # -- traces ---------------------------------------------------------------------------------

    def write(self, trace: Mapping[str, Any]) -> None:
        """Insert one trace (a row of `TRACE_COLUMNS`); a run id seen before is replaced."""
        values = [_encode(c, trace.get(c)) for c in TRACE_COLUMNS]
        columns = ", ".join(TRACE_COLUMNS)
        marks = ", ".join("?" for _ in TRACE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in TRACE_COLUMNS if c != "run_id")
        sql = f"INSERT INTO traces ({columns}) VALUES ({marks}) ON CONFLICT (run_id) DO UPDATE SET {updates}"
        with self._session() as conn:
            self._execute(conn, sql, values)

    def prune(self, *, retention_days: float | None, max_rows: int | None, now: float | None = None) -> int:
        """Delete traces older than `retention_days` and beyond the newest `max_rows` (their
        feedback too); returns how many traces went."""
        deleted = 0
        now = time.time() if now is None else now
        with self._session() as conn:
            if retention_days is not None:
                cut = now - retention_days * 86400
                deleted += self._execute(conn, "DELETE FROM traces WHERE started_at < ?", (cut,)).rowcount
            if max_rows is not None:
                row = self._execute(
                    conn,
                    "SELECT started_at FROM traces ORDER BY started_at DESC LIMIT 1 OFFSET ?",
                    (max_rows,),
                ).fetchone()
                if row is not None:
                    deleted += self._execute(
                        conn, "DELETE FROM traces WHERE started_at <= ?", (row[0],)
                    ).rowcount
            if deleted:
                self._execute(conn, "DELETE FROM feedback WHERE run_id NOT IN (SELECT run_id FROM traces)")
        return max(deleted, 0)

    def traces(
        self, *, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Traces started in [since, until), oldest first, each with its `feedback` (or None)."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("t.started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("t.started_at < ?")
            params.append(until)
        sql = (
            "SELECT t.*, f.verdict AS fb_verdict, f.correct AS fb_correct, f.note AS fb_note, "
            "f.created_at AS fb_created_at, f.source AS fb_source "
            "FROM traces t LEFT JOIN feedback f ON f.run_id = t.run_id "
            f"WHERE {' AND '.join(where)} ORDER BY t.started_at"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._session() as conn:
            cursor = self._execute(conn, sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [_row(dict(zip(names, row, strict=True))) for row in rows]

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One trace by run id, with its feedback; None when there is none."""
        with self._session() as conn:
            cursor = self._execute(
                conn,
                "SELECT t.*, f.verdict AS fb_verdict, f.correct AS fb_correct, f.note AS fb_note, "
                "f.created_at AS fb_created_at, f.source AS fb_source "
                "FROM traces t LEFT JOIN feedback f ON f.run_id = t.run_id WHERE t.run_id = ?",
                (run_id,),
            )
            names = [d[0] for d in cursor.description]
            row = cursor.fetchone()
        return _row(dict(zip(names, row, strict=True))) if row is not None else None

    def count(self) -> int:
        with self._session() as conn:
            return int(self._execute(conn, "SELECT count(*) FROM traces").fetchone()[0])

    # -- feedback -------------------------------------------------------------------------------

    def put_feedback(
        self,
        run_id: str,
        *,
        verdict: str,
        correct: Sequence[str] = (),
        note: str | None = None,
        source: str = "python",
        at: float | None = None,
    ) -> None:
        """Store (or replace) the feedback on `run_id`; the caller checked the trace exists."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}: {', '.join(VERDICTS)}")
        at = time.time() if at is None else at
        with self._session() as conn:
            self._execute(
                conn,
                "INSERT INTO feedback (run_id, created_at, verdict, correct, note, source) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET created_at = excluded.created_at, "
                "verdict = excluded.verdict, correct = excluded.correct, note = excluded.note, "
                "source = excluded.source",
                (run_id, at, verdict, json.dumps(list(correct)), note, source),
            )


def _encode(column: str, value: Any) -> Any:
    """A trace value as a column holds it. What a caller put in `configurable` is not trusted to
    be storable: a user id that is a dict is stored as its text, and a lone surrogate (invalid
    UTF-8 passed along) or a NUL (PostgreSQL's text refuses it) as U+FFFD, rather than losing the
    whole trace to the database driver's error."""
    if column in JSON_COLUMNS:
        return _storable(json.dumps(value if value is not None else [], default=str, ensure_ascii=False))
    if value is None or isinstance(value, int | float):
        return value
    return _storable(value if isinstance(value, str) else str(value))


def _storable(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "\ufffd")


def _row(row: dict[str, Any]) -> dict[str, Any]:
    for column in JSON_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    verdict = row.pop("fb_verdict", None)
    fb = {k[3:]: row.pop(k, None) for k in ("fb_correct", "fb_note", "fb_created_at", "fb_source")}
    if verdict is None:
        row["feedback"] = None
    else:
        correct = fb["correct"]
        row["feedback"] = {
            "verdict": verdict,
            "correct": json.loads(correct) if isinstance(correct, str) else [],
            "note": fb["note"],
            "created_at": fb["created_at"],
            "source": fb["source"],
        }
    return row


def trace_file(settings: Settings) -> Path:
    """`traces.sqlite` next to the checkpoint file (in the data directory by default)."""
    return settings.checkpoint_file.with_name("traces.sqlite")


def open_store(settings: Settings) -> TraceStore:
    """The store for these settings: PostgreSQL when `postgres_url` is set, else the SQLite file
    `trace_file(settings)`. Nothing is opened until the first call."""
    if settings.postgres_url:
        return TraceStore.postgres(settings.postgres_url)
    return TraceStore.sqlite(trace_file(settings))
