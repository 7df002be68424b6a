"""Leader election on a real server: one leader at a time, take-over after the leader goes,
leaseTransitions, and a leader cut off from the server stepping down before its lease ends."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from arktos.client.config import load_config
from arktos.client.leaderelection import LeaderElector
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess
from tests.waiting import eventually

FAST: dict[str, Any] = {"lease_duration": 2, "renew_deadline": 1.5, "retry_period": 0.1}


class Leadership:
    """`lead()` bodies that record who leads, and whether two ever overlapped."""

    def __init__(self) -> None:
        self.leading: set[str] = set()
        self.history: list[str] = []
        self.overlaps = 0
        self.stopped_at: dict[str, float] = {}

    def lead(self, identity: str) -> Callable[[], Any]:
        async def lead() -> None:
            if self.leading:
                self.overlaps += 1
            self.leading.add(identity)
            self.history.append(identity)
            try:
                await asyncio.Event().wait()
            finally:
                self.leading.discard(identity)
                self.stopped_at[identity] = time.time()
        return lead


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def lease_spec(api: ApiClient, name: str) -> dict[str, Any]:
    lease = await ResourceClient(api, "leases").get(name, namespace="kube-system",
                                                    tenant="system")
    return dict(lease["spec"])


def rfc3339(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


async def test_one_leader_at_a_time_and_take_over_with_transitions(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    name = unique("lease")
    record = Leadership()
    electors = {who: LeaderElector(api, name=name, identity=who, **FAST) for who in "ab"}
    tasks = {who: asyncio.create_task(e.run(record.lead(who))) for who, e in electors.items()}
    try:
        await eventually(lambda: _true(len(record.leading) == 1))
        first = next(iter(record.leading))
        second = "b" if first == "a" else "a"
        spec = await lease_spec(api, name)
        assert spec["holderIdentity"] == first and spec["leaseTransitions"] == 0
        assert electors[first].is_leader and not electors[second].is_leader
        # Several renewals later the same candidate still leads, the other still waits.
        renewed = spec["renewTime"]
        await eventually(lambda: _renewed_after(api, name, renewed))
        assert record.leading == {first} and record.history == [first]
        assert (await lease_spec(api, name))["acquireTime"] == spec["acquireTime"]

        await stop(tasks.pop(first))
        assert not electors[first].is_leader
        await eventually(lambda: _true(record.leading == {second}))
        spec = await lease_spec(api, name)
        assert spec["holderIdentity"] == second and spec["leaseTransitions"] == 1

        # A newcomer takes over from the second leader too; transitions count on.
        tasks["c"] = asyncio.create_task(
            LeaderElector(api, name=name, identity="c", **FAST).run(record.lead("c")))
        await stop(tasks.pop(second))
        await eventually(lambda: _true(record.leading == {"c"}))
        spec = await lease_spec(api, name)
        assert spec["holderIdentity"] == "c" and spec["leaseTransitions"] == 2
        assert record.history == [first, second, "c"]
        assert record.overlaps == 0
    finally:
        for task in tasks.values():
            await stop(task)


async def test_a_vanished_holders_lease_is_taken_only_after_it_expires(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    """A holder that died without releasing: its lease must run out before anyone leads."""
    name = unique("ghost")
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await ResourceClient(api, "leases").create({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-system", "tenant": "system"},
        "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 2, "acquireTime": stamp,
                 "renewTime": stamp, "leaseTransitions": 4}})
    record = Leadership()
    started: list[float] = []

    async def lead() -> None:
        started.append(time.time())
        await record.lead("heir")()

    task = asyncio.create_task(LeaderElector(api, name=name, identity="heir", **FAST).run(lead))
    try:
        await eventually(lambda: _true(record.leading == {"heir"}))
    finally:
        await stop(task)
    assert started[0] >= now.timestamp() + 2
    spec = await lease_spec(api, name)
    assert spec["leaseTransitions"] == 5 and spec["acquireTime"] != stamp


async def test_many_candidates_never_overlap(api: ApiClient,
                                             unique: Callable[[str], str]) -> None:
    name = unique("crowd")
    record = Leadership()
    tasks = [asyncio.create_task(LeaderElector(api, name=name, identity=f"c{i}", **FAST).run(
        record.lead(f"c{i}"))) for i in range(5)]
    try:
        for _ in range(3):
            await eventually(lambda: _true(len(record.leading) == 1))
            leader = next(iter(record.leading))
            victim = next(t for i, t in enumerate(tasks) if f"c{i}" == leader)
            await stop(victim)
        assert record.overlaps == 0 and len(record.history) == len(set(record.history)) == 3
    finally:
        for task in tasks:
            await stop(task)


async def test_lead_returning_ends_run(api: ApiClient, unique: Callable[[str], str]) -> None:
    done: list[str] = []

    async def lead() -> None:
        done.append("led")

    elector = LeaderElector(api, name=unique("short"), identity="x", **FAST)
    async with asyncio.timeout(10):
        await elector.run(lead)
    assert done == ["led"] and not elector.is_leader


@pytest.fixture
def pausable(tmp_path: Path) -> Iterator[ApiServerProcess]:
    proc = ApiServerProcess(tmp_path / "pausable").start()
    yield proc
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGCONT)
    proc.stop()


async def test_a_leader_cut_off_from_the_server_stops_before_its_lease_expires(
        pausable: ApiServerProcess) -> None:
    """Regression: a renewal hanging on an unresponsive server (request timeout 30 s, plus
    retries) kept `lead()` running long after others could take the lease over; and releasing
    the lease on the way out hung as long."""
    assert pausable.proc is not None
    record = Leadership()
    async with ApiClient(load_config(pausable.kubeconfig)) as api:
        assert api.config.timeout >= 30
        elector = LeaderElector(api, name="paused", identity="p", lease_duration=3,
                                renew_deadline=2, retry_period=0.2)
        task = asyncio.create_task(elector.run(record.lead("p")))
        try:
            await eventually(lambda: _true(record.leading == {"p"}))
            pausable.proc.send_signal(signal.SIGSTOP)
            await eventually(lambda: _true("p" in record.stopped_at), timeout=15)
            # ... and `run` returns (its release attempt gives up) while the server is still
            # unresponsive, so the caller can start over.
            await eventually(lambda: _true(task.done()), timeout=15)
            assert not elector.is_leader
        finally:
            pausable.proc.send_signal(signal.SIGCONT)
            await stop(task)
        spec = await lease_spec(api, "paused")
    # Whatever renewal the server stored last, the leader had stopped before it ran out.
    assert record.stopped_at["p"] < rfc3339(spec["renewTime"]) + spec["leaseDurationSeconds"]


async def _true(value: bool) -> bool:
    return value


async def _renewed_after(api: ApiClient, name: str, renew_time: str) -> bool:
    spec = await lease_spec(api, name)
    return bool(rfc3339(spec["renewTime"]) > rfc3339(renew_time) + 0.3)
