"""VM networking: a Linux bridge of the runtime's own (`arktos-vm0`, 10.89.0.1/16, created on
first use and left in place), one tap device per VM on it, and an address per VM leased from
the bridge's subnet. Leases are files `<leases_dir>/<ip>` holding the pod uid, created with
O_EXCL, so runtimes over different roots on one host never hand out one address twice. The
host reaches the VMs directly through the bridge (no NAT). Needs root, /dev/net/tun and
`ip` (iproute2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from arktos.agent.runtime import RuntimeFailure


@dataclass(frozen=True)
class Subnet:
    """The bridge and its subnet; the gateway (the host's address on it) is the first."""

    bridge: str = "arktos-vm0"
    cidr: str = "10.89.0.0/16"
    leases_dir: Path = Path("/run/arktos-vmnet")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefix(self) -> int:
        return self.network.prefixlen


def usable() -> bool:
    """Whether this process can make bridges and taps (root, /dev/net/tun, iproute2)."""
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and bool(shutil.which("ip"))


def candidates(uid: str, network: ipaddress.IPv4Network) -> list[str]:
    """Addresses to try for `uid`, in order: one from its hash, then the ones after it
    (wrapping), skipping the network, gateway and broadcast addresses. Pure."""
    first, size = int(network.network_address) + 2, network.num_addresses - 3
    start = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:4], "big") % size
    return [str(ipaddress.IPv4Address(first + (start + i) % size)) for i in range(size)]


def lease(subnet: Subnet, uid: str) -> str:
    """An address for `uid`: its existing lease, else a new one. Small file I/O."""
    subnet.leases_dir.mkdir(parents=True, exist_ok=True)
    for ip in candidates(uid, subnet.network):
        path = subnet.leases_dir / ip
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            with contextlib.suppress(OSError):
                if path.read_text() == uid:
                    return ip
            continue
        with os.fdopen(fd, "w") as f:
            f.write(uid)
        return ip
    raise RuntimeFailure("NetworkError", f"no free address in {subnet.cidr}")


def release(subnet: Subnet, ip: str, uid: str) -> None:
    """Give `ip` back if `uid` holds it."""
    path = subnet.leases_dir / ip
    with contextlib.suppress(OSError):
        if ip and path.read_text() == uid:
            path.unlink()


async def _ip(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace").strip()


async def _must(*args: str, ok: tuple[str, ...] = ()) -> None:
    rc, err = await _ip(*args)
    if rc != 0 and not any(s in err for s in ok):
        raise RuntimeFailure("NetworkError", f"ip {' '.join(args)}: {err}")


async def ensure_bridge(subnet: Subnet) -> None:
    """Create the bridge with the gateway address, if missing; bring it up. Idempotent."""
    if (await _ip("link", "show", "dev", subnet.bridge))[0] != 0:
        await _must("link", "add", subnet.bridge, "type", "bridge", ok=("File exists",))
    await _must("addr", "add", f"{subnet.gateway}/{subnet.prefix}", "dev", subnet.bridge,
                ok=("File exists", "Address already assigned"))
    await _must("link", "set", subnet.bridge, "up")


async def add_tap(subnet: Subnet, tap: str) -> None:
    """Create tap device `tap` on the bridge, up. Idempotent."""
    await ensure_bridge(subnet)
    await _must("tuntap", "add", "dev", tap, "mode", "tap",
                ok=("File exists", "resource busy"))
    await _must("link", "set", tap, "master", subnet.bridge, "up")


async def del_tap(tap: str) -> None:
    """Remove tap device `tap` if it exists."""
    if tap:
        await _ip("link", "del", tap)
