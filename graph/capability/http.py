"""External HTTP services for capabilities: timeouts, retries, a TTL cache, a circuit breaker, and
a stale answer when the service is down.

A capability that depends on a service keeps one `ExternalService` for its lifetime (built in its
constructor from its registry options, `ServicePolicy.from_options`). Each `execute` runs on an
event loop of its own (see `Capability.execute`), so nothing loop-bound is kept: every `get_json`
opens its own `httpx.AsyncClient`, and what outlives a call (the breaker, the caches) is plain data
behind a `threading.Lock`.

`get_json` answers from, in order: the fresh cache (`cache_ttl`); the service, unless its breaker
is open (attempts with exponential backoff and jitter through tenacity, each attempt bounded by the
connect/read timeouts, every failed attempt counted by the breaker); the last good answer, marked
stale, while it is younger than `stale_max_age`. Otherwise it raises `ServiceUnavailable`, which
says whether the breaker is open; the runner then tries the capability's registry `fallback` chain.

Why tenacity here and not graph/retry.py: node and step retries are router decisions (a failure
becomes state, the graph re-enters the step); a request to a service is retried inside one call,
which is the loop tenacity is made for (stop after n attempts or a time budget, exponential wait
with jitter, retry only on transport errors and 5xx).

Why a small state machine and not a breaker library: the calls run on many event loops in many
threads. pybreaker holds a threading lock for the whole guarded call (one slow request would stall
every other thread's call to the service) and its async path needs Tornado; purgatory is asyncio
native but unlocked, lets every call through while half-open, and reads `time.time()` (no injected
clock for the cool-down); aiobreaker has had no release since 2021. `CircuitBreaker` below is the
three states, one lock held only for the bookkeeping, a single probe in half-open, and an
injectable clock.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from graph.errors import RetriableError

BreakerState = Literal["closed", "open", "half-open"]
Source = Literal["live", "cache", "stale"]


class ServicePolicy(BaseModel):
    """How one external service is called; a capability's registry options (`service` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout: float = Field(default=1.0, gt=0)
    """Seconds to open a connection."""
    read_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for the response (also the write and pool timeouts)."""
    attempts: int = Field(default=3, ge=1)
    """Requests per call at most (the first included), while the breaker lets them through."""
    backoff_initial: float = Field(default=0.1, ge=0)
    """Seconds before the second attempt; doubles each attempt, with jitter."""
    backoff_max: float = Field(default=1.0, ge=0)
    """Upper bound on one wait between attempts."""
    call_budget: float = Field(default=6.0, gt=0)
    """Seconds one call may spend on attempts and waits together (keep it under the step's timeout)."""
    cache_ttl: float = Field(default=30.0, ge=0)
    """Seconds a good answer is served from the cache without asking the service (0: never)."""
    stale_max_age: float = Field(default=3600.0, ge=0)
    """Seconds the last good answer may be served, marked stale, while the service is unreachable."""
    failure_threshold: int = Field(default=3, ge=1)
    """Consecutive failed requests that open the breaker."""
    cool_down: float = Field(default=30.0, ge=0)
    """Seconds the breaker stays open before one probe request is let through (half-open)."""
    breaker: bool = True
    """False: no breaker (every call tries the service); for comparison, as the benchmark does."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> ServicePolicy:
        return cls.model_validate(dict(options or {}))


class ServiceUnavailable(RetriableError):
    """A service gave no usable answer (after its attempts, or its breaker is open) and there was
    no stale answer to serve. RETRIABLE; with `breaker_open` the runner goes to the fallback chain
    at once (retrying the step would only be refused again)."""

    def __init__(self, service: str, reason: str, *, breaker_open: bool, breaker: dict[str, Any]) -> None:
        super().__init__(f"{service} unavailable: {reason}")
        self.service = service
        self.reason = reason
        self.breaker_open = breaker_open
        self.breaker = breaker


class BreakerOpen(RetriableError):
    """Raised inside `get_json` when the breaker refuses a request."""


class CircuitBreaker:
    """Closed, open, half-open, for one service; safe to share across threads and event loops.

    closed: requests go through; `failure_threshold` consecutive failures open it.
    open: requests are refused at once, for `cool_down` seconds; then the next request is the probe.
    half-open: that one probe is in flight, every other request is refused; its success closes the
    breaker, its failure opens it for another `cool_down`.
    """

    def __init__(
        self, failure_threshold: int, cool_down: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0
        """Times the breaker opened (closed or half-open -> open)."""
        self.refused = 0
        """Requests refused while open or half-open."""

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def _current(self) -> BreakerState:
        if self._state == "open" and self.clock() - self._opened_at >= self.cool_down:
            self._state, self._probing = "half-open", False
        return self._state

    def allow(self) -> bool:
        """Whether a request may go out now (in half-open: only the one probe)."""
        with self._lock:
            state = self._current()
            if state == "closed":
                return True
            if state == "half-open" and not self._probing:
                self._probing = True
                return True
            self.refused += 1
            return False

    def success(self) -> None:
        with self._lock:
            self._state, self._failures, self._probing = "closed", 0, False

    def failure(self) -> None:
        with self._lock:
            state = self._current()
            self._failures += 1
            if state == "half-open" or self._failures >= self.failure_threshold:
                if state != "open":
                    self.opened += 1
                self._state, self._opened_at, self._probing = "open", self.clock(), False

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON for a step's output (`ask --json`): state, counts, seconds until a probe."""
        with self._lock:
            state = self._current()
            retry_in = max(0.0, self._opened_at + self.cool_down - self.clock()) if state == "open" else 0.0
            return {
                "state": state,
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
                "opened": self.opened,
                "refused": self.refused,
                "retry_in_seconds": round(retry_in, 3),
            }


@dataclass(frozen=True)
class Fetched:
    """An answer of `get_json`: the data, where it came from, and how old it is."""

    data: Any
    source: Source
    age_seconds: float
    attempts: int
    """Requests this call sent (0 from the cache, or when the breaker refused)."""
    note: str | None
    """Set when the answer is degraded (stale): what the user must be told."""
    breaker: dict[str, Any]

    @property
    def degraded(self) -> bool:
        return self.source == "stale"

    def report(self) -> dict[str, Any]:
        """JSON for a step's output."""
        return {
            "source": self.source,
            "age_seconds": round(self.age_seconds, 1),
            "attempts": self.attempts,
            "degraded": self.degraded,
            "note": self.note,
            "breaker": self.breaker,
        }


def age_text(seconds: float) -> str:
    """`12 s`, `3 min`, `2 h`: how old an answer is, as a sentence says it."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, BreakerOpen):
        return "circuit breaker open"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection dropped without a reply"
    return f"{type(exc).__name__}: {exc}".rstrip(": ") if str(exc) else type(exc).__name__


class ExternalService:
    """One HTTP service as a capability uses it (see the module docstring)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        policy: ServicePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.policy = policy or ServicePolicy()
        self.clock = clock
        self.transport = transport
        self.breaker = CircuitBreaker(self.policy.failure_threshold, self.policy.cool_down, clock=clock)
        self._lock = threading.Lock()
        self._fresh: TTLCache[str, tuple[Any, float]] = TTLCache(
            maxsize=256, ttl=max(self.policy.cache_ttl, 1e-9), timer=clock
        )
        self._last_good: dict[str, tuple[Any, float]] = {}
        self._tls: ssl.SSLContext | None = None
        """Built once (httpx would build one per client: tens of milliseconds each call)."""

    def tls(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return self._tls

    def breaker_report(self) -> dict[str, Any]:
        return (
            {"service": self.name, **self.breaker.snapshot()}
            if self.policy.breaker
            else {
                "service": self.name,
                "state": "disabled",
            }
        )

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Fetched:
        """The service's JSON answer for `path` (see the module docstring for the order of sources).

        Raises `ServiceUnavailable` when there is nothing to serve.
        """
        key = path + ("?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")
        now = self.clock()
        with self._lock:
            fresh = self._fresh.get(key) if self.policy.cache_ttl > 0 else None
        if fresh is not None:
            return Fetched(fresh[0], "cache", now - fresh[1], 0, None, self.breaker_report())
        sent = [0]
        try:
            data = await self._fetch(path, params, sent)
        except Exception as exc:
            return self._stale_or_raise(key, exc, sent[0])
        fetched_at = self.clock()
        with self._lock:
            if self.policy.cache_ttl > 0:
                self._fresh[key] = (data, fetched_at)
            self._last_good[key] = (data, fetched_at)
        return Fetched(data, "live", 0.0, sent[0], None, self.breaker_report())

    async def _fetch(self, path: str, params: Mapping[str, str] | None, sent: list[int]) -> Any:
        """The decoded JSON; `sent[0]` counts the requests sent (also when it raises)."""
        policy = self.policy
        timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.call_budget),
            # initial, 2x initial, 4x ... up to backoff_max, plus up to one `initial` of jitter.
            wait=wait_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)
            + wait_random(0, policy.backoff_initial),
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        async with httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=self.transport,
            follow_redirects=False,
            verify=self.tls(),
        ) as client:
            async for attempt in retrying:
                with attempt:
                    if policy.breaker and not self.breaker.allow():
                        raise BreakerOpen(self.name)
                    sent[0] += 1
                    try:
                        response = await client.get(path, params=dict(params or {}))
                        response.raise_for_status()
                        data = response.json()
                    except BaseException as exc:
                        # A 4xx is the caller's mistake, not the service's health.
                        if policy.breaker and not (
                            isinstance(exc, httpx.HTTPStatusError) and not _worth_retrying(exc)
                        ):
                            self.breaker.failure()
                        raise
                    if policy.breaker:
                        self.breaker.success()
                    return data
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    def _stale_or_raise(self, key: str, exc: BaseException, attempts: int) -> Fetched:
        reason = _reason(exc)
        report = self.breaker_report()
        with self._lock:
            last = self._last_good.get(key)
        now = self.clock()
        if last is not None and now - last[1] <= self.policy.stale_max_age:
            age = now - last[1]
            note = f"{self.name} unreachable ({reason}), showing data from {age_text(age)} ago"
            return Fetched(last[0], "stale", age, attempts, note, report)
        raise ServiceUnavailable(
            self.name,
            f"{reason}, {attempts} request{'s' if attempts > 1 else ''}" if attempts else reason,
            breaker_open=isinstance(exc, BreakerOpen),
            breaker=report,
        ) from None


__all__ = [
    "BreakerOpen",
    "CircuitBreaker",
    "ExternalService",
    "Fetched",
    "ServicePolicy",
    "ServiceUnavailable",
    "age_text",
]
