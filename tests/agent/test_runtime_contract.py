"""The `Runtime` contract, one suite for every implementation: hollow (containers and VMs),
Podman (containers) and QEMU (VMs). What the agent relies on: sandbox then instances by
attempt, the previous instance kept, stop leaves it terminated, state found again by a fresh
runtime (re-adoption), logs, and removal that leaves nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from arktos.agent.hollow import HollowRuntime
from arktos.agent.runtime import ContainerState, Obj, Runtime, RuntimeFailure
from tests.waiting import eventually

pytestmark = pytest.mark.xdist_group("qemu")  # heavy: beside the QEMU tests, not the others


@dataclass
class Subject:
    runtime: Runtime
    pod: Obj
    name: str
    fresh: Callable[[], Runtime]
    """A new runtime over the same state (an agent restart)."""
    close: Callable[[], Awaitable[None]]


def container_pod() -> Obj:
    return {"metadata": {"name": "c", "namespace": "default", "tenant": "system",
                         "uid": str(uuid.uuid4())},
            "spec": {"containers": [{"name": "main", "image": "localhost/busybox:latest",
                                     "command": ["sh", "-c", "echo up; sleep 3600"]}]}}


def vm_pod() -> Obj:
    return {"metadata": {"name": "v", "namespace": "default", "tenant": "system",
                         "uid": str(uuid.uuid4())},
            "spec": {"virtualMachine": {"name": "vm", "image": "tinyvm", "powerSpec": "Running",
                                        "resources": {"limits": {"memory": "128Mi"}}}}}


async def _nothing() -> None:
    return None


def hollow(pod: Obj) -> Subject:
    rt = HollowRuntime()

    def fresh() -> Runtime:  # a hollow runtime is in memory: the same one stands for a restart
        return rt
    name = "vm" if "virtualMachine" in pod["spec"] else "main"
    return Subject(rt, pod, name, fresh, _nothing)


def podman(tmp_path: Path) -> Subject:
    from arktos.agent.busybox import ensure_busybox_image
    from arktos.agent.podman import PodmanRuntime
    ensure_busybox_image(tmp_path / "podman")
    made = [PodmanRuntime(tmp_path / "podman")]

    def fresh() -> Runtime:
        made.append(PodmanRuntime(tmp_path / "podman"))
        return made[-1]

    async def close() -> None:
        for rt in made:
            await rt.close()
    return Subject(made[0], container_pod(), "main", fresh, close)


def qemu(tmp_path: Path) -> Subject:
    from arktos.agent.qemu import QemuRuntime
    from arktos.agent.tinyvm import ensure_tinyvm
    images = tmp_path / "images"
    ensure_tinyvm(images)

    def make() -> QemuRuntime:
        return QemuRuntime(tmp_path / "qemu", images, accel="tcg")
    return Subject(make(), vm_pod(), "vm", make, _nothing)


@pytest.fixture(params=["hollow-containers", "hollow-vms", "podman", "qemu"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    kind = str(request.param)
    made = (hollow(container_pod()) if kind == "hollow-containers" else
            hollow(vm_pod()) if kind == "hollow-vms" else
            podman(tmp_path) if kind == "podman" else qemu(tmp_path))
    try:
        yield made
    finally:
        await made.runtime.remove_pod(str(made.pod["metadata"]["uid"]), 0)
        await made.close()


async def test_instances_restart_and_the_previous_one_is_kept(subject: Subject) -> None:
    rt, pod, name = subject.runtime, subject.pod, subject.name
    uid = str(pod["metadata"]["uid"])
    assert await rt.ready()
    assert await rt.pod_status(uid) is None
    sandbox = await rt.start_sandbox(pod)
    assert sandbox.uid == uid and sandbox.ip
    await rt.start_sandbox(pod)  # idempotent
    await rt.start_container(pod, name, 0)
    first = await _running(rt, uid, name)
    assert first.restart_count == 0 and first.container_id
    await rt.stop_container(uid, name, 5)
    stopped = await rt.pod_status(uid)
    assert stopped is not None
    ended = stopped.container(name)
    assert ended is not None and ended.state == "terminated" and ended.exit_code is not None
    await rt.start_container(pod, name, 1)
    second = await _running(rt, uid, name)
    assert second.restart_count >= 1 and second.container_id
    status = await rt.pod_status(uid)
    assert status is not None and [p.name for p in status.previous] == [name]
    assert uid in {p.uid for p in await rt.list_pods()}


async def test_a_fresh_runtime_finds_the_pod_and_removal_leaves_nothing(
        subject: Subject) -> None:
    rt, pod, name = subject.runtime, subject.pod, subject.name
    uid = str(pod["metadata"]["uid"])
    await rt.start_sandbox(pod)
    await rt.start_container(pod, name, 0)
    running = await _running(rt, uid, name)
    again = subject.fresh()
    adopted = await again.adopt({**pod, "status": {"phase": "Running"}})
    assert adopted is not None
    found = adopted.container(name)
    assert found is not None and found.container_id == running.container_id

    async def some_output() -> bool:  # every runtime shows something (a line, a console)
        return bool(b"".join([c async for c in again.logs(uid, name, tail=5)]))
    await eventually(some_output, timeout=30)
    await again.remove_pod(uid, 1)
    assert await again.pod_status(uid) is None
    assert uid not in {p.uid for p in await again.list_pods()}
    await again.remove_pod(uid, 0)  # unknown uids are ignored
    with pytest.raises(RuntimeFailure):
        _ = [c async for c in again.logs(uid, name)]


async def _running(rt: Runtime, uid: str, name: str) -> ContainerState:
    seen: dict[str, ContainerState | None] = {}

    async def up() -> bool:
        status = await rt.pod_status(uid)
        seen["c"] = status.container(name) if status else None
        return seen["c"] is not None and seen["c"].state == "running"
    await eventually(up, timeout=30)
    found = seen["c"]
    assert found is not None
    return found
