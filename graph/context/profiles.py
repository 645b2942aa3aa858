"""User profiles, kept in the application's LangGraph store (`langgraph.store.base.BaseStore`).

One item per user: namespace `("users", user_id)`, key `"profile"`, a JSON object (`Profile`):
expertise (set, or inferred from the user's messages), preferences (language, answer length,
preferred channel, the preferred instance per capability for specialist pools), interaction
history (recent tasks, capabilities used and counts) and the session (the thread's active topic).

Which store: `resolve_store` (the builder calls it), like the checkpointer: LangGraph's
`SqliteStore` in the data directory by default, its `PostgresStore` when `ROUTEGRAPH_POSTGRES_URL`
is set, and under `langgraph dev` / the Agent Server the server's own store (the graph is compiled
without one and nodes get the server's through `get_store()`). Nodes use the async methods only
(`aget`, `aput`), which every store has (`ThreadedSqliteStore` runs SQLite's in a thread).

Nothing secret is stored: every text is redacted (graph/redact.py) before it is written.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock
from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore
from pydantic import BaseModel, Field, ValidationError

from graph.errors import ConfigError
from graph.redact import Redactor

if TYPE_CHECKING:
    from graph.config.settings import Settings

log = logging.getLogger("routegraph")

StoreOption = BaseStore | Literal["auto", "sqlite", "postgres", "memory", "none"]
"""`auto` (default): `postgres` when `ROUTEGRAPH_POSTGRES_URL` is set, else `sqlite`; `none` when
the host brings its own store (the LangGraph server: `build_graph(checkpointer="none")` implies it)."""

NAMESPACE = "users"
KEY = "profile"
RECENT = 10
"""Recent tasks kept per user."""
Expertise = Literal["beginner", "expert"]
AnswerLength = Literal["short", "long"]


class Preferences(BaseModel):
    language: str | None = Field(default=None, max_length=40)
    """The language answers are written in (the model path; the template answers are English)."""
    answer_length: AnswerLength | None = None
    """short: one line per result; long: each result with how it was found."""
    channel: str | None = Field(default=None, max_length=40)
    """Where the user prefers to be reached (chat, email, phone): for a human hand-off."""


class Interaction(BaseModel):
    turn: int
    task: str = Field(max_length=300)
    capabilities: list[str]
    stop_reason: str | None
    thread_id: str | None = None
    at: float


class History(BaseModel):
    turns: int = 0
    capability_counts: dict[str, int] = Field(default_factory=dict)
    recent: list[Interaction] = Field(default_factory=list)
    expert_signals: int = 0
    """Technical wording seen in the user's messages (IANA zones, operators, protocols)."""
    beginner_signals: int = 0
    """Wording of someone new to it ("how do I", "what is a", "I don't understand")."""


class Profile(BaseModel):
    """What routegraph knows about one user (the store's item for them)."""

    user_id: str = Field(min_length=1, max_length=200)
    expertise: Expertise | None = None
    """Set by the user (`routegraph profile set USER expertise=expert`), else inferred."""
    expertise_source: Literal["set", "inferred"] | None = None
    preferences: Preferences = Field(default_factory=Preferences)
    preferred_instances: dict[str, str] = Field(default_factory=dict)
    """capability -> the instance of its pool this user sticks to (continuity across turns): the
    hook for specialist pools (issue 22 item 2), which read it when they assign a step."""
    history: History = Field(default_factory=History)
    session: dict[str, Any] = Field(default_factory=dict)
    """The last thread's state: `thread_id` and `topic` (capabilities with the clause each ran for)."""
    updated_at: float | None = None


SETTABLE = {
    "expertise": ("beginner", "expert", "auto"),
    "language": None,
    "answer_length": ("short", "long", "auto"),
    "channel": None,
}
"""Fields `routegraph profile set` changes (`auto` clears a value); `preferred_instances.CAP=NAME` too."""


def set_field(profile: Profile, key: str, value: str) -> Profile:
    """The profile with `key=value` set; raises ConfigError on an unknown key or value."""
    data = profile.model_dump()
    cleared = value.strip().lower() in ("auto", "none", "")
    if key.startswith("preferred_instances."):
        capability = key.partition(".")[2]
        if not capability:
            raise ConfigError("preferred_instances needs a capability: preferred_instances.CAP=INSTANCE")
        if cleared:
            data["preferred_instances"].pop(capability, None)
        else:
            data["preferred_instances"][capability] = value.strip()
    elif key not in SETTABLE:
        keys = ", ".join([*SETTABLE, "preferred_instances.CAP"])
        raise ConfigError(f"unknown profile field {key!r}: one of {keys}")
    elif (allowed := SETTABLE[key]) is not None and value.strip().lower() not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    elif key == "expertise":
        data["expertise"] = None if cleared else value.strip().lower()
        data["expertise_source"] = None if cleared else "set"
    else:
        data["preferences"][key] = (
            None if cleared else value.strip().lower() if key == "answer_length" else value
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid profile value for {key}: {exc.errors()[0]['msg']}") from None


# -- learning from interactions ----------------------------------------------------------------

_EXPERT = re.compile(
    r"\b[A-Z][a-z]+/[A-Za-z_]+\b|\*\*|\bsqrt\b|\bmod\b|\b(?:utc|iana|saml|oidc|sso|http|5\d\d|4\d\d|api|"
    r"endpoint|webhooks?|sdk|latency|idempoten\w*|payload|json|csv|proration|prorated|mrr|arr)\b",
    re.I,
)
_BEGINNER = re.compile(
    r"\b(?:how do i|what is an?|what does .{1,30} mean|i don'?t (?:understand|know)|i'?m new|new to|"
    r"explain|help me|confused|not sure how|step by step|beginner)\b",
    re.I,
)
INFER_AT = 2
"""Signals one way more than the other before expertise is inferred."""


def infer_expertise(history: History) -> Expertise | None:
    lead = history.expert_signals - history.beginner_signals
    if lead >= INFER_AT:
        return "expert"
    if lead <= -INFER_AT:
        return "beginner"
    return None


def learn(
    profile: Profile,
    *,
    message: str,
    task: str,
    capabilities: Sequence[str],
    stop_reason: str | None,
    turn: int,
    thread_id: str | None,
    topic: Sequence[Mapping[str, Any]],
    redactor: Redactor,
    now: float | None = None,
    instances: Mapping[str, str] | None = None,
) -> Profile:
    """The profile after one turn: history, counts, signals, inferred expertise, session topic, and
    the pool instance of each capability that served the user (`instances`: continuity)."""
    now = time.time() if now is None else now
    history = profile.history.model_copy(deep=True)
    history.turns += 1
    for name in capabilities:
        history.capability_counts[name] = history.capability_counts.get(name, 0) + 1
    history.expert_signals += len(_EXPERT.findall(message))
    history.beginner_signals += len(_BEGINNER.findall(message))
    history.recent = [
        *history.recent,
        Interaction(
            turn=turn,
            task=redactor.redact(task)[:300],
            capabilities=list(capabilities),
            stop_reason=stop_reason,
            thread_id=thread_id,
            at=now,
        ),
    ][-RECENT:]
    update: dict[str, Any] = {"history": history, "updated_at": now}
    if instances:
        update["preferred_instances"] = {**profile.preferred_instances, **instances}
    if profile.expertise_source != "set":
        inferred = infer_expertise(history)
        update["expertise"] = inferred
        update["expertise_source"] = "inferred" if inferred else None
    update["session"] = {
        "thread_id": thread_id,
        "topic": [{**e, "task": redactor.redact(str(e.get("task", "")))[:300]} for e in topic],
    }
    return profile.model_copy(update=update)


def shaping(profile: Mapping[str, Any] | None) -> dict[str, str | None]:
    """What answers are shaped by: expertise and answer length (None: no preference)."""
    profile = profile or {}
    prefs = profile.get("preferences") or {}
    return {
        "expertise": profile.get("expertise"),
        "answer_length": prefs.get("answer_length"),
        "language": prefs.get("language"),
    }


# -- the store ---------------------------------------------------------------------------------


class ThreadedSqliteStore(SqliteStore):
    """LangGraph's SQLite store with async methods (its own raise): the sync ones in a thread."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))


def connect_sqlite(path: Path) -> ThreadedSqliteStore:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    store = ThreadedSqliteStore(conn)
    # One process creates or migrates the tables at a time: LangGraph's setup reads the version,
    # then inserts each migration, so two first runs on a fresh file both inserted migration 0
    # (UNIQUE constraint failed: store_migrations.v). Its executescript commits, so a SQLite
    # transaction cannot span it; a lock file beside the database does.
    with FileLock(str(path) + ".setup.lock", timeout=60):
        store.setup()
    return store


def connect_postgres(url: str) -> BaseStore:
    """LangGraph's PostgresStore on `url` (the `postgres` extra), its tables created."""
    try:
        from langgraph.store.postgres import PostgresStore
        from psycopg import Connection
        from psycopg.rows import dict_row
    except ImportError:
        raise ConfigError(
            "ROUTEGRAPH_POSTGRES_URL is set but the PostgreSQL store is not installed: "
            "pip install 'routegraph[postgres]'"
        ) from None
    try:
        conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except Exception as exc:
        raise ConfigError(f"cannot open the PostgreSQL profile store: {type(exc).__name__}") from None
    store = PostgresStore(conn)
    # One process creates or migrates the store's tables at a time (two first runs on a fresh
    # database both inserted migration 3: a duplicate key). Polled, as for the checkpoint tables.
    lock = "SELECT pg_try_advisory_lock(hashtext('routegraph store setup')) AS got"
    try:
        while not conn.execute(lock).fetchone()["got"]:  # type: ignore[index]
            time.sleep(0.05)
        try:
            store.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('routegraph store setup'))")
    except Exception as exc:
        raise ConfigError(f"cannot create the PostgreSQL profile store's tables: {type(exc).__name__}") from None
    return store


def store_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "store.sqlite"


def resolve_store(option: StoreOption, settings: Settings) -> BaseStore | None:
    """The store `option` names (a store is used as given); None for `none`."""
    if isinstance(option, BaseStore):
        return option
    if option == "none":
        return None
    if option == "memory":
        return InMemoryStore()
    if option == "auto":
        option = "postgres" if settings.postgres_url else "sqlite"
    if option == "postgres":
        if not settings.postgres_url:
            raise ConfigError('store="postgres" needs ROUTEGRAPH_POSTGRES_URL')
        return connect_postgres(settings.postgres_url)
    if option != "sqlite":
        raise ConfigError(f"unknown store {option!r}: auto, sqlite, postgres, memory, none or a store")
    return connect_sqlite(store_file(settings))


def namespace(user_id: str) -> tuple[str, str]:
    """The store's namespace of a user. LangGraph's stores refuse a "." in a namespace label, and
    user ids are often e-mail addresses ("jane.doe@example.com"): "%" and "." are written as
    "%25" and "%2E" (reversibly, so no two ids meet); an id with neither is its own label, as
    before, so profiles stored under it stay where they were."""
    if "." in user_id or "%" in user_id:
        user_id = user_id.replace("%", "%25").replace(".", "%2E")
    return (NAMESPACE, user_id)


async def aload(store: BaseStore, user_id: str) -> Profile:
    item = await store.aget(namespace(user_id), KEY)
    return _profile(user_id, item.value if item else None)


async def asave(store: BaseStore, profile: Profile) -> None:
    await store.aput(namespace(profile.user_id), KEY, profile.model_dump(mode="json"))


def load(store: BaseStore, user_id: str) -> Profile:
    item = store.get(namespace(user_id), KEY)
    return _profile(user_id, item.value if item else None)


def save(store: BaseStore, profile: Profile) -> None:
    store.put(namespace(profile.user_id), KEY, profile.model_dump(mode="json"))


def exists(store: BaseStore, user_id: str) -> bool:
    return store.get(namespace(user_id), KEY) is not None


def forget(store: BaseStore, user_id: str) -> int:
    """Delete everything the store holds about the user (every item under their namespace)."""
    removed = 0
    while items := store.search(namespace(user_id), limit=100):
        for item in items:
            store.delete(tuple(item.namespace), item.key)
            removed += 1
    return removed


def _profile(user_id: str, value: Mapping[str, Any] | None) -> Profile:
    if not value:
        return Profile(user_id=user_id)
    try:
        return Profile.model_validate({**value, "user_id": user_id})
    except ValidationError:
        log.warning("the stored profile of %s is not readable: starting a new one", user_id)
        return Profile(user_id=user_id)


def user_id_from(config: Mapping[str, Any] | None) -> str | None:
    """The run's user id: `configurable.user_id` (CLI `--user`, SDK, Python), else the server's
    authenticated user (`langgraph_auth_user_id`)."""
    configurable = (config or {}).get("configurable") or {}
    for key in ("user_id", "langgraph_auth_user_id"):
        value = configurable.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


__all__ = [
    "KEY",
    "NAMESPACE",
    "History",
    "Interaction",
    "Preferences",
    "Profile",
    "StoreOption",
    "ThreadedSqliteStore",
    "aload",
    "asave",
    "exists",
    "forget",
    "infer_expertise",
    "learn",
    "load",
    "namespace",
    "resolve_store",
    "save",
    "set_field",
    "shaping",
    "user_id_from",
]


def store_of(config: Mapping[str, Any] | None) -> BaseStore | None:
    """The store of the running graph (compiled with one, or the server's); None without one."""
    try:
        from langgraph.config import get_store

        return get_store()
    except Exception:  # outside a run, or a graph without a store
        runtime = ((config or {}).get("configurable") or {}).get("__pregel_runtime")
        store = getattr(runtime, "store", None)
        return store if isinstance(store, BaseStore) else None
