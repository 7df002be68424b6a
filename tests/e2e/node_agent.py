"""A real node agent (Podman, and QEMU when asked) run in the test's process against a real
API server, with its own node identity (`system:node:<name>`) and logs server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arktos import certs
from arktos.agent.local import LocalOptions, run_local
from arktos.agent.podman import podman_env
from arktos.agent.settings import AgentSettings
from arktos.client.config import load_config
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from tests.apiserver_proc import ApiServerProcess
from tests.waiting import eventually

FAST = AgentSettings(lease_renew_interval=1.0, node_status_update_frequency=5.0,
                     retry_interval=0.3, relist_interval=0.3, backoff_initial=1.0,
                     backoff_max=8.0)


def node_kubeconfig(server: ApiServerProcess, name: str) -> Path:
    pki = certs.load_pki(server.data_dir)
    cert, key = certs.issue_node_client_cert(pki, name)
    out = server.data_dir / f"{name}.kubeconfig"
    certs.write_kubeconfig_for(pki, server=server.url, user=certs.NODE_USER_PREFIX + name,
                               tenant=certs.NODE_TENANT, cert_pem=cert, key_pem=key, out=out)
    return out


@dataclass
class RunningAgent:
    name: str
    options: LocalOptions
    task: asyncio.Task[None]


def options(server: ApiServerProcess, name: str, root: Path, *, vms: bool,
            images: Path | None = None) -> LocalOptions:
    """A node `name` with state under `root`; VMs under TCG (KVM hangs on this machine
    kind, and the probe that finds that out costs seconds per fresh root)."""
    pki = certs.load_pki(server.data_dir)
    cert, key = certs.issue_node_serving_cert(pki, name, ["127.0.0.1"])
    return LocalOptions(name, root / "agent", images or root / "images", address="127.0.0.1",
                        port=0, tls=(cert, key, pki.ca_cert), vms=vms, accel="tcg")


@contextlib.asynccontextmanager
async def node_agent(server: ApiServerProcess, opts: LocalOptions,
                     settings: AgentSettings = FAST) -> AsyncIterator[RunningAgent]:
    """Run the agent for the block (as the node); wait until its Node is Ready."""
    async with ApiClient(load_config(node_kubeconfig(server, opts.name))) as api:
        task = asyncio.create_task(run_local(api, opts, settings))
        try:
            await wait_ready(server, opts.name, task)
            yield RunningAgent(opts.name, opts, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def clean_up(opts: LocalOptions) -> None:
    """Remove every pod the node's runtimes still hold (pods outlive their agent by design,
    so a failed test would leave containers and VMs running)."""
    from arktos.agent.local import vm_runtime
    from arktos.agent.podman import PodmanRuntime
    podman_rt = PodmanRuntime(opts.root / "podman")
    runtimes: list[Any] = [podman_rt, vm_runtime(opts)]
    try:
        for rt in runtimes:
            if rt is not None:
                for rs in await rt.list_pods():
                    await rt.remove_pod(rs.uid, 0)
    finally:
        await podman_rt.close()


async def wait_ready(server: ApiServerProcess, name: str, task: asyncio.Task[None]) -> None:
    async with ApiClient(load_config(server.kubeconfig)) as admin:
        nodes = ResourceClient(admin, "nodes")

        async def ready() -> bool:
            if task.done():
                task.result()  # raise what stopped the agent
            try:
                node = await nodes.get(name)
            except Exception:  # noqa: BLE001 - not registered yet
                return False
            status = node.get("status") or {}
            conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
            return conds.get("Ready") == "True" and bool(
                status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port"))
        ready.__name__ = f"node {name} Ready"
        await eventually(ready, timeout=120, interval=0.2)


async def gone(api: ApiClient, name: str) -> bool:
    """Whether pod `name` is gone from the API (its deletion confirmed by the agent)."""
    try:
        await ResourceClient(api, "pods").get(name, namespace="default")
    except ApiError as exc:
        return bool(exc.not_found)
    return False


def bare_pod(name: str, node: str, command: str, **spec: Any) -> dict[str, Any]:
    """A busybox pod bound to `node` (no scheduler needed) running `sh -c command`."""
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5, **spec,
                     "containers": [{"name": "main", "image": "localhost/busybox:latest",
                                     "command": ["sh", "-c", command]}]}}


async def pod_where(api: ApiClient, name: str, check: Any, timeout: float = 60,
                    what: str = "") -> dict[str, Any]:
    """Wait until `check(pod)` holds; return the pod."""
    pods = ResourceClient(api, "pods")
    seen: dict[str, Any] = {}

    async def holds() -> bool:
        seen["pod"] = await pods.get(name, namespace="default")
        return bool(check(seen["pod"]))
    holds.__name__ = what or f"pod {name}"
    try:
        await eventually(holds, timeout=timeout, interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen status: {seen.get('pod', {}).get('status')}") \
            from None
    pod: dict[str, Any] = seen["pod"]
    return pod


async def podman(opts: LocalOptions, *args: str) -> str:
    """Run the podman CLI on the agent's Podman (its containers.conf); its output."""
    proc = await asyncio.create_subprocess_exec(
        "podman", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=podman_env(opts.root / "podman"))
    out, _ = await proc.communicate()
    return out.decode()


async def podman_containers(opts: LocalOptions, uid: str) -> list[str]:
    """Ids of every Podman container (any state) of pod `uid`, infra included."""
    out = await podman(opts, "ps", "-a", "-q", "--filter", f"label=arktos.io/pod-uid={uid}")
    return out.split()


@contextlib.contextmanager
def control_plane(factory: Any, name: str) -> Iterator[ApiServerProcess]:
    """`arktos up --no-agent` (API server, controller manager, scheduler) for a module: the
    tests bring their own agents."""
    proc = ApiServerProcess(factory.mktemp(name), command="up",
                            extra_args=("--no-agent",)).start()
    try:
        yield proc
    finally:
        proc.stop()


async def kubectl(server: ApiServerProcess, *args: str) -> tuple[int, str]:
    """Run kubectl as the admin: (exit code, stdout and stderr together)."""
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(server.kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()
