"""The scheduler's writes: bindings (`pods/{name}/binding`), the `PodScheduled=False`
condition of pods that fit nowhere, and their Events.

Contract: `bind` never raises for API answers; it says what happened, so the caller can
confirm the assumed placement (BOUND), drop it because the pod is gone or was bound by someone
else (GONE, CONFLICT), or retry later (ERROR). Events go through a bounded background queue
(as client-go's broadcaster): when the API server cannot keep up they are dropped and counted,
never allowed to slow down binding.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from datetime import UTC, datetime
from typing import Any

from arktos.client.events import EventRecorder
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj

log = logging.getLogger(__name__)
EVENT_QUEUE = 1000


class BindOutcome(enum.Enum):
    BOUND = "bound"
    CONFLICT = "conflict"
    GONE = "gone"
    ERROR = "error"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def binding(pod: Obj, node: str) -> dict[str, Any]:
    """The Binding object that puts `pod` on `node`."""
    md = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md.get("namespace", ""),
                         "tenant": md.get("tenant", ""), "uid": md.get("uid", "")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def unschedulable_condition(message: str) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": _now(), "lastProbeTime": None}


class Binder:
    """Binds pods and reports unschedulable ones through `api`; events through `recorder`."""

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        self.pods = ResourceClient(api, "pods")
        self.recorder = recorder
        self.dropped_events = 0
        self._events: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(EVENT_QUEUE)

    async def bind(self, pod: Obj, node: str) -> tuple[BindOutcome, str]:
        """POST the binding; the outcome and, unless BOUND, why."""
        md = pod["metadata"]
        path = self.pods.path(tenant=md.get("tenant", ""), namespace=md.get("namespace", ""),
                              name=md["name"], subresource="binding")
        try:
            await self.pods.api.request("POST", path, body=binding(pod, node))
        except ApiError as exc:
            if exc.not_found:
                return BindOutcome.GONE, str(exc)
            if exc.conflict:
                return BindOutcome.CONFLICT, str(exc)
            return BindOutcome.ERROR, str(exc)
        self.event(pod, "Normal", "Scheduled",
                   f"Successfully assigned {md.get('namespace')}/{md['name']} to {node}")
        return BindOutcome.BOUND, ""

    async def unschedulable(self, pod: Obj, message: str) -> None:
        """Set `PodScheduled=False` (reason Unschedulable) and record FailedScheduling."""
        self.event(pod, "Warning", "FailedScheduling", message)
        if _has_condition(pod, message):
            return
        md = pod["metadata"]
        patch = {"status": {"conditions": [unschedulable_condition(message)]}}
        try:
            await self.pods.patch(md["name"], patch, namespace=md.get("namespace", ""),
                                  tenant=md.get("tenant", ""), subresource="status",
                                  content_type="application/strategic-merge-patch+json")
        except ApiError as exc:
            if not exc.not_found:
                log.warning("could not set PodScheduled on %s: %s", md["name"], exc)

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        """Queue an Event (dropped, and counted, when the queue is full)."""
        try:
            self._events.put_nowait(({**pod, "kind": "Pod", "apiVersion": "v1"}, type_,
                                     reason, message))
        except asyncio.QueueFull:
            self.dropped_events += 1

    async def run_events(self, workers: int = 4) -> None:
        """Send queued Events until cancelled."""
        async def work() -> None:
            while True:
                obj, type_, reason, message = await self._events.get()
                with contextlib.suppress(Exception):
                    await self.recorder.event(obj, type_, reason, message)

        async with asyncio.TaskGroup() as tg:
            for _ in range(workers):
                tg.create_task(work())


def _has_condition(pod: Obj, message: str) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return bool(cond.get("message") == message)
    return False
