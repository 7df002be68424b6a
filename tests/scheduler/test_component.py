"""The scheduler component's bookkeeping around bindings, with a fake binder (no server):
an assumption is counted at once, kept when the binding succeeds, and taken back (with the
pod requeued or dropped) when it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arktos.client.config import ClientConfig
from arktos.client.rest import ApiClient
from arktos.scheduler.binder import BindOutcome
from arktos.scheduler.queue import QueueState
from arktos.scheduler.scheduler import Scheduler, SchedulerSettings
from tests.scheduler.test_nodes import make_node

Obj = dict[str, Any]


def pod(name: str, cpu: str = "3") -> Obj:
    return {"metadata": {"name": name, "namespace": "dev", "tenant": "acme", "uid": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}


class FakeBinder:
    def __init__(self, outcome: BindOutcome) -> None:
        self.outcome = outcome
        self.bound: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []

    async def bind(self, pod: Obj, node: str) -> tuple[BindOutcome, str]:
        self.bound.append((pod["metadata"]["name"], node))
        return self.outcome, "" if self.outcome is BindOutcome.BOUND else "refused"

    async def unschedulable(self, pod: Obj, message: str) -> None:
        self.refused.append((pod["metadata"]["name"], message))


async def run_once(sched: Scheduler, binder: FakeBinder, *pods: Obj) -> None:
    for p in pods:
        sched._pod_changed(p)
    async with asyncio.TaskGroup() as tg:
        sched._tg = tg
        for item in sched.queue.pop_batch(10):
            sched._schedule_one(item, binder)  # type: ignore[arg-type]


@pytest.fixture
def sched() -> Scheduler:
    s = Scheduler(ApiClient(ClientConfig(server="https://127.0.0.1:1")),
                  SchedulerSettings(metrics_port=-1))
    s.table.upsert_node(make_node("n1", cpu="4"))
    return s


async def test_a_bound_pod_stays_counted_until_the_informer_confirms(sched: Scheduler) -> None:
    binder = FakeBinder(BindOutcome.BOUND)
    await run_once(sched, binder, pod("a"), pod("b"))
    assert binder.bound == [("a", "n1")], "b does not fit beside the assumed a"
    assert binder.refused == [("b", "0/1 nodes are available: 1 Insufficient cpu.")]
    assert "acme/dev/a" in sched.assumed and sched.table.pod("acme/dev/a") is not None
    sched._pod_changed({**pod("a"), "spec": {**pod("a")["spec"], "nodeName": "n1"}})
    assert "acme/dev/a" not in sched.assumed
    record = sched.table.pod("acme/dev/a")
    assert record is not None and record[1] == "n1"


@pytest.mark.parametrize(("outcome", "requeued"), [(BindOutcome.ERROR, True),
                                                    (BindOutcome.CONFLICT, False),
                                                    (BindOutcome.GONE, False)])
async def test_a_failed_binding_takes_the_assumption_back(
        sched: Scheduler, outcome: BindOutcome, requeued: bool) -> None:
    await run_once(sched, FakeBinder(outcome), pod("a"))
    assert sched.table.pod("acme/dev/a") is None and not sched.assumed
    item = sched.queue.get("acme/dev/a")
    assert (item is not None and item.state is QueueState.BACKOFF) is requeued


async def test_deleting_a_bound_pod_frees_its_node(sched: Scheduler) -> None:
    bound = {**pod("a"), "spec": {**pod("a")["spec"], "nodeName": "n1"}}
    sched._pod_changed(bound)
    binder = FakeBinder(BindOutcome.BOUND)
    await run_once(sched, binder, pod("b"))
    assert binder.bound == []
    sched._pod_deleted(bound)
    await run_once(sched, binder)
    sched.queue.flush(float("inf"))
    await run_once(sched, binder)
    assert binder.bound == [("b", "n1")]


def test_only_node_changes_that_matter_retry_unschedulable_pods(sched: Scheduler) -> None:
    old = make_node("n1", cpu="4")
    beat = {**old, "status": {**old["status"], "conditions": [
        {**c, "lastHeartbeatTime": "2026-01-01T00:00:00Z"} for c in old["status"]["conditions"]]}}
    sched._pod_changed(pod("huge", cpu="8"))
    [item] = sched.queue.pop_batch(1)
    sched.queue.requeue_unschedulable(item, "too big")
    sched._node_updated(old, beat)
    assert sched.queue.lengths()["unschedulable"] == 1, "a heartbeat moves nothing"
    bigger = make_node("n1", cpu="16")
    sched._node_updated(beat, bigger)
    assert sched.queue.lengths()["unschedulable"] == 0
