"""The agent process: one or many nodes sharing one API client, ONE pod informer (all pods
bound to any node, dispatched by `spec.nodeName`), one heartbeat loop and the pod workers.

`hollow_nodes` builds the N nodes of `arktos agent --hollow`; they share one in-memory
`HollowRuntime` (pods are keyed by uid, so sharing is safe and saves memory).
"""

from __future__ import annotations

import asyncio
import logging

from arktos.agent.actions import ActionRunner
from arktos.agent.hollow import HollowRuntime
from arktos.agent.node import AgentNode, NodeHeartbeats
from arktos.agent.nodestatus import HOLLOW_CAPACITY, NodeSpec
from arktos.agent.pods import PodSyncer
from arktos.agent.runtime import PodRuntimeStatus, Runtime
from arktos.agent.server import LogSource
from arktos.agent.settings import AgentSettings
from arktos.agent.tasks import start_soon
from arktos.client.informer import InformerFactory
from arktos.client.rest import ApiClient
from arktos.client.store import make_key

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
        self.syncer = PodSyncer(api, nodes, informer.store, self.settings)
        self._informer = informer
        self._actions = self.informers.informer("actions", field_selector=pod_selector(nodes))
        self.actions = ActionRunner(api, nodes, self._actions.store, informer.store,
                                    ttl=self.settings.action_ttl,
                                    kick_pod=self.syncer.workers.kick)

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            await self.syncer.prober.close()

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self.orphans = tg
            tg.create_task(self.heartbeats.run())
            tg.create_task(self.syncer.workers.run())
            await self.heartbeats.registered.wait()
            await asyncio.sleep(0)  # let the workers' task group open
            self._informer.add_handler(self.syncer.handler())
            self._actions.add_handler(self.actions.handler())
            tg.create_task(self.informers.run())
            await self.informers.wait_synced(timeout=120)
            log.info("pod informer synced: %d pods on %d nodes", len(self._informer.store),
                     len(self.nodes))
            tg.create_task(self.relist())
            tg.create_task(self.actions.run())

    def log_source(self, tenant: str, namespace: str, pod: str,
                   container: str) -> tuple[LogSource, str] | None:
        """(runtime, uid) of a pod this process runs (for `AgentServer`)."""
        placed = self.syncer.placed.get(make_key(tenant, namespace, pod))
        return None if placed is None else (placed[1], placed[0])

    def runtimes(self) -> list[Runtime]:
        """Every runtime of this process's nodes, once each."""
        seen: dict[int, Runtime] = {}
        for node in self.nodes.values():
            for rt in node.runtimes:
                seen.setdefault(id(rt), rt)
        return list(seen.values())

    async def relist(self) -> None:
        """Look at what the runtimes run every `relist_interval` seconds: a pod whose state
        changed (a container exited, a VM powered off) is synced; a pod the runtime has but
        the API does not (deleted while the agent was down) is removed."""
        last: dict[str, PodRuntimeStatus] = {}
        while True:
            await asyncio.sleep(self.settings.relist_interval)
            now: dict[str, PodRuntimeStatus] = {}
            strangers: list[tuple[Runtime, str]] = []
            for rt in self.runtimes():
                try:
                    listed = await rt.list_pods()
                except RuntimeError as exc:  # RuntimeFailure too: try again next time
                    log.warning("listing the pods of runtime %s: %s", rt.name, exc)
                    now.update(last)
                    continue
                for rs in listed:
                    now[rs.uid] = rs
                    if rs.uid not in self.syncer.keys:
                        strangers.append((rt, rs.uid))
                    elif last.get(rs.uid) is not rs and last.get(rs.uid) != rs:
                        self.syncer.kick_uid(rs.uid)
            last = now
            if strangers:
                self._remove_orphans(strangers)

    def _remove_orphans(self, strangers: list[tuple[Runtime, str]]) -> None:
        known = {str(p["metadata"].get("uid", "")) for p in self._informer.store.objects()}
        for rt, uid in strangers:
            if uid not in known:
                log.info("removing pod %s: the API has no such pod on this node", uid)
                start_soon(self.orphans, rt.remove_pod(uid, 0))
