"""What this machine offers as a node: its name, address and capacity (read from the host)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from arktos.agent.nodestatus import NodeSpec

PODS_PER_NODE = "110"


def memory_bytes(meminfo: str) -> int:
    """`MemTotal` of /proc/meminfo's text, in bytes. Pure."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no MemTotal in /proc/meminfo")


def host_address() -> str:
    """The address other machines reach this one at: the source address of the default
    route (no packet is sent), else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def host_node(name: str, root: Path, address: str = "") -> NodeSpec:
    """This host as node `name` (cpu, memory, pods, ephemeral-storage of `root`'s disk)."""
    root.mkdir(parents=True, exist_ok=True)
    capacity = {"cpu": str(os.cpu_count() or 1),
                "memory": str(memory_bytes(Path("/proc/meminfo").read_text())),
                "pods": PODS_PER_NODE,
                "ephemeral-storage": str(shutil.disk_usage(root).total)}
    return NodeSpec(name, address or host_address(), capacity)
