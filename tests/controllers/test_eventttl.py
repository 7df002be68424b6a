"""The event TTL controller: its pure decisions, then against a real API server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from arktos.controllers.eventttl import EventTTLController, Timers, expires_in, last_seen
from arktos.controllers.node_health import format_micro_time, format_time
from tests.controllers.conftest import running
from tests.controllers.test_nodelifecycle import create_tenant
from tests.waiting import eventually

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds_ago: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds_ago))


# --- pure -----------------------------------------------------------------------------------

def test_last_seen_prefers_last_timestamp_then_falls_back() -> None:
    full = {"lastTimestamp": at(1), "eventTime": format_micro_time(NOW - timedelta(seconds=2)),
            "firstTimestamp": at(3), "metadata": {"creationTimestamp": at(4)}}
    assert last_seen(full) == NOW - timedelta(seconds=1)
    assert last_seen({**full, "lastTimestamp": None}) == NOW - timedelta(seconds=2)
    assert last_seen({"firstTimestamp": at(3), "metadata": {"creationTimestamp": at(4)}}) == \
        NOW - timedelta(seconds=3)
    assert last_seen({"metadata": {"creationTimestamp": at(4)}}) == NOW - timedelta(seconds=4)
    assert last_seen({"metadata": {}}) is None


def test_expires_in() -> None:
    assert expires_in({"lastTimestamp": at(10)}, 60, NOW) == 50
    assert expires_in({"lastTimestamp": at(70)}, 60, NOW) == -10
    assert expires_in({"metadata": {}}, 60, NOW) == 0


def test_timers_keep_one_pending_requeue_per_key() -> None:
    t = Timers()
    assert t.arm("k", 10, now=0)          # first: arm (fires at 10)
    assert not t.arm("k", 10, now=1)      # a bump: the pending timer fires earlier, enough
    assert t.arm("k", 10, now=10)         # the timer fired: arm the next one
    assert t.arm("k", 2, now=11)          # expiry moved earlier than the pending timer
    assert t.arm("other", 5, now=11)
    t.drop("k")
    assert t.arm("k", 30, now=12)


# --- against the API server -----------------------------------------------------------------

def event(name: str, tenant: str, **times: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default", "tenant": tenant},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": "m", "type": "Normal", **times}


async def test_expired_events_are_deleted_fresh_ones_kept(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    events = ResourceClient(api, "events")
    other = unique("tenant")
    await create_tenant(api, other)
    now = datetime.now(UTC)
    old = format_time(now - timedelta(hours=2))
    stale = [(unique("old"), "system", {"lastTimestamp": old}),
             (unique("old"), other, {"lastTimestamp": old, "firstTimestamp": old}),
             (unique("old-micro"), other, {"eventTime": format_micro_time(
                 now - timedelta(hours=2))})]
    fresh = [(unique("fresh"), "system", {"lastTimestamp": format_time(now)}),
             (unique("no-times"), other, {})]
    for name, tenant, times in stale + fresh:
        await events.create(event(name, tenant, **times))

    async def names(tenant: str) -> set[str]:
        listed = await events.list(tenant=tenant, namespace="default")
        return {e["metadata"]["name"] for e in listed.items}

    async def present() -> set[str]:
        return await names("system") | await names(other)

    async with running(api, [EventTTLController], event_ttl=3.0):
        async def old_gone() -> bool:
            return not {n for n, _, _ in stale} & await present()
        await eventually(old_gone, timeout=5)
        assert {n for n, _, _ in fresh} <= await present()

        async def fresh_gone() -> bool:  # requeued for their expiry
            return not {n for n, _, _ in fresh} & await present()
        await eventually(fresh_gone, timeout=8)


async def test_bumped_event_lives_on(api: ApiClient, unique: Callable[[str], str]) -> None:
    events = ResourceClient(api, "events")
    name = unique("bumped")
    # Fractional times (the API accepts them) keep this test's timing exact.
    await events.create(event(name, "system",
                              lastTimestamp=format_micro_time(datetime.now(UTC))))
    async with running(api, [EventTTLController], event_ttl=2.0):
        await asyncio.sleep(1.2)
        await events.patch(name, {"count": 2,
                                  "lastTimestamp": format_micro_time(datetime.now(UTC))},
                           namespace="default", tenant="system")
        await asyncio.sleep(1.3)  # past the first expiry, not the bumped one
        assert (await events.get(name, namespace="default", tenant="system"))["count"] == 2

        async def gone() -> bool:
            listed = await events.list(tenant="system", namespace="default")
            return name not in {e["metadata"]["name"] for e in listed.items}
        await eventually(gone, timeout=5)
