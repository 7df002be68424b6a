"""A VM's cloud-init NoCloud seed: an ISO 9660 volume labelled `cidata` holding `user-data`
(the pod's decoded `userData`), `meta-data` (instance-id = pod uid, local-hostname = pod
name, public-keys) and `network-config` (v2: the VM's static address, matched by MAC).
`seed_files` is pure; `write_seed` runs genisoimage (Debian package `genisoimage`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

from arktos.agent.runtime import RuntimeFailure


def meta_data(instance_id: str, hostname: str, public_keys: tuple[str, ...]) -> str:
    """NoCloud `meta-data` (YAML; values JSON-quoted, which YAML reads as they are)."""
    lines = [f"instance-id: {json.dumps(instance_id)}", f"local-hostname: {hostname}"]
    if public_keys:
        lines += ["public-keys:", *(f"  - {json.dumps(k)}" for k in public_keys)]
    return "\n".join(lines) + "\n"


def network_config(mac: str, ip: str, prefix: int, gateway: str) -> str:
    """Netplan v2 `network-config`: a static address on the NIC with `mac` (DHCP if no ip)."""
    nic = ["  eth0:", f"    match: {{macaddress: {json.dumps(mac)}}}", "    set-name: eth0"]
    if ip:
        nic += [f"    addresses: [{json.dumps(f'{ip}/{prefix}')}]"]
        nic += [f"    routes: [{{to: default, via: {json.dumps(gateway)}}}]"] if gateway else []
    else:
        nic += ["    dhcp4: true"]
    return "\n".join(["version: 2", "ethernets:", *nic]) + "\n"


def hostname(pod_name: str) -> str:
    """A valid host name (RFC 1123 label, 63 bytes at most) from the pod's name."""
    label = "".join(c if c.isalnum() or c == "-" else "-" for c in pod_name.lower())
    return label.strip("-")[:63] or "vm"


def seed_files(uid: str, pod_name: str, user_data: bytes, public_keys: tuple[str, ...],
               mac: str, ip: str, prefix: int, gateway: str) -> dict[str, bytes]:
    """The seed's files by name. Pure."""
    return {"user-data": user_data,
            "meta-data": meta_data(uid, hostname(pod_name), public_keys).encode(),
            "network-config": network_config(mac, ip, prefix, gateway).encode()}


async def write_seed(iso: Path, files: dict[str, bytes]) -> None:
    """Write the seed ISO `iso` (atomically). `RuntimeFailure("CreateContainerError", ...)`
    if genisoimage fails or is missing."""
    if shutil.which("genisoimage") is None:
        raise RuntimeFailure("CreateContainerError", "genisoimage is missing: apt-get install "
                             "genisoimage")
    with tempfile.TemporaryDirectory(dir=iso.parent) as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        out = Path(tmp) / "seed.iso"
        proc = await asyncio.create_subprocess_exec(
            "genisoimage", "-quiet", "-output", str(out), "-volid", "cidata", "-joliet",
            "-rock", *(str(Path(tmp) / n) for n in files), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeFailure("CreateContainerError",
                                 f"genisoimage: {err.decode(errors='replace').strip()}")
        out.replace(iso)
