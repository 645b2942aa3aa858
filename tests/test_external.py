"""External services: the status page served on 127.0.0.1, failing on demand (5xx, dropped
connections, latency), read through `ExternalService` (retries, TTL cache, circuit breaker, stale
answers), by the `incidents` capability, and through the whole graph with a SQLite checkpointer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capabilities.support_desk.db import SupportDB
from capabilities.support_desk.incidents import SUMMARY_PATH, Incidents
from capabilities.support_desk.status_page import Faults, StatusPage
from graph.builder import build_graph
from graph.capability import RunContext
from graph.capability.http import CircuitBreaker, ExternalService, ServicePolicy, ServiceUnavailable
from graph.config.settings import Settings
from nodes.base import GRACE_SECONDS
from tests.conftest import answer, ask, registry_with


class Clock:
    """A monotonic clock the test moves: the breaker's cool-down and the cache's TTL without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def db(tmp_path: Path) -> SupportDB:
    return SupportDB(tmp_path / "support.sqlite")


@pytest.fixture
def page(db: SupportDB) -> Iterator[StatusPage]:
    server = StatusPage(db, faults=Faults())
    server.serve_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def service(page: StatusPage, clock: Clock | None = None, **policy: Any) -> ExternalService:
    defaults: dict[str, Any] = {"attempts": 1, "backoff_initial": 0.0, "read_timeout": 1.0, "cache_ttl": 0}
    return ExternalService(
        "status page", page.url, ServicePolicy(**{**defaults, **policy}), clock=clock or time.monotonic
    )


def get(svc: ExternalService) -> Any:
    return asyncio.run(svc.get_json(SUMMARY_PATH))


def test_breaker_opens_after_n_failures_refuses_then_half_opens_and_recovers(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, failure_threshold=3, cool_down=30)
    page.faults.mode = "error"
    for i in range(3):
        assert svc.breaker.state == "closed", i
        with pytest.raises(ServiceUnavailable, match="HTTP 503") as raised:
            get(svc)
        assert not raised.value.breaker_open
    assert svc.breaker.state == "open" and page.faults.failed == 3
    # Open: refused at once, without a request.
    with pytest.raises(ServiceUnavailable, match="circuit breaker open") as raised:
        get(svc)
    assert raised.value.breaker_open and raised.value.breaker["state"] == "open"
    assert page.faults.failed == 3
    # After the cool-down one probe goes out; it fails: open again for another cool-down.
    clock.advance(30)
    assert svc.breaker.state == "half-open"
    with pytest.raises(ServiceUnavailable, match="HTTP 503"):
        get(svc)
    assert svc.breaker.state == "open" and page.faults.failed == 4
    assert svc.breaker.snapshot()["opened"] == 2
    # The service is back: the next probe succeeds and closes the breaker.
    page.faults.mode = "healthy"
    clock.advance(29)
    with pytest.raises(ServiceUnavailable, match="circuit breaker open"):
        get(svc)
    clock.advance(1)
    fetched = get(svc)
    assert fetched.source == "live" and fetched.breaker["state"] == "closed"
    assert {c["service"] for c in fetched.data["components"]} >= {"api", "webhooks"}


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cool_down=5, clock=clock)
    breaker.failure()
    assert not breaker.allow()
    clock.advance(5)
    assert breaker.allow()  # the probe
    assert not breaker.allow() and not breaker.allow()  # everyone else waits for its outcome
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()
    assert breaker.snapshot()["refused"] == 3


def test_retries_with_backoff_ride_out_transient_5xx(page: StatusPage) -> None:
    svc = service(page, attempts=3, backoff_initial=0.01, failure_threshold=5)
    page.faults.fail_next = 2
    fetched = get(svc)
    assert fetched.source == "live" and fetched.attempts == 3
    assert fetched.breaker["state"] == "closed" and fetched.breaker["consecutive_failures"] == 0
    page.faults.fail_next = 3  # as many as the attempts: the last good answer, marked stale
    stale = get(svc)
    assert stale.source == "stale" and stale.attempts == 3 and stale.note is not None
    assert stale.note.startswith("status page unreachable (HTTP 503)")


def test_a_client_error_is_not_retried_nor_counted_against_the_service(page: StatusPage) -> None:
    svc = ExternalService("status page", page.url, ServicePolicy(attempts=3, failure_threshold=1))
    with pytest.raises(ServiceUnavailable, match=r"HTTP 404, 1 request$"):
        asyncio.run(svc.get_json("/no/such/page"))
    assert svc.breaker.state == "closed"


def test_dropped_connections_and_slow_answers_fail_within_their_timeouts(page: StatusPage) -> None:
    svc = service(page, attempts=2, read_timeout=0.3, failure_threshold=10)
    page.faults.mode = "drop"
    with pytest.raises(ServiceUnavailable, match="connection dropped without a reply, 2 requests"):
        get(svc)
    page.faults.mode, page.faults.latency = "healthy", 5.0
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="timed out"):
        get(svc)
    assert time.monotonic() - started < 2.0  # two 0.3 s reads, not two 5 s answers


def test_answers_are_cached_for_their_ttl(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, cache_ttl=30)
    assert get(svc).source == "live"
    clock.advance(29)
    cached = get(svc)
    assert cached.source == "cache" and cached.age_seconds == pytest.approx(29) and not cached.degraded
    assert page.faults.served == 1
    clock.advance(2)
    assert get(svc).source == "live" and page.faults.served == 2


def test_the_last_good_answer_is_served_marked_stale_while_the_service_is_down(page: StatusPage) -> None:
    clock = Clock()
    svc = service(page, clock, cache_ttl=0, stale_max_age=600)
    fresh = get(svc)
    page.faults.mode = "error"
    clock.advance(180)
    stale = get(svc)
    assert stale.source == "stale" and stale.degraded and stale.data == fresh.data
    assert stale.note == "status page unreachable (HTTP 503), showing data from 3 min ago"
    clock.advance(600)  # older than stale_max_age: nothing to serve
    with pytest.raises(ServiceUnavailable):
        get(svc)


def run_incidents(cap: Incidents, query: str, data_dir: Path) -> dict[str, Any]:
    inputs = cap.parse_inputs(query, {}, {})
    return asyncio.run(cap.execute(inputs, RunContext(task=query, data_dir=data_dir)))


def test_incidents_reads_the_status_page_and_says_when_it_degrades(
    page: StatusPage, db: SupportDB, tmp_path: Path
) -> None:
    offline = Incidents({"db": str(db.path)})
    online = Incidents(
        {"db": str(db.path), "status_url": page.url, "status_service": {"cache_ttl": 0, "attempts": 1}}
    )
    local, remote = (run_incidents(c, "is the API down?", tmp_path) for c in (offline, online))
    assert remote["service_status"] == local["service_status"] == {"api": "partial outage"}
    assert remote["summary"] == local["summary"] and "external" not in local
    assert remote["external"]["status_page"]["source"] == "live" and remote["degraded"] is None
    page.faults.mode = "drop"
    stale = run_incidents(online, "is the API down?", tmp_path)
    assert stale["summary"].startswith("Note: status page unreachable (")
    assert (
        "showing data from 0 s ago" in stale["summary"] and stale["service_status"] == local["service_status"]
    )
    # No answer to fall back on: the embedded database's copy, said so.
    fresh = Incidents({"db": str(db.path), "status_url": page.url, "status_service": {"attempts": 1}})
    degraded = run_incidents(fresh, "are webhooks failing?", tmp_path)
    assert degraded["external"]["status_page"]["source"] == "embedded_db"
    assert degraded["summary"].startswith("Note: status page unreachable (")
    assert "embedded database's copy" in degraded["degraded"]
    strict = Incidents(
        {
            "db": str(db.path),
            "status_url": page.url,
            "degrade_to_db": False,
            "status_service": {"attempts": 1},
        }
    )
    with pytest.raises(ServiceUnavailable):
        run_incidents(strict, "are webhooks failing?", tmp_path)


def test_incidents_options_are_checked() -> None:
    with pytest.raises(ValueError, match="status_url"):
        Incidents({"status_url": "ftp://example"})
    with pytest.raises(ValueError, match="failure_threshold"):
        Incidents({"status_url": "http://127.0.0.1:9", "status_service": {"failure_threshold": 0}})


INCIDENTS = {"name": "incidents", "class": "capabilities.support_desk.incidents:Incidents", "timeout": 3}
KNOWLEDGE = {
    "name": "knowledge_search",
    "class": "capabilities.support_desk.knowledge_search:KnowledgeSearch",
}


def support_graph(tmp_path: Path, page: StatusPage, *, max_seconds: float = 20, **incidents: Any) -> Any:
    options = {"db": str(tmp_path / "support.sqlite"), "status_url": page.url}
    entry = {**INCIDENTS, **incidents, "options": {**options, **incidents.get("options", {})}}
    registry = registry_with(
        entry,
        {**KNOWLEDGE, "options": {"db": str(tmp_path / "support.sqlite")}},
        limits={"max_seconds": max_seconds, "retry_initial_delay": 0.0, "retry_max_delay": 0.0},
    )
    # Settings.offline: the SQLite checkpointer in tmp_path.
    return build_graph(registry=registry, settings=Settings.offline(tmp_path))


def test_a_run_with_the_status_page_down_ends_success_with_a_degraded_answer(
    page: StatusPage, tmp_path: Path
) -> None:
    graph = support_graph(tmp_path, page, options={"status_service": {"attempts": 2, "read_timeout": 0.5}})
    page.faults.mode = "error"
    started = time.monotonic()
    state = ask(graph, "the API keeps returning 500s", thread="down")
    assert time.monotonic() - started < 20 + GRACE_SECONDS
    assert state["control_stop_reason"] == "success"
    assert (tmp_path / "checkpoints.sqlite").exists()
    text = answer(state)
    assert "status page unreachable (HTTP 503" in text and "REST API: partial outage" in text
    [result] = state["execution_results"].values()
    assert result["capability"] == "incidents" and result["status"] == "ok"
    assert result["output"]["external"]["status_page"]["breaker"]["service"] == "status page"


def test_a_status_page_slower_than_the_turn_never_hangs_the_run(page: StatusPage, tmp_path: Path) -> None:
    """The step's timeout is shorter than the service's answer: the step is abandoned, retried,
    then the fallback chain answers; the turn ends within max_seconds + grace either way."""
    graph = support_graph(
        tmp_path,
        page,
        max_seconds=6,
        timeout=1,
        retry={"max_attempts": 2},
        fallback=["knowledge_search"],
        options={"status_service": {"read_timeout": 30, "connect_timeout": 1, "attempts": 1}},
    )
    page.faults.latency = 30
    started = time.monotonic()
    state = ask(graph, "the API keeps returning 500s", thread="slow")
    assert time.monotonic() - started < 6 + GRACE_SECONDS
    assert state["control_stop_reason"] == "success"
    [result] = state["execution_results"].values()
    assert result["capability"] == "knowledge_search" and result["attempts"] == 2
    assert result["output"]["fallback"]["for"] == "incidents"
    assert "incidents was unavailable (TimeoutError" in answer(state)
    assert "knowledge_search answered instead" in answer(state)


def test_the_benchmark_reports_every_scenario_with_and_without_the_breaker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from benchmarks import external

    assert external.main(["--requests", "2", "--interval", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cases = {(c["scenario"], c["breaker"]): c for c in result["cases"]}
    assert set(cases) == {(s, b) for s in external.SCENARIOS for b in (True, False)}
    assert cases[("healthy", True)]["live"] == 1.0
    assert cases[("down", False)]["sources"] == {"stale": 2}
    assert cases[("down", False)]["sent"] == 4  # two attempts per request, no breaker to stop them
    for case in cases.values():
        assert case["served"] == 1.0 and case["p95_ms"] >= case["p50_ms"] > 0
