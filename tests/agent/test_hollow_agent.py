"""Hollow nodes against a real API server (in-process agent, real HTTP): registration and
heartbeats, pods reaching Running, deletion confirmed, and re-adoption after a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from arktos.agent.agent import Agent, hollow_nodes
from arktos.agent.hollow import HollowRuntime
from arktos.agent.settings import AgentSettings
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from tests.apiserver_proc import ApiServerProcess
from tests.waiting import eventually, in_background

pytestmark = pytest.mark.xdist_group("agent")
FAST = AgentSettings(lease_renew_interval=0.5, node_status_update_frequency=5.0,
                     retry_interval=0.2)


def container_pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "tenant": "system"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "c", "image": "busybox"}]}}


def vm_pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "tenant": "system"},
            "spec": {"nodeName": node, "virtualMachine": {
                "name": "vm", "image": "tinyvm", "keyPairName": "key",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}}}


async def get_pod(api: ApiClient, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = await ResourceClient(api, "pods").get(
        name, namespace="default", tenant="system")
    return pod


def running(api: ApiClient, name: str) -> Callable[[], Any]:
    async def check() -> bool:
        return bool((await get_pod(api, name)).get("status", {}).get("phase") == "Running")
    check.__name__ = f"{name} Running"
    return check


async def test_fifty_hollow_nodes_register_and_stay_ready(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    prefix = unique("hn") + "-"
    agent = Agent(api, hollow_nodes(50, prefix, HollowRuntime()), FAST)
    leases = ResourceClient(api, "leases")
    nodes = ResourceClient(api, "nodes")

    async def all_ready() -> bool:
        items = [n for n in (await nodes.list()).items
                 if n["metadata"]["name"].startswith(prefix)]
        return len(items) == 50 and all(
            {c["type"]: c["status"] for c in n["status"].get("conditions", [])}.get("Ready")
            == "True" for n in items)

    async def renew_time() -> str:
        lease = await leases.get(f"{prefix}7", namespace="kube-node-lease", tenant="system")
        return str(lease["spec"]["renewTime"])

    async with in_background(agent.run()):
        await eventually(all_ready, timeout=15)
        await eventually(agent.heartbeats.registered.wait, timeout=15)  # leases taken too
        first = await renew_time()

        async def advanced() -> bool:
            return await renew_time() > first
        await eventually(advanced, timeout=5)
    node = await nodes.get(f"{prefix}3")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == f"{prefix}3"
    assert node["status"]["allocatable"]["cpu"] == "32"
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions == {"Ready": "True", "ContainerRuntimeReady": "True",
                          "VmRuntimeReady": "True", "MemoryPressure": "False",
                          "DiskPressure": "False"}


async def test_pods_run_and_deletion_is_confirmed(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    prefix = unique("hp") + "-"
    pods = ResourceClient(api, "pods")
    c_name, v_name = unique("cpod"), unique("vpod")
    async with in_background(Agent(api, hollow_nodes(3, prefix, HollowRuntime()),
                                   FAST).run()):
        await pods.create(container_pod(c_name, f"{prefix}1"))
        await pods.create(vm_pod(v_name, f"{prefix}2"))
        await eventually(running(api, c_name), timeout=10)
        await eventually(running(api, v_name), timeout=10)
        c_pod, v_pod = await get_pod(api, c_name), await get_pod(api, v_name)
        assert [c["type"] for c in c_pod["status"]["conditions"]] == [
            "PodScheduled", "Initialized", "ContainersReady", "Ready"]
        [cs] = c_pod["status"]["containerStatuses"]
        assert cs["ready"] and "running" in cs["state"]
        assert cs["containerID"] == f"hollow://{c_pod['metadata']['uid']}/c"
        assert c_pod["status"]["hostIP"] == "10.64.0.1" and c_pod["status"]["podIP"]
        assert {c["type"] for c in v_pod["status"]["conditions"]} == {
            "PodScheduled", "VirtualMachineReady", "Ready"}
        assert v_pod["status"]["virtualMachineStatus"]["powerState"] == "Running"

        await pods.delete(c_name, namespace="default", tenant="system")

        async def gone() -> bool:
            try:
                await get_pod(api, c_name)
            except ApiError as exc:
                return bool(exc.not_found)
            return False
        await eventually(gone, timeout=10)


async def test_restarted_agent_adopts_running_pods(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    prefix = unique("hr") + "-"
    name = unique("keep")
    pods = ResourceClient(api, "pods")
    async with in_background(Agent(api, hollow_nodes(2, prefix, HollowRuntime()),
                                   FAST).run()):
        await pods.create(container_pod(name, f"{prefix}0"))
        await eventually(running(api, name), timeout=10)
    before = await get_pod(api, name)
    runtime = HollowRuntime()
    agent = Agent(api, hollow_nodes(2, prefix, runtime), FAST)
    async with in_background(agent.run()):
        async def adopted() -> bool:
            return len(agent.syncer.placed) == 1
        await eventually(adopted, timeout=10)
    after = await get_pod(api, name)
    assert runtime.starts == 0  # adopted, not started again
    assert after["status"] == before["status"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_agent_with_half_its_tls_flags_exits_2(server: ApiServerProcess) -> None:
    done = subprocess.run([sys.executable, "-m", "arktos.cli.main", "agent", "--kubeconfig",
                           str(server.kubeconfig), "--tls-cert-file", "x.crt"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "give all of --tls-cert-file" in done.stderr


def test_agent_command_runs_hollow_nodes(server: ApiServerProcess,
                                         unique: Callable[[str], str]) -> None:
    import requests

    from tests.apiserver_proc import ComponentProcess, admin_credentials
    from tests.e2e.test_controller_manager import wait_for

    prefix = unique("cli") + "-"
    proc = ComponentProcess(prefix + "agent", [
        "agent", "--kubeconfig", str(server.kubeconfig), "--hollow", "--count", "5",
        "--name-prefix", prefix, "--lease-renew-interval", "1"], server.data_dir).start()
    ca, cert = admin_credentials(server.data_dir)
    try:
        def registered() -> bool:
            items = requests.get(server.url + "/api/v1/nodes", verify=ca, cert=cert,
                                 timeout=5).json()["items"]
            return bool(sum(n["metadata"]["name"].startswith(prefix) for n in items) == 5)
        wait_for(registered, what="5 hollow nodes")
    finally:
        assert proc.stop() == 0, proc.log_text()
