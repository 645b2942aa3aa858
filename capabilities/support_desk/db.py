"""The support desk's embedded SQLite database: created on first use, migrated by versioned SQL files.

`capabilities/support_desk/data/migrations/NNNN_name.sql` are applied in order, each in its own
transaction together with its row in `schema_version`, so applying them again is a no-op and two
processes (or two parallel steps) that open a new database at once apply each migration exactly
once. A new database is then filled with the demo data of `data/seed.sql` (once, recorded
in `meta`). Nothing happens when a `SupportDB` is constructed: the file is created, migrated and
seeded by the first `connect()`.

Every query is parameterised; every call opens its own connection (parallel steps run on worker
threads, and a sqlite3 connection belongs to one thread).
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from graph.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
MIGRATIONS_DIR = DATA_DIR / "migrations"
SEED_FILE = DATA_DIR / "seed.sql"
KNOWLEDGE_DIR = DATA_DIR / "knowledge"
DEFAULT_FILE_NAME = "support.sqlite"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How times are stored: UTC, as SQLite's datetime('now') writes them."""

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"))


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a gap or a repeated version is a packaging error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations in {directory} must be numbered 1..n without gaps: {versions}")
    return found


def split_statements(script: str) -> list[str]:
    """SQL statements of a script, split where SQLite says a statement is complete.

    `executescript` would commit first and run outside our transaction; statement by statement,
    a migration and its `schema_version` row commit together or not at all.
    """
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip().rstrip(";").strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer.strip()[:80]!r}")
    return statements


def resolve_path(option: str | Path | None, data_dir: Path | None = None) -> Path:
    """The database file for a capability's `db` option.

    None: `<data_dir>/support.sqlite`; a relative path: inside `data_dir` (the graph's
    `Settings.data_dir`, given to capabilities as `RunContext.data_dir`); an absolute path as is.
    """
    if option is not None and Path(str(option)).expanduser().is_absolute():
        return Path(str(option)).expanduser()
    if data_dir is None:
        raise ValueError(
            f"the support database {str(option or DEFAULT_FILE_NAME)!r} is relative to the data "
            "directory, and none was given (RunContext.data_dir; or give `db` an absolute path)"
        )
    return Path(data_dir) / (str(option) if option is not None else DEFAULT_FILE_NAME)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def money(cents: int) -> str:
    """$1,234.50"""
    return f"${cents / 100:,.2f}"


def day(text: str) -> str:
    """A stored time as a date people read: '01 Oct 2026'."""
    return parse_time(text).strftime("%d %b %Y")


class SupportDB:
    """One support database file. Cheap to construct; the first `connect()` creates and migrates it.

    `path` and `data_dir` as for `resolve_path`: None or a relative path needs the data directory.
    """

    def __init__(
        self, path: str | Path | None = None, *, seed: bool = True, data_dir: Path | None = None
    ) -> None:
        self._option = path
        self._seed = seed
        self._data_dir = data_dir
        self._resolved: Path | None = None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        if self._resolved is None:
            self._resolved = resolve_path(self._option, self._data_dir)
        return self._resolved

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    def ensure(self) -> list[int]:
        """Create, migrate and seed the database if needed; return the versions applied now."""
        with self._lock:
            if self._ready:
                return []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._open()
            try:
                # WAL lets readers run beside a writer; the mode is stored in the file. If another
                # connection holds a lock while creating the file (SQLite does not wait on a
                # journal-mode change), carry on in the default mode: a later open sets it.
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("PRAGMA journal_mode = WAL")
                applied = migrate(conn)
                if self._seed:
                    seed(conn)
            finally:
                conn.close()
            self._ready = True
            return applied

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to the migrated database, closed afterwards (reads; use `transaction` to write)."""
        self.ensure()
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: the write lock is taken up front), committed on success."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def schema_version(self) -> int:
        with self.connect() as conn:
            return current_version(conn)


KEPT_ON_RESET = ("schema_version", "kb_documents", "kb_passages")
"""Tables `reset_demo_data` leaves alone: the migrations applied, and the documents' index (kept in
step with the files on disk by knowledge_search; FTS5's own tables share its prefix)."""


def reset_demo_data(path: Path, script: Path = SEED_FILE) -> None:
    """Put the demo data back: every row of the demo tables deleted and `data/seed.sql` applied
    again, in one transaction (a server using the file sees the old data or the new, never none).
    Refunds issued, tickets opened and charges refunded since are gone; the schema stays.

    Raises:
        ConfigError: `path` holds something else (tables the support desk does not make, or no
            SQLite at all): `demo reset --db` pointed at the checkpoints or the traces would
            otherwise have deleted every row of them.
    """
    refuse_foreign(path)
    db = SupportDB(path, seed=False)
    db.ensure()  # a missing file is created and migrated first
    conn = db._open()
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # the rows go in any order; the seed is consistent
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = [
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                if not row[0].startswith(("sqlite_", *KEPT_ON_RESET))
            ]
            for table in tables:
                conn.execute(f'DELETE FROM "{table}"')  # names read from the schema, not from input
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
                conn.execute("DELETE FROM sqlite_sequence")
            for statement in split_statements(script.read_text(encoding="utf-8")):
                conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


@functools.cache
def support_tables() -> frozenset[str]:
    """The tables the migrations make (FTS5's shadow tables included), read from a database in
    memory migrated as a file would be."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn)
        return frozenset(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()


def refuse_foreign(path: Path) -> None:
    """`ConfigError` unless `path` is missing, empty, or a SQLite file with only the support
    desk's tables; read without writing a byte."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} is not a support desk database ({exc}): left alone") from None
    foreign = sorted(t for t in tables - support_tables() if not t.startswith("sqlite_"))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(f"{path} is not a support desk database (it has the tables {shown}): left alone")


class SupportDBs:
    """A capability's `db` option: the `SupportDB` of each data directory the capability runs with.

    A capability is built when its registry loads, before any graph (and so any data directory) is
    known; the data directory arrives with each run (`RunContext.data_dir`). One `SupportDB` per
    file keeps its create-and-migrate-once state across runs.
    """

    def __init__(self, option: str | Path | None = None, *, seed: bool = True) -> None:
        self.option = option
        self.seed = seed
        self._dbs: dict[Path, SupportDB] = {}
        self._lock = threading.Lock()

    def demo_path(self, data_dir: Path | None) -> Path:
        """The file `routegraph demo reset` restores for runs in `data_dir`."""
        return resolve_path(self.option, data_dir)

    def reset_demo(self, path: Path) -> str:
        """Restore the demo data in `path` (`reset_demo_data`); says what was done."""
        if not self.seed:
            return f"{path}: left alone (seed: false, no demo data to restore)"
        reset_demo_data(path)
        return f"{path}: demo data restored (customers, charges, invoices, incidents; refunds and tickets cleared)"

    def at(self, data_dir: Path | None) -> SupportDB:
        """The database for runs in this data directory (an absolute `db` option ignores it)."""
        path = resolve_path(self.option, data_dir)
        with self._lock:
            if path not in self._dbs:
                self._dbs[path] = SupportDB(path, seed=self.seed)
            return self._dbs[path]


    def health(self, data_dir: Path | None) -> str:
        """`routegraph doctor`'s line for the database used in `data_dir`: created, migrated and
        seeded if needed, then read; raises when it cannot be."""
        db = self.at(data_dir)
        with db.connect() as conn:
            version = current_version(conn)
            customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        return f"{db.path}: schema v{version}, {customers} customers"


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply the migrations this database lacks, each atomically with its `schema_version` row.

    Idempotent: a second call applies nothing. Safe against a concurrent migrator: each version is
    checked again after the write lock is taken.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied: list[int] = []
    for migration in migrations(directory):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)
            ).fetchone()
            if not done:
                for statement in migration.statements():
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, format_time(now_utc())),
                )
                applied.append(migration.version)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return applied


def seed(conn: sqlite3.Connection, script: Path = SEED_FILE) -> bool:
    """Fill a new database with the demo data, once; returns True when it did."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = conn.execute("SELECT 1 FROM meta WHERE key = 'seeded_at'").fetchone()
        if not done:
            for statement in split_statements(script.read_text(encoding="utf-8")):
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return not done


__all__ = [
    "KNOWLEDGE_DIR",
    "Migration",
    "SupportDB",
    "SupportDBs",
    "day",
    "format_time",
    "migrate",
    "migrations",
    "money",
    "now_utc",
    "parse_time",
    "reset_demo_data",
    "resolve_path",
    "seed",
    "split_statements",
]
