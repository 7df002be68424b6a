"""WorkQueue: de-duplication, one worker per key, delays, rate-limited backoff, shutdown."""

from __future__ import annotations

import asyncio
import random

import pytest

from arktos.client.workqueue import QueueShutDown, WorkQueue


async def settle() -> None:
    """Let every ready task run (no timing involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def get_soon(q: WorkQueue[str], timeout: float = 5.0) -> str:
    async with asyncio.timeout(timeout):
        return await q.get()


async def test_a_key_is_queued_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_a_key_added_while_processing_comes_back_only_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first works on it
    second = asyncio.create_task(q.get())
    await settle()
    assert not second.done()
    q.done("a")
    async with asyncio.timeout(5):
        assert await second == "a"
    q.done("a")
    q.add("b")
    assert await get_soon(q) == "b"  # "a" was handed out once only


async def test_done_without_a_new_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_workers_never_share_a_key_and_lose_no_add() -> None:
    """Eight workers, keys re-added at random, also while being processed: no key is ever
    processed by two workers at once, and every add is followed by a processing that started
    after it."""
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlaps: list[int] = []
    last_add: dict[int, int] = {}
    last_start: dict[int, int] = {}
    clock = 0
    rng = random.Random(7)

    async def worker() -> None:
        nonlocal clock
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in active:
                overlaps.append(key)
            active.add(key)
            clock += 1
            last_start[key] = clock
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
                if rng.random() < 0.3:
                    clock += 1
                    other = rng.randrange(10)
                    last_add[other] = clock
                    q.add(other)
            active.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for i in range(500):
        clock += 1
        last_add[i % 10] = clock
        q.add(i % 10)
        if i % 7 == 0:
            await asyncio.sleep(0)
    async with asyncio.timeout(10):
        while len(q) or active:
            await asyncio.sleep(0)
    q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert all(last_start[k] > last_add[k] for k in last_add)


async def test_add_after_hands_keys_out_in_due_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late", 0.2)
    q.add_after("early", 0.05)
    q.add_after("now", 0)
    assert len(q) == 1
    assert [await get_soon(q) for _ in range(3)] == ["now", "early", "late"]


async def test_add_after_of_a_queued_key_is_absorbed() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", 0.01)
    assert await get_soon(q) == "a"
    q.done("a")
    assert await get_soon(q) == "a"  # the delayed add arrives later as a new add
    q.done("a")
    await asyncio.sleep(0.05)
    assert len(q) == 0


def recorded_delays(q: WorkQueue[str]) -> list[float]:
    delays: list[float] = []
    q.add_after = lambda key, delay: delays.append(delay)  # type: ignore[method-assign]
    return delays


async def test_rate_limited_adds_back_off_exponentially_per_key() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.08, qps=0)
    delays = recorded_delays(q)
    for _ in range(6):
        q.add_rate_limited("a")
    q.add_rate_limited("b")
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.01])
    assert (q.failures("a"), q.failures("b"), q.failures("c")) == (6, 1, 0)
    q.forget("a")
    assert q.failures("a") == 0
    q.add_rate_limited("a")
    assert delays[-1] == pytest.approx(0.01)


async def test_rate_limited_adds_also_respect_the_overall_bucket() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.001, max_delay=1.0, qps=1, burst=2)
    delays = recorded_delays(q)
    for key in "abcd":
        q.add_rate_limited(key)
    assert delays[:2] == pytest.approx([0.001, 0.001])
    assert delays[2] == pytest.approx(1.0, abs=0.05) and delays[3] == pytest.approx(2.0, abs=0.05)


async def test_many_failures_cap_at_max_delay() -> None:
    """Regression: 2**failures overflowed float after ~1024 failures (OverflowError)."""
    q: WorkQueue[str] = WorkQueue(base_delay=0.005, max_delay=300.0, qps=0)
    delays = recorded_delays(q)
    for _ in range(1100):
        q.add_rate_limited("doomed")
    assert delays[-1] == 300.0 and q.failures("doomed") == 1100


async def test_a_rate_limited_key_is_handed_out_after_its_delay() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.02, qps=0)
    q.add_rate_limited("a")
    assert len(q) == 0
    assert await get_soon(q) == "a"


async def test_shutdown_wakes_waiters_and_refuses_new_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.shutdown()
    for waiter in waiters:
        with pytest.raises(QueueShutDown):
            await waiter
    q.add("a")
    q.add_after("b", 0.01)
    assert len(q) == 0
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_drains_what_is_queued_and_cancels_delayed_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("later", 0.01)
    q.shutdown()
    assert await q.get() == "a"
    await asyncio.sleep(0.05)
    with pytest.raises(QueueShutDown):
        await q.get()
