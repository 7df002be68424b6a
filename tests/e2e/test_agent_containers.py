"""The real node agent with Podman against a real cluster (API server, controller manager and
scheduler of `arktos up --no-agent`): pods run to completion with their logs, are deleted
gracefully, crash-loop with growing back-off, serve as a Deployment that recovers, survive an
agent restart, and fail clearly on an unpullable image. Needs podman (see the Makefile)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from arktos.client.config import load_config
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess
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
    podman,
    podman_containers,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.xdist_group("podman"), pytest.mark.e2e]


def phase(want: str) -> Callable[[dict[str, Any]], bool]:
    return lambda pod: pod.get("status", {}).get("phase") == want


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: apt-get install podman runc iptables catatonit "
                    "(make test installs it)")
    with control_plane(tmp_path_factory, "agent-cluster") as proc:
        yield proc


@pytest.fixture
async def admin(cluster: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_config(cluster.kubeconfig)) as client:
        yield client


@pytest.fixture
async def node(cluster: ApiServerProcess, tmp_path: Path,
               unique: Callable[[str], str]) -> AsyncIterator[RunningAgent]:
    async with node_agent(cluster, options(cluster, unique("node"), tmp_path,
                                           vms=False)) as agent:
        try:
            yield agent
        finally:
            await clean_up(agent.options)


async def test_pod_with_init_containers_runs_to_completion_with_logs(
        cluster: ApiServerProcess, admin: ApiClient, node: RunningAgent,
        unique: Callable[[str], str]) -> None:
    name = unique("done")
    pod = bare_pod(name, node.name, "echo hello from busybox; cat /work/order; exit 0",
                   restartPolicy="Never", volumes=[{"name": "work", "emptyDir": {}}])
    mount = [{"name": "work", "mountPath": "/work"}]
    pod["spec"]["containers"][0]["volumeMounts"] = mount
    pod["spec"]["initContainers"] = [
        {"name": f"init{i}", "image": "localhost/busybox:latest", "volumeMounts": mount,
         "command": ["sh", "-c", f"sleep 0.{2 - i}; echo init{i} >> /work/order"]}
        for i in range(2)]
    await ResourceClient(admin, "pods").create(pod)
    pod = await pod_where(admin, name, phase("Succeeded"), what="Succeeded")
    [cs] = pod["status"]["containerStatuses"]
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["containerID"].startswith("podman://") and pod["status"]["podIP"]
    assert [c["state"]["terminated"]["exitCode"] for c in pod["status"][
        "initContainerStatuses"]] == [0, 0]
    code, out = await kubectl(cluster, "logs", name, "-c", "main")
    assert code == 0 and out == "hello from busybox\ninit0\ninit1\n"  # inits ran in order


async def test_long_running_pod_is_deleted_gracefully(
        admin: ApiClient, node: RunningAgent, unique: Callable[[str], str]) -> None:
    name = unique("long")
    pods = ResourceClient(admin, "pods")
    await pods.create(bare_pod(name, node.name, "trap 'echo bye; exit 0' TERM; "
                               "while true; do sleep 0.2; done"))
    pod = await pod_where(admin, name, phase("Running"), what="Running")
    uid = pod["metadata"]["uid"]
    assert await podman_containers(node.options, uid)
    started = time.monotonic()
    await pods.delete(name, namespace="default")

    await eventually(lambda: gone(admin, name), timeout=30)
    assert time.monotonic() - started < 5, "SIGTERM was not honoured (waited for SIGKILL)"
    assert await podman_containers(node.options, uid) == []


async def test_crashing_container_backs_off_longer_each_time(
        admin: ApiClient, node: RunningAgent, unique: Callable[[str], str]) -> None:
    name = unique("crash")
    await ResourceClient(admin, "pods").create(bare_pod(name, node.name, "exit 1"))
    seen: dict[int, float] = {}
    reasons: set[str] = set()

    def restarts(pod: dict[str, Any]) -> bool:
        for cs in pod.get("status", {}).get("containerStatuses", []):
            seen.setdefault(cs["restartCount"], time.monotonic())
            reasons.add(cs["state"].get("waiting", {}).get("reason", ""))
        return len(seen) >= 4 and max(seen) >= 3
    pod = await pod_where(admin, name, restarts, timeout=60, what="3 restarts")
    assert "CrashLoopBackOff" in reasons
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    gaps = [seen[n + 1] - seen[n] for n in range(1, 3)]
    assert gaps[1] > gaps[0] * 1.3, f"back-off did not grow: {gaps}"

    async def events() -> dict[str, dict[str, Any]]:
        items = (await ResourceClient(admin, "events").list(namespace="default")).items
        return {e["reason"]: e for e in items if e["involvedObject"]["name"] == name}

    async def recorded() -> bool:
        return {"Started", "BackOff"} <= set(await events())
    await eventually(recorded, timeout=10)
    got = await events()
    assert got["BackOff"]["type"] == "Warning" and got["Started"]["count"] >= 3
    assert got["Started"]["source"] == {"component": "arktos-agent", "host": node.name}


async def get_text(url: str) -> str:
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.get(url) as response):
        return await response.text()


async def test_deployment_serves_and_recovers_from_a_killed_container(
        admin: ApiClient, node: RunningAgent, unique: Callable[[str], str]) -> None:
    name = unique("web")
    labels = {"app": name}
    await ResourceClient(admin, "deployments").create({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node.name}, "containers": [{
                "name": "web", "image": "localhost/busybox:latest",
                "command": ["sh", "-c", SERVE],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                   "periodSeconds": 1}}]}}}}, namespace="default")
    pods = ResourceClient(admin, "pods")

    async def three_ready() -> list[dict[str, Any]]:
        items = [p for p in (await pods.list(namespace="default",
                                             label_selector=f"app={name}")).items
                 if p.get("status", {}).get("phase") == "Running"
                 and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        return items
    await eventually(lambda: _len_is(three_ready, 3), timeout=90)
    ready = await three_ready()
    for pod in ready:
        assert (await get_text(f"http://{pod['status']['podIP']}:8080/")).startswith(
            "served-by-")
    victim = ready[0]
    cid = victim["status"]["containerStatuses"][0]["containerID"].removeprefix("podman://")
    await podman(node.options, "kill", cid)
    recovered = await pod_where(admin, victim["metadata"]["name"], lambda p: any(
        c["restartCount"] >= 1 and c.get("ready") for c in p["status"].get(
            "containerStatuses", [])), timeout=60, what="restarted and ready")
    assert (await get_text(f"http://{recovered['status']['podIP']}:8080/")).startswith(
        "served-by-")
    await ResourceClient(admin, "deployments").delete(name, namespace="default")


SERVE = "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


async def _len_is(get: Callable[[], Any], n: int) -> bool:
    return len(await get()) == n


async def test_restarted_agent_adopts_its_running_pod(
        cluster: ApiServerProcess, admin: ApiClient, tmp_path: Path,
        unique: Callable[[str], str]) -> None:
    opts = options(cluster, unique("node"), tmp_path, vms=False)
    try:
        await _restart_and_adopt(cluster, admin, opts, unique("keep"))
    finally:
        await clean_up(opts)


async def _restart_and_adopt(cluster: ApiServerProcess, admin: ApiClient, opts: Any,
                             name: str) -> None:
    async with node_agent(cluster, opts):
        await ResourceClient(admin, "pods").create(bare_pod(name, opts.name, "sleep 3600"))
        before = await pod_where(admin, name, phase("Running"), what="Running")
    uid = before["metadata"]["uid"]
    containers = await podman_containers(opts, uid)
    async with node_agent(cluster, opts):
        await asyncio.sleep(2)  # several relists and syncs: nothing may be started again
        assert await podman_containers(opts, uid) == containers
        after = await pod_where(admin, name, phase("Running"))
        assert after["status"]["containerStatuses"] == before["status"]["containerStatuses"]
        await ResourceClient(admin, "pods").delete(name, namespace="default",
                                                   grace_period_seconds=1)
        await eventually(lambda: _no_containers(opts, uid), timeout=30)


async def _no_containers(opts: Any, uid: str) -> bool:
    return await podman_containers(opts, uid) == []


async def test_unpullable_image_fails_clearly_and_leaks_nothing(
        admin: ApiClient, node: RunningAgent, unique: Callable[[str], str]) -> None:
    name = unique("nopull")
    pod = bare_pod(name, node.name, "true")
    pod["spec"]["containers"][0]["image"] = "registry.invalid/nothing:1"
    pods = ResourceClient(admin, "pods")
    await pods.create(pod)
    waiting = await pod_where(admin, name, lambda p: any(
        c["state"].get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
        for c in p.get("status", {}).get("containerStatuses", [])), what="ErrImagePull")
    message = waiting["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "registry.invalid" in message
    assert waiting["status"]["phase"] == "Pending"

    async def warned() -> bool:
        events = [e for e in (await ResourceClient(admin, "events").list(
            namespace="default")).items if e["involvedObject"]["name"] == name]
        return [(e["type"], e["reason"]) for e in events] == [("Warning", "ErrImagePull")]
    await eventually(warned, timeout=10)
    uid = waiting["metadata"]["uid"]
    await pods.delete(name, namespace="default")
    await eventually(lambda: gone(admin, name), timeout=30)
    assert await podman_containers(node.options, uid) == []
    assert not (node.options.root / "podman" / "pods" / uid).exists()


async def test_config_map_volume_and_env_from_the_api(
        cluster: ApiServerProcess, admin: ApiClient, node: RunningAgent,
        unique: Callable[[str], str]) -> None:
    name = unique("cmv")
    await ResourceClient(admin, "configmaps").create({
        "metadata": {"name": name, "namespace": "default"}, "data": {"greeting": "hi there"}})
    pod = bare_pod(name, node.name, 'cat /etc/cfg/greeting; echo " $GREETING $ME"',
                   restartPolicy="Never", volumes=[{"name": "cfg", "configMap": {"name": name}}])
    main = pod["spec"]["containers"][0]
    main["volumeMounts"] = [{"name": "cfg", "mountPath": "/etc/cfg"}]
    main["env"] = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": name, "key": "greeting"}}},
        {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    await ResourceClient(admin, "pods").create(pod)
    await pod_where(admin, name, phase("Succeeded"), what="Succeeded")
    assert await kubectl(cluster, "logs", name) == (0, f"hi there hi there {name}\n")
