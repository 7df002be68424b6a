"""The scheduler process: informers on the nodes and the pods of every tenant feed the node
table (`NodeTable`) and the queue (`SchedulingQueue`); a loop pops batches of pods, places each
with the pure algorithm, assumes the placement in the table at once (so the next pod sees it),
and binds in the background; leader election keeps two schedulers from both binding.

Cache contract: a pod is in the table exactly while it is placed, by the informer (bound and
not finished) or by an assumption (placed here, binding not yet observed). A binding that fails
takes the assumption back; the informer confirms or corrects it otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

from arktos.client.events import EventRecorder
from arktos.client.informer import Handler, InformerFactory
from arktos.client.leaderelection import LeaderElector
from arktos.client.rest import ApiClient
from arktos.client.store import Obj
from arktos.scheduler.algorithm import schedule
from arktos.scheduler.binder import Binder, BindOutcome
from arktos.scheduler.metrics import SchedulerMetrics, serve_metrics
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podinfo import PodInfo, pod_info
from arktos.scheduler.queue import ClusterEvent, QueuedPod, SchedulingQueue
from arktos.scheduler.scores import DEFAULT_WEIGHTS, Weights

log = logging.getLogger(__name__)
LEASE_NAME = "arktos-scheduler"
ACTIVE_PHASES = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class SchedulerSettings:
    """Knobs of `arktos scheduler` (defaults as kube-scheduler's where it has them)."""

    scheduler_name: str = "default-scheduler"
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    percentage_of_nodes_to_score: int = 0
    """0: adaptive (kube's default: 50% minus 1% per 125 nodes, at least 5%)."""
    weights: Weights = DEFAULT_WEIGHTS
    batch_size: int = 256
    bind_concurrency: int = 64
    event_qps: float = 50.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 10259
    """0: pick a free port; -1: serve no metrics."""
    identity: str = ""


def scheduling_view(node: Obj) -> tuple[Any, ...]:
    """What of a node placement depends on: labels, unschedulable, taints, allocatable, and
    the status of each condition (not their heartbeat times)."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    conditions = sorted((str(c.get("type")), str(c.get("status")))
                        for c in status.get("conditions") or () if isinstance(c, dict))
    return ((node.get("metadata") or {}).get("labels"), spec.get("unschedulable"),
            spec.get("taints"), status.get("allocatable"), conditions)


def pod_key(pod: Obj) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('tenant', '')}/{md.get('namespace', '')}/{md.get('name', '')}"


class Scheduler:
    """One scheduler; `run()` until cancelled."""

    def __init__(self, api: ApiClient, settings: SchedulerSettings | None = None) -> None:
        self.api = api
        self.settings = settings or SchedulerSettings()
        self.table = NodeTable()
        self.queue: SchedulingQueue[Obj] = SchedulingQueue()
        self.metrics = SchedulerMetrics(profile=self.settings.scheduler_name,
                                        pending=lambda: self.queue.lengths())
        self.assumed: set[str] = set()
        """Keys of the pods placed here whose binding the informer has not shown yet."""
        self.metrics_address: tuple[str, int] | None = None
        self._bind_slots = asyncio.Semaphore(self.settings.bind_concurrency)
        self._tg: asyncio.TaskGroup | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve metrics; schedule (while holding the lease, with leader election)."""
        async with asyncio.TaskGroup() as tg:
            if self.settings.metrics_port >= 0:
                tg.create_task(self._serve_metrics())
            if not self.settings.leader_elect:
                await self.run_scheduling()
                return
            elector = LeaderElector(self.api, name=LEASE_NAME,
                                    identity=self.settings.identity or _identity(),
                                    lease_duration=self.settings.lease_duration,
                                    renew_deadline=self.settings.renew_deadline,
                                    retry_period=self.settings.retry_period)
            while True:
                await elector.run(self.run_scheduling)
                log.warning("lost the scheduler lease; waiting to be elected again")

    async def _serve_metrics(self) -> None:
        """Serve /metrics; a port in use (another scheduler on this machine) costs the
        metrics, not the scheduling."""
        try:
            async with serve_metrics(self.metrics, host=self.settings.metrics_host,
                                     port=self.settings.metrics_port) as address:
                self.metrics_address = address
                log.info("serving metrics on http://%s:%d/metrics", *address)
                await asyncio.Event().wait()
        except OSError as exc:
            log.error("cannot serve metrics on %s:%d (%s); scheduling without /metrics",
                      self.settings.metrics_host, self.settings.metrics_port, exc)

    async def run_scheduling(self) -> None:
        """Fill the caches from the API server, then schedule until cancelled."""
        self.table, self.assumed = NodeTable(), set()
        self.queue = SchedulingQueue()
        informers = InformerFactory(self.api)
        informers.informer("nodes").add_handler(Handler(
            on_add=self._node_added, on_update=self._node_updated,
            on_delete=self._node_deleted))
        informers.informer("pods", field_selector=ACTIVE_PHASES).add_handler(Handler(
            on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n),
            on_delete=self._pod_deleted))
        events_api = ApiClient(replace(self.api.config, qps=self.settings.event_qps,
                                       burst=int(self.settings.event_qps * 2)))
        binder = Binder(self.api, EventRecorder(events_api, self.settings.scheduler_name))
        async with events_api, asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(informers.run())
            tg.create_task(binder.run_events())
            await informers.wait_synced(timeout=120)
            log.info("caches synced: %d nodes, %d pods waiting", len(self.table),
                     len(self.queue))
            await self._schedule_forever(binder)

    # -- informer handlers (on the loop; never block) ------------------------------------------

    def _node_added(self, node: Obj) -> None:
        self.table.upsert_node(node)
        self.queue.move_all_on_event(ClusterEvent.NODE_ADD)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """Heartbeats change nothing a pod's placement depends on: only changes that do
        (kube's nodeSchedulingPropertiesChange) retry the unschedulable pods."""
        self.table.upsert_node(new)
        if scheduling_view(old) != scheduling_view(new):
            self.queue.move_all_on_event(ClusterEvent.NODE_UPDATE)

    def _node_deleted(self, node: Obj) -> None:
        self.table.remove_node(str((node.get("metadata") or {}).get("name", "")))

    def _pod_changed(self, pod: Obj) -> None:
        key = pod_key(pod)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if node:
            self.queue.delete(key)
            self._confirm(key, pod, node)
        elif self._ours(pod):
            self.queue.add(key, tenant=str(pod["metadata"].get("tenant", "")),
                           priority=int((pod.get("spec") or {}).get("priority") or 0), pod=pod)

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self._forget(key):
            self.queue.move_all_on_event(ClusterEvent.ASSIGNED_POD_DELETE)

    def _ours(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName", "default-scheduler") == self.settings.scheduler_name
                and not (pod.get("metadata") or {}).get("deletionTimestamp"))

    def _confirm(self, key: str, pod: Obj, node: str) -> None:
        """The informer shows `pod` bound to `node`: account it there."""
        self.assumed.discard(key)
        record = self.table.pod(key)
        if record is None or record[1] != node:
            self.table.add_pod(pod_info(pod), node)  # replaces a wrong assumption

    def _forget(self, key: str) -> bool:
        """Take a pod out of the table; whether it was there."""
        self.assumed.discard(key)
        return self.table.remove_pod(key) is not None

    # -- scheduling ----------------------------------------------------------------------------

    async def _schedule_forever(self, binder: Binder) -> None:
        while True:
            batch = self.queue.pop_batch(self.settings.batch_size)
            if not batch:
                wakeup = self.queue.next_wakeup()
                timeout = None if wakeup is None else max(0.0, wakeup - time.monotonic())
                await self.queue.wait_ready(timeout=timeout)
                continue
            for item in batch:
                self._schedule_one(item, binder)
            await asyncio.sleep(0)  # let informer events and bindings in between batches

    def _schedule_one(self, item: QueuedPod[Obj], binder: Binder) -> None:
        info = pod_info(item.pod)
        start = time.perf_counter()
        decision = schedule(self.table, info, weights=self.settings.weights,
                            percentage_of_nodes_to_score=self.settings.percentage_of_nodes_to_score)
        self.metrics.observe_algorithm(time.perf_counter() - start)
        if decision.node is None:
            self.queue.requeue_unschedulable(item, decision.message)
            self.metrics.observe_attempt("unschedulable", _since(item))
            self._spawn(binder.unschedulable(item.pod, decision.message))
            return
        self._assume(info, decision.node)
        self._spawn(self._bind(binder, item, info, decision.node))

    def _assume(self, info: PodInfo, node: str) -> None:
        self.table.add_pod(info, node)
        self.assumed.add(info.key)

    async def _bind(self, binder: Binder, item: QueuedPod[Obj], info: PodInfo,
                    node: str) -> None:
        async with self._bind_slots:
            outcome, why = await binder.bind(item.pod, node)
        if outcome is BindOutcome.BOUND:
            self.queue.done(item.key)
            self.metrics.observe_attempt("scheduled", _since(item))
            return
        if info.key in self.assumed:
            self._forget(info.key)
        log.info("binding %s to %s: %s (%s)", item.key, node, outcome.value, why)
        if outcome is BindOutcome.ERROR:
            self.queue.requeue_error(item)
            self.metrics.observe_attempt("error", _since(item))
        else:
            self.queue.done(item.key)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._tg is not None
        self._tg.create_task(work)


def _since(item: QueuedPod[Any]) -> float:
    return max(0.0, time.monotonic() - item.added_at)


def _identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"
