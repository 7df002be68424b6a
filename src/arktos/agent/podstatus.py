"""Pure pod decisions of the agent (no I/O): what to do with a pod bound to the node, and the
status to report from what the runtime says.

Status follows the kubelet's (and Arktos' for VM pods): phase Pending until every container
(or the VM) runs, then Running; conditions PodScheduled, Initialized, ContainersReady, Ready
for container pods and PodScheduled, VirtualMachineReady, Ready for VM pods.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus, VmState

OWNED_FIELDS = ("phase", "conditions", "containerStatuses", "virtualMachineStatus", "hostIP",
                "podIP", "podIPs", "startTime")
"""The status fields the agent writes (others, e.g. nominatedNodeName, are left alone)."""


class Action(enum.Enum):
    NOTHING = "nothing"
    """Finished, or nothing to do."""
    RUN = "run"
    """Make sure the pod runs (start or adopt it) and report its status."""
    STOP = "stop"
    """Being deleted: stop it and confirm the deletion."""


def decide(pod: Obj) -> Action:
    md, status = pod.get("metadata") or {}, pod.get("status") or {}
    if md.get("deletionTimestamp"):
        return Action.STOP
    if status.get("phase") in ("Succeeded", "Failed"):
        return Action.NOTHING
    return Action.RUN


def is_vm_pod(pod: Obj) -> bool:
    return isinstance((pod.get("spec") or {}).get("virtualMachine"), dict)


def grace_seconds(pod: Obj) -> float:
    """The grace period of a pod's deletion (the one the deletion set, else the spec's)."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = md.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return float(grace or 0)


def fmt(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(c: ContainerState) -> dict[str, Any]:
    if c.state == "running":
        return {"running": {"startedAt": fmt(c.started_at) if c.started_at else None}}
    if c.state == "terminated":
        return {"terminated": {"exitCode": c.exit_code or 0, "reason": c.reason or "Completed"}}
    return {"waiting": {"reason": c.reason or "ContainerCreating"}}


def container_status(c: ContainerState) -> dict[str, Any]:
    return {"name": c.name, "state": _state(c), "ready": c.state == "running",
            "restartCount": c.restart_count, "image": c.image, "imageID": c.image,
            "containerID": c.container_id, "started": c.state == "running"}


def vm_status(vm: VmState) -> dict[str, Any]:
    running = vm.state == "running"
    return {"name": vm.name, "image": vm.image, "imageId": vm.image,
            "state": "Running" if running else vm.state.capitalize(),
            "powerState": vm.power_state, "ready": running and vm.power_state == "Running",
            "restartCount": vm.restart_count, "virtualMachineId": vm.container_id}


def _condition(type_: str, ok: bool, old: dict[str, dict[str, Any]], now: str) -> Obj:
    status = "True" if ok else "False"
    prev = old.get(type_)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
    return {"type": type_, "status": status, "lastProbeTime": None,
            "lastTransitionTime": since or now}


def conditions(pod: Obj, rs: PodRuntimeStatus, now: datetime) -> list[Obj]:
    """The pod's conditions from the runtime state, keeping unchanged transition times."""
    old = {str(c.get("type")): c for c in (pod.get("status") or {}).get("conditions") or ()
           if isinstance(c, dict)}
    stamp = fmt(now)
    if rs.vm is not None:
        ready = bool(vm_status(rs.vm)["ready"])
        kinds = [("PodScheduled", True), ("VirtualMachineReady", ready), ("Ready", ready)]
    else:
        ready = bool(rs.containers) and all(c.state == "running" for c in rs.containers)
        kinds = [("PodScheduled", True), ("Initialized", True), ("ContainersReady", ready),
                 ("Ready", ready)]
    return [_condition(t, ok, old, stamp) for t, ok in kinds]


def phase(rs: PodRuntimeStatus) -> str:
    states = [rs.vm.state] if rs.vm is not None else [c.state for c in rs.containers]
    if states and all(s == "running" for s in states):
        return "Running"
    return "Pending"


def pod_status(pod: Obj, rs: PodRuntimeStatus, *, host_ip: str, now: datetime) -> Obj:
    """The agent's part of the pod's status (`OWNED_FIELDS`)."""
    out: Obj = {"phase": phase(rs), "conditions": conditions(pod, rs, now),
                "hostIP": host_ip, "podIP": rs.ip, "podIPs": [{"ip": rs.ip}],
                "startTime": fmt(rs.started_at)}
    if rs.vm is not None:
        out["virtualMachineStatus"] = vm_status(rs.vm)
    else:
        out["containerStatuses"] = [container_status(c) for c in rs.containers]
    return out


def status_changed(pod: Obj, wanted: Obj) -> bool:
    """Whether `wanted` differs from what the pod reports (only the agent's fields)."""
    current = pod.get("status") or {}
    return any(current.get(k) != wanted.get(k) for k in OWNED_FIELDS if k in wanted)
