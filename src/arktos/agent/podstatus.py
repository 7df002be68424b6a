"""Pure pod decisions of the agent (no I/O): what to do with a pod bound to the node, and the
status to report from what the runtime says.

Status follows the kubelet's (and Arktos' for VM pods): the phase comes from the pod's `Plan`;
conditions PodScheduled, Initialized, ContainersReady, Ready for container pods and
PodScheduled, VirtualMachineReady, Ready for VM pods; container statuses with state,
lastState, restartCount and the reason a container waits (CrashLoopBackOff, ErrImagePull...).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from arktos.agent.nodestatus import fmt
from arktos.agent.podplan import Plan, specs
from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus, VmState

OWNED_FIELDS = ("phase", "conditions", "containerStatuses", "initContainerStatuses",
                "virtualMachineStatus", "hostIP", "podIP", "podIPs", "startTime")
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


def _when(when: datetime | None) -> str | None:
    return fmt(when) if when else None


def state_of(c: ContainerState | None, waiting: tuple[str, str] | None = None) -> Obj:
    """A container's `state` (or `lastState`) object."""
    if waiting is not None and (c is None or c.state != "running"):
        return {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    if c is None:
        return {}
    if c.state == "running":
        return {"running": {"startedAt": _when(c.started_at)}}
    if c.state == "terminated":
        term: Obj = {"exitCode": c.exit_code or 0,
                     "reason": c.reason or ("Completed" if not c.exit_code else "Error"),
                     "startedAt": _when(c.started_at), "finishedAt": _when(c.finished_at),
                     "containerID": c.container_id}
        if c.message:
            term["message"] = c.message
        return {"terminated": term}
    return {"waiting": {"reason": c.reason or "ContainerCreating"}}


def container_status(spec: Obj, c: ContainerState | None, last: ContainerState | None,
                     waiting: tuple[str, str] | None, ready: bool) -> Obj:
    """One entry of `containerStatuses` (or `initContainerStatuses`)."""
    image = str(spec.get("image", ""))
    state = state_of(c, waiting) or {"waiting": {"reason": "ContainerCreating"}}
    out: Obj = {"name": str(spec.get("name", "")), "state": state,
                "lastState": state_of(last), "ready": ready,
                "restartCount": c.restart_count if c else 0, "image": image,
                "imageID": c.image if c else "", "started": bool(c and c.state == "running")}
    if c is not None:
        out["containerID"] = c.container_id
    return out


def vm_status(vm: VmState | None, spec: Obj, waiting: tuple[str, str] | None) -> Obj:
    running = vm is not None and vm.state == "running"
    power = vm.power_state if vm is not None else "Shutdown"
    out: Obj = {"name": str(spec.get("name", "")), "image": str(spec.get("image", "")),
                "imageId": vm.image if vm else "",
                "state": _vm_state(vm, waiting), "powerState": power,
                "ready": running and power == "Running",
                "restartCount": vm.restart_count if vm else 0,
                "virtualMachineId": vm.container_id if vm else ""}
    if vm is not None and vm.snapshots:
        out["snapshots"] = list(vm.snapshots)
    if waiting is not None:
        out["reason"], out["message"] = waiting
    elif vm is not None and vm.state == "terminated":
        out["reason"] = vm.reason or ("Completed" if not vm.exit_code else "Error")
        if vm.message:
            out["message"] = vm.message
    return out


def _vm_state(vm: VmState | None, waiting: tuple[str, str] | None) -> str:
    if vm is None or (waiting is not None and vm.state != "running"):
        return "Pending"
    if vm.state == "running":
        return "Paused" if vm.power_state == "Paused" else "Running"
    if vm.state == "terminated":
        return "Stopped" if vm.power_state == "Shutdown" else "Terminated"
    return "Pending"


def _condition(type_: str, ok: bool, old: dict[str, dict[str, Any]], now: str) -> Obj:
    status = "True" if ok else "False"
    prev = old.get(type_)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
    return {"type": type_, "status": status, "lastProbeTime": None,
            "lastTransitionTime": since or now}


def conditions(pod: Obj, kinds: list[tuple[str, bool]], now: datetime) -> list[Obj]:
    """The pod's conditions, keeping unchanged transition times."""
    old = {str(c.get("type")): c for c in (pod.get("status") or {}).get("conditions") or ()
           if isinstance(c, dict)}
    stamp = fmt(now)
    return [_condition(t, ok, old, stamp) for t, ok in kinds]


def _statuses(pod: Obj, key: str, rs: PodRuntimeStatus | None, plan: Plan,
              readiness: Mapping[str, bool]) -> list[Obj]:
    out = []
    for spec in specs(pod, key):
        name = str(spec.get("name", ""))
        c = rs.container(name) if rs else None
        last = next((p for p in rs.previous if p.name == name), None) if rs else None
        ready = bool(c and c.state == "running" and readiness.get(name, True))
        if key == "initContainers":
            ready = bool(c and c.state == "terminated" and not c.exit_code)
        out.append(container_status(spec, c, last, plan.waiting.get(name), ready))
    return out


def pod_status(pod: Obj, rs: PodRuntimeStatus | None, plan: Plan, *, host_ip: str,
               now: datetime, readiness: Mapping[str, bool] | None = None) -> Obj:
    """The agent's part of the pod's status (`OWNED_FIELDS`)."""
    out: Obj = {"phase": plan.phase, "hostIP": host_ip}
    if rs is not None:
        out.update(podIP=rs.ip, podIPs=[{"ip": rs.ip}], startTime=fmt(rs.started_at))
    vm_spec = (pod.get("spec") or {}).get("virtualMachine")
    if isinstance(vm_spec, dict):
        vm = vm_status(rs.vm if rs else None, vm_spec, plan.waiting.get(str(vm_spec.get(
            "name", ""))))
        out["virtualMachineStatus"] = vm
        out["conditions"] = conditions(pod, [("PodScheduled", True), (
            "VirtualMachineReady", bool(vm["ready"])), ("Ready", bool(vm["ready"]))], now)
        return out
    ready_map = readiness or {}
    inits = _statuses(pod, "initContainers", rs, plan, ready_map)
    mains = _statuses(pod, "containers", rs, plan, ready_map)
    if inits:
        out["initContainerStatuses"] = inits
    out["containerStatuses"] = mains
    initialized = all(c["ready"] for c in inits)
    ready = bool(mains) and all(c["ready"] for c in mains) and plan.phase == "Running"
    out["conditions"] = conditions(pod, [("PodScheduled", True), ("Initialized", initialized),
                                         ("ContainersReady", ready), ("Ready", ready)], now)
    return out


def status_changed(pod: Obj, wanted: Obj) -> bool:
    """Whether `wanted` differs from what the pod reports (only the agent's fields)."""
    current = pod.get("status") or {}
    return any(current.get(k) != wanted.get(k) for k in OWNED_FIELDS if k in wanted)
