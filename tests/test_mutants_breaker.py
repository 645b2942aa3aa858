"""The circuit breaker and the retry decision of `ExternalService`, at their edges: which answers
count against the service, when the breaker opens, how long it stays open, and that a disabled
breaker never refuses. Against the real status page served on 127.0.0.1 (as tests/test_external.py),
with a clock the test moves.

Written for the mutation check (scripts/mutants breaker): each test pins a boundary or a branch that
a flipped comparison or a dropped condition would move."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capabilities.support_desk.db import SupportDB
from capabilities.support_desk.incidents import SUMMARY_PATH
from capabilities.support_desk.status_page import Faults, StatusPage
from graph.capability.http import CircuitBreaker, ExternalService, ServicePolicy, ServiceUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def page(tmp_path: Path) -> Iterator[StatusPage]:
    server = StatusPage(SupportDB(tmp_path / "support.sqlite"), faults=Faults())
    server.serve_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def service(page: StatusPage, clock: Clock | None = None, **policy: Any) -> ExternalService:
    defaults: dict[str, Any] = {"attempts": 1, "backoff_initial": 0.0, "read_timeout": 1.0, "cache_ttl": 0}
    return ExternalService(
        "status page", page.url, ServicePolicy(**{**defaults, **policy}), clock=clock or time.monotonic
    )


def get(svc: ExternalService, path: str = SUMMARY_PATH) -> Any:
    return asyncio.run(svc.get_json(path))


def test_the_breaker_opens_at_its_threshold_not_before() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cool_down=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.snapshot()["opened"] == 1


def test_a_success_forgets_the_failures_before_it() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cool_down=10, clock=Clock())
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed" and breaker.snapshot()["consecutive_failures"] == 2


def test_a_late_failure_while_open_restarts_the_cool_down_and_is_not_a_new_opening() -> None:
    """Two requests went out while closed; the first failure opens the breaker, the second (still in
    flight then) fails later: the breaker stays open for a cool-down from that failure."""
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cool_down=10, clock=clock)
    assert breaker.allow() and breaker.allow()
    breaker.failure()
    clock.advance(6)
    breaker.failure()
    assert breaker.snapshot()["opened"] == 1
    clock.advance(6)  # 12 s after the opening, 6 s after the late failure
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.snapshot()["retry_in_seconds"] == pytest.approx(4)
    clock.advance(4)
    assert breaker.state == "half-open" and breaker.allow()


def test_the_cool_down_ends_on_the_second_and_a_failed_probe_reopens_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cool_down=10, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.advance(9.5)
    assert breaker.state == "open" and breaker.snapshot()["retry_in_seconds"] == 0.5
    clock.advance(0.499)
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(0.001)
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()
    breaker.failure()  # the probe failed
    assert breaker.state == "open" and breaker.snapshot()["opened"] == 2
    clock.advance(10)
    assert breaker.allow()  # a new probe after a new cool-down
    breaker.success()
    assert breaker.state == "closed" and breaker.snapshot()["consecutive_failures"] == 0
    assert breaker.snapshot()["retry_in_seconds"] == 0.0
    assert breaker.allow() and breaker.allow()  # closed: every request goes out


@pytest.mark.parametrize(("status", "retried"), [(500, True), (503, True), (429, True), (404, False)])
def test_5xx_and_429_are_retried_and_counted_a_4xx_is_neither(
    page: StatusPage, status: int, retried: bool
) -> None:
    svc = service(page, attempts=2, failure_threshold=2)
    page.faults.mode, page.faults.status = "error", status
    expected = f"HTTP {status}, 2 requests" if retried else f"HTTP {status}, 1 request"
    with pytest.raises(ServiceUnavailable, match=expected) as raised:
        get(svc)
    assert not raised.value.breaker_open
    assert page.faults.received == (2 if retried else 1)
    assert svc.breaker.state == ("open" if retried else "closed")


def test_a_disabled_breaker_never_refuses(page: StatusPage) -> None:
    svc = service(page, failure_threshold=1, breaker=False)
    page.faults.mode = "error"
    for _ in range(3):
        with pytest.raises(ServiceUnavailable, match="HTTP 503") as raised:
            get(svc)
        assert not raised.value.breaker_open
    assert page.faults.received == 3
    assert svc.breaker_report() == {"service": "status page", "state": "disabled"}
    assert svc.breaker.state == "closed"  # not fed: it is not used
    page.faults.mode = "healthy"
    assert get(svc).source == "live"


def test_an_open_breaker_refuses_without_a_request_and_says_so(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, failure_threshold=1, cool_down=30)
    page.faults.mode = "error"
    with pytest.raises(ServiceUnavailable, match=r"HTTP 503, 1 request$"):
        get(svc)
    page.faults.mode = "healthy"
    with pytest.raises(ServiceUnavailable, match=r"circuit breaker open$") as raised:
        get(svc)
    assert raised.value.breaker_open and raised.value.breaker["state"] == "open"
    assert page.faults.received == 1
    clock.advance(30)
    fetched = get(svc)
    assert fetched.source == "live" and fetched.breaker["state"] == "closed"


def test_a_stale_answer_is_served_up_to_its_maximum_age_inclusive(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, stale_max_age=600, failure_threshold=10)
    fresh = get(svc)
    page.faults.mode = "error"
    clock.advance(600)
    stale = get(svc)
    assert stale.source == "stale" and stale.data == fresh.data and stale.age_seconds == 600
    assert stale.attempts == 1 and stale.degraded
    clock.advance(0.001)
    with pytest.raises(ServiceUnavailable, match=r"^status page unavailable: HTTP 503, 1 request$"):
        get(svc)


def test_a_stale_answer_is_served_while_the_breaker_is_open(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, stale_max_age=600, failure_threshold=1, cool_down=60)
    get(svc)
    page.faults.mode = "error"
    assert get(svc).source == "stale"  # the failure that opens the breaker
    clock.advance(1)
    refused = get(svc)  # refused by the breaker: no request, the last good answer
    assert refused.source == "stale" and refused.attempts == 0
    assert refused.note is not None and "circuit breaker open" in refused.note
    assert refused.breaker["state"] == "open" and refused.breaker["refused"] == 1
    assert page.faults.received == 2
