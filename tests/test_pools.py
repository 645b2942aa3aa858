"""Specialist pools: the assignment policies, health, the bounded queue (`overloaded`, never a
hang) and the runner's use of the pool, with real capability instances under real asyncio
concurrency."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from graph.capability import Capability, RunContext
from graph.config.registry import Registry
from graph.errors import RegistryError
from graph.pools import Overloaded, Pools
from tests.conftest import ask, guide, registry_with


class Variant(Capability):
    """Echoes the request after `delay` seconds; raises ConnectionError when `fail` is set."""

    name = "echo"
    description = "Echo the request back."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        await asyncio.sleep(float(self.options.get("delay", 0.0)))
        if self.options.get("fail"):
            raise ConnectionError(f"{self.options.get('label', 'instance')} is down")
        return {"summary": f"echo: {inputs.query}", "label": self.options.get("label")}


def pooled(instances: list[dict[str, Any]], **pool: Any) -> Registry:
    entry = {
        "name": "echo",
        "class": "tests.test_pools:Variant",
        "classifier_guide": guide("echo this back", "repeat after me"),
        "pool": {"instances": instances, **pool},
    }
    return registry_with(entry)


async def call(pools: Pools, *, preferred: str | None = None) -> tuple[str, bool]:
    """One step through the pool, as the runner does it: lease, run the instance, give it back."""
    lease = await pools.acquire("echo", preferred=preferred)
    started = time.perf_counter()
    impl = lease.instance.impl
    assert impl is not None
    ok = True
    try:
        await impl.execute(impl.parse_inputs("hi", {}, {}), RunContext(task="hi"))
    except ConnectionError:
        ok = False
    finally:
        pools.release(lease, ok=ok, seconds=time.perf_counter() - started)
    return lease.instance.name, ok


async def many(pools: Pools, n: int, concurrency: int) -> list[tuple[str, bool]]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> tuple[str, bool]:
        async with gate:
            return await call(pools)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_round_robin_goes_in_turn() -> None:
    pools = Pools(pooled([{"name": "a"}, {"name": "b"}, {"name": "c"}], policy="round_robin"))
    order = [(await call(pools))[0] for _ in range(7)]
    assert order == ["a", "b", "c", "a", "b", "c", "a"]


async def test_weighted_honours_the_weights_over_many_picks() -> None:
    registry = pooled(
        [{"name": "heavy", "weight": 3}, {"name": "light", "weight": 1}], policy="weighted", capacity=64
    )
    pools = Pools(registry)
    counts = Counter(name for name, _ in await many(pools, 400, 8))
    assert abs(counts["heavy"] / 400 - 0.75) < 0.05, counts


async def test_least_in_flight_avoids_a_busy_instance() -> None:
    registry = pooled(
        [{"name": "busy", "options": {"delay": 0.5}}, {"name": "idle"}], policy="least_in_flight", capacity=4
    )
    pools = Pools(registry)
    first = await pools.acquire("echo")  # `busy` is declared first: the tie goes to it
    assert first.instance.name == "busy"
    picks = [(await call(pools))[0] for _ in range(10)]
    pools.release(first, ok=True, seconds=0.5)
    assert picks == ["idle"] * 10


async def test_performance_moves_load_off_the_failing_and_the_slow_instance() -> None:
    registry = pooled(
        [
            {"name": "slow", "options": {"delay": 0.03}},
            {"name": "failing", "options": {"fail": True}},
            {"name": "good", "options": {"delay": 0.002}},
        ],
        policy="performance",
        capacity=8,
        unhealthy_after=1000,  # the policy alone, not the health check, must move the load
    )
    pools = Pools(registry)
    counts = Counter(name for name, _ in await many(pools, 300, 4))
    assert counts["good"] > 0.7 * 300, counts
    assert counts["failing"] < 0.1 * 300 and counts["slow"] < 0.2 * 300, counts
    instances = [{"name": "slow"}, {"name": "failing", "options": {"fail": True}}, {"name": "good"}]
    rr = Pools(pooled(instances, unhealthy_after=1000))
    assert Counter(n for n, _ in await many(rr, 300, 1))["failing"] == 100  # round-robin does not


async def test_consecutive_failures_rest_an_instance_until_its_cooldown() -> None:
    now = [0.0]
    registry = pooled(
        [{"name": "down", "options": {"fail": True}}, {"name": "up"}], unhealthy_after=3, cooldown=10
    )
    pools = Pools(registry, clock=lambda: now[0])
    first = [await call(pools) for _ in range(6)]
    assert [ok for name, ok in first if name == "down"] == [False, False, False]
    assert [(await call(pools))[0] for _ in range(5)] == ["up"] * 5
    health = {i["name"]: i["health"] for i in pools.list()[-1]["instances"]}
    assert health == {"down": "unhealthy", "up": "healthy"}
    now[0] = 11.0  # the cooldown is over: it is tried again
    assert "down" in [(await call(pools))[0] for _ in range(2)]


async def test_a_full_pool_queues_then_ends_overloaded_within_its_wait() -> None:
    registry = pooled([{"name": "only", "options": {"delay": 2.0}}], capacity=1, queue_size=1, queue_wait=0.2)
    pools = Pools(registry)
    running = asyncio.create_task(call(pools))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    waiting = asyncio.create_task(pools.acquire("echo"))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded, match="queue is full"):  # one waits already: the next is refused
        await pools.acquire("echo")
    with pytest.raises(Overloaded, match=r"no instance was free within 0\.2 s"):
        await waiting
    assert time.perf_counter() - started < 1.0
    snapshot = pools.list()[-1]["queue"]
    assert (snapshot["queued"], snapshot["timeouts"], snapshot["rejected"]) == (1, 1, 1)
    running.cancel()


async def test_a_waiting_step_gets_the_instance_freed_for_it() -> None:
    registry = pooled([{"name": "only", "options": {"delay": 0.1}}], capacity=1, queue_wait=5)
    pools = Pools(registry)
    results = await asyncio.gather(*(call(pools) for _ in range(3)))
    assert [name for name, _ in results] == ["only"] * 3
    assert pools.list()[-1]["queue"]["queued"] == 2


async def test_a_preferred_instance_is_kept_while_it_has_room() -> None:
    registry = pooled([{"name": "a"}, {"name": "b"}], capacity=1)
    pools = Pools(registry)
    assert [(await call(pools, preferred="b"))[0] for _ in range(3)] == ["b", "b", "b"]
    held = await pools.acquire("echo", preferred="b")
    assert (await pools.acquire("echo", preferred="b")).instance.name == "a"  # b is at capacity
    assert held.instance.name == "b"


def test_an_overloaded_turn_ends_with_its_own_stop_reason(make_graph: Any) -> None:
    registry = pooled(
        [{"name": "only", "options": {"delay": 1.5}}], capacity=1, queue_size=4, queue_wait=0.3
    )
    pools = Pools(registry)
    graph = make_graph(registry, pools=pools)

    async def both() -> list[dict[str, Any]]:
        async def one(thread: str) -> dict[str, Any]:
            return dict(await graph.ainvoke({"messages": [("user", "echo this back")]}, {"configurable": {"thread_id": thread}}))

        return list(await asyncio.gather(one("x"), one("y")))

    started = time.perf_counter()
    states = asyncio.run(both())
    assert time.perf_counter() - started < 10
    reasons = sorted(s["control_stop_reason"] for s in states)
    assert reasons == ["overloaded", "success"]
    loaded = next(s for s in states if s["control_stop_reason"] == "overloaded")
    assert "every instance of a specialist was busy" in loaded["messages"][-1].content
    done = next(s for s in states if s["control_stop_reason"] == "success")
    step = next(r for r in done["execution_results"].values() if r["capability"] == "echo")
    assert step["instance"] == "only"


def test_each_step_says_which_instance_ran_it(make_graph: Any) -> None:
    registry = pooled([{"name": "left", "options": {"label": "L"}}, {"name": "right", "options": {"label": "R"}}])
    pools = Pools(registry)
    graph = make_graph(registry, pools=pools)
    ran = []
    for k in range(2):
        state = ask(graph, "echo this back", thread=f"t{k}")
        step = next(r for r in state["execution_results"].values() if r["capability"] == "echo")
        assert step["output"]["label"] == step["instance"][0].upper()  # the variant's own options
        ran.append(step["instance"])
    assert ran == ["left", "right"]
    listed = {i["name"]: i for i in pools.list()[-1]["instances"]}
    assert listed["left"]["served"] == 1 and listed["left"]["p50_ms"] is not None


def test_the_registry_checks_pools_and_templates() -> None:
    with pytest.raises(RegistryError) as exc:
        registry_with(
            {
                "name": "echo",
                "class": "tests.test_pools:Variant",
                "classifier_guide": guide("echo this back"),
                "pool": {"instances": [{"name": "a"}, {"name": "a"}], "replicas": 2},
            },
            templates=[{"name": "t", "capability": "nope"}, {"name": "u", "capability": "echo", "class": "x.y:Z"}],
        )
    text = str(exc.value)
    assert "either replicas or instances" in text and "'a' is already used by echo" in text
    assert "unknown capability 'nope'" in text and "cannot import x.y:Z" in text
    with pytest.raises(RegistryError, match="expected 'round_robin'"):
        pooled([{"name": "a"}], policy="random")


def test_a_user_keeps_the_instance_that_served_them(make_graph: Any) -> None:
    """Continuity: the profile remembers the instance that served a user, and the router asks the
    pool for it next time (round-robin would alternate); a user without a profile alternates."""
    from langgraph.store.memory import InMemoryStore

    registry = pooled([{"name": "left"}, {"name": "right"}], policy="round_robin")
    graph = make_graph(registry, pools=Pools(registry), store=InMemoryStore())

    def served(thread: str, user: str | None) -> str:
        config: dict[str, Any] = {"configurable": {"thread_id": thread}}
        if user:
            config["configurable"]["user_id"] = user
        state = graph.invoke({"messages": [HumanMessage("echo this back")]}, config)
        return next(r["instance"] for r in state["execution_results"].values() if r["capability"] == "echo")

    first = served("a1", "ann")
    assert [served(f"a{k}", "ann") for k in range(2, 5)] == [first] * 3
    anonymous = [served(f"x{k}", None) for k in range(4)]
    assert set(anonymous) == {"left", "right"}
