"""The pod garbage collector: its pure decisions, then against a real API server."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from arktos.controllers.podgc import (
    PodGCController,
    Quarantine,
    pods_on_missing_nodes,
    terminated_excess,
)
from tests.controllers.conftest import running
from tests.controllers.test_nodelifecycle import exists, node_body, pod_body
from tests.waiting import eventually

FAST_GC = functools.partial(PodGCController, period=0.3, quarantine=0.5)


def pod(name: str, created: str = "2024-01-01T00:00:00Z", phase: str = "Running",
        node: str = "", tenant: str = "t") -> dict[str, Any]:
    return {"metadata": {"name": name, "tenant": tenant, "namespace": "default",
                         "creationTimestamp": created},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# --- pure -----------------------------------------------------------------------------------

def test_terminated_excess_oldest_first() -> None:
    pods = [pod("new", "2024-01-03T00:00:00Z", "Failed"),
            pod("old", "2024-01-01T00:00:00Z", "Succeeded"),
            pod("running", "2023-01-01T00:00:00Z", "Running"),
            pod("mid-b", "2024-01-02T00:00:00Z", "Failed"),
            pod("mid-a", "2024-01-02T00:00:00Z", "Failed")]
    assert names(terminated_excess(pods, 1)) == ["old", "mid-a", "mid-b"]
    assert names(terminated_excess(pods, 3)) == ["old"]
    assert terminated_excess(pods, 4) == []
    assert terminated_excess(pods, 0) == []  # disabled


def test_pods_on_missing_nodes() -> None:
    pods = [pod("a", node="n1"), pod("b", node="gone"), pod("c"), pod("d", node="gone")]
    out = pods_on_missing_nodes(pods, {"n1"})
    assert {k: names(v) for k, v in out.items()} == {"gone": ["b", "d"]}


def test_quarantine() -> None:
    q = Quarantine(5)
    assert q.due(["a"], now=100) == []
    assert q.next_due(100) == 5
    assert q.due(["a", "b"], now=104) == []
    assert q.due(["a", "b"], now=105) == ["a"]
    assert q.next_due(105) == 4  # "b" still waits; "a" is due, not waiting
    assert q.due(["b"], now=106) == []  # "a" reappeared: forgotten
    assert q.due(["a", "b"], now=109) == ["b"]  # "a" starts over
    q.forget("b")
    assert q.due(["b"], now=110) == []


# --- against the API server -----------------------------------------------------------------

async def test_terminated_pods_beyond_threshold_are_deleted(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    pods = ResourceClient(api, "pods")
    old = [unique("old") for _ in range(3)]
    new = [unique("new") for _ in range(2)]
    for name in old:
        await pods.create({**pod_body(name, ""), "status": {"phase": "Failed"}})
    await asyncio.sleep(1.1)  # creationTimestamp has whole seconds
    for name in new:
        await pods.create({**pod_body(name, ""), "status": {"phase": "Succeeded"}})
    await pods.create(pod_body(unique("live"), ""))
    async with running(api, [FAST_GC], terminated_pod_gc_threshold=2):
        async def collected() -> bool:
            left = await pods.list(tenant="system", namespace="default")
            return sorted(p["metadata"]["name"] for p in left.items
                          if p["status"]["phase"] != "Pending") == sorted(new)
        await eventually(collected)
        await asyncio.sleep(0.6)
        assert await collected()


async def test_pods_on_missing_nodes_are_deleted(api: ApiClient,
                                                 unique: Callable[[str], str]) -> None:
    pods, nodes = ResourceClient(api, "pods"), ResourceClient(api, "nodes")
    real, ghost = unique("real"), unique("ghost")
    await nodes.create(node_body(real))
    orphan, terminating, kept = unique("orphan"), unique("terminating"), unique("kept")
    await pods.create(pod_body(orphan, ghost))
    await pods.create(pod_body(terminating, ghost))
    await pods.delete(terminating, namespace="default", tenant="system")  # stays: no agent
    assert (await pods.get(terminating, namespace="default"))["metadata"]["deletionTimestamp"]
    await pods.create(pod_body(kept, real))
    async with running(api, [FAST_GC]):
        async def collected() -> bool:
            return not (await exists(pods, orphan, "system")
                        or await exists(pods, terminating, "system"))
        await eventually(collected)
        assert await exists(pods, kept, "system")


async def test_node_registered_during_quarantine_spares_its_pods(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    pods, nodes = ResourceClient(api, "pods"), ResourceClient(api, "nodes")
    late = unique("late")
    early = unique("early")
    await pods.create(pod_body(early, late))
    gc = functools.partial(PodGCController, period=0.2, quarantine=1.5)
    async with running(api, [gc]):
        await asyncio.sleep(0.5)
        await nodes.create(node_body(late))
        await asyncio.sleep(2.0)
        assert await exists(pods, early, "system")
