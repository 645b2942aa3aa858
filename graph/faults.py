"""Fault injection: make a node or a capability fail on purpose, to prove that every failure ends well.

Off by default. A `FaultPlan` maps a target to a `Fault`; a target is a node name (`intake`,
`classifier`, `respond`, ...), a capability name (`refund`), or `execute` for every capability step.
`make_node`, `dual` and the capability runner (nodes/) look their target up and wrap its work:

- `raise_*`: raise an error of each severity (`raise_retriable`, `raise_replanning`,
  `raise_reclassification`, `raise_critical`), an exception routegraph does not know
  (`raise_unknown`), or a `BaseException` (`raise_cancelled`, `raise_system_exit`,
  `raise_keyboard_interrupt`, `raise_generator_exit`);
- `hang`: wait far longer than any timeout (600 s unless given), `await`ing;
- `block`: the same in `time.sleep`, blocking the thread (a capability's, which the runner abandons;
  a node blocked this way cannot be cut, as it runs on the graph's loop);
- `slow`: wait a little (0.05 s unless given), then work normally;
- `return_none`, `return_list`, `return_text`, `return_object`, `return_nan`: answer garbage.

The target does its work first, then fails: the work happened (a side effect, a counter the node
keeps), its answer went wrong. A retry must not repeat the side effect, and a loop of failures
must meet its bound. A slow target waits, then works.

Where a plan comes from: `FaultPlan.parse("classifier:raise_retriable, refund:hang:5")` (a target,
a fault, optional seconds), `FaultPlan.from_env()` (`ROUTEGRAPH_FAULTS`), `Deps.faults`, or one run's
`config["configurable"]["routegraph_faults"]`, which counts only when it is a `FaultPlan` instance:
JSON sent to a server cannot switch faults on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from graph.errors import (
    CriticalError,
    FaultPlanError,
    ReclassificationError,
    ReplanningError,
    RetriableError,
)

ENV = "ROUTEGRAPH_FAULTS"
CONFIG_KEY = "routegraph_faults"
EVERY_STEP = "execute"
"""The target that stands for every capability step (the `execute` node)."""


class FaultKind(StrEnum):
    RAISE_RETRIABLE = "raise_retriable"
    RAISE_REPLANNING = "raise_replanning"
    RAISE_RECLASSIFICATION = "raise_reclassification"
    RAISE_CRITICAL = "raise_critical"
    RAISE_UNKNOWN = "raise_unknown"
    RAISE_CANCELLED = "raise_cancelled"
    RAISE_SYSTEM_EXIT = "raise_system_exit"
    RAISE_KEYBOARD_INTERRUPT = "raise_keyboard_interrupt"
    RAISE_GENERATOR_EXIT = "raise_generator_exit"
    HANG = "hang"
    BLOCK = "block"
    SLOW = "slow"
    RETURN_NONE = "return_none"
    RETURN_LIST = "return_list"
    RETURN_TEXT = "return_text"
    RETURN_OBJECT = "return_object"
    RETURN_NAN = "return_nan"


_EXCEPTIONS: dict[FaultKind, Callable[[str], BaseException]] = {
    FaultKind.RAISE_RETRIABLE: RetriableError,
    FaultKind.RAISE_REPLANNING: ReplanningError,
    FaultKind.RAISE_RECLASSIFICATION: ReclassificationError,
    FaultKind.RAISE_CRITICAL: CriticalError,
    FaultKind.RAISE_UNKNOWN: RuntimeError,
    FaultKind.RAISE_CANCELLED: asyncio.CancelledError,
    FaultKind.RAISE_SYSTEM_EXIT: SystemExit,
    FaultKind.RAISE_KEYBOARD_INTERRUPT: KeyboardInterrupt,
    FaultKind.RAISE_GENERATOR_EXIT: GeneratorExit,
}
_DEFAULT_SECONDS = {FaultKind.HANG: 600.0, FaultKind.BLOCK: 600.0, FaultKind.SLOW: 0.05}
GARBAGE = frozenset(
    {
        FaultKind.RETURN_NONE,
        FaultKind.RETURN_LIST,
        FaultKind.RETURN_TEXT,
        FaultKind.RETURN_OBJECT,
        FaultKind.RETURN_NAN,
    }
)


@dataclass(frozen=True)
class Fault:
    """One injected failure: what goes wrong, and for how long when it waits."""

    kind: FaultKind
    seconds: float | None = None

    @property
    def duration(self) -> float:
        return self.seconds if self.seconds is not None else _DEFAULT_SECONDS.get(self.kind, 0.0)

    def exception(self, target: str) -> BaseException | None:
        make = _EXCEPTIONS.get(self.kind)
        return make(f"injected fault {self.kind.value} in {target}") if make else None

    def garbage(self, target: str, *, node: bool) -> object:
        """What a garbage answer is: for a node, its state update; for a capability, its output."""
        if self.kind is FaultKind.RETURN_NAN:
            # A mapping a node may return, with a value strict JSON cannot hold.
            return {"control_timings_ms": {target: float("nan")}} if node else {"value": float("nan")}
        return {
            FaultKind.RETURN_NONE: None,
            FaultKind.RETURN_LIST: ["injected", "garbage"],
            FaultKind.RETURN_TEXT: "injected garbage",
            FaultKind.RETURN_OBJECT: object(),
        }[self.kind]

    async def inject(self, target: str, work: Callable[[], Awaitable[Any]], *, node: bool) -> Any:
        """Do `work()` the faulty way (see the module docstring); return what the target answers."""
        if self.kind is FaultKind.SLOW:
            await asyncio.sleep(self.duration)
            return await work()
        done = await work()
        if (exc := self.exception(target)) is not None:
            raise exc
        if self.kind in GARBAGE:
            return self.garbage(target, node=node)
        if self.kind is FaultKind.HANG:
            await asyncio.sleep(self.duration)
        elif self.kind is FaultKind.BLOCK:
            time.sleep(self.duration)
        return done


@dataclass(frozen=True)
class FaultPlan:
    """Which target fails how: an immutable value, empty (no faults) by default."""

    entries: tuple[tuple[str, Fault], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    @classmethod
    def of(cls, faults: Mapping[str, Fault | FaultKind | str]) -> FaultPlan:
        """A plan from `{target: fault}`; a fault may be given by its kind or its name."""
        entries = []
        for target, fault in faults.items():
            if not isinstance(fault, Fault):
                fault = Fault(FaultKind(fault))
            entries.append((target, fault))
        return cls(tuple(entries))

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """`"classifier:raise_retriable, refund:hang:5"`: comma-separated `target:fault[:seconds]`."""
        entries = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            target, _, rest = item.partition(":")
            name, _, seconds = rest.partition(":")
            try:
                kind = FaultKind(name.strip())
            except ValueError:
                known = ", ".join(k.value for k in FaultKind)
                raise FaultPlanError(f"{ENV}: {item!r}: unknown fault {name!r} (known: {known})") from None
            try:
                duration = float(seconds) if seconds else None
            except ValueError:
                raise FaultPlanError(f"{ENV}: {item!r}: {seconds!r} is not a number of seconds") from None
            if not target.strip():
                raise FaultPlanError(f"{ENV}: {item!r}: no target (a node or capability name)")
            entries.append((target.strip(), Fault(kind, duration)))
        return cls(tuple(entries))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FaultPlan:
        """The plan in `ROUTEGRAPH_FAULTS` of `env` (none when it is unset or empty)."""
        return cls.parse(env.get(ENV, ""))

    def fault_for(self, target: str) -> Fault | None:
        return next((fault for name, fault in self.entries if name == target), None)

    def step_fault(self, capability: str) -> Fault | None:
        """A capability's fault, else the one planned for every step (`execute`)."""
        return self.fault_for(capability) or self.fault_for(EVERY_STEP)


NO_FAULTS = FaultPlan()


def plan_for(config: Mapping[str, Any] | None, default: FaultPlan = NO_FAULTS) -> FaultPlan:
    """The run's plan (`configurable.routegraph_faults`, a `FaultPlan` instance only), else `default`."""
    value = ((config or {}).get("configurable") or {}).get(CONFIG_KEY)
    return value if isinstance(value, FaultPlan) else default
