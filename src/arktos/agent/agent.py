"""The agent process: one or many nodes sharing one API client, ONE pod informer (all pods
bound to any node, dispatched by `spec.nodeName`), one heartbeat loop and the pod workers.

`hollow_nodes` builds the N nodes of `arktos agent --hollow`; they share one in-memory
`HollowRuntime` (pods are keyed by uid, so sharing is safe and saves memory).
"""

from __future__ import annotations

import asyncio
import logging

from arktos.agent.hollow import HollowRuntime
from arktos.agent.node import AgentNode, NodeHeartbeats
from arktos.agent.nodestatus import HOLLOW_CAPACITY, NodeSpec
from arktos.agent.pods import PodSyncer
from arktos.agent.settings import AgentSettings
from arktos.client.informer import InformerFactory
from arktos.client.rest import ApiClient

log = logging.getLogger(__name__)
BOUND_PODS = "spec.nodeName!="


def hollow_address(index: int) -> str:
    """A fake InternalIP per hollow node, in 10.64.0.0/10."""
    return f"10.{64 + (index >> 16) % 64}.{(index >> 8) & 255}.{index & 255}"


def hollow_nodes(count: int, prefix: str, runtime: HollowRuntime, *,
                 capacity: dict[str, str] | None = None) -> dict[str, AgentNode]:
    """`count` hollow nodes named `<prefix><i>`, all on `runtime`."""
    nodes = {}
    for i in range(count):
        spec = NodeSpec(f"{prefix}{i}", hollow_address(i), dict(capacity or HOLLOW_CAPACITY),
                        labels={"arktos.io/hollow": "true"})
        nodes[spec.name] = AgentNode(spec, [runtime])
    return nodes


def pod_selector(nodes: dict[str, AgentNode]) -> str:
    """One node: only its pods; several: every bound pod (one watch, dispatched here)."""
    if len(nodes) == 1:
        return f"spec.nodeName={next(iter(nodes))}"
    return BOUND_PODS


class Agent:
    """Serves `nodes` until cancelled."""

    def __init__(self, api: ApiClient, nodes: dict[str, AgentNode],
                 settings: AgentSettings | None = None) -> None:
        self.api = api
        self.nodes = nodes
        self.settings = settings or AgentSettings()
        self.heartbeats = NodeHeartbeats(api, nodes, self.settings)
        self.informers = InformerFactory(api)
        informer = self.informers.informer("pods", field_selector=pod_selector(nodes))
        self.syncer = PodSyncer(api, nodes, informer.store, retry=self.settings.retry_interval)
        self._informer = informer

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.heartbeats.run())
            tg.create_task(self.syncer.workers.run())
            await self.heartbeats.registered.wait()
            await asyncio.sleep(0)  # let the workers' task group open
            self._informer.add_handler(self.syncer.handler())
            tg.create_task(self.informers.run())
            await self.informers.wait_synced(timeout=120)
            log.info("pod informer synced: %d pods on %d nodes", len(self._informer.store),
                     len(self.nodes))
