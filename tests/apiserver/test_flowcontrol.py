"""Per-tenant and per-user fair shares (pure: no server)."""

from __future__ import annotations

import asyncio

import pytest

from arktos.api.errors import StatusError
from arktos.apiserver.flowcontrol import FairQueue, FairShare, InflightLimiter, RateShares, Refused


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_inflight_share_is_per_flow() -> None:
    slots = FairQueue(FairShare(inflight=2, queue=0))
    await slots.acquire("a")
    await slots.acquire("a")
    with pytest.raises(Refused, match="too many requests in flight"):
        await slots.acquire("a")
    await slots.acquire("b")  # another tenant is not held up by the first
    for flow in ("a", "a", "b"):
        slots.release(flow)
    assert slots.running == {} and slots.total == 0


async def test_waiting_requests_get_freed_slots_in_order() -> None:
    slots = FairQueue(FairShare(inflight=1, queue=3, max_wait=5))
    await slots.acquire("a")
    order: list[int] = []

    async def request(i: int) -> None:
        await slots.acquire("a")
        order.append(i)

    tasks = [asyncio.create_task(request(i)) for i in range(3)]
    await settle()
    assert order == [] and slots.waiting("a") == 3
    with pytest.raises(Refused):  # the queue is full
        await slots.acquire("a")
    for expected in ([0], [0, 1], [0, 1, 2]):
        slots.release("a")
        await settle()
        assert order == expected
        assert slots.running == {"a": 1}, "a slot is handed over, never exceeded"
    await asyncio.gather(*tasks)


async def test_freed_seats_go_round_robin_between_flows() -> None:
    """A flow with many waiting requests gets no more turns than one with a single request."""
    slots = FairQueue(FairShare(inflight=10, queue=100, max_wait=5), seats=2)
    await slots.acquire("x")
    await slots.acquire("x")
    served: list[str] = []

    async def request(flow: str) -> None:
        await slots.acquire(flow)
        served.append(flow)

    tasks = [asyncio.create_task(request("flood")) for _ in range(20)]
    await settle()
    tasks.append(asyncio.create_task(request("calm")))
    await settle()
    slots.release("x")
    await settle()
    slots.release("x")
    await settle()
    assert served == ["flood", "calm"], "the calm flow is served on the next turn"
    for _ in range(19):
        slots.release(served[-1] if served[-1] == "flood" else "calm")
        await settle()
    assert served.count("flood") == 20
    await asyncio.gather(*tasks)


async def test_waiting_too_long_or_cancelled_gives_the_place_back() -> None:
    slots = FairQueue(FairShare(inflight=1, queue=5, max_wait=0.05))
    await slots.acquire("a")
    with pytest.raises(Refused, match="waited too long"):
        await slots.acquire("a")
    waiter = asyncio.create_task(slots.acquire("a"))
    await settle()
    waiter.cancel()
    await settle()
    assert slots.waiting("a") == 0
    slots.release("a")
    assert slots.running == {} and slots.total == 0, "no slot goes to a cancelled request"


async def test_rate_share_waits_briefly_then_refuses() -> None:
    rates = RateShares(FairShare(qps=20, burst=2, max_wait=0.12))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(4):  # two from the burst, two more within 0.1 s
        await rates.pace("a")
    assert loop.time() - start >= 0.09
    results = await asyncio.gather(*(rates.pace("a") for _ in range(4)),
                                   return_exceptions=True)  # waits of 0.05, 0.1, 0.15, 0.2 s
    assert results[:2] == [None, None]
    assert all(isinstance(r, Refused) and "rate limit" in str(r) for r in results[2:])
    await rates.pace("b")  # another flow has its own bucket


async def test_system_tenant_is_exempt_and_users_share_their_tenant() -> None:
    limiter = InflightLimiter(tenant=FairShare(inflight=3), user=FairShare(inflight=2),
                              refusal_delay=0)
    await limiter._enter("acme", "acme/alice")
    await limiter._enter("acme", "acme/alice")
    with pytest.raises(StatusError) as refused:
        await limiter._enter("acme", "acme/alice")
    assert refused.value.code == 429 and "user acme/alice" in str(refused.value)
    assert limiter.tenants.running == {"acme": 2}, "a refused request holds no tenant slot"
    await limiter._enter("acme", "acme/bob")
    with pytest.raises(StatusError) as refused:
        await limiter._enter("acme", "acme/carol")
    assert 'tenant "acme"' in str(refused.value)
    assert limiter.users.running == {"acme/alice": 2, "acme/bob": 1}, \
        "a request refused by its tenant gives its user slot back"
