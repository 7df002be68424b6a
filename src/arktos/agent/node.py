"""Node registration and heartbeats for all the nodes of one agent process: one loop renews
every node's Lease (spread over the renew interval) and, when due, its Node status.

Writes use merge patches (no read before write, no conflicts): a node owns its Lease and the
status conditions it reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arktos.agent.nodestatus import (
    LEASE_NAMESPACE,
    LEASE_TENANT,
    NodeSpec,
    Probes,
    lease_object,
    lease_spec,
    node_object,
    node_status,
    status_due,
    status_view,
)
from arktos.agent.podstatus import is_vm_pod
from arktos.agent.runtime import Obj, Runtime
from arktos.agent.schedule import RenewalSchedule
from arktos.agent.settings import AgentSettings
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError

log = logging.getLogger(__name__)


@dataclass
class AgentNode:
    """One node served by this process: what it is, its runtimes, what it last reported."""

    spec: NodeSpec
    runtimes: list[Runtime]
    last_view: tuple[Any, ...] | None = None
    last_report: float | None = None
    conditions: list[Obj] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def runtime_for(self, pod: Obj) -> Runtime | None:
        """The runtime a pod goes to: the VM runtime for VM pods, else the container one."""
        vm = is_vm_pod(pod)
        for rt in self.runtimes:
            if (rt.runs_vms if vm else rt.runs_containers):
                return rt
        return None

    async def probes(self) -> Probes:
        containers = [rt for rt in self.runtimes if rt.runs_containers]
        vms = [rt for rt in self.runtimes if rt.runs_vms]
        return Probes(containers=await containers[0].ready() if containers else None,
                      vms=await vms[0].ready() if vms else None)


def _now() -> datetime:
    return datetime.now(UTC)


class NodeHeartbeats:
    """Registers the nodes, then renews their Leases and reports their status until
    cancelled."""

    def __init__(self, api: ApiClient, nodes: dict[str, AgentNode],
                 settings: AgentSettings) -> None:
        self.nodes = nodes
        self.settings = settings
        self.node_api = ResourceClient(api, "nodes")
        self.lease_api = ResourceClient(api, "leases")
        self.schedule = RenewalSchedule(settings.lease_renew_interval)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.registered = asyncio.Event()

    async def run(self) -> None:
        await self._all(self.register)
        self.registered.set()
        log.info("registered %d nodes", len(self.nodes))
        self.schedule.add_spread(list(self.nodes), time.monotonic())
        while True:
            due = self.schedule.pop_due(time.monotonic())
            if due:
                await self._all(self.heartbeat, due)
            wake = self.schedule.next_due()
            await asyncio.sleep(0.05 if wake is None else max(0.0, wake - time.monotonic()))

    async def _all(self, work: Any, names: list[str] | None = None) -> None:
        async def one(name: str) -> None:
            async with self._slots:
                await work(self.nodes[name])
        async with asyncio.TaskGroup() as tg:
            for name in names if names is not None else list(self.nodes):
                tg.create_task(one(name))

    async def register(self, node: AgentNode) -> None:
        """Create the Node (if missing), report its status, and take its Lease."""
        while True:
            try:
                await self._create_node(node)
                await self.report_status(node)
                await self.renew_lease(node)
                return
            except ApiError as exc:
                log.warning("registering node %s: %s; retrying", node.name, exc)
                await asyncio.sleep(self.settings.retry_interval)

    async def _create_node(self, node: AgentNode) -> None:
        try:
            created = await self.node_api.create(node_object(node.spec))
        except ApiError as exc:
            if not exc.conflict:
                raise
            created = await self.node_api.get(node.name)
        node.conditions = list((created.get("status") or {}).get("conditions") or [])

    async def heartbeat(self, node: AgentNode) -> None:
        """Renew the Lease; report the status if it changed or is due. Never raises."""
        retry = self.settings.lease_renew_interval
        try:
            await self.renew_lease(node)
            await self.maybe_report_status(node)
        except ApiError as exc:
            log.warning("heartbeat of node %s: %s", node.name, exc)
            retry = min(retry, self.settings.retry_interval)
        self.schedule.push(node.name, time.monotonic() + retry)

    async def renew_lease(self, node: AgentNode) -> None:
        spec = lease_spec(node.name, self.settings.lease_duration, _now())
        try:
            await self.lease_api.patch(node.name, {"spec": spec}, namespace=LEASE_NAMESPACE,
                                       tenant=LEASE_TENANT)
        except ApiError as exc:
            if not exc.not_found:
                raise
            await self.lease_api.create(
                lease_object(node.name, self.settings.lease_duration, _now()))

    async def maybe_report_status(self, node: AgentNode) -> None:
        view = status_view(node.spec, await node.probes())
        if status_due(changed=view != node.last_view, last_report=node.last_report,
                      now=time.monotonic(),
                      frequency=self.settings.node_status_update_frequency):
            await self.report_status(node)

    async def report_status(self, node: AgentNode) -> None:
        probes = await node.probes()
        status = node_status(node.spec, probes, node.conditions, _now())
        await self.node_api.patch(node.name, {"status": status}, subresource="status")
        node.conditions = status["conditions"]
        node.last_view = status_view(node.spec, probes)
        node.last_report = time.monotonic()
