"""The real node agent with QEMU (TCG) against a real cluster: a VM pod boots with its serial
log reachable, takes reboot/snapshot/restore actions through `arkctl action`, follows
`powerSpec`, leaves nothing behind when deleted; an agent restart adopts a running VM and a
running container; bad VM images and actions on a stopped VM fail clearly."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arktos.agent.tinyvm import ensure_tinyvm
from arktos.client.config import load_config
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess
from tests.cli import Arkctl
from tests.e2e.node_agent import (
    RunningAgent,
    bare_pod,
    clean_up,
    control_plane,
    gone,
    kubectl,
    node_agent,
    options,
    pod_where,
    podman_containers,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.xdist_group("qemu"), pytest.mark.e2e]
INSTALL = "apt-get install qemu-system-x86 qemu-utils genisoimage linux-image-cloud-amd64"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    with control_plane(tmp_path_factory, "vm-cluster") as proc:
        yield proc


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = tmp_path_factory.mktemp("vm-images")
    try:
        ensure_tinyvm(shared)
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} ({INSTALL})")
    garbage = shared / "garbage"
    garbage.mkdir()
    (garbage / "kernel").write_bytes(b"\x7fELF" + b"\x00" * 100_000)
    (garbage / "initrd").write_bytes(b"not an initrd")
    return shared


@pytest.fixture
async def admin(cluster: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_config(cluster.kubeconfig)) as client:
        yield client


@pytest.fixture
async def node(cluster: ApiServerProcess, tmp_path: Path, images: Path,
               unique: Callable[[str], str]) -> AsyncIterator[RunningAgent]:
    async with node_agent(cluster, options(cluster, unique("vmnode"), tmp_path, vms=True,
                                           images=images)) as agent:
        try:
            yield agent
        finally:
            await clean_up(agent.options)


def vm_pod(name: str, node: str, image: str = "tinyvm", **vm: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5, "virtualMachine": {
                "name": "vm", "image": image, "keyPairName": "none",
                "userData": base64.b64encode(b"hello from user data").decode(),
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}}, **vm}}}


def vm_status(pod: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = pod.get("status", {}).get("virtualMachineStatus", {})
    return status


def vm_ready(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and vm_status(pod).get("ready")


def qemu_pids(uid: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{uid}"], capture_output=True,
                         text=True, check=False)
    return [int(p) for p in out.stdout.split()]


async def arkctl(server: ApiServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    ark = Arkctl(server.kubeconfig)
    return await asyncio.to_thread(ark, *args, timeout=120)


async def test_vm_boots_acts_powers_and_is_removed(
        cluster: ApiServerProcess, admin: ApiClient, node: RunningAgent,
        unique: Callable[[str], str]) -> None:
    name = unique("vm")
    pods = ResourceClient(admin, "pods")
    await pods.create(vm_pod(name, node.name))
    pod = await pod_where(admin, name, vm_ready, what="VM ready")
    uid = pod["metadata"]["uid"]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}[
        "VirtualMachineReady"] == "True"
    assert pod["status"]["podIP"] and len(qemu_pids(uid)) == 1

    async def booted() -> bool:  # upstream `kubectl logs` refuses pods without containers
        code, out = await kubectl(cluster, "get", "--raw",
                                  f"/api/v1/namespaces/default/pods/{name}/log")
        return code == 0 and "tinyvm booted" in out
    await eventually(booted, timeout=60, interval=0.5)
    console = await arkctl(cluster, "logs", name, "--tail", "50")
    assert console.returncode == 0 and "tinyvm booted" in console.stdout
    assert "hello from user data" in console.stdout  # the cloud-init seed reached the guest

    reboot = await arkctl(cluster, "action", "reboot", name)
    assert reboot.returncode == 0 and "succeeded" in reboot.stdout, reboot
    await pod_where(admin, name, lambda p: vm_status(p).get("restartCount") == 1,
                    what="restartCount 1")
    snap = await arkctl(cluster, "action", "snapshot", name, "--snapshot", "s1")
    assert snap.returncode == 0 and "snapshot ID: s1" in snap.stdout, snap
    await pod_where(admin, name, lambda p: vm_status(p).get("snapshots") == ["s1"],
                    what="snapshot listed")
    restore = await arkctl(cluster, "action", "restore", name, "--snapshot", "s1")
    assert restore.returncode == 0 and "succeeded" in restore.stdout, restore
    missing = await arkctl(cluster, "action", "restore", name, "--snapshot", "nope")
    assert missing.returncode == 1 and "failed" in missing.stderr and "nope" in missing.stderr

    await pods.patch(name, {"spec": {"virtualMachine": {"powerSpec": "Shutdown"}}},
                     namespace="default")
    await pod_where(admin, name, lambda p: vm_status(p).get("powerState") == "Shutdown",
                    what="powered off")
    await eventually(lambda: _no_qemu(uid), timeout=30)
    stopped = await arkctl(cluster, "action", "snapshot", name, "--snapshot", "s2")
    assert stopped.returncode == 1 and "failed" in stopped.stderr, stopped
    await pods.patch(name, {"spec": {"virtualMachine": {"powerSpec": "Running"}}},
                     namespace="default")
    await pod_where(admin, name, vm_ready, what="powered on again")
    assert len(qemu_pids(uid)) == 1

    await pods.delete(name, namespace="default")
    await eventually(lambda: gone(admin, name), timeout=60)
    assert qemu_pids(uid) == []
    assert not (node.options.root / "qemu" / "vms" / uid).exists()


async def _no_qemu(uid: str) -> bool:
    return qemu_pids(uid) == []


async def test_restarted_agent_adopts_a_vm_and_a_container(
        cluster: ApiServerProcess, admin: ApiClient, tmp_path: Path, images: Path,
        unique: Callable[[str], str]) -> None:
    opts = options(cluster, unique("vmnode"), tmp_path, vms=True, images=images)
    try:
        await _restart_and_adopt(cluster, admin, opts, unique("vm"), unique("box"))
    finally:
        await clean_up(opts)


async def _restart_and_adopt(cluster: ApiServerProcess, admin: ApiClient, opts: Any,
                             vm: str, box: str) -> None:
    pods = ResourceClient(admin, "pods")
    async with node_agent(cluster, opts):
        await pods.create(vm_pod(vm, opts.name))
        await pods.create(bare_pod(box, opts.name, "sleep 3600"))
        vm_before = await pod_where(admin, vm, vm_ready, what="VM ready")
        box_before = await pod_where(admin, box, lambda p: p["status"].get("phase") ==
                                     "Running", what="container Running")
    vm_uid, box_uid = vm_before["metadata"]["uid"], box_before["metadata"]["uid"]
    pids, containers = qemu_pids(vm_uid), await podman_containers(opts, box_uid)
    assert len(pids) == 1 and containers
    async with node_agent(cluster, opts):
        await asyncio.sleep(2)  # several relists and syncs: nothing may start again
        assert qemu_pids(vm_uid) == pids
        assert await podman_containers(opts, box_uid) == containers
        vm_after = await pod_where(admin, vm, vm_ready)
        assert vm_status(vm_after)["restartCount"] == vm_status(vm_before)["restartCount"]
        box_after = await pod_where(admin, box, lambda p: True)
        assert box_after["status"]["containerStatuses"] == \
            box_before["status"]["containerStatuses"]
        for name in (vm, box):
            await pods.delete(name, namespace="default", grace_period_seconds=1)
        await eventually(lambda: _no_qemu(vm_uid), timeout=60)


async def test_bad_vm_images_fail_clearly_and_leak_nothing(
        admin: ApiClient, node: RunningAgent, unique: Callable[[str], str]) -> None:
    pods = ResourceClient(admin, "pods")
    for image, reason in (("no-such-image", "ImageNotFound"), ("garbage", "VmBootError")):
        name = unique("badvm")
        await pods.create(vm_pod(name, node.name, image=image))
        pod = await pod_where(admin, name, lambda p, r=reason: vm_status(p).get("reason") == r,
                              what=reason)
        uid = pod["metadata"]["uid"]
        assert vm_status(pod)["message"] and pod["status"]["phase"] == "Pending"
        assert qemu_pids(uid) == []
        await pods.delete(name, namespace="default")
        await eventually(lambda n=name: gone(admin, n), timeout=60)
        assert not (node.options.root / "qemu" / "vms" / uid).exists()
