"""The hollow runtime: pods and VMs simulated in memory, for scale tests (no processes).

Pods start after `start_latency` seconds and run until stopped. Re-adoption semantics: the
runtime is in memory, so a restarted agent finds it empty; `adopt` then takes the pod's
status as the API reports it (start time, container ids, restart counts) as the truth, as if
the simulated processes had kept running while the agent was away. Nothing restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arktos.agent.runtime import (
    ContainerState,
    Obj,
    PodRuntimeStatus,
    RuntimeFailure,
    VmRuntime,
    VmState,
)
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


def simulate(pod: Obj, started: datetime, ip: str = "") -> PodRuntimeStatus:
    """The running state of a freshly started pod. No I/O."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    uid = str(md.get("uid", ""))
    vm_spec = spec.get("virtualMachine")
    if isinstance(vm_spec, dict):
        name = str(vm_spec.get("name", "vm"))
        vm = VmState(name=name, image=str(vm_spec.get("image", "")), state="running",
                     started_at=started, container_id=container_id(uid, name))
        return PodRuntimeStatus(uid, ip or fake_pod_ip(uid), started, vm=vm)
    containers = tuple(
        ContainerState(name=str(c.get("name", "")), image=str(c.get("image", "")),
                       state="running", started_at=started,
                       container_id=container_id(uid, str(c.get("name", ""))))
        for c in spec.get("containers") or () if isinstance(c, dict))
    return PodRuntimeStatus(uid, ip or fake_pod_ip(uid), started, containers=containers)


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
    keyed by uid, which is unique in the cluster). Containers run until stopped; a VM obeys
    power changes and actions at once (snapshots are names only)."""

    name = NAME
    runs_containers = True
    runs_vms = True

    def __init__(self, start_latency: float = 0.0) -> None:
        self.start_latency = start_latency
        self.pods: dict[str, PodRuntimeStatus] = {}
        self.starts = 0
        """How many containers were really started (not adopted): tests check re-adoption."""

    async def ready(self) -> bool:
        return True

    async def start_sandbox(self, pod: Obj) -> PodRuntimeStatus:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if uid not in self.pods:
            self.pods[uid] = PodRuntimeStatus(uid, fake_pod_ip(uid), _now())
        return self.pods[uid]

    async def start_container(self, pod: Obj, name: str, attempt: int) -> None:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if self.start_latency > 0:
            await asyncio.sleep(self.start_latency)
        rs = self.pods.get(uid)
        if rs is None:
            raise RuntimeFailure("CreateContainerError", f"pod {uid} has no sandbox")
        fresh = simulate(pod, _now(), rs.ip)
        new = fresh.container(name)
        if new is None:
            raise RuntimeFailure("CreateContainerError", f"pod has no container {name!r}")
        self.starts += 1
        new = replace(new, restart_count=attempt)
        old = rs.container(name)
        previous = tuple(p for p in rs.previous if p.name != name) + ((old,) if old else ())
        if isinstance(new, VmState):
            self.pods[uid] = replace(rs, vm=new, previous=previous)
        else:
            others = tuple(c for c in rs.containers if c.name != name)
            self.pods[uid] = replace(rs, containers=others + (new,), previous=previous)

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        rs = self.pods.get(uid)
        c = rs.container(name) if rs else None
        if rs is None or c is None or c.state != "running":
            return
        ended = replace(c, state="terminated", exit_code=137 if grace <= 0 else 0,
                        finished_at=_now(), reason="Completed" if grace > 0 else "Error")
        self._put(rs, ended)

    def _put(self, rs: PodRuntimeStatus, c: ContainerState) -> None:
        if isinstance(c, VmState):
            self.pods[rs.uid] = replace(rs, vm=c)
        else:
            self.pods[rs.uid] = replace(rs, containers=tuple(
                c if o.name == c.name else o for o in rs.containers))

    async def remove_pod(self, uid: str, grace: float) -> None:
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

    async def logs(self, uid: str, name: str, *, previous: bool = False,
                   tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        """One line per hollow instance: there is no process to write anything else."""
        rs = self.pods.get(uid)
        c = rs.container(name) if rs else None
        if previous and rs is not None:
            c = next((p for p in rs.previous if p.name == name), None)
        if c is None:
            raise RuntimeFailure("NotFound", f"no container {name!r} in pod {uid}")
        if tail != 0:
            yield f"hollow container {name} (attempt {c.restart_count}) started\n".encode()

    def _vm(self, uid: str) -> tuple[PodRuntimeStatus, VmState]:
        rs = self.pods.get(uid)
        if rs is None or rs.vm is None:
            raise RuntimeFailure("VmNotFound", f"pod {uid} has no virtual machine")
        return rs, rs.vm

    async def set_power(self, uid: str, power: str) -> None:
        rs, vm = self._vm(uid)
        state = "terminated" if power == "Shutdown" else "running"
        self._put(rs, replace(vm, power_state=power, state=state))

    async def reboot(self, uid: str) -> None:
        rs, vm = self._vm(uid)
        self._put(rs, replace(vm, restart_count=vm.restart_count + 1))

    async def snapshot(self, uid: str, name: str) -> str:
        rs, vm = self._vm(uid)
        self._put(rs, replace(vm, snapshots=vm.snapshots + (name,)))
        return name

    async def restore(self, uid: str, snapshot_id: str) -> None:
        _, vm = self._vm(uid)
        if snapshot_id not in vm.snapshots:
            raise RuntimeFailure("SnapshotNotFound", f"VM has no snapshot {snapshot_id!r}")


if TYPE_CHECKING:
    _: VmRuntime = HollowRuntime()
