"""The real agent of one machine: this host as a node, with the Podman container runtime and
the QEMU VM runtime, the agent server (logs) and the offline images the node provides.

State lives under `root`: `root/podman` (Podman's service, pod logs and volumes) and
`root/qemu` (VM disks, consoles, QMP sockets); VM images come from `images`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from arktos.agent.agent import Agent
from arktos.agent.busybox import ensure_busybox_image
from arktos.agent.host import host_node
from arktos.agent.node import AgentNode
from arktos.agent.podman import PodmanRuntime
from arktos.agent.podmanspec import volume_host_path
from arktos.agent.runtime import Runtime
from arktos.agent.server import AgentServer
from arktos.agent.settings import AgentSettings
from arktos.agent.volumes import VolumeWriter
from arktos.client.events import EventRecorder
from arktos.client.rest import ApiClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalOptions:
    """Where the node keeps its state and how it serves (the CLI's flags)."""

    name: str
    root: Path
    images: Path
    address: str = ""
    port: int = 10250
    """The agent server's port (0: any free one)."""
    tls: tuple[Path, Path, Path] | None = None
    """(serving cert, key, client CA) of the agent server; None: no server (no logs)."""
    vms: bool = True
    """Run the QEMU VM runtime."""
    accel: str = "auto"
    """QEMU accelerator: `kvm`, `tcg` or `auto` (try KVM once, remember what works)."""


def vm_runtime(opts: LocalOptions) -> Runtime | None:
    """The QEMU runtime, or None when the node runs no VMs."""
    if not opts.vms:
        return None
    from arktos.agent.qemu import QemuRuntime
    return QemuRuntime(opts.root / "qemu", opts.images, accel=opts.accel)


async def prepare(podman_root: Path, images: Path, vm: Runtime | None) -> None:
    """Make the node's offline images (`localhost/busybox:latest`; with VMs `tinyvm`), and
    settle the VMs' accelerator now rather than at the first VM's start."""
    await asyncio.to_thread(ensure_busybox_image, podman_root)
    if vm is not None:
        from arktos.agent.qemu import QemuRuntime
        from arktos.agent.tinyvm import ensure_tinyvm
        await asyncio.to_thread(ensure_tinyvm, images)
        if isinstance(vm, QemuRuntime):
            log.info("VMs run with %s", await vm.accelerator())


@contextlib.asynccontextmanager
async def _server(agent: Agent, opts: LocalOptions) -> AsyncIterator[int]:
    """The agent server for the block; yields its port (0 without TLS: no server)."""
    if opts.tls is None:
        yield 0
        return
    cert, key, ca = opts.tls
    server = AgentServer(agent.log_source, cert=cert, key=key, ca=ca, host="0.0.0.0",
                         port=opts.port)
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()


async def run_local(api: ApiClient, opts: LocalOptions,
                    settings: AgentSettings | None = None) -> None:
    """Serve this machine as node `opts.name` until cancelled."""
    podman_root = opts.root / "podman"
    podman = PodmanRuntime(podman_root)
    runtimes: list[Runtime] = [podman]
    vm = vm_runtime(opts)
    if vm is not None:
        runtimes.append(vm)
    await prepare(podman_root, opts.images, vm)
    spec = host_node(opts.name, opts.root, opts.address)
    node = AgentNode(replace(spec, runtime_version="podman+qemu" if vm else "podman"),
                     runtimes)
    agent = Agent(api, {node.name: node}, settings)
    agent.syncer.recorder = EventRecorder(api, "arktos-agent", host=node.name)
    agent.syncer.prepare = VolumeWriter(
        api, lambda uid, volume: volume_host_path(podman_root, uid, volume)).prepare
    try:
        async with _server(agent, opts) as port:
            node.spec = replace(node.spec, port=port)
            log.info("node %s: agent serving logs on port %d", node.name, port)
            await agent.run()
    finally:
        await podman.close()
