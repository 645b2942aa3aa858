"""The pools' overload decision at its edges: how deep the queue is, how long a step waits (the
queue's `queue_wait`, or what is left of the turn when that is shorter), who is served first, and
which instances a step may get (room, health, retirement). Real capability instances under real
asyncio concurrency, as in tests/test_pools.py.

Written for the mutation check (scripts/mutants pools): each test pins a boundary or a branch that
a flipped comparison or a dropped condition would move."""

from __future__ import annotations

import asyncio
import time

import pytest

from graph.pools import Lease, Overloaded, Pools
from tests.test_pools import call, pooled


async def held(pools: Pools, n: int) -> list[Lease]:
    return [await pools.acquire("echo") for _ in range(n)]


async def test_the_queue_holds_queue_size_steps_and_refuses_the_next_at_once() -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=2, queue_wait=2))
    (lease,) = await held(pools, 1)
    waiting = [asyncio.create_task(pools.acquire("echo")) for _ in range(2)]
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(
        Overloaded, match=r"all 1 instance\(s\) of echo are busy and its queue is full \(2 waiting\)"
    ):
        await pools.acquire("echo")
    assert time.perf_counter() - started < 1.9  # refused, not queued for its 2 s
    pools.release(lease, ok=True, seconds=0.01)  # first come, first served
    first = await waiting[0]
    assert first.instance.name == "only" and not waiting[1].done()
    pools.release(first, ok=True, seconds=0.01)
    second = await waiting[1]
    assert second.instance.name == "only"
    queue = pools.list()[-1]["queue"]
    assert (queue["steps"], queue["queued"], queue["rejected"], queue["timeouts"]) == (4, 2, 1, 0)


async def test_no_queue_refuses_the_first_step_that_finds_every_instance_busy() -> None:
    pools = Pools(pooled([{"name": "a"}, {"name": "b"}], capacity=1, queue_size=0, queue_wait=2))
    await held(pools, 2)
    with pytest.raises(
        Overloaded, match=r"all 2 instance\(s\) of echo are busy and its queue is full \(0 waiting\)"
    ):
        await pools.acquire("echo")


@pytest.mark.parametrize(
    ("wait", "limit", "by_turn"), [(0.05, 0.05, True), (0.0, 0.0, True), (-1.0, 0.0, True), (2.0, 0.1, False)]
)
async def test_a_step_waits_the_shorter_of_the_queue_wait_and_the_turns_time(
    wait: float, limit: float, by_turn: bool
) -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=4, queue_wait=0.1))
    await held(pools, 1)
    started = time.perf_counter()
    with pytest.raises(Overloaded, match=rf"no instance was free within {limit:.3g} s") as raised:
        await pools.acquire("echo", wait=wait)
    assert raised.value.by_turn is by_turn
    assert time.perf_counter() - started < limit + 1.5
    assert raised.value.waited >= limit * 0.9
    assert pools.list()[-1]["queue"]["timeouts"] == 1


async def test_the_queue_wait_applies_when_the_turn_has_exactly_as_long() -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=4, queue_wait=0.05))
    await held(pools, 1)
    with pytest.raises(Overloaded) as raised:
        await pools.acquire("echo", wait=0.05)
    assert raised.value.by_turn is False


async def test_a_step_that_stops_waiting_gives_its_place_to_the_next() -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=4, queue_wait=5))
    (lease,) = await held(pools, 1)
    gone = asyncio.create_task(pools.acquire("echo"))
    nxt = asyncio.create_task(pools.acquire("echo"))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0.01)
    pools.release(lease, ok=True, seconds=0.01)
    got = await asyncio.wait_for(nxt, 1)
    assert got.instance.name == "only" and got.instance.in_flight == 1


async def test_capacity_is_per_instance() -> None:
    pools = Pools(pooled([{"name": "a", "capacity": 2}, {"name": "b"}], capacity=1, queue_size=0))
    names = sorted(lease.instance.name for lease in await held(pools, 3))
    assert names == ["a", "a", "b"]
    with pytest.raises(Overloaded):
        await pools.acquire("echo")


async def test_a_resting_instance_is_not_used_while_a_healthy_one_is_only_busy() -> None:
    now = [0.0]
    pools = Pools(
        pooled(
            [{"name": "down", "options": {"fail": True}}, {"name": "up"}],
            capacity=1,
            unhealthy_after=1,
            cooldown=10,
            queue_size=1,
            queue_wait=0.05,
        ),
        clock=lambda: now[0],
    )
    assert await call(pools, preferred="down") == ("down", False)  # now resting
    busy = await pools.acquire("echo")
    assert busy.instance.name == "up"
    with pytest.raises(Overloaded, match="no instance was free"):  # waits for `up`, never `down`
        await pools.acquire("echo", preferred="down")
    pools.release(busy, ok=True, seconds=0.01)
    assert (await call(pools, preferred="down"))[0] == "up"  # a resting instance is not preferred
    now[0] = 10.0  # rested: in service again
    assert (await call(pools, preferred="down"))[0] == "down"


async def test_when_every_instance_rests_one_is_tried() -> None:
    now = [0.0]
    pools = Pools(
        pooled([{"name": "only", "options": {"fail": True}}], capacity=1, unhealthy_after=1, cooldown=10),
        clock=lambda: now[0],
    )
    assert await call(pools) == ("only", False)
    assert await call(pools) == ("only", False)  # resting, but the only one: tried (a probe)


async def test_a_retired_instance_takes_no_new_step() -> None:
    pools = Pools(pooled([{"name": "a"}, {"name": "b"}], capacity=1, queue_size=0))
    pools.retire("a")
    assert [(await call(pools))[0] for _ in range(3)] == ["b", "b", "b"]
    await held(pools, 1)
    with pytest.raises(Overloaded):
        await pools.acquire("echo")


async def test_a_capability_without_a_pool_block_has_no_capacity_limit() -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=0))
    leases = [await pools.acquire("clock") for _ in range(20)]  # one implicit instance, no limit
    assert {lease.instance.name for lease in leases} == {"clock"} and leases[0].instance.in_flight == 20
    # Not in the registry the pools follow (a run begun on an earlier one): its own, uncounted.
    gone = [await pools.acquire("retired-capability") for _ in range(3)]
    assert [lease.instance.in_flight for lease in gone] == [1, 1, 1]
    assert gone[0].instance is not gone[1].instance
    first = gone[0]
    assert (first.instance.name, first.instance.capability, first.instance.origin) == (
        "retired-capability",
        "retired-capability",
        "capability",
    )
    assert (first.pool.capability, first.pool.declared, first.pool.spec.queue_size) == (
        "retired-capability",
        False,
        0,
    )
    for lease, ok in zip(gone, (True, False, False), strict=True):  # given back like any other
        pools.release(lease, ok=ok, seconds=0.01)
        assert lease.instance.in_flight == 0
    assert "retired-capability" not in {p["capability"] for p in pools.list()}


async def test_a_waiting_step_keeps_its_preferred_instance_when_several_come_free() -> None:
    pools = Pools(pooled([{"name": "only"}], capacity=1, queue_size=4, queue_wait=5))
    (lease,) = await held(pools, 1)
    names = {i["name"] for i in pools.scale("echo", 1)}
    assert names == {"only"}
    waiting = asyncio.create_task(pools.acquire("echo", preferred="echo-3"))
    await asyncio.sleep(0.01)
    added = [i["name"] for i in pools.scale("echo", 4)]  # three new instances free at once
    assert "echo-3" in added, added
    got = await asyncio.wait_for(waiting, 1)
    assert got.instance.name == "echo-3"
    pools.release(lease, ok=True, seconds=0.01)
