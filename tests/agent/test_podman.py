"""The Podman runtime against a real Podman (no mocks): pods from the offline busybox image.
Needs podman, runc, catatonit, iptables and busybox-static; runs on one xdist worker."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from arktos.agent.busybox import BUSYBOX_IMAGE, ensure_busybox_image
from arktos.agent.podman import PodmanRuntime, podman_env
from arktos.agent.podmanspec import LABEL_UID, pod_dir, pod_name
from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus, RuntimeFailure

pytestmark = pytest.mark.xdist_group("podman")

INSTALL = "apt-get install podman runc catatonit iptables busybox-static"


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The offline busybox image, built once per session."""
    for tool in ("podman", "runc", "catatonit", "iptables"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: {INSTALL}")
    return ensure_busybox_image(tmp_path_factory.mktemp("podman-image"))


@pytest.fixture
async def rt(tmp_path: Path, busybox: str) -> AsyncIterator[PodmanRuntime]:
    runtime = PodmanRuntime(tmp_path / "rt")
    yield runtime
    for p in await runtime.list_pods():
        await runtime.remove_pod(p.uid, 0)
    await runtime.close()


def box(name: str, script: str, **extra: object) -> Obj:
    return {"name": name, "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script], **extra}


def make_pod(*containers: Obj, volumes: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "tenant": "system",
                         "uid": str(uuid.uuid4())},
            "spec": {"containers": list(containers), "volumes": volumes or []}}


def uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


async def started(rt: PodmanRuntime, pod: Obj, *names: str, attempt: int = 0) -> None:
    await rt.start_sandbox(pod)
    for name in names:
        await rt.start_container(pod, name, attempt)


async def until(rt: PodmanRuntime, pod_uid: str, name: str,
                check: Callable[[ContainerState], bool], timeout: float = 15
                ) -> ContainerState:
    deadline = time.monotonic() + timeout
    while True:
        rs = await rt.pod_status(pod_uid)
        c = rs.container(name) if rs else None
        if c is not None and check(c):
            return c
        assert time.monotonic() < deadline, f"{name}: {c}"
        await asyncio.sleep(0.1)


def terminated(c: ContainerState) -> bool:
    return c.state == "terminated"


def running(c: ContainerState) -> bool:
    return c.state == "running"


async def output(rt: PodmanRuntime, pod_uid: str, name: str, *, previous: bool = False,
                 tail: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in rt.logs(pod_uid, name, previous=previous,
                                                      tail=tail)])


def podman(root: Path, *args: str) -> str:
    done = subprocess.run(["podman", *args], env=podman_env(root), capture_output=True,
                          check=True, timeout=60)
    return done.stdout.decode()


def assert_gone(rt: PodmanRuntime, pod_uid: str) -> None:
    """Nothing of the pod is left: containers, pod, files."""
    assert podman(rt.root, "ps", "-aq", "--filter", f"label={LABEL_UID}={pod_uid}") == ""
    assert subprocess.run(["podman", "pod", "exists", pod_name(pod_uid)],
                          env=podman_env(rt.root), check=False).returncode == 1
    assert not pod_dir(rt.root, pod_uid).exists()


async def test_exit_code_logs_and_listing(rt: PodmanRuntime) -> None:
    pod = make_pod(box("c", "echo hello; printf 'no newline'; exit 3"))
    await started(rt, pod, "c")
    c = await until(rt, uid(pod), "c", terminated)
    assert (c.exit_code, c.reason, c.restart_count) == (3, "Error", 0)
    assert c.container_id.startswith("podman://") and len(c.container_id) == 9 + 64
    assert c.started_at is not None and c.finished_at is not None
    assert await output(rt, uid(pod), "c") == b"hello\nno newline"
    assert await output(rt, uid(pod), "c", tail=1) == b"no newline"
    assert await output(rt, uid(pod), "c", tail=0) == b""
    rs = await rt.start_sandbox(pod)  # idempotent
    again = rs.container("c")
    assert rs.ip.count(".") == 3 and again is not None  # the same instance, still ended
    assert (again.container_id, again.state, again.exit_code) == (
        c.container_id, "terminated", 3)
    assert [p.uid for p in await rt.list_pods()] == [uid(pod)]
    with pytest.raises(RuntimeFailure) as err:
        await output(rt, uid(pod), "nope")
    assert err.value.reason == "NotFound"


async def test_stop_honours_grace_then_kills(rt: PodmanRuntime) -> None:
    pod = make_pod(box("polite", "trap 'exit 0' TERM; sleep 3600 & wait"),
                   box("stubborn", "trap '' TERM; sleep 3600"))
    await started(rt, pod, "polite", "stubborn")
    for name in ("polite", "stubborn"):
        await until(rt, uid(pod), name, running)
    t0 = time.monotonic()
    await rt.stop_container(uid(pod), "polite", 20)
    assert time.monotonic() - t0 < 5
    t0 = time.monotonic()
    await rt.stop_container(uid(pod), "stubborn", 1)
    assert 0.9 < time.monotonic() - t0 < 6
    polite = await until(rt, uid(pod), "polite", terminated)
    stubborn = await until(rt, uid(pod), "stubborn", terminated)
    assert (polite.exit_code, polite.reason) == (0, "Completed")
    assert stubborn.exit_code == 137
    await rt.stop_container(uid(pod), "unknown", 1)  # ignored


async def test_restart_keeps_previous_instance(rt: PodmanRuntime) -> None:
    """The emptyDir survives restarts; the instance before the latest is kept, older go."""
    pod = make_pod(box("c", "echo run >> /data/runs; wc -l < /data/runs",
                       volumeMounts=[{"name": "data", "mountPath": "/data"}]),
                   volumes=[{"name": "data", "emptyDir": {}}])
    await rt.start_sandbox(pod)
    for attempt in range(3):
        await rt.start_container(pod, "c", attempt)
        await until(rt, uid(pod), "c", lambda c, a=attempt: terminated(c)  # type: ignore[misc]
                    and c.restart_count == a)
    rs = await rt.pod_status(uid(pod))
    assert rs is not None and [p.restart_count for p in rs.previous] == [1]
    assert rs.previous[0].container_id != rs.containers[0].container_id
    assert (await output(rt, uid(pod), "c")).strip() == b"3"
    assert (await output(rt, uid(pod), "c", previous=True)).strip() == b"2"
    names = podman(rt.root, "ps", "-a", "--format", "{{.Names}}",
                   "--filter", f"label={LABEL_UID}={uid(pod)}").split()
    assert sorted(n.rsplit("_", 1)[1] for n in names if not n.endswith("-infra")) == ["1", "2"]


async def test_containers_share_localhost_and_empty_dir(rt: PodmanRuntime) -> None:
    web = box("web", "httpd -f -p 8080 -h /www",
              volumeMounts=[{"name": "www", "mountPath": "/www", "readOnly": True}])
    client = box("client", "echo shared > /www/index.html; "
                 "for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/ && exit 0; "
                 "sleep 0.1; done; exit 1",
                 volumeMounts=[{"name": "www", "mountPath": "/www"}])
    pod = make_pod(web, client, volumes=[{"name": "www", "emptyDir": {}}])
    await started(rt, pod, "web", "client")
    c = await until(rt, uid(pod), "client", terminated)
    assert c.exit_code == 0 and await output(rt, uid(pod), "client") == b"shared\n"
    rs = await rt.pod_status(uid(pod))
    assert rs is not None
    async with aiohttp.ClientSession() as http, http.get(f"http://{rs.ip}:8080/") as r:
        assert await r.read() == b"shared\n"  # the pod IP is reachable from the host


async def test_limits_and_exec(rt: PodmanRuntime) -> None:
    limits = {"limits": {"cpu": "500m", "memory": "64Mi"}}
    pod = make_pod(box("c", "sleep 3600", resources=limits, env=[{"name": "GREETING",
                                                                   "value": "hi there"}],
                       workingDir="/tmp"))
    await started(rt, pod, "c")
    await until(rt, uid(pod), "c", running)
    read = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
            "cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
            "2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max")
    code, out = await rt.exec(uid(pod), "c", ["sh", "-c", read], 10)
    assert code == 0 and out.split() == [str(64 * 2**20).encode(), b"50000"]
    code, out = await rt.exec(uid(pod), "c", ["sh", "-c", 'echo "$GREETING"; pwd; exit 4'], 10)
    assert (code, out) == (4, b"hi there\n/tmp\n")
    with pytest.raises(RuntimeFailure):
        await rt.exec(uid(pod), "nope", ["true"], 10)


async def test_unpullable_image_leaves_nothing(rt: PodmanRuntime) -> None:
    pod = make_pod({"name": "c", "image": "registry.invalid/nope:1"},
                   {"name": "d", "image": "localhost/absent:1", "imagePullPolicy": "Never"},
                   volumes=[{"name": "v", "emptyDir": {}}])
    await rt.start_sandbox(pod)
    with pytest.raises(RuntimeFailure) as err:
        await rt.start_container(pod, "c", 0)
    assert err.value.reason == "ErrImagePull"
    with pytest.raises(RuntimeFailure) as err:
        await rt.start_container(pod, "d", 0)
    assert err.value.reason == "ErrImageNeverPull"
    rs = await rt.pod_status(uid(pod))
    assert rs is not None and rs.containers == ()
    await rt.remove_pod(uid(pod), 0)
    assert_gone(rt, uid(pod))
    assert await rt.pod_status(uid(pod)) is None
    await rt.remove_pod("no-such-uid", 0)


async def test_readoption_by_a_new_runtime(rt: PodmanRuntime) -> None:
    pod = make_pod(box("c", "sleep 3600"))
    await started(rt, pod, "c")
    before = await until(rt, uid(pod), "c", running)
    await rt.close()  # the agent goes away; so does the service it started
    again = PodmanRuntime(rt.root)
    try:
        assert await again.ready()
        rs = await again.adopt(pod)
        assert isinstance(rs, PodRuntimeStatus)
        assert rs.container("c") == before and rs.ip
        await again.remove_pod(uid(pod), 0)
        assert_gone(again, uid(pod))
    finally:
        await again.close()


async def test_follow_logs_until_exit(rt: PodmanRuntime) -> None:
    pod = make_pod(box("c", "echo one; sleep 1; echo two"))
    await started(rt, pod, "c")
    chunks = [chunk async for chunk in rt.logs(uid(pod), "c", follow=True)]
    assert b"".join(chunks) == b"one\ntwo\n"


async def test_image_from_archive(rt: PodmanRuntime, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    podman(rt.root, "save", "--format", "oci-archive", "-o", str(archive), BUSYBOX_IMAGE)
    pod = make_pod({"name": "c", "image": f"oci-archive:{archive}", "args": ["echo", "x"]})
    await started(rt, pod, "c")
    c = await until(rt, uid(pod), "c", terminated)
    assert c.exit_code == 0 and await output(rt, uid(pod), "c") == b"x\n"
