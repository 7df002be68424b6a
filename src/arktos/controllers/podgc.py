"""The pod garbage collector: every `period` seconds, across all tenants,
- deletes the oldest terminated pods (phase Succeeded or Failed) beyond
  `terminated_pod_gc_threshold` (0 or less: never), oldest creationTimestamp first;
- deletes the pods (terminating or not) bound to nodes that no longer exist: a node absent from
  the node informer for `quarantine` seconds and answering 404 to a GET (so a node that is
  registering, or that the informer has not caught up with, is spared).

Every deletion uses gracePeriodSeconds=0, as kube's PodGC: no node agent will confirm them
(a terminated pod has nothing left to stop; an orphan's node is gone), and the pod's uid is a
precondition so that a new pod of the same name is never hit. The work is one key (`GC`)
that requeues itself; the decisions are the pure functions below.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from arktos.api.meta import parse_time
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj
from arktos.controllers.base import Context, Controller
from arktos.controllers.node_health import node_name_index
from arktos.controllers.pods import force_delete

log = logging.getLogger(__name__)
GC = "gc"
GC_PERIOD = 20.0
"""Seconds between collections."""
QUARANTINE = 5.0
"""Seconds a node must stay absent from the informer before its pods count as orphans."""
TERMINATED_PHASES = ("Succeeded", "Failed")
_EPOCH = datetime.min.replace(tzinfo=UTC)


# --- decisions ------------------------------------------------------------------------------

def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINATED_PHASES


def _age_order(pod: Obj) -> tuple[datetime, str, str, str]:
    md = pod.get("metadata") or {}
    created = parse_time(md.get("creationTimestamp")) or _EPOCH
    return created, str(md.get("tenant", "")), str(md.get("namespace", "")), str(md.get("name"))


def terminated_excess(pods: Iterable[Obj], threshold: int) -> list[Obj]:
    """The terminated pods to delete so that at most `threshold` remain, oldest first (ties by
    tenant/namespace/name); none when `threshold` <= 0 (collection disabled)."""
    if threshold <= 0:
        return []
    done = sorted((p for p in pods if is_terminated(p)), key=_age_order)
    return done[:max(0, len(done) - threshold)]


def pods_on_missing_nodes(pods: Iterable[Obj], nodes: set[str]) -> dict[str, list[Obj]]:
    """Pods bound to a node not in `nodes`, by node name."""
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        for node in node_name_index(pod):
            if node not in nodes:
                out.setdefault(node, []).append(pod)
    return out


class Quarantine:
    """Tracks since when each node has been missing; a node is due once missing for
    `seconds` without a break (seen again, it starts over)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: dict[str, float] = {}

    def due(self, missing: Iterable[str], now: float) -> list[str]:
        """Record the nodes missing at `now` (forgetting the others); return those due."""
        names = set(missing)
        self.since = {n: self.since.get(n, now) for n in names}
        return sorted(n for n, t in self.since.items() if now - t >= self.seconds)

    def forget(self, name: str) -> None:
        self.since.pop(name, None)

    def next_due(self, now: float) -> float | None:
        """Seconds until the next waiting node becomes due (None: none is waiting)."""
        waits = [w for t in self.since.values() if (w := t + self.seconds - now) > 0]
        return min(waits) if waits else None


# --- the controller -------------------------------------------------------------------------

class PodGCController(Controller):
    name = "pod-gc"

    def __init__(self, ctx: Context, *, period: float = GC_PERIOD,
                 quarantine: float = QUARANTINE) -> None:
        super().__init__(ctx)
        self.period = period
        self.quarantine = Quarantine(quarantine)
        self.pods_api = ResourceClient(ctx.api, "pods")
        self.nodes_api = ResourceClient(ctx.api, "nodes")
        self.pods = ctx.informers.informer("pods")
        self.nodes = ctx.informers.informer("nodes")
        self.queue.add(GC)

    async def reconcile(self, key: str) -> float | None:
        pods = self.pods.store.objects()
        threshold = self.ctx.settings.terminated_pod_gc_threshold
        for pod in terminated_excess(pods, threshold):
            await self._delete(pod, "terminated pods beyond the threshold")
        await self._collect_orphans(pods)
        wait = self.quarantine.next_due(time.monotonic())
        return self.period if wait is None else min(self.period, wait + 0.05)

    async def _collect_orphans(self, pods: list[Obj]) -> None:
        known = {str(n["metadata"]["name"]) for n in self.nodes.store.objects()}
        orphans = pods_on_missing_nodes(pods, known)
        for node in self.quarantine.due(orphans, time.monotonic()):
            if await self._node_exists(node):
                self.quarantine.forget(node)
                continue
            for pod in orphans[node]:
                await self._delete(pod, f"bound to node {node}, which no longer exists")

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.nodes_api.get(name)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def _delete(self, pod: Obj, why: str) -> None:
        md = pod["metadata"]
        if not await force_delete(self.pods_api, pod):
            return
        log.info("deleted pod %s/%s/%s: %s", md["tenant"], md["namespace"], md["name"], why)
