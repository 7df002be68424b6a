"""Pod workers: the pods bound to this process's nodes are driven to their spec, one worker
per pod while it has work (a pod is never synced by two workers at once; a change that comes
in during a sync runs the sync again after it).

A sync is level-based: it reads the pod from the informer cache and the runtime, then
starts, adopts or stops the pod and writes its status (`pods/{name}/status`, merge patch).
A pod being deleted is stopped in its runtime (honouring the grace period) and the deletion
is confirmed with a DELETE of grace 0 and a uid precondition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from arktos.agent.node import AgentNode
from arktos.agent.podstatus import Action, decide, grace_seconds, pod_status, status_changed
from arktos.agent.runtime import Obj, Runtime
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Indexer, key_of, split_key

log = logging.getLogger(__name__)


class PodWorkers:
    """At most one running sync per key; a key kicked while syncing syncs once more after."""

    def __init__(self, sync: Callable[[str], Awaitable[None]], *, retry: float) -> None:
        self.sync = sync
        self.retry = retry
        self._active: dict[str, bool] = {}
        """Keys with a running worker -> whether they were kicked again meanwhile."""
        self._tg: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            await asyncio.Event().wait()

    def kick(self, key: str) -> None:
        if key in self._active:
            self._active[key] = True
            return
        if self._tg is None:
            raise RuntimeError("pod workers are not running")
        self._active[key] = False
        self._tg.create_task(self._work(key))

    def busy(self) -> int:
        return len(self._active)

    async def _work(self, key: str) -> None:
        try:
            again = True
            while again:
                self._active[key] = False
                try:
                    await self.sync(key)
                except (ApiError, RuntimeError) as exc:
                    log.warning("syncing pod %s: %s; retrying", key, exc)
                    await asyncio.sleep(self.retry)
                    self._active[key] = True
                again = self._active[key]
        finally:
            del self._active[key]


class PodSyncer:
    """Syncs the pods of `nodes`, as seen by a pod informer's store."""

    def __init__(self, api: ApiClient, nodes: dict[str, AgentNode], store: Indexer, *,
                 retry: float = 1.0) -> None:
        self.pods = ResourceClient(api, "pods")
        self.nodes = nodes
        self.store = store
        self.workers = PodWorkers(self.sync, retry=retry)
        self.placed: dict[str, tuple[str, Runtime]] = {}
        """Pod key -> (uid, runtime) of the pods this process has running."""

    def handler(self) -> Handler:
        return Handler(on_add=self._changed, on_update=lambda _old, new: self._changed(new),
                       on_delete=self._changed)

    def _changed(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.nodes:
            self.workers.kick(key_of(pod))

    async def sync(self, key: str) -> None:
        pod = self.store.get(key)
        if pod is None:
            await self._forget(key)
            return
        node = self.nodes.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        action = decide(pod)
        if node is None or action is Action.NOTHING:
            return
        if action is Action.STOP:
            await self._stop(key, pod)
            return
        await self._run(key, pod, node)

    async def _run(self, key: str, pod: Obj, node: AgentNode) -> None:
        runtime = node.runtime_for(pod)
        if runtime is None:
            raise RuntimeError(f"node {node.name} has no runtime for this pod")
        uid = str(pod["metadata"].get("uid", ""))
        rs = await runtime.pod_status(uid) or await runtime.adopt(pod)
        if rs is None:
            rs = await runtime.start_pod(pod)
        self.placed[key] = (uid, runtime)
        wanted = pod_status(pod, rs, host_ip=node.spec.address, now=datetime.now(UTC))
        if status_changed(pod, wanted):
            tenant, namespace, name = split_key(key)
            await self.pods.patch(name, {"status": wanted}, namespace=namespace,
                                  tenant=tenant, subresource="status")

    async def _stop(self, key: str, pod: Obj) -> None:
        md = pod["metadata"]
        node = self.nodes[str(pod["spec"]["nodeName"])]
        runtime = node.runtime_for(pod)
        if runtime is not None:
            await runtime.stop_pod(str(md.get("uid", "")), grace_seconds(pod))
        self.placed.pop(key, None)
        tenant, namespace, name = split_key(key)
        try:
            await self.pods.delete(name, namespace=namespace, tenant=tenant,
                                   grace_period_seconds=0,
                                   preconditions={"uid": str(md.get("uid", ""))})
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    async def _forget(self, key: str) -> None:
        """The pod is gone from the API (deleted at once): stop what is left of it."""
        placed = self.placed.pop(key, None)
        if placed is not None:
            await placed[1].stop_pod(placed[0], 0)
