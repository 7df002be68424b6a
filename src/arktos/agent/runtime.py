"""What the agent needs from a runtime: a small `Runtime` protocol and the state it reports.

A runtime runs pods: a container pod is a sandbox (shared network namespace) holding
containers, a VM pod is exactly one VM, addressed like a container by the VM's name. Pods are
identified by the pod's uid. The agent decides (restarts, init order, back-off, power); the
runtime only does what it is told and reports what there is. Podman, QEMU and the hollow
runtime all answer the same calls; VM runtimes also answer `VmRuntime`'s. No I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Obj = dict[str, Any]


class RuntimeFailure(RuntimeError):
    """A call failed for a reason the pod's status should show: `reason` is a CamelCase word
    (`ErrImagePull`, `CreateContainerError`, `VmBootError`, `SnapshotNotFound`, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ContainerState:
    """The latest instance of one container (or of the pod's VM) as the runtime sees it."""

    name: str
    image: str
    state: str
    """`waiting` (created, not started), `running` or `terminated`."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    """The `attempt` this instance was started with (VMs: plus guest resets)."""
    container_id: str = ""
    """`<runtime>://<id>`."""
    reason: str = ""
    """For `terminated`: `Completed`, `Error`, `OOMKilled`, ..."""
    message: str = ""


@dataclass(frozen=True)
class VmState(ContainerState):
    """The VM of a VM pod: `state` as a container's, plus the guest's power state."""

    power_state: str = "Running"
    """`Running`, `Shutdown` or `Paused`."""
    snapshots: tuple[str, ...] = ()
    """Ids of the VM's snapshots, oldest first."""


@dataclass(frozen=True)
class PodRuntimeStatus:
    """A pod in a runtime: its sandbox address and the latest instance of each container that
    was started (init containers included), or its one VM."""

    uid: str
    ip: str
    started_at: datetime
    containers: tuple[ContainerState, ...] = ()
    vm: VmState | None = None
    previous: tuple[ContainerState, ...] = ()
    """The instance before the latest one of each restarted container (`lastState`)."""

    def container(self, name: str) -> ContainerState | None:
        for c in self.containers:
            if c.name == name:
                return c
        return self.vm if self.vm is not None and self.vm.name == name else None


class Runtime(Protocol):
    """A container or VM runtime of one node. Calls may take time (they await the runtime)
    but never block the event loop. Failures raise `RuntimeFailure`."""

    name: str
    """Short name: the scheme of container ids (`podman://...`) and in node conditions."""
    runs_containers: bool
    runs_vms: bool

    async def ready(self) -> bool:
        """Whether the runtime can run pods now (the node's `*RuntimeReady` conditions)."""
        ...

    async def start_sandbox(self, pod: Obj) -> PodRuntimeStatus:
        """Create the pod's sandbox (network namespace and address; volumes; for a VM its
        disk overlay and cloud-init data) if missing; idempotent. Returns the pod's state."""
        ...

    async def start_container(self, pod: Obj, name: str, attempt: int) -> None:
        """Start a new instance of container (or VM) `name` of `pod`, pulling its image as
        its `imagePullPolicy` says. The previous instance, if any, must have terminated; it
        is kept (for `lastState` and `logs --previous`), older ones are removed. A VM pod's
        `powerSpec` is the agent's business: this boots the VM."""
        ...

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        """Stop a running container (SIGTERM, then SIGKILL after `grace` seconds; a VM: ACPI
        power-off, then quit). It stays, terminated. Unknown names are ignored."""
        ...

    async def remove_pod(self, uid: str, grace: float) -> None:
        """Stop everything of the pod as `stop_container` does, then remove its containers,
        sandbox, disks and volumes. Unknown uids are ignored."""
        ...

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        """The pod's current state, or None if the runtime does not have it."""
        ...

    async def list_pods(self) -> list[PodRuntimeStatus]:
        """Every pod the runtime has (after an agent restart: what there is to re-adopt; pods
        the API no longer has are removed by the agent)."""
        ...

    async def adopt(self, pod: Obj) -> PodRuntimeStatus | None:
        """Take over `pod`, which the API reports on this node but this agent has not started
        (it was restarted); None if the runtime does not have it. Real runtimes find their
        containers and VMs by the pod uid (as `pod_status`)."""
        ...

    def logs(self, uid: str, name: str, *, previous: bool = False, tail: int | None = None,
             follow: bool = False) -> AsyncIterator[bytes]:
        """The output of a container (a VM: its serial console), oldest first: the last
        `tail` lines only if given; with `follow`, then what comes until it stops. Raises
        `RuntimeFailure("NotFound", ...)` for an unknown pod or container."""
        ...


class VmRuntime(Runtime, Protocol):
    """What a VM runtime does beyond running pods: power and the VM actions."""

    async def set_power(self, uid: str, power: str) -> None:
        """`Running` (boot or resume), `Paused` (stop the vCPUs) or `Shutdown` (power off;
        the pod, its disk and snapshots stay)."""
        ...

    async def reboot(self, uid: str) -> None:
        """Reset the guest (counted in the VM's `restart_count`)."""
        ...

    async def snapshot(self, uid: str, name: str) -> str:
        """A full snapshot (disk and memory) of the running VM; returns its id."""
        ...

    async def restore(self, uid: str, snapshot_id: str) -> None:
        """Revert the VM to a snapshot (`RuntimeFailure("SnapshotNotFound", ...)` if none)."""
        ...


class ExecRuntime(Runtime, Protocol):
    """A container runtime that can run a command in a container (exec probes)."""

    async def exec(self, uid: str, name: str, command: list[str],
                   timeout: float) -> tuple[int, bytes]:
        """Run `command` in the container; its exit code and output (stdout + stderr)."""
        ...
