"""What the agent needs from a runtime: a small `Runtime` protocol and the state it reports.

A runtime runs pods: a container pod is a group of containers, a VM pod is exactly one VM.
It is identified by the pod's uid. The agent never looks inside a runtime; Podman, QEMU and
the hollow runtime all answer the same calls. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Obj = dict[str, Any]


@dataclass(frozen=True)
class ContainerState:
    """One container (or the pod's VM) as the runtime sees it."""

    name: str
    image: str
    state: str
    """`waiting`, `running` or `terminated`."""
    started_at: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    container_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class VmState(ContainerState):
    """The VM of a VM pod: `state` as a container's, plus the guest's power state."""

    power_state: str = "Running"
    """`Running`, `Shutdown` or `Paused`."""


@dataclass(frozen=True)
class PodRuntimeStatus:
    """A pod in a runtime: its containers, or its one VM."""

    uid: str
    ip: str
    started_at: datetime
    containers: tuple[ContainerState, ...] = ()
    vm: VmState | None = None


class Runtime(Protocol):
    """A container or VM runtime of one node. Calls may take time (they await the runtime)
    but never block the loop. Errors are raised as `RuntimeError` with a message fit for
    the pod's status."""

    name: str
    """Short name, used in container ids (`hollow://<uid>/<name>`) and node conditions."""
    runs_containers: bool
    runs_vms: bool

    async def ready(self) -> bool:
        """Whether the runtime can run pods now (the node's `*RuntimeReady` conditions)."""
        ...

    async def start_pod(self, pod: Obj) -> PodRuntimeStatus:
        """Create and start the pod (idempotent: a pod already there is left as it is)."""
        ...

    async def stop_pod(self, uid: str, grace: float) -> None:
        """Stop the pod (SIGTERM, then SIGKILL after `grace` seconds; VMs: ACPI shutdown,
        then power off) and remove what it used. Unknown uids are ignored."""
        ...

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        """The pod's current state, or None if the runtime does not have it."""
        ...

    async def list_pods(self) -> list[PodRuntimeStatus]:
        """Every pod the runtime has (after an agent restart: what there is to re-adopt)."""
        ...

    async def adopt(self, pod: Obj) -> PodRuntimeStatus | None:
        """Take over `pod`, which the API reports as running here but this agent has not
        started (it was restarted); None if the runtime does not have it (start it then)."""
        ...
