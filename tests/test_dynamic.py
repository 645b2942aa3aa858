"""Dynamic specialists: instances created from templates, scaled and retired at run time (a retired
instance finishes its steps and takes no new one), advice from the statistics, the server's
registry reload (runs in flight keep their graph; a bad registry is refused) and the HTTP API."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage
from starlette.testclient import TestClient

from graph.builder import build_graph
from graph.config.settings import Settings
from graph.pools import PoolError, Pools
from graph.pools.http import pools_app
from graph.pools.serving import Served
from tests.conftest import BASE, guide, registry_with
from tests.test_pools import call, many, pooled

TEMPLATES = [{"name": "echo_fast", "capability": "echo", "options": {"label": "F"}, "capacity": 2}]


async def test_templates_create_instances_that_take_steps_at_once() -> None:
    pools = Pools(pooled([{"name": "base", "options": {"delay": 0.3}}], capacity=1))
    pools.registry = registry_with(
        {**_echo(), "pool": {"instances": [{"name": "base", "options": {"delay": 0.3}}], "capacity": 1}},
        templates=TEMPLATES,
    )
    pools.reload(pools.registry)
    held = await pools.acquire("echo")
    made = pools.create("echo_fast", options={"label": "X"})
    assert made["name"] == "echo_fast-1" and made["capacity"] == 2
    name, ok = await call(pools)  # `base` is busy: the new instance takes it without waiting
    assert (name, ok) == ("echo_fast-1", True)
    impl = pools.instance("echo_fast-1")
    assert impl is not None and impl.impl is not None and impl.impl.options["label"] == "X"
    pools.release(held, ok=True, seconds=0.3)
    with pytest.raises(PoolError, match="unknown template 'nope'"):
        pools.create("nope")
    with pytest.raises(PoolError, match="already live"):
        pools.create("echo_fast", "echo_fast-1")


async def test_scale_grows_and_shrinks_a_capability_and_a_template() -> None:
    registry = registry_with({**_echo(), "pool": {"replicas": 2}}, templates=TEMPLATES)
    pools = Pools(registry)
    assert [i["name"] for i in pools.scale("echo", 4)] == ["echo-1", "echo-2", "echo-3", "echo-4"]
    assert [i["name"] for i in pools.scale("echo", 1)] == ["echo-1"]
    assert [i["name"] for i in pools.scale("echo_fast", 2)] == ["echo_fast-1", "echo_fast-2"]
    assert {n for n, _ in await many(pools, 30, 3)} == {"echo-1", "echo_fast-1", "echo_fast-2"}
    with pytest.raises(PoolError, match="neither a template nor a capability"):
        pools.scale("ghost", 1)


async def test_a_retired_instance_finishes_its_step_and_takes_no_more() -> None:
    registry = pooled([{"name": "slow", "options": {"delay": 0.5}}, {"name": "other"}], capacity=4)
    pools = Pools(registry)
    running = asyncio.create_task(call(pools))  # round-robin: `slow` first
    await asyncio.sleep(0.05)
    retiring = pools.retire("slow")
    assert retiring["health"] == "retiring" and retiring["in_flight"] == 1
    assert [(await call(pools))[0] for _ in range(4)] == ["other"] * 4
    assert await running == ("slow", True)  # it finished its work
    assert [i["name"] for i in pools.list()[-1]["instances"]] == ["other"]  # and is gone
    with pytest.raises(PoolError, match="no live instance named 'slow'"):
        pools.retire("slow")


async def test_advice_retires_the_failing_and_the_slow_and_grows_a_crowded_pool() -> None:
    registry = pooled(
        [
            {"name": "good", "options": {"delay": 0.002}},
            {"name": "slow", "options": {"delay": 0.03}},
            {"name": "failing", "options": {"fail": True, "delay": 0.002}},
            {"name": "good2", "options": {"delay": 0.002}},
        ],
        capacity=1,
        unhealthy_after=1000,
    )
    pools = Pools(registry)
    await many(pools, 600, 6)
    advice = {(a["action"], a["target"]) for a in pools.advise()}
    assert ("retire", "failing") in advice and ("retire", "slow") in advice
    assert ("scale_up", "echo") in advice
    assert not {("retire", "good"), ("retire", "good2")} & advice


def _echo() -> dict[str, Any]:
    return {"name": "echo", "class": "tests.test_pools:Variant", "classifier_guide": guide("echo this back")}


def _write(path: Path, delay: float, label: str) -> None:
    data = copy.deepcopy(BASE)
    data["capabilities"].append({**_echo(), "options": {"delay": delay, "label": label}})
    data["templates"] = TEMPLATES
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_a_changed_registry_reaches_new_runs_while_a_run_in_flight_keeps_its_own(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.yaml"
    _write(path, 1.0, "old")
    served = Served(path, lambda r, p: build_graph(registry=r, settings=settings, checkpointer="memory", pools=p))
    first = served.current()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async def run(graph: Any, thread: str) -> dict[str, Any]:
            message = {"messages": [HumanMessage("echo this back")]}
            return dict(await graph.ainvoke(message, {"configurable": {"thread_id": thread}}))

        in_flight = asyncio.create_task(run(first, "a"))
        await asyncio.sleep(0.3)  # the old run is inside its 1 s step
        time.sleep(0.01)
        _write(path, 0.0, "new")
        newer = served.current()  # what the server does at the next run
        assert newer is not first and served.reloads == 1
        return await in_flight, await run(newer, "b")

    old, new = asyncio.run(scenario())
    label = {k: next(r for r in s["execution_results"].values() if r["capability"] == "echo")["output"]["label"] for k, s in (("old", old), ("new", new))}
    assert label == {"old": "old", "new": "new"}
    assert old["control_stop_reason"] == new["control_stop_reason"] == "success"

    path.write_text("version: 1\ncapabilities: []\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="routegraph"):
        kept = served.current()
    assert kept is served.current() and served.reloads == 1
    assert "invalid; keeping the running one" in caplog.text and served.refused


def test_the_http_api_lists_creates_scales_retires_and_advises(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "registry.yaml"
    _write(path, 0.0, "x")
    served = Served(path, lambda r, p: build_graph(registry=r, settings=settings, checkpointer="memory", pools=p))
    client = TestClient(pools_app(lambda: served))
    listed = client.get("/pools").json()
    assert "echo" in [p["capability"] for p in listed["pools"]] and listed["reloads"] == 0
    made = client.post("/pools/instances", json={"template": "echo_fast", "name": "fast-a"})
    assert made.status_code == 201 and made.json()["instance"]["name"] == "fast-a"
    assert client.post("/pools/instances", json={"template": "nope"}).status_code == 400
    scaled = client.post("/pools/scale", json={"name": "echo", "replicas": 3}).json()["instances"]
    assert len(scaled) == 3
    assert client.delete("/pools/instances/fast-a").json()["instance"]["health"] == "retiring"
    assert client.delete("/pools/instances/fast-a").status_code == 400
    assert client.get("/pools/advise").json() == {"advice": []}
    assert client.post("/pools/scale", content=b"not json").status_code == 400
    path.write_text("capabilities: 3\n", encoding="utf-8")
    refused = client.post("/pools/reload")
    assert refused.status_code == 422 and refused.json()["problems"]
