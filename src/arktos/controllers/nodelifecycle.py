"""The node lifecycle controller: watches node heartbeats (Leases in `system/kube-node-lease`
named like their node, and the Ready condition's lastHeartbeatTime), marks silent nodes
Ready=Unknown with unreachable taints, lifts the taints when they report Ready again, and
evicts the pods of nodes unreachable for longer than `pod_eviction_timeout`.

Keys: one per node (`//name`, from node and lease changes) plus the `MONITOR` key, which
every `node_monitor_period` re-enqueues every node (silence changes nothing in the API, so
time alone must drive the checks) and decides whether evictions are paused.

Eviction deletes a pod with gracePeriodSeconds=0. A graceful delete waits for the pod's node
agent to confirm, which an unreachable node never does: the pod would stay Terminating and its
ReplicaSet would not replace it. The eviction timeout already gave the node its chance, so the
pod is removed at once (with its uid as precondition, sparing a same-named successor).
The decisions themselves are pure functions in `node_health`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.store import Obj, key_of, make_key
from arktos.controllers import node_health as nh
from arktos.controllers.base import Context, Controller
from arktos.controllers.pods import force_delete

log = logging.getLogger(__name__)
MONITOR = "monitor"
"""The periodic key (never a valid object key, which always has two slashes)."""
NODE_INDEX = "spec.nodeName"


class NodeLifecycleController(Controller):
    name = "node-lifecycle"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.nodes_api = ResourceClient(ctx.api, "nodes")
        self.pods_api = ResourceClient(ctx.api, "pods")
        self.nodes = ctx.informers.informer("nodes")
        self.leases = ctx.informers.informer("leases.coordination.k8s.io",
                                             tenant=nh.NODE_LEASE_TENANT,
                                             namespace=nh.NODE_LEASE_NAMESPACE)
        self.pods = ctx.informers.informer("pods", indexers={NODE_INDEX: nh.node_name_index})
        self.watch(self.nodes)
        self.leases.add_handler(self._lease_handler())
        self.evictions_paused: bool | None = None
        """None until the first monitor pass has looked at every node."""
        self.queue.add(MONITOR)

    def _lease_handler(self) -> Handler:
        """A lease change queues its node (a renewal may lift the unreachable taints)."""
        def node_of(lease: Obj) -> None:
            self.queue.add(make_key("", "", str(lease["metadata"]["name"])))
        return Handler(on_add=node_of, on_update=lambda _o, n: node_of(n), on_delete=node_of)

    def lease_of(self, node_name: str) -> Obj | None:
        return self.leases.store.get(make_key(nh.NODE_LEASE_TENANT, nh.NODE_LEASE_NAMESPACE,
                                              node_name))

    async def reconcile(self, key: str) -> float | None:
        if key == MONITOR:
            self.monitor()
            return self.ctx.settings.node_monitor_period
        node = self.nodes.store.get(key)
        if node is None:
            return None
        now = datetime.now(UTC)
        name = str(node["metadata"]["name"])
        verdict = nh.assess(node, self.lease_of(name), now,
                            self.ctx.settings.node_monitor_grace_period)
        node = await self._write(node, verdict)
        if verdict.went_unknown:
            log.info("node %s stopped posting status; marked Unknown and unreachable", name)
            await self.ctx.recorder.event(node, "Normal", "NodeNotReady",
                                          f"Node {name} status is now: NodeNotReady")
        since = nh.unreachable_since(node)
        if since is not None and self.evictions_paused is False:
            await self._evict(name, since, now)
        return None

    def monitor(self) -> None:
        """Queue every node for a check and decide whether evictions are paused."""
        now = datetime.now(UTC)
        grace = self.ctx.settings.node_monitor_grace_period
        states = []
        for node in self.nodes.store.objects():
            states.append(nh.effective_ready(node, self.lease_of(node["metadata"]["name"]),
                                             now, grace))
            self.queue.add(key_of(node))
        paused = nh.full_disruption(states)
        if paused and not self.evictions_paused:
            log.warning("no node is Ready: pausing pod evictions")
        self.evictions_paused = paused

    async def _write(self, node: Obj, verdict: nh.NodeVerdict) -> Obj:
        """Store the verdict's conditions (status) and taints (spec); returns the node."""
        if verdict.conditions is not None:
            status = {**(node.get("status") or {}), "conditions": verdict.conditions}
            node = await self.nodes_api.update({**node, "status": status}, subresource="status")
        if verdict.taints is not None:
            spec = {k: v for k, v in (node.get("spec") or {}).items() if k != "taints"}
            if verdict.taints:
                spec["taints"] = verdict.taints
            node = await self.nodes_api.update({**node, "spec": spec})
        return node

    async def _evict(self, node_name: str, since: datetime, now: datetime) -> None:
        """Delete (grace 0) every pod bound to the node whose eviction time has come."""
        timeout = self.ctx.settings.pod_eviction_timeout
        for pod in self.pods.store.by_index(NODE_INDEX, node_name):
            if nh.eviction_due(pod, since, now, timeout):
                await self._evict_pod(pod)

    async def _evict_pod(self, pod: Obj) -> None:
        md = pod["metadata"]
        if not await force_delete(self.pods_api, pod):
            return  # already gone, or replaced by a new pod of the same name
        log.info("evicted pod %s/%s/%s", md["tenant"], md["namespace"], md["name"])
        await self.ctx.recorder.event(pod, "Normal", "TaintManagerEviction",
                                      f"Marking for deletion Pod {md['namespace']}/{md['name']}")
