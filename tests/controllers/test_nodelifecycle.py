"""The node lifecycle controller against a real API server, with short timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.controllers import node_health as nh
from arktos.controllers.nodelifecycle import NodeLifecycleController
from tests.controllers.conftest import running
from tests.waiting import eventually, in_background

FAST = {"node_monitor_period": 0.5, "node_monitor_grace_period": 2.0,
        "pod_eviction_timeout": 3.0}
UNREACHABLE = {(nh.UNREACHABLE, nh.NO_SCHEDULE), (nh.UNREACHABLE, nh.NO_EXECUTE)}


def stamp(age: float = 0.0) -> str:
    return nh.format_time(datetime.now(UTC) - timedelta(seconds=age))


def node_body(name: str, ready: str = "True", age: float = 0.0,
              extra: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A Node whose Ready condition was last posted `age` seconds ago."""
    ready_cond = {"type": "Ready", "status": ready, "reason": "KubeletReady",
                  "lastHeartbeatTime": stamp(age), "lastTransitionTime": stamp(age)}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [ready_cond, *extra]}}


def pod_body(name: str, node: str, tenant: str = "system", **spec: Any) -> dict[str, Any]:
    """A pod in `tenant`'s default namespace, bound to `node` (unbound when empty)."""
    bound = {"nodeName": node} if node else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "tenant": tenant},
            "spec": {**bound, "containers": [{"name": "c", "image": "busybox"}], **spec}}


async def renew_lease(api: ApiClient, node: str, age: float = 0.0) -> None:
    """Create or renew the node's heartbeat Lease (renewTime `age` seconds ago)."""
    leases = ResourceClient(api, "leases")
    renew = nh.format_micro_time(datetime.now(UTC) - timedelta(seconds=age))
    spec = {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": renew}
    try:
        await leases.create({"metadata": {"name": node, "namespace": nh.NODE_LEASE_NAMESPACE,
                                          "tenant": nh.NODE_LEASE_TENANT}, "spec": spec})
    except ApiError as exc:
        assert exc.conflict, exc
        await leases.patch(node, {"spec": spec}, namespace=nh.NODE_LEASE_NAMESPACE,
                           tenant=nh.NODE_LEASE_TENANT)


@contextlib.asynccontextmanager
async def heartbeating(api: ApiClient, node: str) -> AsyncIterator[None]:
    """Renew the node's lease now and every 0.3 s for the body of the block (a live node
    agent); the first renewal is done before the block starts."""
    async def beat() -> None:
        while True:
            await asyncio.sleep(0.3)
            await renew_lease(api, node)

    await renew_lease(api, node)
    async with in_background(beat()):
        yield


async def create_tenant(api: ApiClient, name: str) -> None:
    """A tenant with its `default` namespace (created here: no tenant controller runs)."""
    await ResourceClient(api, "tenants").create({"metadata": {"name": name}})
    with contextlib.suppress(ApiError):
        await ResourceClient(api, "namespaces").create({"metadata": {"name": "default"}},
                                                       tenant=name)


def conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in nh.conditions(node)}


def taint_ids(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in nh.taints(node)}


async def exists(pods: ResourceClient, name: str, tenant: str) -> bool:
    try:
        await pods.get(name, namespace="default", tenant=tenant)
    except ApiError as exc:
        assert exc.not_found, exc
        return False
    return True


async def test_node_with_fresh_lease_stays_ready(api: ApiClient,
                                                 unique: Callable[[str], str]) -> None:
    nodes = ResourceClient(api, "nodes")
    name = unique("fresh")
    await nodes.create(node_body(name, age=60))  # only the lease keeps it alive
    async with heartbeating(api, name), running(api, [NodeLifecycleController], **FAST):
        await asyncio.sleep(3.5)
        node = await nodes.get(name)
    assert conditions(node)["Ready"]["status"] == "True"
    assert nh.taints(node) == []


async def test_silent_node_goes_unknown_and_recovers(api: ApiClient,
                                                     unique: Callable[[str], str]) -> None:
    nodes = ResourceClient(api, "nodes")
    name = unique("silent")
    extra = ({"type": "MemoryPressure", "status": "False"},
             {"type": "NetworkUnavailable", "status": "False"})
    await nodes.create(node_body(name, age=60, extra=extra))
    await renew_lease(api, name, age=60)
    async with running(api, [NodeLifecycleController], **FAST):
        async def marked() -> bool:
            return taint_ids(await nodes.get(name)) == UNREACHABLE
        await eventually(marked)
        node = await nodes.get(name)
        conds = conditions(node)
        for kind in ("Ready", "MemoryPressure"):
            assert conds[kind]["status"] == "Unknown"
            assert conds[kind]["reason"] == "NodeStatusUnknown"
            assert conds[kind]["message"] == "Kubelet stopped posting node status."
        assert conds["NetworkUnavailable"]["status"] == "False"
        assert all(t.get("timeAdded") for t in nh.taints(node))
        events = await ResourceClient(api, "events").list(
            tenant="system", namespace="default", field_selector=f"involvedObject.name={name}")
        assert "NodeNotReady" in {e["reason"] for e in events.items}

        async with heartbeating(api, name):
            await post_ready(nodes, name)

            async def healed() -> bool:
                return not taint_ids(await nodes.get(name))
            await eventually(healed)
            await asyncio.sleep(1.0)
            assert conditions(await nodes.get(name))["Ready"]["status"] == "True"
            assert not taint_ids(await nodes.get(name))


async def post_ready(nodes: ResourceClient, name: str) -> None:
    """What a node agent does when it is back: post Ready=True with a fresh heartbeat."""
    node = await nodes.get(name)
    node["metadata"].pop("resourceVersion")
    node["status"]["conditions"] = node_body(name)["status"]["conditions"]
    await nodes.update(node, subresource="status")


async def test_not_ready_node_gets_not_ready_taint(api: ApiClient,
                                                   unique: Callable[[str], str]) -> None:
    nodes = ResourceClient(api, "nodes")
    name = unique("notready")
    await nodes.create(node_body(name, ready="False"))
    async with heartbeating(api, name), running(api, [NodeLifecycleController], **FAST):
        async def tainted() -> bool:
            return taint_ids(await nodes.get(name)) == {(nh.NOT_READY, nh.NO_SCHEDULE)}
        await eventually(tainted)


async def test_pods_of_unreachable_node_are_evicted(api: ApiClient,
                                                    unique: Callable[[str], str]) -> None:
    nodes, pods = ResourceClient(api, "nodes"), ResourceClient(api, "pods")
    sick, well = unique("sick"), unique("well")
    tenants = unique("ta"), unique("tb")
    for tenant in tenants:
        await create_tenant(api, tenant)
    await nodes.create(node_body(sick, age=60))
    await renew_lease(api, sick, age=60)
    await nodes.create(node_body(well))
    tolerant = {"key": nh.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    doomed = [("p-a", tenants[0]), ("p-b", tenants[1])]
    spared = [("p-well", tenants[0]), ("p-tolerant", tenants[1])]
    for pod, tenant in doomed:
        await pods.create(pod_body(pod, sick, tenant))
    await pods.create(pod_body("p-well", well, tenants[0]))
    await pods.create(pod_body("p-tolerant", sick, tenants[1], tolerations=[tolerant]))

    async with heartbeating(api, well), running(api, [NodeLifecycleController], **FAST):
        async def marked() -> bool:
            return taint_ids(await nodes.get(sick)) == UNREACHABLE
        await eventually(marked)
        assert all([await exists(pods, p, t) for p, t in doomed])  # not before the timeout

        async def evicted() -> bool:
            return not any([await exists(pods, p, t) for p, t in doomed])
        await eventually(evicted, timeout=8)
        assert all([await exists(pods, p, t) for p, t in spared])
        assert not taint_ids(await nodes.get(well))
    events = await ResourceClient(api, "events").list(
        tenant=tenants[0], namespace="default", field_selector="involvedObject.name=p-a")
    assert [e["reason"] for e in events.items] == ["TaintManagerEviction"]
