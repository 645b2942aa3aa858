"""One turn at a time per thread: `thread_lock(saver_or_settings, thread_id, wait=...)`.

Why: two processes continuing one thread both load its latest checkpoint and each writes its turn
on top of it; the later branch becomes the thread and the other turn is lost, silently (LangGraph's
checkpointers do not arbitrate). Every entry point that runs a turn on a checkpointed thread takes
this lock first: `routegraph ask` does, and a compiled graph wrapped by `serialise_threads` does for
every `invoke` / `stream` / `update_state` (sync and async). The second turn waits, at most `wait`
seconds, and then runs on the thread as the first left it; past the wait it gets `ThreadBusy` and
nothing was done. The LangGraph server (graph/app.py, no checkpointer of its own) is not locked
here: it runs one run per thread at a time with its own run queue (`multitask_strategy`).

The lock lives where the checkpoints live, so it holds across processes (and, for PostgreSQL,
machines), and it dies with its holder, so a killed process never blocks a thread:

- SQLite file: `fcntl.flock` on `<database>.locks/<sha256 of the thread id>.lock`. The kernel drops
  the lock when the holder's process exits, kill -9 included (no lease to expire). The holder
  deletes the file before it lets go, and a waiter that locked a deleted file tries again, so lock
  files do not pile up.
- PostgreSQL: a session advisory lock, `pg_try_advisory_lock(hashtext('routegraph thread'),
  hashtext(thread_id))`, on a connection of its own held for the turn. The server drops it when
  the connection ends: at once when the holder's process dies (its kernel closes the socket),
  within about a minute when its machine does (TCP keepalives on the session).
- Anything else (`InMemorySaver`, a saver routegraph did not create; SQLite where there is no
  `flock`, i.e. Windows): a lock in this process only, as far as an in-memory saver's threads
  reach anyway.

Thread ids are checked first (`check_thread_id`): 1 to 128 printable characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import importlib.util
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from graph.errors import (
    CheckpointerError,
    InvalidThreadId,
    MissingThreadId,
    RecursionLimitReached,
    ThreadBusy,
)
from graph.persistence.common import URL_VARIABLE, one_line, redact, url_redactor

if TYPE_CHECKING:
    from graph.config.settings import Settings

THREAD_ID_MAX_CHARS = 128
"""The longest thread id accepted (`check_thread_id`)."""

_FLOCK = importlib.util.find_spec("fcntl") is not None
"""POSIX: SQLite threads are locked across processes. Elsewhere (Windows) only within one."""

_POLL_FIRST, _POLL_MAX = 0.01, 0.25
"""Seconds between attempts while waiting: doubling from the first to the most."""


def check_thread_id(thread_id: object) -> str:
    """The thread id as a string, if it is 1 to 128 printable characters; else `InvalidThreadId`.

    Printable (`str.isprintable`) rules out control characters, line breaks and the lone
    surrogates that invalid UTF-8 on a command line turns into: none of them can be stored by every
    checkpointer, or shown in a terminal, as they are. Ints and UUIDs are taken as their text, as
    LangGraph stores them.
    """
    text = thread_id if isinstance(thread_id, str) else str(thread_id)
    if not text or len(text) > THREAD_ID_MAX_CHARS or not text.isprintable():
        shown = ascii(text) if len(text) <= 40 else ascii(text[:40])[:-1] + "...'"
        raise InvalidThreadId(
            f"invalid thread id {shown}: a thread id is 1 to {THREAD_ID_MAX_CHARS} printable "
            "characters (no control characters, line breaks or invalid UTF-8)"
        )
    return text


class TurnLock(Protocol):
    """One thread's lock in one place: tried without blocking, polled by `thread_lock`."""

    key: str
    """Identifies the lock in this process (re-entrancy): backend, database and thread."""
    blocking_io: bool
    """`try_acquire` talks to a server: async code runs it in a worker thread."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def holder(self) -> str:
        """Who holds it, as far as known (for the `ThreadBusy` message), or ""."""
        ...


def _whoami() -> str:
    return f"process {os.getpid()} on {socket.gethostname()}"


class FileLock:
    """`flock` on a per-thread file next to a SQLite database: dropped by the kernel with its holder."""

    blocking_io = False

    def __init__(self, database: Path, thread_id: str) -> None:
        digest = hashlib.sha256(thread_id.encode("utf-8")).hexdigest()[:32]
        self.path = database.parent / f"{database.name}.locks" / f"{digest}.lock"
        self.key = f"file:{self.path}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CheckpointerError(
                f"cannot lock the thread: {exc.filename or self.path}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            # The previous holder may have deleted the file between our open and our flock: then
            # we hold a lock nobody else will look at, and must start again on the new file.
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            return False
        with contextlib.suppress(OSError):  # who holds it is for messages: a full disk does not stop the lock
            os.ftruncate(fd, 0)
            os.write(fd, _whoami().encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still held: a waiter that opened it sees it deleted, retries
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own, held for the turn."""

    blocking_io = True
    _NAMESPACE = "routegraph thread"

    def __init__(self, url: str, thread_id: str, *, connect_timeout: float = 10.0) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self.url = url
        self.thread_id = thread_id
        self.connect_timeout = connect_timeout
        try:
            parts = conninfo_to_dict(url)
        except Exception:
            parts = {"url": redact(url)}
        where = ":".join(str(parts.get(k, "")) for k in ("host", "port", "dbname", "url"))
        self.key = f"pg:{where}:{thread_id}"
        self._conn: Any = None
        self._guard = threading.Lock()
        self._released = False

    def _connect(self) -> Any:
        import psycopg

        problem = ""
        try:
            conn = psycopg.Connection.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name=f"routegraph turn lock ({_whoami()})"[:63],
            )
        except psycopg.Error as exc:
            problem = one_line(exc)
        if problem:  # raised outside the driver's exception: no __context__ holds its message
            raise CheckpointerError(
                url_redactor(self.url).redact(
                    f"{URL_VARIABLE}: cannot connect to PostgreSQL at {redact(self.url)} to lock the "
                    f"thread: {problem}"
                )
            )
        # The lock lives as long as this session: a dead client's session must end, an idle one
        # (the turn is running elsewhere) must not. Settings an older server lacks are skipped.
        for setting in (
            "tcp_keepalives_idle = 30",
            "tcp_keepalives_interval = 10",
            "tcp_keepalives_count = 3",
            "idle_session_timeout = 0",
            "idle_in_transaction_session_timeout = 0",
        ):
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"SET {setting}")
        return conn

    def try_acquire(self) -> bool:
        # Serialised with `release`: async code gives up on an attempt still running in a worker
        # thread and releases; whatever that attempt got must not outlive the release.
        with self._guard:
            if self._released:
                return False
            if self._conn is None:
                self._conn = self._connect()
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (self._NAMESPACE, self.thread_id)
            ).fetchone()
            return bool(row is not None and row[0])

    def release(self) -> None:
        with self._guard:
            self._released = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()  # ends the session, which drops its advisory locks

    def holder(self) -> str:
        if self._conn is None:
            return ""
        try:
            row = self._conn.execute(
                "SELECT a.application_name, a.client_addr FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid::int8 = hashtext(%s)::int8 & 4294967295 "
                "AND l.objid::int8 = hashtext(%s)::int8 & 4294967295 LIMIT 1",
                (self._NAMESPACE, self.thread_id),
            ).fetchone()
        except Exception:
            return ""
        if row is None:
            return ""
        name, address = row
        return f"{name}" + (f" from {address}" if address else "")


_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class LocalLock:
    """A lock in this process only: for savers whose threads do not outlive it (memory) or that
    routegraph cannot lock elsewhere."""

    blocking_io = False

    def __init__(self, owner: object, thread_id: str) -> None:
        self.key = f"local:{owner if isinstance(owner, Path) else id(owner)}:{thread_id}"
        with _LOCAL_GUARD:
            self._lock = _LOCAL.setdefault(self.key, threading.Lock())
        self._held = False

    def try_acquire(self) -> bool:
        self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()

    def holder(self) -> str:
        return "another turn in this process"


def _sqlite_file(saver: SqliteSaver) -> Path | None:
    """The database file of a SQLite saver; None when it is in memory or cannot be asked."""
    known = getattr(saver, "path", None)
    if isinstance(known, Path):
        return known
    try:
        with saver.lock:
            rows = saver.conn.execute("PRAGMA database_list").fetchall()
    except sqlite3.Error:
        return None
    files = [row[2] for row in rows if row[1] == "main" and row[2]]
    return Path(files[0]) if files else None


def lock_for(target: BaseCheckpointSaver[Any] | Settings, thread_id: object) -> TurnLock:
    """The lock of `thread_id` where `target` (a checkpointer, or the settings that choose one)
    keeps its checkpoints. Raises `InvalidThreadId`."""
    from graph.config.settings import Settings

    thread = check_thread_id(thread_id)
    if isinstance(target, Settings):
        if target.postgres_url:
            return AdvisoryLock(target.postgres_url, thread)
        if _FLOCK:
            return FileLock(target.checkpoint_file.resolve(), thread)
        return LocalLock(target.checkpoint_file.resolve(), thread)
    postgres = sys.modules.get("graph.persistence.postgres")  # loaded if a Postgres saver exists
    if postgres is not None and isinstance(target, postgres.PostgresCheckpointer):
        return AdvisoryLock(target.url, thread)
    if _FLOCK and isinstance(target, SqliteSaver) and (path := _sqlite_file(target)) is not None:
        return FileLock(path.resolve(), thread)
    return LocalLock(target, thread)


_HELD: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "routegraph_thread_locks", default=frozenset()
)
"""Locks held by this context: a turn that holds its thread's lock (the CLI around `ask`) may run
the graph, which takes the same lock again. Tasks and node threads inherit it; siblings do not."""


def _busy(lock: TurnLock, thread_id: str, wait: float) -> ThreadBusy:
    holder = lock.holder()
    by = f" (held by {holder})" if holder else ""
    return ThreadBusy(
        f"thread {thread_id!r} is busy: another turn on it did not finish within {wait:g} s{by}"
    )


@contextlib.contextmanager
def _held(key: str) -> Iterator[None]:
    token = _HELD.set(_HELD.get() | {key})
    try:
        yield
    finally:
        try:
            _HELD.reset(token)
        except ValueError:  # left in another context (a generator finished elsewhere)
            _HELD.set(_HELD.get() - {key})


@contextlib.contextmanager
def thread_lock(
    target: BaseCheckpointSaver[Any] | Settings, thread_id: object, *, wait: float
) -> Iterator[None]:
    """Hold `thread_id`'s lock for the block: wait up to `wait` seconds for another turn to finish.

    Raises:
        ThreadBusy: another turn held the thread for longer than `wait`.
        InvalidThreadId: the thread id is not 1 to 128 printable characters.
        CheckpointerError: the PostgreSQL server cannot be reached to lock the thread.
    """
    lock = lock_for(target, thread_id)
    if lock.key in _HELD.get():
        yield
        return
    deadline = time.monotonic() + max(0.0, wait)
    delay = _POLL_FIRST
    try:
        while not lock.try_acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _busy(lock, str(thread_id), wait)
            time.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
    except BaseException:
        lock.release()
        raise
    try:
        with _held(lock.key):
            yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def athread_lock(
    target: BaseCheckpointSaver[Any] | Settings, thread_id: object, *, wait: float
) -> AsyncIterator[None]:
    """`thread_lock` for async code: waits with `asyncio.sleep`, talks to a server in a worker thread."""
    lock = lock_for(target, thread_id)
    if lock.key in _HELD.get():
        yield
        return

    async def attempt() -> bool:
        if not lock.blocking_io:
            return lock.try_acquire()
        return await asyncio.to_thread(lock.try_acquire)

    async def release() -> None:
        if lock.blocking_io:
            await asyncio.to_thread(lock.release)
        else:
            lock.release()

    deadline = time.monotonic() + max(0.0, wait)
    delay = _POLL_FIRST
    try:
        while not await attempt():
            left = deadline - time.monotonic()
            if left <= 0:
                holder_error = await asyncio.to_thread(_busy, lock, str(thread_id), wait)
                raise holder_error
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
    except BaseException:
        # Cancelled while a worker thread was acquiring: the attempt finishes there, then this
        # drops whatever it got (a closed connection holds nothing).
        await asyncio.shield(release())
        raise
    try:
        with _held(lock.key):
            yield
    finally:
        await asyncio.shield(release())


DEFAULT_TURN_WAIT = 120.0
"""Seconds a turn waits for its thread when nothing says otherwise (the default `max_seconds`)."""


def _thread_of(graph: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig | None) -> Any:
    merged = merge_configs(graph.config, config)
    return (merged.get("configurable") or {}).get("thread_id")


THREAD_ID_HINT = 'pass one in the config: graph.invoke(inputs, {"configurable": {"thread_id": "..."}})'


class ThreadSerialisedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph that holds its thread's lock (`thread_lock`) for every run and state update.

    `turn_wait` is how long a turn waits for its thread (None: no locking, as for a graph whose
    host brings the checkpointer). `invoke` and `ainvoke` go through `stream` and `astream`.

    It is also where a Python caller's config is checked, in routegraph's words: a run, a state
    read or update without a thread id is `MissingThreadId` (before anything runs), and a run cut
    by a `recursion_limit` lower than the graph's own is `RecursionLimitReached` (LangGraph's
    `ValueError` / `KeyError` / `GraphRecursionError` named neither what to pass nor the turn left
    unfinished).
    """

    def __init__(self, *, turn_wait: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.turn_wait = turn_wait

    def _thread(self, config: RunnableConfig | None) -> Any:
        """The config's thread id; `MissingThreadId` when the graph has a checkpointer and none
        is given (None counts as none: LangGraph would store the thread as "None")."""
        thread = _thread_of(self, config)
        if thread is None and isinstance(self.checkpointer, BaseCheckpointSaver):
            raise MissingThreadId(
                "no thread id: this graph keeps each conversation in its checkpointer under a thread "
                f"id (1 to {THREAD_ID_MAX_CHARS} printable characters; the same id continues the "
                f"conversation, a new one starts another): {THREAD_ID_HINT}"
            )
        return thread

    def _lock_target(self, config: RunnableConfig | None) -> tuple[BaseCheckpointSaver[Any], Any] | None:
        thread = self._thread(config)
        if self.turn_wait is None or thread is None or not isinstance(self.checkpointer, BaseCheckpointSaver):
            return None
        return self.checkpointer, thread

    def _cut(self, config: RunnableConfig | None) -> RecursionLimitReached:
        """What a run cut by the caller's `recursion_limit` raises: the limit to pass, and how to
        finish the turn it left on its thread."""
        asked = merge_configs(self.config, config).get("recursion_limit")
        own = (self.config or {}).get("recursion_limit")
        needed = f"at least {own}, the graph's own" if own else "a higher one"
        return RecursionLimitReached(
            f"the run reached recursion_limit={asked} (LangGraph's bound on the steps of one call) before "
            f"the turn ended, so the turn has no stop_reason: leave recursion_limit out of the config, or "
            f"pass {needed}; to bound a turn, set limits.max_steps in the registry (the turn then ends "
            "with stop_reason max_steps). The turn is unfinished on its thread: graph.invoke(None, config) "
            "finishes it."
        )

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        target = self._lock_target(config)
        try:
            if target is None:
                yield from super().stream(input, config, **kwargs)
                return
            with thread_lock(target[0], target[1], wait=self.turn_wait or 0.0):
                yield from super().stream(input, config, **kwargs)
        except GraphRecursionError as exc:
            raise self._cut(config) from exc

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        target = self._lock_target(config)
        try:
            if target is None:
                async for chunk in super().astream(input, config, **kwargs):
                    yield chunk
                return
            async with athread_lock(target[0], target[1], wait=self.turn_wait or 0.0):
                async for chunk in super().astream(input, config, **kwargs):
                    yield chunk
        except GraphRecursionError as exc:
            raise self._cut(config) from exc

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        self._thread(config)
        return super().get_state(config, subgraphs=subgraphs)

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        self._thread(config)
        return await super().aget_state(config, subgraphs=subgraphs)

    def update_state(
        self, config: RunnableConfig, values: Any, as_node: str | None = None, task_id: str | None = None
    ) -> RunnableConfig:
        target = self._lock_target(config)
        if target is None:
            return super().update_state(config, values, as_node, task_id)
        with thread_lock(target[0], target[1], wait=self.turn_wait or 0.0):
            return super().update_state(config, values, as_node, task_id)

    async def aupdate_state(
        self, config: RunnableConfig, values: Any, as_node: str | None = None, task_id: str | None = None
    ) -> RunnableConfig:
        target = self._lock_target(config)
        if target is None:
            return await super().aupdate_state(config, values, as_node, task_id)
        async with athread_lock(target[0], target[1], wait=self.turn_wait or 0.0):
            return await super().aupdate_state(config, values, as_node, task_id)


def serialise_threads(
    graph: CompiledStateGraph[Any, Any, Any, Any], *, wait: float = DEFAULT_TURN_WAIT
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`graph` running one turn at a time per thread (`ThreadSerialisedGraph`), when it has a
    checkpointer of its own; unchanged otherwise (the LangGraph server brings and queues its own)."""
    if not isinstance(graph.checkpointer, BaseCheckpointSaver):
        return graph
    attrs = {k: v for k, v in graph.__dict__.items() if k != "__orig_class__"}
    attrs.pop("turn_wait", None)
    return ThreadSerialisedGraph(turn_wait=wait, **attrs)


__all__: Sequence[str] = [
    "DEFAULT_TURN_WAIT",
    "THREAD_ID_MAX_CHARS",
    "AdvisoryLock",
    "FileLock",
    "LocalLock",
    "ThreadSerialisedGraph",
    "athread_lock",
    "check_thread_id",
    "lock_for",
    "serialise_threads",
    "thread_lock",
]
