"""Specialist pools: each capability runs as one or more instances, with a capacity, a weight and a
health each, and a bounded queue in front of them.

`Pools` holds every capability's pool for one process. The runner (nodes/runner.py) leases an
instance for each step (`acquire`) and gives it back with the outcome (`release`), which feeds the
instance's moving averages (EWMA of latency and success), its latency window (p50/p95) and its
health (`unhealthy_after` consecutive failures rest it for `cooldown` seconds). When every instance
is at capacity the step waits in the queue, first come first served, at most `queue_wait` seconds
and `queue_size` deep; then it fails with `Overloaded` (stop_reason `overloaded`), never a hang.

Why a lock and futures rather than `asyncio.Semaphore`: one graph is driven from several event
loops (`graph.invoke` runs each node on a loop of its own, parallel steps in threads), and an
asyncio primitive belongs to one loop. The pool's state is guarded by a `threading.RLock`; a
waiting step parks on a future of its own loop, and whoever frees an instance hands it over with
`call_soon_threadsafe`. All of it lives in one process: with the server, that is the server's.

Instances can be created from the registry's templates, scaled and retired at run time
(`create`, `scale`, `retire`); a retired instance finishes the steps it runs and takes no new one.
`reload` applies a new registry to the same pools (statistics of unchanged instances are kept).
`advise` reads the statistics and says which instances to retire and which pools to scale up.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from graph.capability.base import Capability
from graph.config.registry import Registry
from graph.config.schema import InstanceSpec, PoolSpec
from graph.errors import ConfigError, StopError
from graph.pools.policies import POLICIES, Cursor

EWMA_ALPHA = 0.2
"""Weight of the newest observation in the moving averages of latency and success."""
WINDOW = 256
"""Latest latencies kept per instance, for p50 and p95."""
ADVICE_MIN_STEPS = 10
"""Steps an instance must have run before `advise` judges it."""
RETIRE_BELOW_SUCCESS = 0.8
SLOW_FACTOR = 3.0
"""`advise`: an instance whose p95 is this many times the pool's median p95 should be retired..."""
SLOW_MARGIN = 0.005
"""... and at least this many seconds over it (sub-millisecond latencies are mostly noise)."""
QUEUED_SHARE = 0.1
"""`advise`: a pool where more than this share of steps waited for an instance should grow."""
MAX_INSTANCES = 100
"""The most live instances a pool takes from `create` and `scale` (run-time requests: a typo of
`replicas: 100000` would otherwise build them all, on the server's event loop)."""

Origin = Literal["capability", "registry", "template", "scaled"]
"""Where an instance came from: the capability itself (no pool declared: one instance, no capacity
limit), its registry pool, a template (`create`), or `scale` (copies of the capability)."""


class Overloaded(StopError):
    """Every instance of a pool was busy and the queue was full, or the wait ran out."""

    stop_reason = "overloaded"

    def __init__(self, message: str, *, waited: float = 0.0, by_turn: bool = False) -> None:
        super().__init__(message)
        self.waited = waited
        self.by_turn = by_turn
        """The wait was cut by the turn's time (max_seconds), not by the queue's."""


class PoolError(ConfigError):
    """A request of the pool API that cannot be done (unknown template, taken name, bad options)."""


@dataclass(eq=False)
class Instance:
    """One instance of a capability and its live statistics."""

    name: str
    capability: str
    impl: Capability | None
    """The capability object it runs; None for an implicit instance (the graph's own object runs)."""
    capacity: int | None
    weight: float = 1.0
    origin: Origin = "registry"
    template: str | None = None
    key: str = ""
    """What it was built from (class, options, capacity, weight): `reload` replaces it when this changes."""
    in_flight: int = 0
    served: int = 0
    ok: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    unhealthy_until: float = 0.0
    retired: bool = False
    latency_ewma: float | None = None
    success_ewma: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def has_room(self) -> bool:
        return not self.retired and (self.capacity is None or self.in_flight < self.capacity)

    def healthy(self, now: float) -> bool:
        return now >= self.unhealthy_until

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def snapshot(self, now: float) -> dict[str, Any]:
        p50, p95 = self.percentile(50), self.percentile(95)
        return {
            "name": self.name,
            "capability": self.capability,
            "origin": self.origin,
            "template": self.template,
            "in_flight": self.in_flight,
            "capacity": self.capacity,
            "weight": self.weight,
            "served": self.served,
            "ok": self.ok,
            "failed": self.failed,
            "success_rate": None if self.success_ewma is None else round(self.success_ewma, 4),
            "latency_ewma_ms": None if self.latency_ewma is None else round(self.latency_ewma * 1000, 3),
            "p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p95_ms": None if p95 is None else round(p95 * 1000, 3),
            "health": "retiring" if self.retired else ("healthy" if self.healthy(now) else "unhealthy"),
        }


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    preferred: str | None
    assigned: Instance | None = None
    gone: bool = False


@dataclass(eq=False)
class Pool:
    """One capability's instances, its policy and its queue."""

    capability: str
    spec: PoolSpec
    declared: bool
    """A `pool:` block in the registry (else one implicit instance without a capacity limit)."""
    instances: list[Instance] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)
    waiters: deque[_Waiter] = field(default_factory=deque)
    steps: int = 0
    queued: int = 0
    """Steps that had to wait for an instance."""
    timeouts: int = 0
    rejected: int = 0
    """Steps refused at once: the queue was full."""

    def live(self) -> list[Instance]:
        return [i for i in self.instances if not i.retired]

    def pick(self, now: float, preferred: str | None) -> Instance | None:
        """A free instance by the policy (a healthy one while any live instance is healthy), or None."""
        live = self.live()
        free = [i for i in live if i.has_room()]
        if not free:
            return None
        ready = [i for i in free if i.healthy(now)]
        if not ready:
            if any(i.healthy(now) for i in live):
                return None  # a healthy instance is busy: wait for it rather than use a resting one
            ready = free  # all are resting: try one (as a breaker's half-open probe)
        for candidate in ready:
            if candidate.name == preferred:
                return candidate
        chosen = POLICIES[self.spec.policy](ready, [i.name for i in live], self.cursor, self.spec.exploration)
        return chosen  # type: ignore[return-value]

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "policy": self.spec.policy,
            "declared": self.declared,
            "queue": {
                "waiting": len(self.waiters),
                "size": self.spec.queue_size,
                "wait_s": self.spec.queue_wait,
                "steps": self.steps,
                "queued": self.queued,
                "timeouts": self.timeouts,
                "rejected": self.rejected,
            },
            "instances": [i.snapshot(now) for i in self.instances],
        }


class Lease(NamedTuple):
    """An instance leased for one step: give it back with `Pools.release`."""

    instance: Instance
    pool: Pool
    queued_ms: float = 0.0


class Pools:
    """Every capability's pool in this process, and the API to change them at run time.

    Args:
        registry: the registry whose `pool:` blocks and templates apply.
        clock: monotonic seconds, for health cool-downs (injectable in tests).
    """

    def __init__(self, registry: Registry, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._pools: dict[str, Pool] = {}
        self.registry = registry
        self.reload(registry)

    # -- the runner's side ------------------------------------------------------------------

    async def acquire(self, capability: str, *, preferred: str | None = None, wait: float | None = None) -> Lease:
        """Lease an instance of `capability` for one step, waiting in the queue when all are busy.

        `preferred`: an instance to use when it is healthy and has room (a user's continuity).
        `wait`: at most this long in the queue (what is left of the turn), besides `queue_wait`.
        Raises `Overloaded` when the queue is full or the wait runs out.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.get(capability)
            if pool is None or not pool.live():
                # Not (or no longer) in the registry these pools follow: a run that started on an
                # earlier registry runs its step on its own graph's object, uncounted.
                transient = Instance(capability, capability, None, None, origin="capability")
                transient.in_flight += 1
                return Lease(transient, Pool(capability, PoolSpec(queue_size=0), declared=False))
            pool.steps += 1
            if not pool.waiters and (chosen := pool.pick(self._clock(), preferred)) is not None:
                chosen.in_flight += 1
                return Lease(chosen, pool)
            busy = f"all {len(pool.live())} instance(s) of {capability} are busy"
            if len(pool.waiters) >= pool.spec.queue_size:
                pool.rejected += 1
                raise Overloaded(f"{busy} and its queue is full ({pool.spec.queue_size} waiting)")
            limit = pool.spec.queue_wait
            by_turn = wait is not None and wait < limit
            if by_turn:
                limit = max(wait or 0.0, 0.0)
            waiter = _Waiter(loop, loop.create_future(), preferred)
            pool.waiters.append(waiter)
            pool.queued += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(waiter.future)
        except TimeoutError:
            pass
        except BaseException:  # cancelled: whatever was handed over goes to the next in line
            with self._lock:
                waiter.gone = True
                if waiter.assigned is not None:
                    self._give_back(waiter.assigned, pool)
            raise
        waited = time.perf_counter() - started
        with self._lock:
            waiter.gone = True
            if waiter.assigned is not None:
                return Lease(waiter.assigned, pool, round(waited * 1000, 3))
            pool.timeouts += 1
        raise Overloaded(
            f"{busy}: no instance was free within {limit:.3g} s", waited=waited, by_turn=by_turn
        )

    def release(self, lease: Lease, *, ok: bool, seconds: float) -> None:
        """Give an instance back with its step's outcome and duration (seconds)."""
        inst, pool = lease.instance, lease.pool
        with self._lock:
            inst.served += 1
            inst.latencies.append(seconds)
            a = EWMA_ALPHA
            inst.latency_ewma = seconds if inst.latency_ewma is None else a * seconds + (1 - a) * inst.latency_ewma
            value = 1.0 if ok else 0.0
            inst.success_ewma = value if inst.success_ewma is None else a * value + (1 - a) * inst.success_ewma
            if ok:
                inst.ok += 1
                inst.consecutive_failures = 0
            else:
                inst.failed += 1
                inst.consecutive_failures += 1
                if inst.consecutive_failures >= pool.spec.unhealthy_after:
                    inst.unhealthy_until = self._clock() + pool.spec.cooldown
            self._give_back(inst, pool)

    def _give_back(self, inst: Instance, pool: Pool) -> None:
        inst.in_flight -= 1
        if inst.retired and inst.in_flight <= 0 and inst in pool.instances:
            pool.instances.remove(inst)
        self._dispatch(pool)

    def _dispatch(self, pool: Pool) -> None:
        """Hand free instances to the steps waiting, first come first served (under the lock)."""
        now = self._clock()
        while pool.waiters:
            waiter = pool.waiters[0]
            if waiter.gone:
                pool.waiters.popleft()
                continue
            chosen = pool.pick(now, waiter.preferred)
            if chosen is None:
                return
            pool.waiters.popleft()
            chosen.in_flight += 1
            waiter.assigned = chosen
            try:
                waiter.loop.call_soon_threadsafe(_wake, waiter.future)
            except RuntimeError:  # its loop is closed: the step is gone
                waiter.assigned = None
                chosen.in_flight -= 1

    # -- the operator's side ----------------------------------------------------------------

    def create(
        self,
        template: str,
        name: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        capacity: int | None = None,
        weight: float | None = None,
    ) -> dict[str, Any]:
        """Start an instance from a registry template; it joins its capability's pool at once."""
        with self._lock:
            spec = next((t for t in self.registry.spec.templates if t.name == template), None)
            if spec is None:
                known = ", ".join(t.name for t in self.registry.spec.templates) or "none"
                raise PoolError(f"unknown template {template!r} (known: {known})")
            pool = self._pools[spec.capability]
            if len(pool.live()) >= MAX_INSTANCES:
                raise PoolError(f"the {spec.capability} pool has its most live instances ({MAX_INSTANCES})")
            name = name or self._next_name(template)
            self._check_name(name)
            _check_load(capacity, weight)
            merged = {**self._base_options(spec.capability), **spec.options, **(options or {})}
            cls = self.registry.template_classes[template]
            inst = Instance(
                name=name,
                capability=spec.capability,
                impl=_construct(cls, merged, name, spec.capability),
                capacity=capacity or spec.capacity or pool.spec.capacity,
                weight=weight if weight is not None else spec.weight,
                origin="template",
                template=template,
            )
            pool.instances.append(inst)
            self._dispatch(pool)
            return inst.snapshot(self._clock())

    def scale(self, name: str, replicas: int) -> list[dict[str, Any]]:
        """Make `replicas` live instances of a template (named by it) or of a capability's pool:
        new ones are created (from the template, or as copies of the capability), the newest are
        retired. Returns the live instances afterwards."""
        if not 0 <= replicas <= MAX_INSTANCES:
            raise PoolError(f"replicas must be 0 to {MAX_INSTANCES}")
        with self._lock:
            is_template = any(t.name == name for t in self.registry.spec.templates)
            if not is_template and name not in self._pools:
                raise PoolError(f"{name!r} is neither a template nor a capability")
            if is_template:
                capability = next(t.capability for t in self.registry.spec.templates if t.name == name)
                members = [i for i in self._pools[capability].live() if i.template == name]
            else:
                capability = name
                members = self._pools[name].live()
            pool = self._pools[capability]
            while len(members) < replicas:
                if is_template:
                    self.create(name)
                else:
                    pool.instances.append(self._copy(pool))
                members = [i for i in pool.live() if (i.template == name if is_template else True)]
            for inst in members[replicas:][::-1]:
                self._retire(inst, pool)
            self._dispatch(pool)
            now = self._clock()
            return [i.snapshot(now) for i in pool.live() if (i.template == name if is_template else True)]

    def retire(self, name: str) -> dict[str, Any]:
        """Take an instance out of service: it finishes the steps it runs and takes no new one."""
        with self._lock:
            for pool in self._pools.values():
                for inst in pool.live():
                    if inst.name == name:
                        self._retire(inst, pool)
                        return inst.snapshot(self._clock())
            known = ", ".join(i.name for p in self._pools.values() for i in p.live()) or "none"
            raise PoolError(f"no live instance named {name!r} (live: {known})")

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every pool with its queue and its instances' load, latency, success rate and health."""
        with self._lock:
            now = self._clock()
            return [pool.snapshot(now) for pool in self._pools.values()]

    def instance(self, name: str) -> Instance | None:
        """The live instance with this name, if any (for tests and tools)."""
        with self._lock:
            return next((i for p in self._pools.values() for i in p.live() if i.name == name), None)

    def advise(self) -> builtins.list[dict[str, Any]]:
        """What the statistics suggest: retire an instance that fails too often (success rate below
        0.8) or is slow (p95 over 3x the pool's median p95); scale up a pool whose steps often
        waited for an instance (over 10%) or were turned away. Each item: action, target, reason."""
        advice: list[dict[str, Any]] = []
        with self._lock:
            for pool in self._pools.values():
                judged = [i for i in pool.live() if i.served >= ADVICE_MIN_STEPS]
                p95s = {i.name: i.percentile(95) or 0.0 for i in judged}
                median = statistics.median(p95s.values()) if len(p95s) >= 2 else None
                for inst in judged:
                    rate = inst.success_ewma if inst.success_ewma is not None else 1.0
                    if rate < RETIRE_BELOW_SUCCESS:
                        why = f"success rate {rate:.2f} < {RETIRE_BELOW_SUCCESS} over its latest steps"
                        advice.append({"action": "retire", "target": inst.name, "reason": why})
                    elif median is not None and p95s[inst.name] > max(SLOW_FACTOR * median, median + SLOW_MARGIN):
                        why = (
                            f"p95 {p95s[inst.name] * 1000:.0f} ms is over {SLOW_FACTOR:g}x the pool's "
                            f"median p95 ({median * 1000:.0f} ms)"
                        )
                        advice.append({"action": "retire", "target": inst.name, "reason": why})
                if pool.steps and (pool.rejected or pool.timeouts or pool.queued / pool.steps > QUEUED_SHARE):
                    why = (
                        f"{pool.queued} of {pool.steps} steps waited for an instance, {pool.timeouts} "
                        f"timed out in the queue, {pool.rejected} found it full"
                    )
                    advice.append({"action": "scale_up", "target": pool.capability, "reason": why})
        return advice

    def reload(self, registry: Registry) -> None:
        """Apply a (new) registry: declared instances whose recipe changed are replaced, those no
        longer declared retire (they finish their steps), template and scaled instances stay while
        their capability exists; pool settings change at once."""
        with self._lock:
            self.registry = registry
            entries = {e.name: e for e in registry.spec.capabilities if e.enabled and e.name in registry}
            for name, entry in entries.items():
                pool = self._pools.get(name)
                spec = entry.pool or PoolSpec(queue_size=0)
                if pool is None:
                    pool = self._pools[name] = Pool(name, spec, declared=entry.pool is not None)
                pool.spec, pool.declared = spec, entry.pool is not None
                wanted = {i.name: i for i in self._declared(name)}
                for inst in pool.live():
                    if inst.origin in ("capability", "registry") and (
                        inst.name not in wanted or wanted[inst.name].key != inst.key
                    ):
                        self._retire(inst, pool)
                have = {i.name for i in pool.live()}
                pool.instances.extend(i for i in wanted.values() if i.name not in have)
            for name, pool in self._pools.items():
                if name not in entries:
                    for inst in pool.live():
                        self._retire(inst, pool)
            for pool in self._pools.values():
                self._dispatch(pool)

    # -- helpers ----------------------------------------------------------------------------

    def _declared(self, capability: str) -> builtins.list[Instance]:
        """The instances the registry declares for a capability (constructed, not yet in a pool)."""
        entry = next(e for e in self.registry.spec.capabilities if e.name == capability and e.enabled)
        if entry.pool is None:
            return [Instance(capability, capability, None, None, origin="capability", key="capability")]
        cls = type(self.registry[capability].instance)
        made = []
        for member in entry.pool.members(capability):
            options = {**entry.options, **member.options}
            capacity = member.capacity or entry.pool.capacity
            key = json.dumps([entry.class_path, options, capacity, member.weight], sort_keys=True, default=str)
            made.append(
                Instance(
                    member.name,
                    capability,
                    _construct(cls, options, member.name, capability),
                    capacity,
                    member.weight,
                    origin="registry",
                    key=key,
                )
            )
        return made

    def _copy(self, pool: Pool) -> Instance:
        capability = pool.capability
        cls = type(self.registry[capability].instance)
        name = self._next_name(capability)
        options = self._base_options(capability)
        return Instance(name, capability, _construct(cls, options, name, capability), pool.spec.capacity, origin="scaled")

    def _base_options(self, capability: str) -> dict[str, Any]:
        entry = next(e for e in self.registry.spec.capabilities if e.name == capability and e.enabled)
        return dict(entry.options)

    def _retire(self, inst: Instance, pool: Pool) -> None:
        inst.retired = True
        if inst.in_flight <= 0 and inst in pool.instances:
            pool.instances.remove(inst)

    def _check_name(self, name: str) -> None:
        InstanceSpec(name=name)  # the name pattern (raises pydantic's ValidationError, a ValueError)
        if any(i.name == name for p in self._pools.values() for i in p.live()):
            raise PoolError(f"an instance named {name!r} is already live")

    def _next_name(self, prefix: str) -> str:
        taken = {i.name for p in self._pools.values() for i in p.instances}
        k = 1
        while f"{prefix}-{k}" in taken:
            k += 1
        return f"{prefix}-{k}"


def _check_load(capacity: object, weight: object) -> None:
    """An instance's capacity (a whole number, 1 or more) and weight (a finite number above 0), as
    the registry's `InstanceSpec` has them: what an operator sends at run time is not trusted to be
    either (a string or a NaN here would fail every later step of the pool, not this request)."""
    if capacity is not None and (type(capacity) is not int or capacity < 1):
        raise PoolError(f"capacity must be a whole number, 1 or more (got {capacity!r})")
    number = float(weight) if type(weight) in (int, float) else math.nan  # type: ignore[arg-type]
    if weight is not None and not (math.isfinite(number) and number > 0):
        raise PoolError(f"weight must be a finite number above 0 (got {weight!r})")


def _construct(cls: type[Capability], options: dict[str, Any], name: str, capability: str) -> Capability:
    try:
        impl = cls(options)
    except Exception as exc:
        raise PoolError(f"{cls.__module__}.{cls.__name__} rejected the options of {name}: {exc}") from None
    if impl.name != capability:  # as the registry does: messages and questions name the step's capability
        vars(impl)["name"] = capability
    return impl


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
