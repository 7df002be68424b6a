"""The QEMU runtime against a real QEMU (TCG, no mocks), booting the offline `tinyvm` image.
Needs qemu-system-x86, qemu-utils, genisoimage, busybox-static and linux-image-cloud-amd64;
runs on one xdist worker. Each test boots its own VMs (about 2 s each under TCG)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from arktos.agent import tinyvm, vmspec
from arktos.agent.qemu import QemuRuntime
from arktos.agent.runtime import Obj, RuntimeFailure, VmState
from arktos.agent.vmstate import VmRecord

pytestmark = pytest.mark.xdist_group("qemu")

INSTALL = ("apt-get install qemu-system-x86 qemu-utils genisoimage busybox-static "
           "linux-image-cloud-amd64")
BOOT_TIMEOUT = 40.0


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The images dir holding tinyvm, built once and shared by the xdist workers."""
    for tool in (vmspec.QEMU, "qemu-img", "genisoimage", "busybox"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: {INSTALL}")
    shared = tmp_path_factory.getbasetemp().parent / "qemu-images"
    try:
        tinyvm.ensure_tinyvm(shared)
    except FileNotFoundError as e:
        pytest.fail(f"{e} ({INSTALL})")
    return shared


@pytest.fixture
async def rt(tmp_path: Path, images: Path) -> AsyncIterator[QemuRuntime]:
    runtime = QemuRuntime(tmp_path / "rt", images, accel="tcg")
    yield runtime
    for p in await QemuRuntime(tmp_path / "rt", images, accel="tcg").list_pods():
        await runtime.remove_pod(p.uid, 0)


def vm_pod(image: str = "tinyvm", user_data: bytes = b"", **vm: object) -> Obj:
    spec: Obj = {"name": "vm", "image": image, "powerSpec": "Running",
                 "resources": {"limits": {"cpu": "1", "memory": "128Mi"}}, **vm}
    if user_data:
        spec["userData"] = base64.b64encode(user_data).decode()
    return {"metadata": {"name": "tiny-1", "namespace": "default", "tenant": "system",
                         "uid": str(uuid.uuid4())}, "spec": {"virtualMachine": spec}}


def uid_of(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


async def log_text(rt: QemuRuntime, uid: str, previous: bool = False) -> str:
    return b"".join([c async for c in rt.logs(uid, "vm", previous=previous)]).decode(
        errors="replace")


async def booted(rt: QemuRuntime, uid: str, times: int = 1) -> str:
    """Wait until the serial log shows `times` boots; the log."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while (text := await log_text(rt, uid)).count("tinyvm booted") < times:
        assert time.monotonic() < deadline, text[-2000:]
        await asyncio.sleep(0.1)
    return text


async def started(rt: QemuRuntime, pod: Obj, attempt: int = 0) -> VmState:
    await rt.start_sandbox(pod)
    await rt.start_container(pod, "vm", attempt)
    await booted(rt, uid_of(pod))
    return await vm(rt, uid_of(pod))


async def vm(rt: QemuRuntime, uid: str) -> VmState:
    rs = await rt.pod_status(uid)
    assert rs is not None and rs.vm is not None
    return rs.vm


async def http(ip: str, path: str, timeout: float = 5.0) -> str | None:
    """The guest's answer on port 80, or None if it does not answer in time."""
    try:
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s,
                    s.get(f"http://{ip}{path}") as r):
            return await r.text()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def count(ip: str) -> int:
    """Calls the guest's counter (kept in its memory); the count."""
    text = await http(ip, "/cgi-bin/count")
    assert text is not None
    return int(text)


def record(rt: QemuRuntime, uid: str) -> VmRecord:
    rec = rt._load(uid)
    assert rec is not None
    return rec


def qemu_pids(uid: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", uid], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


async def assert_gone(rt: QemuRuntime, uid: str, pids: list[int], tap: str = "") -> None:
    """Nothing of the VM is left: no process, files, sockets, tap or lease."""
    assert await rt.pod_status(uid) is None
    assert not any(alive(p) for p in pids)
    assert qemu_pids(uid) == []
    assert not rt.vm_dir(uid).exists()
    assert not any(s.exists() for s in rt.sockets(uid))
    if tap:
        assert not Path(f"/sys/class/net/{tap}").exists()
    leases = rt.subnet.leases_dir
    assert not any(p.read_text() == uid for p in leases.iterdir()) if leases.is_dir() else True


async def test_boot_user_data_network_and_removal(rt: QemuRuntime) -> None:
    script = b"#!/bin/sh\necho user-data-marker-$((40 + 2))\n"
    pod = vm_pod(user_data=script)
    uid = uid_of(pod)
    state = await started(rt, pod)
    assert (state.state, state.power_state, state.restart_count) == ("running", "Running", 0)
    assert state.container_id == f"qemu://{uid}/vm"
    text = await booted(rt, uid)
    assert f"tinyvm user-data: {len(script)} bytes: #!/bin/sh" in text
    deadline = time.monotonic() + 10
    while "user-data-marker-42" not in await log_text(rt, uid):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    rs = await rt.pod_status(uid)
    assert rs is not None and rs.ip.startswith("10.89.")
    assert (await http(rs.ip, "/") or "").strip() == "tinyvm tiny-1"
    tail = b"".join([c async for c in rt.logs(uid, "vm", tail=1)])
    assert tail.count(b"\n") <= 1
    rec = record(rt, uid)
    assert rec.pid and qemu_pids(uid) == [rec.pid]

    async def follow() -> bytes:
        return b"".join([c async for c in rt.logs(uid, "vm", follow=True)])

    following = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    await rt.remove_pod(uid, 5)
    assert b"tinyvm booted" in await asyncio.wait_for(following, 10)
    await assert_gone(rt, uid, [rec.pid], rec.tap)
    await rt.remove_pod(uid, 5)  # unknown uids are ignored


async def test_pause_reboot_readoption_and_power(rt: QemuRuntime, images: Path) -> None:
    pod = vm_pod()
    uid = uid_of(pod)
    await started(rt, pod)
    rs = await rt.pod_status(uid)
    assert rs is not None
    await rt.set_power(uid, "Paused")
    assert (await vm(rt, uid)).power_state == "Paused"
    assert await http(rs.ip, "/", timeout=1.5) is None
    await rt.set_power(uid, "Running")
    assert (await vm(rt, uid)).power_state == "Running"
    assert await http(rs.ip, "/") is not None

    await rt.reboot(uid)
    assert (await vm(rt, uid)).restart_count == 1
    await booted(rt, uid, times=2)

    pid = record(rt, uid).pid
    again = QemuRuntime(rt.root, images, accel="tcg")
    adopted = await again.adopt(pod)
    assert adopted is not None and adopted.vm is not None
    assert (adopted.vm.state, adopted.vm.restart_count) == ("running", 1)
    assert [p.uid for p in await again.list_pods()] == [uid]
    assert qemu_pids(uid) == [pid]
    await again.reboot(uid)
    assert (await vm(again, uid)).restart_count == 2
    await booted(again, uid, times=3)

    await again.set_power(uid, "Shutdown")
    state = await vm(again, uid)
    assert (state.state, state.power_state, state.reason, state.exit_code) == (
        "terminated", "Shutdown", "Completed", 0)
    assert qemu_pids(uid) == [] and rt.vm_dir(uid).joinpath("disk.qcow2").exists()
    await again.set_power(uid, "Paused")  # from Shutdown: boots, then pauses
    state = await vm(again, uid)
    assert (state.state, state.power_state, state.restart_count) == ("running", "Paused", 2)
    await again.set_power(uid, "Running")
    assert (await vm(again, uid)).power_state == "Running"
    await booted(again, uid, times=4)


async def test_snapshot_and_restore_revert_the_guest(rt: QemuRuntime) -> None:
    pod = vm_pod()
    uid = uid_of(pod)
    await started(rt, pod)
    rs = await rt.pod_status(uid)
    assert rs is not None
    assert await count(rs.ip) == 1
    assert await rt.snapshot(uid, "first one") == "first-one"
    assert await count(rs.ip) == 2
    assert await rt.snapshot(uid, "") == "snapshot-2"
    assert (await vm(rt, uid)).snapshots == ("first-one", "snapshot-2")
    assert await count(rs.ip) == 3
    await rt.restore(uid, "first-one")
    assert await count(rs.ip) == 2  # the guest's memory is back to before the snapshot
    await rt.restore(uid, "snapshot-2")
    assert await count(rs.ip) == 3
    assert (await vm(rt, uid)).state == "running"
    with pytest.raises(RuntimeFailure) as e:
        await rt.restore(uid, "nope")
    assert e.value.reason == "SnapshotNotFound"
    for action in (rt.reboot(str(uuid.uuid4())), rt.snapshot(str(uuid.uuid4()), "x"),
                   rt.set_power(str(uuid.uuid4()), "Paused")):
        with pytest.raises(RuntimeFailure) as e:
            await action
        assert e.value.reason == "VmNotFound"


async def test_stop_restart_guest_poweroff_and_crash(rt: QemuRuntime) -> None:
    script = (b"#!/bin/sh\n[ \"$(head -c 4 /dev/vda)\" = done ] && exit 0\n"
              b"printf done > /dev/vda; sync; echo powering-off; poweroff -f\n")
    pod = vm_pod(user_data=script)  # powers off once: the mark stays on the VM's disk
    uid = uid_of(pod)
    await rt.start_sandbox(pod)
    await rt.start_container(pod, "vm", 0)
    deadline = time.monotonic() + BOOT_TIMEOUT
    while (state := await vm(rt, uid)).state == "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert (state.exit_code, state.reason) == (0, "Completed")
    assert qemu_pids(uid) == []

    await rt.start_container(pod, "vm", 1)
    await booted(rt, uid)
    assert "powering-off" in await log_text(rt, uid, previous=True)
    rs = await rt.pod_status(uid)
    assert rs is not None and rs.vm is not None and rs.vm.restart_count == 1
    assert [p.restart_count for p in rs.previous] == [0]
    pid = record(rt, uid).pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (state := await vm(rt, uid)).state == "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (state.reason, state.exit_code) == ("Error", 1)


async def test_stop_container_powers_off_with_user_networking(tmp_path: Path,
                                                              images: Path) -> None:
    rt = QemuRuntime(tmp_path / "rt", images, accel="tcg", network="user", host_ip="192.0.2.9")
    pod = vm_pod()
    uid = uid_of(pod)
    await started(rt, pod)
    rs = await rt.pod_status(uid)
    assert rs is not None and rs.ip == "192.0.2.9" and not record(rt, uid).tap
    await rt.stop_container(uid, "vm", 20)
    state = await vm(rt, uid)
    assert (state.state, state.exit_code, state.reason) == ("terminated", 0, "Completed")
    assert "tinyvm: power button" in await log_text(rt, uid)
    assert qemu_pids(uid) == []
    await rt.stop_container(uid, "other", 1)  # unknown names are ignored
    await rt.remove_pod(uid, 0)
    await assert_gone(rt, uid, [])


async def test_missing_image_and_garbage_kernel(rt: QemuRuntime, images: Path,
                                                tmp_path: Path) -> None:
    pod = vm_pod(image="no-such-image")
    with pytest.raises(RuntimeFailure) as e:
        await rt.start_sandbox(pod)
    assert e.value.reason == "ImageNotFound"
    await assert_gone(rt, uid_of(pod), [])

    garbage = tmp_path / "images" / "garbage"
    garbage.mkdir(parents=True)
    (garbage / "kernel").write_bytes(os.urandom(200_000))
    (garbage / "initrd").write_bytes(os.urandom(1000))
    bad = QemuRuntime(rt.root, tmp_path / "images", accel="tcg")
    pod = vm_pod(image="garbage")
    uid = uid_of(pod)
    await bad.start_sandbox(pod)
    with pytest.raises(RuntimeFailure) as e:
        await bad.start_container(pod, "vm", 0)
    assert e.value.reason == "VmBootError"
    assert qemu_pids(uid) == []
    rs = await bad.pod_status(uid)
    assert rs is not None and rs.vm is None
    tap = record(rt, uid).tap
    await bad.remove_pod(uid, 0)
    await assert_gone(bad, uid, [], tap)


async def test_accelerator_probe_is_cached(tmp_path: Path, images: Path) -> None:
    runtime = QemuRuntime(tmp_path / "rt", images, accel="auto", probe_timeout=4)
    accel = await runtime._resolve_accel()
    assert accel in ("kvm", "tcg")
    assert (tmp_path / "rt" / "accel").read_text().strip() == accel
    assert await runtime.ready()
