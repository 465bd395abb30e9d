"""FairQueue (slots shared among apps) and RateLimiter (token buckets), without models."""

from __future__ import annotations

import asyncio

import pytest

from spruce.inference.link import Limits
from spruce.inference.scheduler import FairQueue, QueueFull, RateLimited, RateLimiter


async def hold(q: FairQueue, app: str, order: list[str], release: asyncio.Event) -> None:
    async with q.slot(app):
        order.append(app)
        await release.wait()


async def test_one_app_never_takes_the_last_slot() -> None:
    q = FairQueue(slots=4)
    order: list[str] = []
    gate = asyncio.Event()
    a = [asyncio.create_task(hold(q, "a", order, gate)) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert q.app_stats("a") == {"running": 3, "waiting": 3}
    b = asyncio.create_task(hold(q, "b", order, gate))
    await asyncio.sleep(0.01)
    assert order == ["a", "a", "a", "b"]  # b got the free slot at once
    assert q.stats() == {"slots": 4, "slots_per_app": 3, "running": 4, "waiting": 3}
    gate.set()
    await asyncio.gather(*a, b)
    assert q.busy == 0 and q.waiting == 0 and q.served_total == 7


async def test_a_freed_slot_goes_to_the_app_holding_fewest() -> None:
    q = FairQueue(slots=2, per_app=2)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in ("a1", "a2")}

    async def one(app: str, gate: asyncio.Event | None) -> None:
        async with q.slot(app):
            order.append(app)
            if gate:
                await gate.wait()

    t = [asyncio.create_task(one("a", gates["a1"])), asyncio.create_task(one("a", gates["a2"]))]
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(one(app, None)) for app in ("a", "a", "b", "c")]
    await asyncio.sleep(0.01)
    gates["a1"].set()
    await asyncio.sleep(0.01)
    gates["a2"].set()
    await asyncio.gather(*t, *waiting)
    # b and c (holding nothing) are served before a's queued requests
    assert order[:2] == ["a", "a"] and order[2:4] == ["b", "c"] and order[4:] == ["a", "a"]


async def test_cancelled_waiters_leave_no_trace() -> None:
    q = FairQueue(slots=1)
    gate = asyncio.Event()
    order: list[str] = []
    first = asyncio.create_task(hold(q, "a", order, gate))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold(q, "b", order, gate))
    await asyncio.sleep(0.01)
    assert q.waiting == 1
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert q.waiting == 0
    gate.set()
    await first
    assert q.busy == 0
    async with q.slot("c"):
        assert q.busy == 1


async def test_the_queue_is_bounded() -> None:
    q = FairQueue(slots=1, max_waiting=1)
    gate = asyncio.Event()
    order: list[str] = []
    tasks = [asyncio.create_task(hold(q, "a", order, gate)) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFull):
        await q.acquire("b")
    gate.set()
    await asyncio.gather(*tasks)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_refill_continuously() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    limits = Limits(requests_per_minute=2)
    assert rl.admit("k", limits) == {"x-ratelimit-remaining-requests": "1"}
    rl.admit("k", limits)
    with pytest.raises(RateLimited) as e:
        rl.admit("k", limits)
    assert e.value.what == "requests" and e.value.retry_after == 30
    clock.now += 30
    rl.admit("k", limits)
    rl.admit("other", limits)  # keys do not share buckets


def test_tokens_per_minute_are_spent_after_the_answer() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    limits = Limits(tokens_per_minute=600)
    rl.admit("k", limits)
    rl.spend("k", limits, 900)  # one big answer overdraws
    with pytest.raises(RateLimited) as e:
        rl.admit("k", limits)
    assert e.value.what == "tokens" and e.value.retry_after == 31
    clock.now += 31
    assert rl.admit("k", limits)["x-ratelimit-remaining-tokens"] == "10"


def test_no_limits_means_unlimited() -> None:
    rl = RateLimiter(Clock())
    for _ in range(1000):
        rl.admit("k", Limits())
    rl.spend("k", Limits(), 10**9)
