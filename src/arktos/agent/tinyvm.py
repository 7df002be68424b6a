"""The offline VM image `tinyvm`: the host's Debian kernel (uncompressed, booted through PVH)
and a busybox initramfs, built without network from the Debian packages
`linux-image-cloud-amd64` and `busybox-static`. It boots in a few seconds under TCG.

The guest's `/init` mounts proc/sys/dev, loads the virtio, iso9660 and ACPI button modules,
configures eth0 from `arktos.ip=ADDR/LEN arktos.gw=ADDR` on the kernel command line, mounts a
NoCloud seed (volume `cidata`) if there is one, prints `tinyvm user-data: N bytes: <first
line>` and runs the user-data if it is a script (`#!`), serves `/` and `/cgi-bin/uptime` with
busybox httpd on port 80 (`/cgi-bin/count` counts its calls in guest memory), powers off on the ACPI power button (busybox acpid), prints
`tinyvm booted` and runs a shell on the console (ttyS0). With `arktos.probe` on the command
line it powers off right after printing `tinyvm booted` (accelerator probes).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from arktos.agent import kernelimage

NAME = "tinyvm"
READY_LINE = b"tinyvm booted"
BUSYBOX = Path("/bin/busybox")
MODULES = ["virtio_pci", "virtio_mmio", "virtio_net", "virtio_blk", "isofs", "button", "evdev"]
CMDLINE = "quiet"

INIT = r"""#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/load); do insmod /lib/modules/$m.ko; done
arg() { for w in $(cat /proc/cmdline); do case $w in "$1"=*) echo "${w#*=}";; esac; done; }
if grep -qw arktos.probe /proc/cmdline; then echo "tinyvm booted"; poweroff -f; fi
ip link set lo up
IP=$(arg arktos.ip)
if [ -n "$IP" ]; then
  n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  ip link set eth0 up && ip addr add "$IP" dev eth0
  GW=$(arg arktos.gw); [ -n "$GW" ] && ip route add default via "$GW"
fi
mkdir -p /seed
for d in /dev/vd? /dev/sr?; do
  [ -b "$d" ] && mount -t iso9660 -o ro "$d" /seed 2>/dev/null && break
done
if [ -f /seed/meta-data ]; then
  h=$(sed -n 's/^local-hostname: *//p' /seed/meta-data); [ -n "$h" ] && hostname "$h"
fi
if [ -f /seed/user-data ]; then
  echo "tinyvm user-data: $(wc -c < /seed/user-data) bytes: $(head -n 1 /seed/user-data)"
  case "$(head -c 2 /seed/user-data)" in '#!') cp /seed/user-data /user-data
    chmod +x /user-data; /user-data & ;; esac
fi
mkdir -p /www/cgi-bin
echo "tinyvm $(hostname)" > /www/index.html
printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\ncat /proc/uptime\n' \
  > /www/cgi-bin/uptime
printf '#!/bin/sh\nn=$(( $(cat /tmp/count 2>/dev/null || echo 0) + 1 ))\necho $n > /tmp/count\n' \
  > /www/cgi-bin/count
printf 'echo "Content-Type: text/plain"\necho\necho $n\n' >> /www/cgi-bin/count
chmod +x /www/cgi-bin/uptime /www/cgi-bin/count
httpd -p 80 -h /www
acpid -c /etc/acpi
echo "tinyvm booted"
while :; do setsid cttyhack sh; done
"""
POWER_BUTTON = "#!/bin/sh\necho 'tinyvm: power button' > /dev/console\nsync\npoweroff -f\n"


def cpio_newc(entries: list[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A cpio archive (newc) of (path, mode, content, (rdev major, minor)) entries; content
    is a symlink's target for S_IFLNK. Pure."""
    out = bytearray()
    for ino, (path, mode, data, (major, minor)) in enumerate(
            [*entries, ("TRAILER!!!", 0, b"", (0, 0))], start=1):
        name = path.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name), 0)
        out += b"070701" + "".join(f"{f:08x}" for f in fields).encode() + name
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def initramfs(busybox: bytes, applets: list[str], modules: dict[str, bytes]) -> bytes:
    """The gzipped initramfs: busybox with `applets` (paths as `busybox --list-full` prints
    them) linked to it, `/init`, the power button action, and `modules` (name -> .ko, in
    load order) under /lib/modules. Pure."""
    d, f, x = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
    entries = [(p, d, b"", (0, 0)) for p in (
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "etc/acpi", "etc/acpi/PWRF",
        "proc", "sys", "dev", "tmp", "root", "lib", "lib/modules", "var", "var/log", "var/run")]
    entries += [("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
                ("bin/busybox", x, busybox, (0, 0)), ("init", x, INIT.encode(), (0, 0)),
                ("etc/acpi/PWRF/00000080", x, POWER_BUTTON.encode(), (0, 0)),
                ("etc/passwd", f, b"root:x:0:0:root:/root:/bin/sh\n", (0, 0)),
                ("lib/modules/load", f, "\n".join(modules).encode() + b"\n", (0, 0))]
    entries += [(f"lib/modules/{n}.ko", f, ko, (0, 0)) for n, ko in modules.items()]
    entries += [(a.strip("/"), stat.S_IFLNK | 0o777, b"/bin/busybox", (0, 0))
                for a in sorted(set(applets) - {"bin/busybox", "/bin/busybox"})]
    return gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0)


def _modules(modules_dir: Path) -> dict[str, bytes]:
    index = {kernelimage.module_name(p): p for p in (modules_dir / "kernel").rglob("*.ko")}
    blobs: dict[str, bytes] = {}

    def depends(name: str) -> list[str] | None:
        if name not in index:
            return None
        blobs[name] = index[name].read_bytes()
        return [d for d in kernelimage.modinfo(blobs[name]).get("depends", "").split(",") if d]

    return {n: blobs[n] for n in kernelimage.load_order(MODULES, depends)}


def _version(vmlinuz: Path) -> str:
    digest = hashlib.sha256(f"{INIT}{POWER_BUTTON}{MODULES}{CMDLINE}".encode())
    return f"{vmlinuz.name} {vmlinuz.stat().st_size} {digest.hexdigest()[:16]}\n"


def build(dest: Path, kernel_root: Path = Path("/"), busybox: Path = BUSYBOX) -> None:
    """Write the image's `kernel` (vmlinux if it has a PVH entry, else the bzImage),
    `initrd` and `cmdline` into the new directory `dest`. Blocking."""
    vmlinuz, modules_dir = kernelimage.find_kernel(kernel_root)
    bzimage = vmlinuz.read_bytes()
    dest.mkdir(parents=True)
    try:
        vmlinux = kernelimage.extract_vmlinux(bzimage)
        kernel = vmlinux if kernelimage.has_pvh_entry(vmlinux) else bzimage
    except (kernelimage.KernelError, ImportError):
        kernel = bzimage
    (dest / "kernel").write_bytes(kernel)
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, check=True,
                             timeout=30).stdout.decode().split()
    (dest / "initrd").write_bytes(initramfs(busybox.read_bytes(), applets,
                                            _modules(modules_dir)))
    (dest / "cmdline").write_text(CMDLINE + "\n")
    (dest / "VERSION").write_text(_version(vmlinuz))


def ensure_tinyvm(images_dir: Path, kernel_root: Path = Path("/")) -> Path:
    """Build `images_dir/tinyvm/` unless it is there and current; returns it. Idempotent and
    safe across processes (a lock file in `images_dir`). Blocking (~2 s): from async code,
    call it in a thread."""
    images_dir.mkdir(parents=True, exist_ok=True)
    image = images_dir / NAME
    vmlinuz, _ = kernelimage.find_kernel(kernel_root)
    with open(images_dir / f".{NAME}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        version = image / "VERSION"
        if version.exists() and version.read_text() == _version(vmlinuz):
            return image
        tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=images_dir))
        try:
            build(tmp / NAME, kernel_root)
            if image.exists():
                shutil.rmtree(image)
            os.replace(tmp / NAME, image)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return image
