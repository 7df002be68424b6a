"""A VM pod's `spec.virtualMachine` read into a `VmSpec`, and the QEMU command line that boots
it. Pure: no I/O.

The VM gets `ceil(cpu)` vCPUs and `memory` MiB (limits, else requests; 1 vCPU and 128 MiB by
default). An image directory holds `kernel` + `initrd` (+ `cmdline`) for a direct kernel boot,
or a bootable `disk.qcow2`. Disks are virtio: the VM's qcow2 overlay first, then the cloud-init
seed (read-only). The serial console is a Unix socket chardev that also logs to a file; QMP is
a Unix socket; `-no-shutdown` keeps QEMU up after the guest powers off, so the runtime can tell
a guest power-off (status `shutdown`) from a QEMU crash (process gone).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from arktos.agent.runtime import Obj, RuntimeFailure
from arktos.api.quantity import int_value, milli_value, parse_quantity

QEMU = "qemu-system-x86_64"
DEFAULT_MEMORY_MIB = 128
MIN_MEMORY_MIB = 32
IMAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class VmSpec:
    """What the runtime needs of `spec.virtualMachine`."""

    name: str
    image: str
    cpus: int = 1
    memory_mib: int = DEFAULT_MEMORY_MIB
    user_data: bytes = b""
    public_keys: tuple[str, ...] = ()
    power: str = "Running"


@dataclass(frozen=True)
class Boot:
    """Where an instance's files are, and its network (empty `tap`: QEMU user networking)."""

    vm_dir: Path
    image_dir: Path
    qmp: Path
    console: Path
    accel: str
    kernel: bool
    """A direct kernel boot (`kernel` + `initrd`), else the image's disk boots."""
    cmdline: str = ""
    tap: str = ""
    mac: str = ""
    ip: str = ""
    gateway: str = ""
    prefix: int = 16


def _quantity(resources: Obj, key: str) -> object:
    for part in ("limits", "requests"):
        value = (resources.get(part) or {}).get(key)
        if value not in (None, ""):
            return value
    return None


def parse_vm(pod: Obj) -> VmSpec:
    """The pod's VM; `RuntimeFailure("CreateContainerError", ...)` if it has none or its
    resources or user data are malformed."""
    vm = (pod.get("spec") or {}).get("virtualMachine")
    if not isinstance(vm, dict):
        raise RuntimeFailure("CreateContainerError", "pod has no spec.virtualMachine")
    resources = vm.get("resources") or {}
    cpu, memory = _quantity(resources, "cpu"), _quantity(resources, "memory")
    try:
        cpus = max(1, math.ceil(milli_value(parse_quantity(str(cpu))) / 1000)) if cpu else 1
        mib = math.ceil(int_value(parse_quantity(str(memory))) / 2**20) if memory else \
            DEFAULT_MEMORY_MIB
        user_data = base64.b64decode(str(vm.get("userData") or ""), validate=True)
    except (ValueError, binascii.Error) as e:
        raise RuntimeFailure("CreateContainerError", f"virtualMachine: {e}") from e
    key = str(vm.get("publicKey") or "").strip()
    return VmSpec(name=str(vm.get("name") or "vm"), image=str(vm.get("image") or ""),
                  cpus=cpus, memory_mib=max(MIN_MEMORY_MIB, mib), user_data=user_data,
                  public_keys=(key,) if key else (), power=str(vm.get("powerSpec") or "Running"))


def image_dir(images_dir: Path, image: str) -> Path:
    """The directory of `image` (`name` or `name:latest`) in `images_dir`;
    `RuntimeFailure("ImageNotFound", ...)` for a name that cannot be one."""
    name = image.removesuffix(":latest")
    if not IMAGE_NAME.match(name) or ".." in name:
        raise RuntimeFailure("ImageNotFound", f"invalid VM image name {image!r}")
    return images_dir / name


def tap_name(uid: str) -> str:
    """The VM's tap device: `akvm` + 10 hex digits of the uid's hash (15 bytes at most)."""
    return "akvm" + hashlib.sha256(uid.encode()).hexdigest()[:10]


def mac_address(uid: str) -> str:
    """A stable locally administered MAC (QEMU's 52:54:00 prefix) from the uid."""
    digest = hashlib.sha256(uid.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def kernel_cmdline(boot: Boot, image_cmdline: str) -> str:
    """The guest kernel's command line: serial console, the image's own words, and the
    address (`arktos.ip=ADDR/LEN arktos.gw=GW`, read by tinyvm's init)."""
    words = ["console=ttyS0", *image_cmdline.split()]
    if boot.ip:
        words += [f"arktos.ip={boot.ip}/{boot.prefix}"]
    if boot.gateway:
        words += [f"arktos.gw={boot.gateway}"]
    return " ".join(words)


def opt(value: object) -> str:
    """`value` as a QEMU option value (commas doubled, so they cannot start a new option)."""
    return str(value).replace(",", ",,")


def qemu_argv(spec: VmSpec, boot: Boot, pidfile: Path, serial_log: Path) -> list[str]:
    """The daemonizing QEMU command line of one VM instance."""
    vm = boot.vm_dir
    argv = [QEMU, "-name", f"{opt(spec.name)},debug-threads=off", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-shutdown", "-machine", "q35", "-accel", boot.accel,
            "-smp", str(spec.cpus), "-m", str(spec.memory_mib)]
    if boot.kernel:
        argv += ["-kernel", str(boot.image_dir / "kernel"), "-initrd",
                 str(boot.image_dir / "initrd"), "-append", boot.cmdline]
    argv += ["-drive", f"file={opt(vm / 'disk.qcow2')},if=virtio,format=qcow2,id=disk0",
             "-drive", f"file={opt(vm / 'seed.iso')},if=virtio,format=raw,readonly=on,id=seed"]
    netdev = (f"tap,id=net0,ifname={opt(boot.tap)},script=no,downscript=no" if boot.tap
              else "user,id=net0")
    argv += ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=net0,mac={boot.mac}"]
    console = (f"socket,id=con0,path={opt(boot.console)},server=on,wait=off,"
               f"logfile={opt(serial_log)},logappend=on")
    argv += ["-chardev", console, "-serial", "chardev:con0",
             "-qmp", f"unix:{opt(boot.qmp)},server=on,wait=off",
             "-daemonize", "-pidfile", str(pidfile)]
    return argv


def probe_argv(image: Path, accel: str, serial_log: Path) -> list[str]:
    """A QEMU that boots tinyvm with `arktos.probe` (prints `tinyvm booted` and powers off)
    in the foreground: whether `accel` works."""
    return [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-machine", "q35", "-accel", accel, "-m", "128", "-kernel", str(image / "kernel"),
            "-initrd", str(image / "initrd"), "-append", "console=ttyS0 quiet arktos.probe",
            "-serial", f"file:{opt(serial_log)}"]
