"""The scheduling queue: order, tenant fairness, backoff, events, timeouts, update/delete in every
state. Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arktos.scheduler.queue import (
    ClusterEvent,
    QueuedPod,
    QueueState,
    SchedulingQueue,
    pod_changed,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


Queue = SchedulingQueue[dict[str, Any]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def q(clock: FakeClock) -> Queue:
    return SchedulingQueue(now=clock)


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": dict(spec)}


def add(q: Queue, key: str, priority: int = 0) -> None:
    tenant = key.split("/")[0]
    q.add(key, tenant=tenant, priority=priority, pod=pod(key))


def keys(items: list[QueuedPod[dict[str, Any]]]) -> list[str]:
    return [it.key for it in items]


def pop_one(q: Queue) -> QueuedPod[dict[str, Any]]:
    items = q.pop_batch(1)
    assert len(items) == 1
    return items[0]


def fail(q: Queue, clock: FakeClock, key: str, times: int) -> QueuedPod[dict[str, Any]]:
    """Pop `key` and report it unschedulable `times` times, each after its backoff; it is then
    in the unschedulable set."""
    for _ in range(times):
        q.move_all_on_event(ClusterEvent.NODE_ADD)
        clock.advance(q.max_backoff)
        item = pop_one(q)
        assert item.key == key
        assert q.requeue_unschedulable(item, "no nodes")
    return item


# --- order ------------------------------------------------------------------------------------

def test_highest_priority_first(q: Queue) -> None:
    for i, prio in enumerate([1, 10, 5, 10, -3]):
        add(q, f"t/ns/p{i}", prio)
    assert keys(q.pop_batch(10)) == ["t/ns/p1", "t/ns/p3", "t/ns/p2", "t/ns/p0", "t/ns/p4"]


def test_fifo_within_a_tenant(q: Queue) -> None:
    for i in range(50):
        add(q, f"t/ns/p{i}")
    got = keys(q.pop_batch(20)) + keys(q.pop_batch(100))
    assert got == [f"t/ns/p{i}" for i in range(50)]


def test_round_robin_between_tenants(q: Queue) -> None:
    for i in range(3):
        add(q, f"a/ns/p{i}")
    add(q, "b/ns/p0")
    for i in range(2):
        add(q, f"c/ns/p{i}")
    assert keys(q.pop_batch(10)) == ["a/ns/p0", "b/ns/p0", "c/ns/p0", "a/ns/p1", "c/ns/p1",
                                     "a/ns/p2"]


def test_burst_of_one_tenant_does_not_starve_another(q: Queue) -> None:
    for i in range(10_000):
        add(q, f"a/ns/p{i}")
    add(q, "b/ns/lonely")
    assert "b/ns/lonely" in keys(q.pop_batch(2))
    assert len(q) == 9_999


def test_burst_one_at_a_time(q: Queue) -> None:
    for i in range(10_000):
        add(q, f"a/ns/p{i}")
    add(q, "b/ns/lonely")
    assert "b/ns/lonely" in [pop_one(q).key, pop_one(q).key]


def test_priority_beats_fairness(q: Queue) -> None:
    add(q, "a/ns/low", 0)
    add(q, "b/ns/high1", 100)
    add(q, "b/ns/high2", 100)
    assert keys(q.pop_batch(3)) == ["b/ns/high1", "b/ns/high2", "a/ns/low"]


def test_pop_on_empty_queue(q: Queue) -> None:
    assert q.pop_batch(5) == []
    assert len(q) == 0


# --- in flight ----------------------------------------------------------------------------------

def test_in_flight_not_popped_twice(q: Queue) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    add(q, "t/ns/a")  # an update of the in-flight pod
    assert q.pop_batch(10) == []
    assert q.lengths() == {"active": 0, "backoff": 0, "unschedulable": 0}
    assert q.in_flight() == 1
    assert item.state is QueueState.IN_FLIGHT and item.attempts == 1


def test_done_removes_the_pod(q: Queue) -> None:
    add(q, "t/ns/a")
    pop_one(q)
    assert q.done("t/ns/a")
    assert "t/ns/a" not in q and q.in_flight() == 0
    assert not q.done("t/ns/a")


def test_done_after_requeue_is_a_no_op(q: Queue) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    q.requeue_error(item)
    assert not q.done("t/ns/a")
    assert q.lengths()["backoff"] == 1


def test_deleted_in_flight_pod_is_not_requeued(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    add(q, "t/ns/b")
    a, b = q.pop_batch(2)
    assert q.delete("t/ns/a") and q.delete("t/ns/b")
    assert not q.requeue_unschedulable(a, "no nodes")
    assert not q.requeue_error(b)
    clock.advance(120)
    q.move_all_on_event(ClusterEvent.NODE_ADD)
    assert q.pop_batch(10) == [] and len(q) == 0 and q.in_flight() == 0


def test_deleted_and_readded_in_flight_pod(q: Queue) -> None:
    add(q, "t/ns/a")
    old = pop_one(q)
    q.delete("t/ns/a")
    add(q, "t/ns/a")
    assert not q.requeue_error(old)
    new = pop_one(q)
    assert new is not old and new.attempts == 1


def test_requeue_twice_is_refused(q: Queue) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    assert q.requeue_unschedulable(item, "x")
    assert not q.requeue_unschedulable(item, "x")
    assert not q.requeue_error(item)
    assert len(q) == 1


# --- backoff ---------------------------------------------------------------------------------

def test_backoff_doubles_and_caps(clock: FakeClock) -> None:
    q: Queue = SchedulingQueue(now=clock, initial_backoff=1.0, max_backoff=10.0)
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    add(q, "t/ns/a")
    for expected in [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]:
        item = pop_one(q)
        q.requeue_error(item)
        assert q.next_wakeup() == clock.t + expected
        clock.advance(expected - 0.001)
        assert q.pop_batch(1) == []
        clock.advance(0.001)
        assert q.lengths()["backoff"] == 1
    assert pop_one(q).attempts == 7


def test_backoff_settable(clock: FakeClock) -> None:
    q: Queue = SchedulingQueue(now=clock, initial_backoff=0.5, max_backoff=3.0)
    assert [q.backoff_duration(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_flush_moves_expired_backoff_in_order(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    add(q, "t/ns/b")
    a, b = q.pop_batch(2)
    q.requeue_error(b)
    clock.advance(0.5)
    q.requeue_error(a)
    assert q.flush(clock.t + 0.6) == 1
    assert q.lengths() == {"active": 1, "backoff": 1, "unschedulable": 0}
    assert q.flush(clock.t + 2) == 1
    assert keys(q.pop_batch(5)) == ["t/ns/b", "t/ns/a"]
    assert q.next_wakeup() is None


# --- unschedulable, events, timeout -------------------------------------------------------------

def test_unschedulable_waits_for_an_event(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    assert q.requeue_unschedulable(item, "0/3 nodes are available")
    assert item.reason == "0/3 nodes are available"
    clock.advance(30)
    assert q.pop_batch(1) == []
    assert q.lengths() == {"active": 0, "backoff": 0, "unschedulable": 1}
    assert q.move_all_on_event(ClusterEvent.NODE_ADD) == 1
    assert keys(q.pop_batch(1)) == ["t/ns/a"]


def test_event_moves_to_backoff_first(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    fail(q, clock, "t/ns/a", 3)  # backoff 4 s from now
    clock.advance(1)
    assert q.move_all_on_event("NodeUpdate") == 1
    assert q.lengths() == {"active": 0, "backoff": 1, "unschedulable": 0}
    assert q.next_wakeup() == clock.t + 3
    clock.advance(3)
    assert keys(q.pop_batch(1)) == ["t/ns/a"]


def test_event_during_attempt_sends_to_backoff(q: Queue) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    q.move_all_on_event(ClusterEvent.ASSIGNED_POD_DELETE)
    q.requeue_unschedulable(item, "no fit")
    assert q.lengths() == {"active": 0, "backoff": 1, "unschedulable": 0}


def test_unschedulable_timeout(clock: FakeClock) -> None:
    q: Queue = SchedulingQueue(now=clock, unschedulable_timeout=60)
    add(q, "t/ns/a")
    q.requeue_unschedulable(pop_one(q), "no fit")
    clock.advance(20)
    add(q, "t/ns/b")
    q.requeue_unschedulable(pop_one(q), "no fit")
    assert q.next_wakeup() == clock.t + 40
    clock.advance(39.9)
    assert q.pop_batch(5) == []
    clock.advance(0.1)
    assert keys(q.pop_batch(5)) == ["t/ns/a"]
    assert q.lengths()["unschedulable"] == 1
    clock.advance(20)
    assert keys(q.pop_batch(5)) == ["t/ns/b"]


# --- update and delete in each state -----------------------------------------------------------

def test_update_active_keeps_place_and_replaces_pod(q: Queue) -> None:
    add(q, "t/ns/a")
    add(q, "t/ns/b")
    q.update("t/ns/a", tenant="t", priority=0, pod=pod("a", image="v2"))
    first = pop_one(q)
    assert first.key == "t/ns/a" and first.pod["spec"] == {"image": "v2"}


def test_update_active_priority_moves_it(q: Queue) -> None:
    add(q, "t/ns/a")
    add(q, "t/ns/b")
    q.update("t/ns/b", tenant="t", priority=9, pod=pod("b"))
    assert keys(q.pop_batch(5)) == ["t/ns/b", "t/ns/a"]
    assert len(q) == 0


def test_update_unknown_key_adds(q: Queue) -> None:
    q.update("t/ns/a", tenant="t", priority=0, pod=pod("a"))
    assert q.pending_keys() == ["t/ns/a"]


def test_update_backoff_replaces_in_place(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    q.requeue_error(pop_one(q))
    q.update("t/ns/a", tenant="t", priority=3, pod=pod("a", image="v2"))
    assert q.lengths()["backoff"] == 1
    clock.advance(1)
    item = pop_one(q)
    assert item.pod["spec"] == {"image": "v2"} and item.priority == 3


def test_update_unschedulable_that_may_help(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    q.requeue_unschedulable(pop_one(q), "no fit")
    clock.advance(5)  # backoff over
    q.update("t/ns/a", tenant="t", priority=0, pod=pod("t/ns/a", cpu="1"))
    assert q.lengths() == {"active": 1, "backoff": 0, "unschedulable": 0}


def test_update_unschedulable_still_backing_off(q: Queue) -> None:
    add(q, "t/ns/a")
    q.requeue_unschedulable(pop_one(q), "no fit")
    q.update("t/ns/a", tenant="t", priority=0, pod=pod("t/ns/a", cpu="1"))
    assert q.lengths() == {"active": 0, "backoff": 1, "unschedulable": 0}


def test_update_unschedulable_status_only_stays(q: Queue, clock: FakeClock) -> None:
    add(q, "t/ns/a")
    q.requeue_unschedulable(pop_one(q), "no fit")
    clock.advance(5)
    new = pod("t/ns/a")
    new["metadata"]["resourceVersion"] = "2"
    new["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    q.update("t/ns/a", tenant="t", priority=0, pod=new)
    assert q.lengths() == {"active": 0, "backoff": 0, "unschedulable": 1}
    item = q.get("t/ns/a")
    assert item is not None and item.pod is new


def test_update_in_flight_that_may_help(q: Queue) -> None:
    add(q, "t/ns/a")
    item = pop_one(q)
    q.update("t/ns/a", tenant="t", priority=0, pod=pod("t/ns/a", cpu="1"))
    assert item.pod["spec"] == {"cpu": "1"}
    q.requeue_unschedulable(item, "no fit")
    assert q.lengths() == {"active": 0, "backoff": 1, "unschedulable": 0}


def test_delete_in_each_state(q: Queue, clock: FakeClock) -> None:
    for name in "abcd":
        add(q, f"t/ns/{name}")
    a, b, _ = q.pop_batch(3)
    q.requeue_error(a)
    q.requeue_unschedulable(b, "no fit")
    assert q.lengths() == {"active": 1, "backoff": 1, "unschedulable": 1}
    assert q.in_flight() == 1
    for key in ["t/ns/a", "t/ns/b", "t/ns/c", "t/ns/d"]:
        assert q.delete(key)
    assert not q.delete("t/ns/a")
    assert q.lengths() == {"active": 0, "backoff": 0, "unschedulable": 0}
    assert q.in_flight() == 0 and q.pending_keys() == []
    clock.advance(100)
    q.move_all_on_event(ClusterEvent.POD_DELETE)
    assert q.pop_batch(10) == [] and q.next_wakeup() is None


def test_delete_many_compacts(q: Queue) -> None:
    for i in range(5000):
        add(q, f"a/ns/p{i}")
    for i in range(4990):
        q.delete(f"a/ns/p{i}")
    assert q._active_entries < 3000  # compacted: not 5000 entries for 10 live items
    assert len(q) == 10
    assert keys(q.pop_batch(20)) == [f"a/ns/p{i}" for i in range(4990, 5000)]


def test_readd_after_delete_goes_to_the_back(q: Queue) -> None:
    add(q, "t/ns/a")
    add(q, "t/ns/b")
    q.delete("t/ns/a")
    add(q, "t/ns/a")
    assert keys(q.pop_batch(5)) == ["t/ns/b", "t/ns/a"]


# --- helpers ----------------------------------------------------------------------------------

def test_pod_changed_ignores_status_and_bookkeeping() -> None:
    old = {"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}, "status": {}}
    same = {"metadata": {"name": "a", "resourceVersion": "7", "generation": 2},
            "spec": {"x": 1}, "status": {"phase": "Pending"}}
    assert not pod_changed(old, same)
    assert pod_changed(old, {**old, "spec": {"x": 2}})
    assert pod_changed("a", "b") and not pod_changed(1, 1)


async def test_wait_ready_wakes_on_add(q: Queue) -> None:
    waiter = asyncio.create_task(q.wait_ready())
    await asyncio.sleep(0)
    assert not waiter.done()
    add(q, "t/ns/a")
    assert await asyncio.wait_for(waiter, 1.0)


async def test_wait_ready_times_out(q: Queue) -> None:
    assert not await q.wait_ready(timeout=0.01)


async def test_wait_ready_wakes_when_backoff_ends() -> None:
    loop = asyncio.get_running_loop()
    q: Queue = SchedulingQueue(now=loop.time, initial_backoff=0.02)
    add(q, "t/ns/a")
    q.requeue_error(pop_one(q))
    assert await q.wait_ready(timeout=2.0)
    assert keys(q.pop_batch(1)) == ["t/ns/a"]
