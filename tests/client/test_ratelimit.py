"""TokenBucket: the delays it hands out (on a fake clock; no wall-clock assertions)."""

from __future__ import annotations

import types

import pytest

from arktos.client import ratelimit
from arktos.client.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_burst_is_free_then_each_request_waits_one_interval_more(clock: Clock) -> None:
    bucket = TokenBucket(qps=10, burst=3)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_tokens_refill_at_qps_up_to_burst(clock: Clock) -> None:
    bucket = TokenBucket(qps=4, burst=2)
    bucket.reserve(), bucket.reserve()
    clock.now += 0.25  # one token back
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.25)
    clock.now += 100  # the debt is paid and the bucket refills to burst, not beyond
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.25])


def test_reservations_queue_first_come_first_served(clock: Clock) -> None:
    """A debt carries over: waiters are spaced 1/qps apart from when tokens run out."""
    bucket = TokenBucket(qps=2, burst=1)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 0.2
    assert bucket.reserve() == pytest.approx(0.8)  # 1.0 after the first, 0.2 s already gone


def test_unlimited_and_minimum_burst(clock: Clock) -> None:
    assert all(TokenBucket(qps=0, burst=1).reserve() == 0.0 for _ in range(100))
    unlimited = TokenBucket(qps=-1, burst=0)
    assert all(unlimited.reserve() == 0.0 for _ in range(100))
    one = TokenBucket(qps=5, burst=0)
    assert one.burst == 1
    assert [one.reserve(), one.reserve()] == pytest.approx([0.0, 0.2])


async def test_acquire_sleeps_the_reserved_delay(clock: Clock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(ratelimit, "asyncio", types.SimpleNamespace(sleep=sleep))
    bucket = TokenBucket(qps=20, burst=2)
    for _ in range(4):
        await bucket.acquire()
    assert slept == pytest.approx([0.05, 0.10])
