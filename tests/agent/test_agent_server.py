"""The agent's HTTPS log server over real TLS connections: only the API server's
kubelet-client identity is served, logs come from a real `HollowRuntime` (and a small
scripted runtime for following), and the options reach the runtime."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from arktos import certs
from arktos.agent.hollow import HollowRuntime
from arktos.agent.runtime import RuntimeFailure
from arktos.agent.server import AgentServer, LogSource

pytestmark = pytest.mark.xdist_group("agent")
NODE = "node-a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.Pki:
    return certs.ensure_pki(tmp_path_factory.mktemp("agent-pki"))


def client_tls(pki: certs.Pki, cert: Path | None = None, key: Path | None = None,
               ) -> ssl.SSLContext:
    """Trust the cluster CA; present `cert`/`key` if given."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def apiserver_tls(pki: certs.Pki) -> ssl.SSLContext:
    return client_tls(pki, pki.kubelet_client_cert, pki.kubelet_client_key)


def pod(name: str, *containers: str, vm: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if vm:
        spec = {"virtualMachine": {"name": vm, "image": "tinyvm"}}
    return {"metadata": {"name": name, "namespace": "default", "tenant": "system",
                         "uid": f"uid-{name}"}, "spec": spec}


class ScriptedRuntime:
    """A runtime whose one container writes the lines it is fed until `end()`; it records
    each `logs` call."""

    name = "scripted"
    runs_containers, runs_vms = True, False

    def __init__(self) -> None:
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.closed = asyncio.Event()

    async def logs(self, uid: str, name: str, *, previous: bool = False,
                   tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        self.calls.append((uid, name, {"previous": previous, "tail": tail, "follow": follow}))
        if name != "app":
            raise RuntimeFailure("NotFound", f"no container {name}")
        try:
            yield b"first line\n"
            while follow and (line := await self.lines.get()) is not None:
                yield line
        finally:
            self.closed.set()


@pytest.fixture
async def hollow() -> HollowRuntime:
    """c1/c2 pod (c1 restarted once), a VM pod."""
    rt = HollowRuntime()
    for obj, names in ((pod("web", "c1", "c2"), ("c1", "c2")), (pod("vmpod", vm="vm1"), ("vm1",))):
        await rt.start_sandbox(obj)
        for n in names:
            await rt.start_container(obj, n, 0)
    await rt.stop_container("uid-web", "c1", 0)
    await rt.start_container(pod("web", "c1", "c2"), "c1", 1)
    return rt


@pytest.fixture
def scripted() -> ScriptedRuntime:
    return ScriptedRuntime()


@pytest.fixture
async def server(pki: certs.Pki, hollow: HollowRuntime,
                 scripted: ScriptedRuntime) -> AsyncIterator[AgentServer]:
    runtimes: dict[str, tuple[LogSource, str]] = {
        "web": (hollow, "uid-web"), "vmpod": (hollow, "uid-vmpod"), "tail": (scripted, "u-t")}

    def lookup(tenant: str, namespace: str, name: str, container: str
               ) -> tuple[LogSource, str] | None:
        return runtimes.get(name) if (tenant, namespace) == ("system", "default") else None

    cert, key = certs.issue_node_serving_cert(pki, NODE, ["127.0.0.1"])
    async with AgentServer(lookup, cert=cert, key=key, ca=pki.ca_cert, host="127.0.0.1",
                           port=0) as srv:
        yield srv


async def get(server: AgentServer, path: str, tls: ssl.SSLContext) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(
            f"https://127.0.0.1:{server.port}{path}", ssl=tls) as r:
        return r.status, await r.text()


LOGS = "/containerLogs/system/default"


async def test_serves_the_apiserver_identity_over_tls(pki: certs.Pki,
                                                      server: AgentServer) -> None:
    assert server.port > 0
    tls = apiserver_tls(pki)
    assert await get(server, f"{LOGS}/web/c2", tls) == (
        200, "hollow container c2 (attempt 0) started\n")
    assert await get(server, f"{LOGS}/web/c1", tls) == (
        200, "hollow container c1 (attempt 1) started\n")
    assert await get(server, f"{LOGS}/vmpod/vm1", tls) == (
        200, "hollow container vm1 (attempt 0) started\n")
    assert await get(server, "/healthz", tls) == (200, "ok")


async def test_previous_and_tail_reach_the_runtime(pki: certs.Pki, server: AgentServer) -> None:
    tls = apiserver_tls(pki)
    assert await get(server, f"{LOGS}/web/c1?previous=true", tls) == (
        200, "hollow container c1 (attempt 0) started\n")
    assert await get(server, f"{LOGS}/web/c1?tailLines=0", tls) == (200, "")
    status, text = await get(server, f"{LOGS}/web/c2?previous=true", tls)
    assert (status, text) == (404, 'previous terminated container "c2" in pod "web" not found\n')
    status, _ = await get(server, f"{LOGS}/web/c1?tailLines=-1", tls)
    assert status == 400
    status, _ = await get(server, f"{LOGS}/web/c1?follow=maybe", tls)
    assert status == 400


async def test_unknown_pod_or_container_is_404(pki: certs.Pki, server: AgentServer) -> None:
    tls = apiserver_tls(pki)
    status, text = await get(server, f"{LOGS}/nope/c1", tls)
    assert status == 404 and 'pod "nope"' in text and "not running on this node" in text
    assert await get(server, f"{LOGS}/web/c9", tls) == (
        404, 'container "c9" in pod "web" not found\n')
    status, _ = await get(server, "/containerLogs/acme/default/web/c1", tls)
    assert status == 404


async def test_other_valid_client_certificates_get_403(pki: certs.Pki, server: AgentServer,
                                                       tmp_path: Path) -> None:
    admin = client_tls(pki, pki.admin_cert, pki.admin_key)  # system:masters is not enough
    status, text = await get(server, f"{LOGS}/web/c1", admin)
    assert status == 403 and "user=admin" in text
    node_cert, node_key = certs.issue_node_client_cert(pki, NODE)
    same_user_other_tenant = certs.issue_client_cert(
        pki, user=certs.KUBELET_CLIENT_USER, tenant="acme")
    for i, (cert, key) in enumerate(((node_cert, node_key), same_user_other_tenant)):
        (tmp_path / f"{i}.crt").write_bytes(cert)
        (tmp_path / f"{i}.key").write_bytes(key)
        tls = client_tls(pki, tmp_path / f"{i}.crt", tmp_path / f"{i}.key")
        assert (await get(server, f"{LOGS}/web/c1", tls))[0] == 403
    assert await get(server, "/healthz", admin) == (200, "ok")


async def test_clients_without_a_cluster_certificate_are_refused(
        pki: certs.Pki, server: AgentServer, tmp_path: Path) -> None:
    with pytest.raises(aiohttp.ClientError):
        await get(server, "/healthz", client_tls(pki))
    stranger = certs.ensure_pki(tmp_path / "other-cluster")  # a valid cert of another CA
    tls = client_tls(pki, stranger.kubelet_client_cert, stranger.kubelet_client_key)
    with pytest.raises(aiohttp.ClientError):
        await get(server, f"{LOGS}/web/c1", tls)


async def test_follow_streams_until_the_container_stops(
        pki: certs.Pki, server: AgentServer, scripted: ScriptedRuntime) -> None:
    url = f"https://127.0.0.1:{server.port}{LOGS}/tail/app?follow=true&tailLines=5"
    async with aiohttp.ClientSession() as s, s.get(url, ssl=apiserver_tls(pki)) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert await r.content.readline() == b"first line\n"
        await scripted.lines.put(b"second\n")
        assert await asyncio.wait_for(r.content.readline(), 5) == b"second\n"
        scripted.lines.put_nowait(None)
        assert await asyncio.wait_for(r.content.read(), 5) == b""
    assert scripted.calls == [("u-t", "app", {"previous": False, "tail": 5, "follow": True})]


async def test_a_follower_going_away_closes_the_runtime_stream(
        pki: certs.Pki, server: AgentServer, scripted: ScriptedRuntime) -> None:
    url = f"https://127.0.0.1:{server.port}{LOGS}/tail/app?follow=1&limitBytes=100"
    async with aiohttp.ClientSession() as s, s.get(url, ssl=apiserver_tls(pki)) as r:
        assert await r.content.readline() == b"first line\n"
    await asyncio.wait_for(scripted.closed.wait(), 5)


async def test_limit_bytes_cuts_the_stream(pki: certs.Pki, server: AgentServer) -> None:
    assert await get(server, f"{LOGS}/tail/app?limitBytes=5", apiserver_tls(pki)) == (
        200, "first")


def test_node_serving_certificate_names_the_node(pki: certs.Pki) -> None:
    cert_path, key_path = certs.issue_node_serving_cert(pki, "node-b", ["10.1.2.3"])
    cert = certs.load_cert(cert_path)
    hosts = [str(h) for h in certs.cert_hosts(cert)]
    assert {"node-b", "localhost", "10.1.2.3", "127.0.0.1"} <= set(hosts)
    assert certs.issue_node_serving_cert(pki, "node-b", ["10.1.2.3"]) == (cert_path, key_path)
    assert certs.load_cert(cert_path) == cert  # kept: it covers what was asked
    certs.issue_node_serving_cert(pki, "node-b", ["10.9.9.9"])
    assert {"10.1.2.3", "10.9.9.9"} <= {str(h) for h in certs.cert_hosts(
        certs.load_cert(cert_path))}
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError):
        certs.issue_node_serving_cert(pki, "../evil")


def test_identities(pki: certs.Pki) -> None:
    kubelet_client = certs.identity_from_cert(certs.load_cert(pki.kubelet_client_cert))
    assert kubelet_client == ("system:kube-apiserver-kubelet-client", "system", [])
    cert_pem, _ = certs.issue_node_client_cert(pki, NODE)
    assert certs.identity_from_cert(x509.load_pem_x509_certificate(cert_pem)) == (
        f"system:node:{NODE}", "system", ["system:nodes"])
