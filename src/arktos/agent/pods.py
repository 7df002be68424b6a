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
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

from arktos.agent import envvars
from arktos.agent.backoff import Backoff
from arktos.agent.node import AgentNode
from arktos.agent.podplan import Failure, Plan, Planner
from arktos.agent.podstatus import (
    Action,
    decide,
    grace_seconds,
    is_vm_pod,
    pod_status,
    status_changed,
)
from arktos.agent.prober import Prober
from arktos.agent.runtime import Obj, Runtime, RuntimeFailure, VmRuntime
from arktos.agent.settings import AgentSettings
from arktos.agent.tasks import start_soon
from arktos.client.events import EventRecorder
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Indexer, key_of, split_key

log = logging.getLogger(__name__)


class PodWorkers:
    """At most one running sync per key; a key kicked while syncing syncs once more after."""

    def __init__(self, sync: Callable[[str], Awaitable[None]], *, retry: float,
                 concurrency: int = 64) -> None:
        self.sync = sync
        self.retry = retry
        self._slots = asyncio.Semaphore(concurrency)
        """Syncs running at once: bounds the agent's requests (and connections) in flight,
        so a burst of pods queues here rather than as 429s at the API server."""
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
        if not start_soon(self._tg, self._work(key)):
            del self._active[key]

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` beside the workers (errors are logged, not raised)."""
        async def guarded() -> None:
            try:
                await work
            except (ApiError, RuntimeError) as exc:
                log.warning("%s", exc)
        if self._tg is None or not start_soon(self._tg, guarded()):
            work.close()

    def kick_at(self, key: str, when: float) -> None:
        """Kick `key` at monotonic time `when` (a back-off ends)."""
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, when - time.monotonic()), self.kick, key)

    def busy(self) -> int:
        return len(self._active)

    async def _work(self, key: str) -> None:
        try:
            again = True
            while again:
                self._active[key] = False
                try:
                    async with self._slots:
                        await self.sync(key)
                except (ApiError, RuntimeError) as exc:  # RuntimeFailure too
                    log.warning("syncing pod %s: %s; retrying", key, exc)
                    await asyncio.sleep(self.retry)
                    self._active[key] = True
                again = self._active[key]
        finally:
            del self._active[key]


def _what(pod: Obj) -> str:
    return "virtual machine" if is_vm_pod(pod) else "container"


def vm_names(pod: Obj) -> list[str]:
    vm = (pod.get("spec") or {}).get("virtualMachine")
    return [str(vm.get("name", ""))] if isinstance(vm, dict) else []


class PodSyncer:
    """Syncs the pods of `nodes`, as seen by a pod informer's store."""

    def __init__(self, api: ApiClient, nodes: dict[str, AgentNode], store: Indexer,
                 settings: AgentSettings) -> None:
        self.pods = ResourceClient(api, "pods")
        self.nodes = nodes
        self.store = store
        self.settings = settings
        self.workers = PodWorkers(self.sync, retry=settings.retry_interval,
                                  concurrency=settings.concurrency)
        self.planner = Planner(Backoff(settings.backoff_initial, settings.backoff_max))
        self.placed: dict[str, tuple[str, Runtime]] = {}
        """Pod key -> (uid, runtime) of the pods this process runs."""
        self.keys: dict[str, str] = {}
        """Pod uid -> key, for the pods in `placed`."""
        self.prepare: Callable[[Obj], Awaitable[None]] | None = None
        """Called before a pod's sandbox is made (e.g. to write its volumes)."""
        self.prober = Prober(changed=self.kick_uid, kill=self._kill)
        self.recorder: EventRecorder | None = None
        """Records the pods' Events (Started, Failed, BackOff, Killing); None: none (hollow
        nodes, where they would double the load of a density test)."""

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.workers.spawn(self.recorder.event(
                {**pod, "kind": "Pod", "apiVersion": "v1"}, type_, reason, message))

    def handler(self) -> Handler:
        return Handler(on_add=self._changed, on_update=lambda _old, new: self._changed(new),
                       on_delete=self._changed)

    def _changed(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.nodes:
            self.workers.kick(key_of(pod))

    def kick_uid(self, uid: str) -> None:
        key = self.keys.get(uid)
        if key is not None:
            self.workers.kick(key)

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
        rs = await runtime.pod_status(uid)
        if rs is None and key not in self.placed:
            rs = await runtime.adopt(pod)
        self.placed[key], self.keys[uid] = (uid, runtime), key
        plan = self.planner.plan(pod, rs, time.monotonic())
        errors = await self._act(runtime, pod, uid, plan)
        if plan.sandbox or plan.start or plan.power:
            rs = await runtime.pod_status(uid)
        self.prober.watch(pod, rs, runtime)
        final = self.planner.plan(pod, rs, time.monotonic(), dry=True)
        final.waiting.update(errors)
        for name, (reason, _) in final.waiting.items():
            if reason == "CrashLoopBackOff":
                self._event(pod, "Warning", "BackOff",
                            f"Back-off restarting failed {_what(pod)} {name}")
        if final.wake is not None:
            self.workers.kick_at(key, final.wake)
        wanted = pod_status(pod, rs, final, host_ip=node.spec.address, now=datetime.now(UTC),
                            readiness=self.prober.readiness(uid))
        if status_changed(pod, wanted):
            tenant, namespace, name = split_key(key)
            await self.pods.patch(name, {"status": wanted}, namespace=namespace,
                                  tenant=tenant, subresource="status")

    def _none_started(self, uid: str, plan: Plan,
                      exc: RuntimeFailure) -> dict[str, tuple[str, str]]:
        """What the pod needed first failed (its sandbox, its environment): every start of
        the plan waits, showing why."""
        log.info("pod %s: %s", uid, exc.message)
        now = time.monotonic()
        for name, _ in plan.start:
            self.planner.failed(uid, name, Failure(exc.reason, exc.message), now)
        return {name: (exc.reason, exc.message) for name, _ in plan.start}

    async def _act(self, runtime: Runtime, pod: Obj, uid: str,
                   plan: Plan) -> dict[str, tuple[str, str]]:
        """Carry out `plan`; the containers that failed to start, with why."""
        errors: dict[str, tuple[str, str]] = {}
        if plan.sandbox:
            try:
                if self.prepare is not None:
                    await self.prepare(pod)
                await runtime.start_sandbox(pod)
            except RuntimeFailure as exc:
                return self._none_started(uid, plan, exc)
        if plan.start and envvars.needs_api(pod):
            try:
                pod = await envvars.resolved(pod, self._fetcher(pod))
            except RuntimeFailure as exc:
                return self._none_started(uid, plan, exc)
        for name, attempt in plan.start:
            try:
                await runtime.start_container(pod, name, attempt)
                self.planner.started(uid, name)
                self._event(pod, "Normal", "Started", f"Started {_what(pod)} {name}")
            except RuntimeFailure as exc:
                log.info("pod %s: starting %s failed: %s", uid, name, exc.message)
                self._event(pod, "Warning", exc.reason, exc.message)
                self.planner.failed(uid, name, Failure(exc.reason, exc.message),
                                    time.monotonic())
                errors[name] = (exc.reason, exc.message)
        if plan.power is not None:
            try:
                await cast(VmRuntime, runtime).set_power(uid, plan.power)
            except RuntimeFailure as exc:
                log.info("pod %s: powering %s failed: %s", uid, plan.power, exc.message)
                errors.update({name: (exc.reason, exc.message) for name in vm_names(pod)})
        return errors

    async def _stop(self, key: str, pod: Obj) -> None:
        md = pod["metadata"]
        uid = str(md.get("uid", ""))
        node = self.nodes[str(pod["spec"]["nodeName"])]
        runtime = node.runtime_for(pod)
        if runtime is not None:
            await runtime.remove_pod(uid, grace_seconds(pod))
        self._drop(key, uid)
        tenant, namespace, name = split_key(key)
        try:
            await self.pods.delete(name, namespace=namespace, tenant=tenant,
                                   grace_period_seconds=0, preconditions={"uid": uid})
        except ApiError as exc:
            if exc.forbidden:  # gone already: the authorizer no longer knows it is ours
                log.info("confirming the deletion of pod %s: %s", key, exc)
            elif not (exc.not_found or exc.conflict):
                raise

    def _fetcher(self, pod: Obj) -> envvars.Fetch:
        """Reads ConfigMaps and Secrets of the pod's namespace (None when missing)."""
        md = pod.get("metadata") or {}

        async def fetch(resource: str, name: str) -> Obj | None:
            try:
                got: Obj = await ResourceClient(self.pods.api, resource).get(
                    name, namespace=str(md.get("namespace", "")), tenant=md.get("tenant"))
            except ApiError as exc:
                if exc.not_found:
                    return None
                raise RuntimeFailure("CreateContainerConfigError", str(exc)) from exc
            return got
        return fetch

    def _drop(self, key: str, uid: str) -> None:
        self.placed.pop(key, None)
        self.keys.pop(uid, None)
        self.planner.forget(uid)
        self.prober.forget(uid)

    def _kill(self, uid: str, name: str) -> None:
        """A liveness probe failed: stop the container (its restart policy restarts it)."""
        key = self.keys.get(uid)
        pod = self.store.get(key) if key else None
        if key is None or pod is None:
            return
        runtime = self.placed[key][1]
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

        self._event(pod, "Normal", "Killing",
                    f"Container {name} failed liveness probe, will be restarted")

        async def stop() -> None:
            await runtime.stop_container(uid, name, grace)
            self.workers.kick(key)
        self.workers.spawn(stop())

    async def _forget(self, key: str) -> None:
        """The pod is gone from the API (deleted at once): remove what is left of it."""
        placed = self.placed.get(key)
        if placed is not None:
            await placed[1].remove_pod(placed[0], 0)
            self._drop(key, placed[0])
