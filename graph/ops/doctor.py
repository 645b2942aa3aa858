"""`routegraph doctor`: is this installation ready to serve? One check a line, a failure exits 1.

Checks, in order: the registry loads; its encoder encodes a sentence and the cache directory is
writable; the checkpoint store opens (SQLite file or PostgreSQL); the trace store is migrated to the
latest schema; the capabilities' own stores answer (a capability whose `db` option object has a
`health(data_dir)` method: the support desk's demo database); the configured model endpoint
(`ROUTEGRAPH_BASE_URL` or the registry's `base_url`) lists its models, skipped when none is
configured. The same checks (without the encoder, which is slow to load) back `/health`.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from graph.classifier.encoders import make_encoder
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.errors import describe
from graph.ops.store import LATEST, open_store
from graph.persistence import resolve_checkpointer

Status = Literal["ok", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    ms: float = 0.0


def _timed(name: str, check: Callable[[], str | None], redact: Callable[[str], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = check()
        status: Status = "ok" if detail is not None else "skip"
    except Exception as exc:
        status, detail = "fail", describe(exc)
    ms = (time.perf_counter() - started) * 1000
    return Check(name, status, redact(" ".join((detail or "not configured").split())), round(ms, 1))


def check_registry(settings: Settings) -> str:
    registry = Registry.from_file(settings.registry)
    return f"{registry.source}: {len(registry.capabilities)} capabilities, {len(registry.routable)} routable"


def check_encoder(settings: Settings, registry: Registry) -> str:
    name = registry.spec.classifier.encoder
    encoder = make_encoder(name, base_url=settings.base_url, models_dir=settings.data_dir / "models")
    encoder.fit(["health check", "is the encoder working"])
    vectors = encoder.encode(["is the encoder working"])
    settings.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.cache, prefix=".doctor-"):
        pass
    return f"{name}: {vectors.shape[1]} dimensions; cache {settings.cache} writable"


def check_finetune(settings: Settings) -> str:
    """The latest background fine-tune (`graph.classifier.deferred`): running, done, or failed with
    its reason. Asks answer on the base weights meanwhile, but a failed one keeps them there."""
    from graph.classifier.deferred import Pending

    states = sorted(settings.cache.glob("finetune-*.json"), key=lambda p: p.stat().st_mtime)
    states = [p for p in states if not p.name.endswith(".job.json")]
    if not states:
        return "none started (the fine-tune is cached, or ran in the foreground)"
    pending = Pending(settings.cache, states[-1].name.removeprefix("finetune-").removesuffix(".json"))
    state = pending.state()
    if pending.running():
        return f"running (pid {state.get('pid')}); log {pending.log}"
    if state.get("state") == "failed":
        raise RuntimeError(
            f"the last background fine-tune failed ({state.get('error')}); the classifier answers on "
            f"base weights: run `routegraph prepare` to see why (log {pending.log})"
        )
    if state.get("state") == "running":
        raise RuntimeError(
            f"the last background fine-tune stopped before it finished (pid {state.get('pid')}); "
            f"the next ask starts it again (log {pending.log})"
        )
    return f"the last one is done ({len(states)} recorded)"


def check_checkpoints(settings: Settings) -> str:
    saver = resolve_checkpointer("auto", settings)
    assert saver is not None
    try:
        saver.get_tuple({"configurable": {"thread_id": "routegraph-doctor", "checkpoint_ns": ""}})
    finally:
        close = getattr(saver, "close", None)  # PostgreSQL: its pool
        if not callable(close):
            close = getattr(getattr(saver, "conn", None), "close", None)  # SQLite: its connection
        if callable(close):
            close()
    where = "PostgreSQL (ROUTEGRAPH_POSTGRES_URL)" if settings.postgres_url else str(settings.checkpoint_file)
    return f"{type(saver).__name__} at {where}"


def check_traces(settings: Settings) -> str:
    store = open_store(settings)
    try:
        version = store.schema_version()
        if version != LATEST:
            raise RuntimeError(f"{store.where}: schema v{version}, this code needs v{LATEST}")
        return f"{store.where}: schema v{version}, {store.count()} traces"
    finally:
        store.close()


def check_capability_stores(settings: Settings, registry: Registry) -> str | None:
    lines: dict[str, str] = {}
    for info in registry:
        health = getattr(getattr(info.instance, "db", None), "health", None)
        if callable(health):
            line = str(health(settings.data_dir))
            lines.setdefault(line, info.name)
    return "; ".join(lines) if lines else None


def check_model_endpoint(settings: Settings, registry: Registry, timeout: float = 5.0) -> str | None:
    models = registry.spec.models.default
    base = settings.base_url or models.base_url
    if not base:
        return None
    request = urllib.request.Request(base.rstrip("/") + "/models")
    key = settings.api_key(models.api_key_env)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        data = json.loads(reply.read().decode("utf-8") or "{}")
    found = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
    return f"{base}: {len(found)} models" + (f" ({', '.join(map(str, found[:3]))})" if found else "")


def doctor(settings: Settings, *, encoder: bool = True) -> list[Check]:
    """Run every check; a check that cannot run because the registry failed is a failure too."""
    redact = settings.redactor().redact
    checks = [_timed("registry", lambda: check_registry(settings), redact)]
    registry: Registry | None = None
    if checks[0].status == "ok":
        registry = Registry.from_file(settings.registry)
    if registry is not None and encoder:
        checks.append(_timed("encoder", lambda: check_encoder(settings, registry), redact))
    if encoder:  # a classifier matter, as the encoder: not part of /health (it degrades, not fails)
        checks.append(_timed("background fine-tune", lambda: check_finetune(settings), redact))
    checks.append(_timed("checkpoints", lambda: check_checkpoints(settings), redact))
    checks.append(_timed("traces", lambda: check_traces(settings), redact))
    if registry is not None:
        checks.append(
            _timed("capability stores", lambda: check_capability_stores(settings, registry), redact)
        )
        checks.append(_timed("model endpoint", lambda: check_model_endpoint(settings, registry), redact))
    return checks


def healthy(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def as_dict(checks: list[Check]) -> dict[str, object]:
    return {"ok": healthy(checks), "checks": [asdict(c) for c in checks]}


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.status:<4}  {c.name:<{width}}  {c.detail}" for c in checks)
