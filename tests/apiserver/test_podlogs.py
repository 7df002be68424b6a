"""`pods/{name}/log` end to end: a real API server process proxies to an in-test
`AgentServer` (real TLS both ways, the PKI of the server's data dir) serving a real
`HollowRuntime`; read with `kubectl logs`, the official `kubernetes` client and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import pytest

from arktos import certs
from arktos.agent.hollow import HollowRuntime
from arktos.agent.server import AgentServer, LogSource
from arktos.apiserver.podlogs import IDLE_CHECK
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess, free_port
from tests.cli import ARKCTL

pytestmark = pytest.mark.xdist_group("agent")
Obj = dict[str, Any]
NS = "default"


@dataclass
class Node:
    """A Node object whose agent is an in-test `AgentServer` on 127.0.0.1."""

    name: str
    runtime: HollowRuntime
    pods: dict[tuple[str, str, str], tuple[LogSource, str]]
    """(tenant, namespace, name) -> (runtime, uid) of the pods this node runs."""
    server: AgentServer


async def start_pod(api: ApiClient, node: Node, obj: Obj, *, restart: str = "") -> Obj:
    """Create `obj` bound to the node and run its containers in the node's runtime
    (`restart`: that container is restarted once, so it has a previous instance)."""
    md = obj["metadata"]
    pod: Obj = await ResourceClient(api, "pods").create(obj, tenant=md.get("tenant", "system"))
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or ()]
    names += [spec["virtualMachine"]["name"]] if spec.get("virtualMachine") else []
    await node.runtime.start_sandbox(pod)
    for n in names:
        await node.runtime.start_container(pod, n, 0)
    if restart:
        await node.runtime.stop_container(pod["metadata"]["uid"], restart, 0)
        await node.runtime.start_container(pod, restart, 1)
    md = pod["metadata"]
    node.pods[(md["tenant"], md["namespace"], md["name"])] = (node.runtime, md["uid"])
    return pod


def pod_obj(name: str, node: str, *containers: str, tenant: str = "system") -> Obj:
    return {"metadata": {"name": name, "namespace": NS, "tenant": tenant},
            "spec": {"nodeName": node,
                     "containers": [{"name": c, "image": "busybox"} for c in containers]}}


def vm_pod_obj(name: str, node: str) -> Obj:
    return {"metadata": {"name": name, "namespace": NS, "tenant": "system"},
            "spec": {"nodeName": node, "virtualMachine": {
                "name": "vm", "image": "tinyvm", "keyPairName": "key",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}}}


async def register_node(api: ApiClient, name: str, port: int) -> None:
    nodes = ResourceClient(api, "nodes")
    await nodes.create({"metadata": {"name": name}, "spec": {}})
    status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                            {"type": "Hostname", "address": name}],
              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    await nodes.patch(name, {"status": status}, subresource="status")


@pytest.fixture
async def node(server: ApiServerProcess, api: ApiClient,
               unique: Callable[[str], str]) -> AsyncIterator[Node]:
    """A registered node with a running agent server (the node's serving certificate is
    issued from the API server's PKI)."""
    pki = certs.load_pki(server.data_dir)
    name = unique("logs-node")
    runtime, pods = HollowRuntime(), dict[tuple[str, str, str], tuple[LogSource, str]]()

    def lookup(tenant: str, namespace: str, pod: str, _c: str) -> tuple[LogSource, str] | None:
        return pods.get((tenant, namespace, pod))

    cert, key = certs.issue_node_serving_cert(pki, name, ["127.0.0.1"])
    async with AgentServer(lookup, cert=cert, key=key, ca=pki.ca_cert, host="127.0.0.1",
                           port=0) as agent:
        await register_node(api, name, agent.port)
        yield Node(name, runtime, pods, agent)


async def run_cli(binary: str, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """Run a CLI without blocking the loop (the agent server lives in it)."""
    proc = await asyncio.create_subprocess_exec(
        binary, "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def kubectl(server: ApiServerProcess, *args: str,
                  kubeconfig: Path | None = None) -> tuple[int, str, str]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl not found")
    return await run_cli(binary, kubeconfig or server.kubeconfig, *args)


def k8s_client(server: ApiServerProcess) -> kubernetes.client.CoreV1Api:
    pki = server.data_dir / "pki"
    conf = kubernetes.client.Configuration()
    conf.host = server.url
    conf.ssl_ca_cert = str(pki / "ca.crt")
    conf.cert_file, conf.key_file = str(pki / "admin.crt"), str(pki / "admin.key")
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))


def tls_of(server: ApiServerProcess, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(cert, key)
    return ctx


def admin_tls(server: ApiServerProcess) -> ssl.SSLContext:
    pki = server.data_dir / "pki"
    return tls_of(server, pki / "admin.crt", pki / "admin.key")


async def http_get(server: ApiServerProcess, path: str,
                   tls: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of a GET."""
    async with aiohttp.ClientSession() as s, s.get(
            server.url + path, ssl=tls or admin_tls(server)) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


def log_path(pod: str, tenant: str = "") -> str:
    prefix = f"/api/v1/tenants/{tenant}" if tenant else "/api/v1"
    return f"{prefix}/namespaces/{NS}/pods/{pod}/log"


def line(container: str, attempt: int = 0) -> str:
    return f"hollow container {container} (attempt {attempt}) started\n"


# --- reading logs ---------------------------------------------------------------------------

async def test_kubectl_logs_reads_the_agent(server: ApiServerProcess, api: ApiClient,
                                            node: Node, unique: Callable[[str], str]) -> None:
    one, two = unique("one"), unique("two")
    await start_pod(api, node, pod_obj(one, node.name, "app"), restart="app")
    await start_pod(api, node, pod_obj(two, node.name, "a", "b"))
    assert await kubectl(server, "logs", one) == (0, line("app", 1), "")
    assert await kubectl(server, "logs", one, "--previous") == (0, line("app", 0), "")
    assert await kubectl(server, "logs", one, "--tail=0") == (0, "", "")
    assert await kubectl(server, "logs", one, "--tail=5", "-f") == (0, line("app", 1), "")
    assert await kubectl(server, "logs", f"pod/{two}", "-c", "b") == (0, line("b"), "")
    rc, _, err = await kubectl(server, "logs", two, "-c", "zz")
    assert rc != 0 and f"container zz is not valid for pod {two}" in err
    rc, _, err = await kubectl(server, "logs", two, "-c", "a", "--previous")
    assert rc != 0 and f'previous terminated container "a" in pod "{two}" not found' in err


async def test_arkctl_logs_reads_the_agent(server: ApiServerProcess, api: ApiClient,
                                           node: Node, unique: Callable[[str], str]) -> None:
    one, two = unique("one"), unique("two")
    await start_pod(api, node, pod_obj(one, node.name, "app"), restart="app")
    await start_pod(api, node, pod_obj(two, node.name, "a", "b"))
    kc = server.kubeconfig
    assert await run_cli(ARKCTL, kc, "logs", one) == (0, line("app", 1), "")
    assert await run_cli(ARKCTL, kc, "logs", f"pod/{one}", "-f", "--tail", "5",
                         "--previous") == (0, line("app", 0), "")
    assert await run_cli(ARKCTL, kc, "logs", two) == (
        0, line("a"), 'Defaulted container "a" out of: a, b\n')


async def test_kubernetes_client_and_tenant_path(server: ApiServerProcess, api: ApiClient,
                                                 node: Node,
                                                 unique: Callable[[str], str]) -> None:
    name, vm = unique("pyc"), unique("vmp")
    await start_pod(api, node, pod_obj(name, node.name, "app"))
    await start_pod(api, node, vm_pod_obj(vm, node.name))
    core = k8s_client(server)
    got = await asyncio.to_thread(core.read_namespaced_pod_log, name, NS, tail_lines=10)
    assert got == line("app")
    got = await asyncio.to_thread(core.read_namespaced_pod_log, vm, NS, follow=True)
    assert got == line("vm")
    status, ctype, body = await http_get(server, log_path(name, "system") + "?container=app")
    assert (status, body) == (200, line("app")) and ctype.startswith("text/plain")
    status, _, body = await http_get(server, log_path(name) + "?limitBytes=6")
    assert (status, body) == (200, "hollow")


class Ticker:
    """A container that writes the lines it is fed until `None`; `closed` is set when its
    log stream is closed (the reader went away or the container stopped)."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def logs(self, uid: str, name: str, *, previous: bool = False,
                   tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        try:
            yield b"tick 0\n"
            while follow and (chunk := await self.lines.get()) is not None:
                yield chunk
        finally:
            self.closed.set()


async def test_following_streams_through_the_apiserver(
        server: ApiServerProcess, api: ApiClient, node: Node,
        unique: Callable[[str], str]) -> None:
    name, ticker = unique("ticker"), Ticker()
    await ResourceClient(api, "pods").create(pod_obj(name, node.name, "app"))
    node.pods[("system", NS, name)] = (ticker, "uid")
    async with aiohttp.ClientSession() as s, s.get(
            server.url + log_path(name) + "?follow=true", ssl=admin_tls(server)) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/plain"
        assert r.headers.get("Transfer-Encoding") == "chunked"
        assert await asyncio.wait_for(r.content.readline(), 10) == b"tick 0\n"
        await ticker.lines.put(b"tick 1\n")
        assert await asyncio.wait_for(r.content.readline(), 10) == b"tick 1\n"
    # the follower left while the log is quiet: the API server notices and hangs up on the
    # agent, which closes the runtime's stream
    await asyncio.wait_for(ticker.closed.wait(), IDLE_CHECK + 5)

    ticker = Ticker()
    node.pods[("system", NS, name)] = (ticker, "uid")
    async with aiohttp.ClientSession() as s, s.get(
            server.url + log_path(name) + "?follow=true", ssl=admin_tls(server)) as r:
        assert await asyncio.wait_for(r.content.readline(), 10) == b"tick 0\n"
        ticker.lines.put_nowait(None)  # the container stops: the follow ends
        assert await asyncio.wait_for(r.content.read(), 10) == b""


# --- errors ---------------------------------------------------------------------------------

async def status_of(server: ApiServerProcess, path: str,
                    tls: ssl.SSLContext | None = None) -> tuple[int, Obj]:
    code, ctype, body = await http_get(server, path, tls)
    assert ctype.startswith("application/json"), body
    return code, json.loads(body)


async def test_container_choice_errors(server: ApiServerProcess, api: ApiClient, node: Node,
                                       unique: Callable[[str], str]) -> None:
    two = unique("two")
    obj = pod_obj(two, node.name, "a", "b")
    obj["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    await start_pod(api, node, obj)
    code, st = await status_of(server, log_path(two))
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == (f"a container name must be specified for pod {two}, choose one "
                             "of: [a b] or one of the init containers: [init]")
    code, st = await status_of(server, log_path(two) + "?container=zz")
    assert (code, st["message"]) == (400, f"container zz is not valid for pod {two}")
    code, st = await status_of(server, log_path(two) + "?container=a&tailLines=-1")
    assert (code, st["reason"]) == (422, "Invalid") and "tailLines" in st["message"]
    code, st = await status_of(server, log_path(two) + "?container=a&follow=perhaps")
    assert code == 400
    code, st = await status_of(server, log_path("no-such-pod"))
    assert (code, st["reason"]) == (404, "NotFound")


async def test_unbound_pod_and_nodes_without_agents(server: ApiServerProcess, api: ApiClient,
                                                    node: Node,
                                                    unique: Callable[[str], str]) -> None:
    pending = unique("pending")
    await ResourceClient(api, "pods").create(pod_obj(pending, "", "app"))
    code, st = await status_of(server, log_path(pending))
    assert (code, st["message"]) == (400, f"pod {pending} is not scheduled to a node yet")

    silent = unique("silent-node")  # registered, but reports no agent port
    await ResourceClient(api, "nodes").create({"metadata": {"name": silent}, "spec": {}})
    orphan = unique("orphan")
    await ResourceClient(api, "pods").create(pod_obj(orphan, silent, "app"))
    code, st = await status_of(server, log_path(orphan))
    assert (code, st["reason"]) == (503, "ServiceUnavailable") and silent in st["message"]

    ghost = unique("ghost")
    await ResourceClient(api, "pods").create(pod_obj(ghost, unique("gone-node"), "app"))
    code, st = await status_of(server, log_path(ghost))
    assert (code, st["reason"]) == (404, "NotFound") and "nodes" in st["message"]

    stranger = unique("stranger")  # on the node, but its agent does not run it
    await ResourceClient(api, "pods").create(pod_obj(stranger, node.name, "app"))
    code, st = await status_of(server, log_path(stranger))
    assert (code, st["reason"]) == (404, "NotFound") and "not running on this node" in \
        st["message"]


async def test_agent_down_is_a_clear_503(server: ApiServerProcess, api: ApiClient,
                                         unique: Callable[[str], str]) -> None:
    down = unique("down-node")
    await register_node(api, down, free_port())  # nothing listens there
    name = unique("p")
    await ResourceClient(api, "pods").create(pod_obj(name, down, "app"))
    code, st = await status_of(server, log_path(name))
    assert (code, st["reason"]) == (503, "ServiceUnavailable")
    assert st["message"].startswith(f"the agent of node {down} cannot be reached at 127.0.0.1:")
    rc, _, err = await kubectl(server, "logs", name)
    assert rc != 0 and "ServiceUnavailable" in err and down in err


# --- authorization --------------------------------------------------------------------------

def user_files(server: ApiServerProcess, tmp: Path, user: str,
               tenant: str) -> tuple[Path, Path, Path]:
    """(cert, key, kubeconfig) of a new client certificate."""
    pki = certs.load_pki(server.data_dir)
    cert_pem, key_pem = certs.issue_client_cert(pki, user=user, tenant=tenant)
    cert, key, kubeconfig = tmp / f"{user}.crt", tmp / f"{user}.key", tmp / f"{user}.yaml"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    certs.write_kubeconfig_for(pki, server=server.url, user=user, tenant=tenant,
                               cert_pem=cert_pem, key_pem=key_pem, out=kubeconfig)
    return cert, key, kubeconfig


async def grant_logs(api: ApiClient, tenant: str, user: str, resources: list[str]) -> None:
    rb = "rbac.authorization.k8s.io"
    md = {"name": f"read-{user}", "namespace": NS, "tenant": tenant}
    await ResourceClient(api, "roles").create({
        "apiVersion": f"{rb}/v1", "kind": "Role", "metadata": md,
        "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["get"]}]})
    await ResourceClient(api, "rolebindings").create({
        "apiVersion": f"{rb}/v1", "kind": "RoleBinding", "metadata": md,
        "roleRef": {"apiGroup": rb, "kind": "Role", "name": md["name"]},
        "subjects": [{"kind": "User", "apiGroup": rb, "name": user}]})


async def test_rbac_applies_to_pods_log(server: ApiServerProcess, api: ApiClient, node: Node,
                                        unique: Callable[[str], str], tmp_path: Path) -> None:
    tenant, mine, theirs = unique("acme"), unique("mine"), unique("theirs")
    await ResourceClient(api, "tenants").create(
        {"metadata": {"name": tenant}, "spec": {"storageClusterId": "1"}})
    await ResourceClient(api, "namespaces").create({"metadata": {"name": NS}}, tenant=tenant)
    await start_pod(api, node, pod_obj(mine, node.name, "app", tenant=tenant))
    await start_pod(api, node, pod_obj(theirs, node.name, "app"))
    alice = user_files(server, tmp_path, "alice", tenant)
    bob = user_files(server, tmp_path, "bob", tenant)
    await grant_logs(api, tenant, "alice", ["pods", "pods/log"])
    await grant_logs(api, tenant, "bob", ["pods"])  # may read pods, not their logs

    alice_tls = tls_of(server, alice[0], alice[1])
    assert (await http_get(server, log_path(mine), alice_tls))[::2] == (200, line("app"))
    assert await kubectl(server, "logs", mine, kubeconfig=alice[2]) == (0, line("app"), "")
    code, st = await status_of(server, log_path(theirs, "system"), alice_tls)
    assert (code, st["reason"]) == (403, "Forbidden")
    bob_tls = tls_of(server, bob[0], bob[1])
    assert (await http_get(server, f"/api/v1/namespaces/{NS}/pods/{mine}", bob_tls))[0] == 200
    code, st = await status_of(server, log_path(mine), bob_tls)
    assert (code, st["reason"]) == (403, "Forbidden") and "pods/log" in st["message"]


async def test_the_apiserver_kubelet_client_has_no_api_rights(server: ApiServerProcess) -> None:
    pki = certs.load_pki(server.data_dir)
    tls = tls_of(server, pki.kubelet_client_cert, pki.kubelet_client_key)
    code, st = await status_of(server, "/api/v1/namespaces/default/pods", tls)
    assert (code, st["reason"]) == (403, "Forbidden")
    assert certs.KUBELET_CLIENT_USER in st["message"]
