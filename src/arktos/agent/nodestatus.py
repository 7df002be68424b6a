"""Pure node decisions (no I/O): the Node object an agent registers, its status conditions
from the runtimes' probes, its heartbeat Lease, and whether a status update is due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arktos.agent.runtime import Obj

LEASE_TENANT = "system"
LEASE_NAMESPACE = "kube-node-lease"
HOLLOW_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110",
                   "ephemeral-storage": "500Gi"}
"""What a hollow node offers unless told otherwise."""
AGENT_VERSION = "arktos-agent/0.1"


@dataclass(frozen=True)
class NodeSpec:
    """What one node is: its name, address and capacity."""

    name: str
    address: str
    capacity: dict[str, str] = field(default_factory=lambda: dict(HOLLOW_CAPACITY))
    labels: dict[str, str] = field(default_factory=dict)
    port: int = 0
    """The agent server's port (`status.daemonEndpoints.kubeletEndpoint.Port`); 0: none."""
    runtime_version: str = "hollow://0.1"
    """`nodeInfo.containerRuntimeVersion`."""


@dataclass(frozen=True)
class Probes:
    """What the runtimes' probes answered (None: the node has no such runtime)."""

    containers: bool | None
    vms: bool | None


def fmt(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_micro(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(spec: NodeSpec) -> Obj:
    """The Node to create (status is written separately, through `nodes/{name}/status`)."""
    labels = {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", **spec.labels}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": spec.name, "labels": labels}, "spec": {}}


def _cond(type_: str, ok: bool, reason: str, message: str) -> tuple[str, str, str, str]:
    return type_, "True" if ok else "False", reason, message


def condition_states(probes: Probes) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) of each condition the agent owns. Ready needs a ready
    container runtime, or a ready VM runtime when the node has no container runtime."""
    c_ok, v_ok = bool(probes.containers), bool(probes.vms)
    ready = c_ok or (probes.containers is None and v_ok)
    return [
        _cond("Ready", ready, "KubeletReady" if ready else "KubeletNotReady",
              "agent is posting ready status" if ready else "no runtime is ready"),
        _cond("ContainerRuntimeReady", c_ok, "ContainerRuntimeReady" if c_ok
              else "ContainerRuntimeNotReady", _runtime_message("container", probes.containers)),
        _cond("VmRuntimeReady", v_ok, "VmRuntimeReady" if v_ok else "VmRuntimeNotReady",
              _runtime_message("VM", probes.vms)),
        _cond("MemoryPressure", False, "KubeletHasSufficientMemory",
              "agent has sufficient memory available"),
        _cond("DiskPressure", False, "KubeletHasNoDiskPressure", "agent has no disk pressure"),
    ]


def _runtime_message(kind: str, probe: bool | None) -> str:
    if probe is None:
        return f"this node has no {kind} runtime"
    return f"{kind} runtime is {'ready' if probe else 'not ready'}"


def conditions(probes: Probes, old: list[Obj], now: datetime) -> list[Obj]:
    """Node conditions with fresh heartbeats, keeping transition times that did not change."""
    prev = {str(c.get("type")): c for c in old if isinstance(c, dict)}
    stamp = fmt(now)
    out = []
    for type_, status, reason, message in condition_states(probes):
        before = prev.get(type_) or {}
        since = before.get("lastTransitionTime") if before.get("status") == status else None
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": since or stamp})
    return out


def node_status(spec: NodeSpec, probes: Probes, old: list[Obj], now: datetime) -> Obj:
    resources = dict(spec.capacity)
    return {"capacity": resources, "allocatable": dict(resources),
            "conditions": conditions(probes, old, now),
            "addresses": [{"type": "InternalIP", "address": spec.address},
                          {"type": "Hostname", "address": spec.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.port}},
            "nodeInfo": {"kubeletVersion": AGENT_VERSION, "operatingSystem": "linux",
                         "architecture": "amd64",
                         "containerRuntimeVersion": spec.runtime_version}}


def status_view(spec: NodeSpec, probes: Probes) -> tuple[Any, ...]:
    """What a status update carries apart from heartbeat times: a change means update now."""
    return (tuple(sorted(spec.capacity.items())), spec.address, spec.port,
            tuple(condition_states(probes)))


def status_due(*, changed: bool, last_report: float | None, now: float,
               frequency: float) -> bool:
    """Update the Node status when something changed, or `frequency` seconds after the last
    report (kubelet's nodeStatusReportFrequency), so idle nodes cost little."""
    return changed or last_report is None or now - last_report >= frequency


def lease_object(name: str, duration: int, now: datetime) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NAMESPACE, "tenant": LEASE_TENANT},
            "spec": lease_spec(name, duration, now)}


def lease_spec(name: str, duration: int, now: datetime) -> Obj:
    return {"holderIdentity": name, "leaseDurationSeconds": duration,
            "renewTime": fmt_micro(now)}
