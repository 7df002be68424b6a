"""The hollow runtime: pods and VMs simulated in memory, for scale tests (no processes).

Pods start after `start_latency` seconds and run until stopped. Re-adoption semantics: the
runtime is in memory, so a restarted agent finds it empty; `adopt` then takes the pod's
status as the API reports it (start time, container ids, restart counts) as the truth, as if
the simulated processes had kept running while the agent was away. Nothing restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus, Runtime, VmState
from arktos.api.meta import parse_time

NAME = "hollow"


def fake_pod_ip(uid: str) -> str:
    """A stable per-pod address in 10.128.0.0/9 derived from the uid."""
    digest = hashlib.blake2b(uid.encode(), digest_size=3).digest()
    return f"10.{128 + digest[0] % 128}.{digest[1]}.{max(1, digest[2] % 255)}"


def container_id(uid: str, name: str) -> str:
    return f"{NAME}://{uid}/{name}"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def simulate(pod: Obj, started: datetime) -> PodRuntimeStatus:
    """The running state of a freshly started pod. No I/O."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    uid = str(md.get("uid", ""))
    vm_spec = spec.get("virtualMachine")
    if isinstance(vm_spec, dict):
        name = str(vm_spec.get("name", "vm"))
        vm = VmState(name=name, image=str(vm_spec.get("image", "")), state="running",
                     started_at=started, container_id=container_id(uid, name))
        return PodRuntimeStatus(uid, fake_pod_ip(uid), started, vm=vm)
    containers = tuple(
        ContainerState(name=str(c.get("name", "")), image=str(c.get("image", "")),
                       state="running", started_at=started,
                       container_id=container_id(uid, str(c.get("name", ""))))
        for c in spec.get("containers") or () if isinstance(c, dict))
    return PodRuntimeStatus(uid, fake_pod_ip(uid), started, containers=containers)


def recover(pod: Obj) -> PodRuntimeStatus:
    """The state of a running pod rebuilt from its reported status. No I/O."""
    status = pod.get("status") or {}
    started = parse_time(status.get("startTime")) or _now()
    rs = simulate(pod, started)
    restarts = {str(c.get("name")): int(c.get("restartCount") or 0)
                for c in status.get("containerStatuses") or () if isinstance(c, dict)}
    containers = tuple(replace(c, restart_count=restarts.get(c.name, 0), started_at=_started(
        status, c.name) or started) for c in rs.containers)
    vm = rs.vm
    vms = status.get("virtualMachineStatus")
    if vm is not None and isinstance(vms, dict):
        vm = replace(vm, restart_count=int(vms.get("restartCount") or 0))
    return replace(rs, ip=str(status.get("podIP") or rs.ip), containers=containers, vm=vm)


def _started(status: dict[str, Any], name: str) -> datetime | None:
    for c in status.get("containerStatuses") or ():
        if isinstance(c, dict) and c.get("name") == name:
            return parse_time(((c.get("state") or {}).get("running") or {}).get("startedAt"))
    return None


class HollowRuntime:
    """Runs containers and VMs in memory. One instance may serve many hollow nodes (pods are
    keyed by uid, which is unique in the cluster)."""

    name = NAME
    runs_containers = True
    runs_vms = True

    def __init__(self, start_latency: float = 0.0) -> None:
        self.start_latency = start_latency
        self.pods: dict[str, PodRuntimeStatus] = {}
        self.starts = 0
        """How many pods were really started (not adopted): tests check re-adoption."""

    async def ready(self) -> bool:
        return True

    async def start_pod(self, pod: Obj) -> PodRuntimeStatus:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if uid in self.pods:
            return self.pods[uid]
        if self.start_latency > 0:
            await asyncio.sleep(self.start_latency)
        if uid in self.pods:  # started meanwhile by another call
            return self.pods[uid]
        self.starts += 1
        self.pods[uid] = simulate(pod, _now())
        return self.pods[uid]

    async def stop_pod(self, uid: str, grace: float) -> None:
        self.pods.pop(uid, None)

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        return self.pods.get(uid)

    async def list_pods(self) -> list[PodRuntimeStatus]:
        return list(self.pods.values())

    async def adopt(self, pod: Obj) -> PodRuntimeStatus | None:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if (pod.get("status") or {}).get("phase") != "Running":
            return None
        self.pods.setdefault(uid, recover(pod))
        return self.pods[uid]


if TYPE_CHECKING:
    _: Runtime = HollowRuntime()
