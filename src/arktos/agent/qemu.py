"""The QEMU VM runtime: each VM pod is one daemonized `qemu-system-x86_64` (q35, TCG or KVM)
driven through QMP, with its files under `root/vms/<uid>/`: `state.json` (a `VmRecord`), the
qcow2 overlay `disk.qcow2` (over the image's `disk.qcow2`, or an empty data disk for
kernel+initrd images; it also holds the internal snapshots, disk and memory), the cloud-init
seed `seed.iso`, the serial console log `serial.log` (`serial.previous.log`: the instance
before), `qemu.pid`, and the QMP and console sockets (in the temp dir when the path would be
too long for a Unix socket).

QEMU runs in its own session (`-daemonize`), so VMs outlive the agent: a new runtime over the
same root finds them by their state files and their pids (checked against the uid in the
process's command line) and talks QMP to them again; nothing is started twice. The state is
observed when asked for (`pod_status`): QMP run status `shutdown` (the guest powered off;
QEMU runs with `-no-shutdown`) ends the instance `Completed`; a vanished QEMU ends it `Error`.

Images are directories `images_dir/<image>/` (`tinyvm.ensure_tinyvm` builds one offline).
Network: a tap per VM on the runtime's bridge (`vmnet`), the VM's leased address is the pod
IP; where no bridge can be made (no root, no /dev/net/tun), QEMU user networking and
`host_ip` as the pod IP.
`accel="auto"` probes KVM once (a tinyvm boot under `-accel kvm` that must finish within
`probe_timeout` seconds; some hosts' /dev/kvm hangs guests) and caches the answer in
`root/accel`. Needs the Debian packages qemu-system-x86, qemu-utils and genisoimage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from arktos.agent import cloudinit, qmp, tinyvm, vmnet, vmspec, vmstate
from arktos.agent.runtime import Obj, PodRuntimeStatus, RuntimeFailure, VmRuntime
from arktos.agent.vmstate import VmRecord

DATA_DISK = "64M"
QUIT_WAIT = 5.0
"""Seconds QEMU gets to exit after `quit` before SIGKILL."""
SNAPSHOT_TAG = re.compile(r"[^A-Za-z0-9_.:-]")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _proc_alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs (not a zombie) with `marker` in its command line."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X") and marker.encode() in cmdline


def _leftovers(marker: str) -> list[int]:
    """Pids of processes whose command line holds `marker` (a VM's directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _proc_alive(int(entry.name), marker):
            pids.append(int(entry.name))
    return pids


async def _run(*argv: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run a command; its exit code and stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        async with asyncio.timeout(timeout):
            _, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -9, f"{argv[0]} timed out after {timeout:g}s"
    return proc.returncode or 0, err.decode(errors="replace").strip()


class QemuRuntime:
    """Runs VM pods in QEMU. Calls on one VM are serialized (a lock per VM: QEMU serves one
    QMP client at a time); QMP is connected per call (see `arktos.agent.qmp`)."""

    name = vmstate.SCHEME
    runs_containers = False
    runs_vms = True

    def __init__(self, root: Path, images_dir: Path, accel: str = "auto",
                 network: str = "auto", subnet: vmnet.Subnet | None = None,
                 host_ip: str = "127.0.0.1", probe_timeout: float = 6.0,
                 power_off_grace: float = 30.0) -> None:
        self.root = root.resolve()
        self.images_dir = images_dir.resolve()
        self.accel = accel
        self.network = network
        self.subnet = subnet or vmnet.Subnet()
        self.host_ip = host_ip
        self.probe_timeout = probe_timeout
        self.power_off_grace = power_off_grace
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: bool | None = None
        self._accel_lock = asyncio.Lock()

    # -- files -------------------------------------------------------------------------

    def vm_dir(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise RuntimeFailure("VmNotFound", f"invalid pod uid {uid!r}")
        return self.root / "vms" / uid

    def sockets(self, uid: str) -> tuple[Path, Path]:
        """The VM's QMP and console sockets."""
        d = self.vm_dir(uid)
        if len(str(d / "console.sock")) < 100:
            return d / "qmp.sock", d / "console.sock"
        base = Path(tempfile.gettempdir()) / ("arktos-qemu-" + hashlib.sha256(
            str(d).encode()).hexdigest()[:16])
        return base.with_suffix(".qmp"), base.with_suffix(".con")

    def _load(self, uid: str) -> VmRecord | None:
        try:
            return VmRecord.from_json(orjson.loads((self.vm_dir(uid) / "state.json")
                                                   .read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            return None

    def _save(self, rec: VmRecord) -> VmRecord:
        path = self.vm_dir(rec.uid) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(rec.to_json(), option=orjson.OPT_INDENT_2))
        tmp.replace(path)
        return rec

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _alive(self, rec: VmRecord) -> bool:
        return _proc_alive(rec.pid, self._marker(rec.uid))

    def _marker(self, uid: str) -> str:
        """What the command line of the VM's QEMU holds: its directory (with the slash,
        so that no other uid's directory matches)."""
        return f"{self.vm_dir(uid)}/"

    # -- the protocol ----------------------------------------------------------------------

    async def ready(self) -> bool:
        if self._ready is None:
            self._ready = all(shutil.which(t) for t in (vmspec.QEMU, "qemu-img", "genisoimage"))
        return self._ready

    async def start_sandbox(self, pod: Obj) -> PodRuntimeStatus:
        md = pod.get("metadata") or {}
        uid = str(md.get("uid", ""))
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is None:
                rec = await self._make_sandbox(uid, str(md.get("name", "")), pod)
            return vmstate.pod_status(rec)

    async def _make_sandbox(self, uid: str, pod_name: str, pod: Obj) -> VmRecord:
        spec = vmspec.parse_vm(pod)
        image = self._image(spec.image)
        d = self.vm_dir(uid)
        d.mkdir(parents=True, exist_ok=True)
        rec = VmRecord(uid=uid, pod_name=pod_name, name=spec.name, image=spec.image,
                       created_at=_now().isoformat(), mac=vmspec.mac_address(uid))
        try:
            rec = await self._network(rec)
            await self._overlay(d / "disk.qcow2", image)
            await cloudinit.write_seed(d / "seed.iso", cloudinit.seed_files(
                uid, pod_name, spec.user_data, spec.public_keys, rec.mac, rec.ip,
                self.subnet.prefix, self.subnet.gateway if rec.tap else ""))
            return self._save(rec)
        except BaseException:
            await self._cleanup(rec)
            raise

    async def _network(self, rec: VmRecord) -> VmRecord:
        """A tap and a leased address on the bridge; with `network="auto"`, QEMU user
        networking (the pod IP: `host_ip`) if this host cannot make them."""
        if self.network == "user" or (self.network == "auto" and not vmnet.usable()):
            return replace(rec, ip=self.host_ip)
        tapped = replace(rec, ip=vmnet.lease(self.subnet, rec.uid),
                         tap=vmspec.tap_name(rec.uid))
        try:
            await vmnet.add_tap(self.subnet, tapped.tap)
        except RuntimeFailure:
            await vmnet.del_tap(tapped.tap)
            vmnet.release(self.subnet, tapped.ip, rec.uid)
            if self.network != "auto":
                raise
            self.network = "user"
            return replace(rec, ip=self.host_ip)
        return tapped

    def _image(self, image: str) -> Path:
        d = vmspec.image_dir(self.images_dir, image)
        if not ((d / "kernel").is_file() and (d / "initrd").is_file()) and \
                not (d / "disk.qcow2").is_file():
            raise RuntimeFailure("ImageNotFound", f"VM image {image!r} not found in "
                                 f"{self.images_dir} (kernel+initrd or disk.qcow2)")
        return d

    async def _overlay(self, disk: Path, image: Path) -> None:
        if disk.exists():
            return
        tmp = disk.with_suffix(".tmp")
        base = image / "disk.qcow2"
        args = ["-b", str(base), "-F", "qcow2", str(tmp)] if base.is_file() and not \
            (image / "kernel").is_file() else [str(tmp), DATA_DISK]
        rc, err = await _run("qemu-img", "create", "-q", "-f", "qcow2", *args)
        if rc != 0:
            raise RuntimeFailure("CreateContainerError", f"qemu-img create: {err}")
        tmp.replace(disk)

    async def start_container(self, pod: Obj, name: str, attempt: int) -> None:
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        spec = vmspec.parse_vm(pod)
        if name != spec.name:
            raise RuntimeFailure("CreateContainerError", f"pod has no VM {name!r}")
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is None:
                raise RuntimeFailure("CreateContainerError", f"pod {uid} has no sandbox")
            rec = await self._refresh(rec)
            if rec.state == "running":
                raise RuntimeFailure("CreateContainerError", f"VM {name!r} is running")
            d = self.vm_dir(uid)
            if (d / "serial.log").exists():
                (d / "serial.log").replace(d / "serial.previous.log")
            await self._boot(rec, spec, attempt)

    async def _boot(self, rec: VmRecord, spec: vmspec.VmSpec, attempt: int | None) -> VmRecord:
        """Start QEMU for the VM (a new instance if `attempt` is given, else powered on
        again); `RuntimeFailure("VmBootError", ...)` if QEMU does not start."""
        image = self._image(rec.image)
        d = self.vm_dir(rec.uid)
        qmp_sock, console = self.sockets(rec.uid)
        for stale in (qmp_sock, console, d / "qemu.pid"):
            stale.unlink(missing_ok=True)
        boot = vmspec.Boot(vm_dir=d, image_dir=image, qmp=qmp_sock, console=console,
                           accel=await self._resolve_accel(),
                           kernel=(image / "kernel").is_file(), tap=rec.tap, mac=rec.mac,
                           ip=rec.ip if rec.tap else "",
                           gateway=self.subnet.gateway if rec.tap else "",
                           prefix=self.subnet.prefix)
        cmdline = (image / "cmdline").read_text() if (image / "cmdline").is_file() else ""
        boot = replace(boot, cmdline=vmspec.kernel_cmdline(boot, cmdline))
        rc, err = await _run(*vmspec.qemu_argv(spec, boot, d / "qemu.pid", d / "serial.log"))
        pid = self._pidfile(d)
        if rc != 0 or not _proc_alive(pid, self._marker(rec.uid)):
            await self._kill(pid, self._marker(rec.uid))
            raise RuntimeFailure("VmBootError", f"QEMU did not start: {err or rc}")
        rec = replace(rec, cpus=spec.cpus, memory_mib=spec.memory_mib)
        return self._save(vmstate.booted(rec, pid, _now(), attempt))

    @staticmethod
    def _pidfile(d: Path) -> int:
        try:
            return int((d / "qemu.pid").read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    async def accelerator(self) -> str:
        """The accelerator VMs get (`auto`: probed once, then remembered under the root)."""
        return await self._resolve_accel()

    async def _resolve_accel(self) -> str:
        if self.accel != "auto":
            return self.accel
        cache = self.root / "accel"
        async with self._accel_lock:
            if cache.is_file():
                return cache.read_text().strip()
            accel = await self.probe_kvm()
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(accel + "\n")
            return accel

    async def probe_kvm(self) -> str:
        """`kvm` if a tinyvm boots under KVM within `probe_timeout` seconds, else `tcg`."""
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "tcg"
        try:
            image = await asyncio.to_thread(tinyvm.ensure_tinyvm, self.images_dir)
        except (OSError, RuntimeError, ValueError):
            return "tcg"
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            log = Path(tmp) / "probe.log"
            rc, _ = await _run(*vmspec.probe_argv(image, "kvm", log),
                               timeout=self.probe_timeout)
            booted = log.is_file() and tinyvm.READY_LINE in log.read_bytes()
        return "kvm" if rc == 0 and booted else "tcg"

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is None or rec.name != name:
                return
            rec = await self._refresh(rec)
            if rec.state == "running":
                await self._power_off(rec, grace, None)

    async def _power_off(self, rec: VmRecord, grace: float, power: str | None) -> VmRecord:
        """ACPI power-off, then `quit` after `grace` seconds (at once if paused), then
        SIGKILL; the instance ends `Completed` if the guest powered off in time."""
        qmp_sock = self.sockets(rec.uid)[0]
        clean, pid = False, rec.pid
        with contextlib.suppress(qmp.QmpUnavailable, qmp.QmpCommandError, TimeoutError):
            if await qmp.status(qmp_sock) != "paused":
                await qmp.call(qmp_sock, "system_powerdown")
                clean = await self._until_off(rec, grace)
        if clean:
            rec = vmstate.ended(rec, _now(), 0, "Completed", "powered off", power)
        else:
            rec = vmstate.ended(rec, _now(), 137, "Error",
                                f"did not power off within {grace:g}s: quit", power)
        await self._quit(rec.uid, pid)
        return self._save(rec)

    async def _until_off(self, rec: VmRecord, grace: float) -> bool:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self._alive(rec):
                return True
            with contextlib.suppress(qmp.QmpUnavailable, TimeoutError):
                if await qmp.status(self.sockets(rec.uid)[0], timeout=2) == "shutdown":
                    return True
            await asyncio.sleep(0.2)
        return False

    async def _quit(self, uid: str, pid: int) -> None:
        """End the VM's QEMU: QMP `quit`, SIGKILL if it is still there after QUIT_WAIT."""
        marker = self._marker(uid)
        if _proc_alive(pid, marker):
            with contextlib.suppress(qmp.QmpUnavailable, qmp.QmpCommandError, TimeoutError):
                await qmp.call(self.sockets(uid)[0], "quit", timeout=QUIT_WAIT)
        await self._kill(pid, marker, QUIT_WAIT)

    @staticmethod
    async def _kill(pid: int, marker: str, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while _proc_alive(pid, marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for _ in range(100):
            if not _proc_alive(pid, marker):
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)

    async def remove_pod(self, uid: str, grace: float) -> None:
        d = self.vm_dir(uid)
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is not None:
                rec = await self._refresh(rec)
                if rec.state == "running":
                    rec = await self._power_off(rec, grace, None)
                await self._cleanup(rec)
            elif d.exists():
                await self._sweep(uid)
                shutil.rmtree(d, ignore_errors=True)
        self._locks.pop(uid, None)

    async def _cleanup(self, rec: VmRecord) -> None:
        """Kill whatever runs from the VM's directory; remove its tap, lease, files."""
        d = self.vm_dir(rec.uid)
        await self._sweep(rec.uid)
        await vmnet.del_tap(rec.tap)
        if rec.tap:
            vmnet.release(self.subnet, rec.ip, rec.uid)
        for sock in self.sockets(rec.uid):
            sock.unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)

    async def _sweep(self, uid: str) -> None:
        for pid in _leftovers(self._marker(uid)):
            await self._kill(pid, self._marker(uid))

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        async with self._lock(uid):
            rec = self._load(uid)
            return vmstate.pod_status(await self._refresh(rec)) if rec else None

    async def _refresh(self, rec: VmRecord) -> VmRecord:
        """The record after looking at the VM's QEMU; an instance that ended is saved, and
        a QEMU left behind by a guest power-off is ended."""
        if rec.state != "running":
            return rec
        alive, status = self._alive(rec), None
        if alive:
            with contextlib.suppress(qmp.QmpUnavailable, qmp.QmpCommandError, TimeoutError):
                status = await qmp.status(self.sockets(rec.uid)[0])
        new = vmstate.observe(rec, alive, status, _now())
        if new.state != "running" and alive:
            await self._quit(rec.uid, rec.pid)
        return self._save(new) if new != rec else rec

    async def list_pods(self) -> list[PodRuntimeStatus]:
        vms = self.root / "vms"
        uids = sorted(p.name for p in vms.iterdir()) if vms.is_dir() else []
        found = [await self.pod_status(uid) for uid in uids]
        return [p for p in found if p is not None]

    async def adopt(self, pod: Obj) -> PodRuntimeStatus | None:
        return await self.pod_status(str((pod.get("metadata") or {}).get("uid", "")))

    async def logs(self, uid: str, name: str, *, previous: bool = False,
                   tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        """The serial console log, from the file QEMU writes it to."""
        rec = self._load(uid)
        if rec is None or rec.name != name or rec.state == "waiting":
            raise RuntimeFailure("NotFound", f"no VM {name!r} in pod {uid}")
        path = self.vm_dir(uid) / ("serial.previous.log" if previous else "serial.log")
        if previous and not path.exists():
            raise RuntimeFailure("NotFound", f"VM {name!r} has no previous instance")
        data = path.read_bytes() if path.exists() else b""
        if tail is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail:] if tail > 0 else [])
        if data:
            yield data
        if follow and not previous:
            async for chunk in self._follow(uid, path, path.stat().st_size
                                            if path.exists() else 0):
                yield chunk

    async def _follow(self, uid: str, path: Path, offset: int) -> AsyncIterator[bytes]:
        while True:
            rec = self._load(uid)
            running = rec is not None and rec.state == "running" and self._alive(rec)
            try:
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                return
            if chunk:
                offset += len(chunk)
                yield chunk
            if not running:
                return
            await asyncio.sleep(0.2)

    # -- VM actions ------------------------------------------------------------------------

    async def _running(self, uid: str) -> VmRecord:
        rec = self._load(uid)
        if rec is None:
            raise RuntimeFailure("VmNotFound", f"pod {uid} has no virtual machine")
        rec = await self._refresh(rec)
        if rec.state != "running":
            raise RuntimeFailure("VmNotRunning", f"the VM of pod {uid} is not running")
        return rec

    async def _qmp(self, rec: VmRecord, command: str, timeout: float = 10.0) -> object:
        try:
            return await qmp.call(self.sockets(rec.uid)[0], command, timeout=timeout)
        except (qmp.QmpUnavailable, qmp.QmpCommandError, TimeoutError) as e:
            raise RuntimeFailure("VmActionFailed", f"QMP {command}: {e}") from e

    async def set_power(self, uid: str, power: str) -> None:
        """`Shutdown`: ACPI power-off (QEMU quits after `power_off_grace` seconds at most);
        `Running`/`Paused`: boot the VM if it is off, then resume/pause its vCPUs."""
        if power not in ("Running", "Paused", "Shutdown"):
            raise RuntimeFailure("InvalidPowerSpec", f"unknown power state {power!r}")
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is None:
                raise RuntimeFailure("VmNotFound", f"pod {uid} has no virtual machine")
            rec = await self._refresh(rec)
            if power == "Shutdown":
                if rec.state == "running":
                    await self._power_off(rec, self.power_off_grace, "Shutdown")
                else:
                    self._save(replace(rec, power="Shutdown"))
                return
            if rec.state != "running":
                spec = vmspec.VmSpec(name=rec.name, image=rec.image, cpus=rec.cpus,
                                     memory_mib=rec.memory_mib)
                rec = await self._boot(rec, spec, None)
            await self._qmp(rec, "cont" if power == "Running" else "stop")
            self._save(replace(rec, power=power))

    async def reboot(self, uid: str) -> None:
        async with self._lock(uid):
            rec = await self._running(uid)
            await self._qmp(rec, "system_reset")
            self._save(replace(rec, resets=rec.resets + 1))

    async def snapshot(self, uid: str, name: str) -> str:
        async with self._lock(uid):
            rec = await self._running(uid)
            tag = SNAPSHOT_TAG.sub("-", name)[:64] or f"snapshot-{len(rec.snapshots) + 1}"
            out = await self._hmp(rec, f"savevm {tag}")
            if out.strip():
                raise RuntimeFailure("SnapshotFailed", f"savevm {tag}: {out.strip()}")
            self._save(vmstate.snapshot_added(rec, tag))
            return tag

    async def restore(self, uid: str, snapshot_id: str) -> None:
        async with self._lock(uid):
            rec = self._load(uid)
            if rec is None:
                raise RuntimeFailure("VmNotFound", f"pod {uid} has no virtual machine")
            if snapshot_id not in rec.snapshots:
                raise RuntimeFailure("SnapshotNotFound", f"VM has no snapshot {snapshot_id!r}")
            rec = await self._running(uid)
            out = (await self._hmp(rec, f"loadvm {snapshot_id}")).strip()
            if out:
                reason = "SnapshotNotFound" if "exist" in out else "RestoreFailed"
                raise RuntimeFailure(reason, f"loadvm {snapshot_id}: {out}")

    async def _hmp(self, rec: VmRecord, line: str) -> str:
        try:
            return await qmp.hmp(self.sockets(rec.uid)[0], line, timeout=120)
        except (qmp.QmpUnavailable, qmp.QmpCommandError, TimeoutError) as e:
            raise RuntimeFailure("VmActionFailed", f"{line}: {e}") from e


if TYPE_CHECKING:
    _: VmRuntime = QemuRuntime(Path(), Path())
