"""`GET pods/{name}/log`: find the pod's node and stream the logs from its agent.

The request is authorized as `pods/log` `get` by the RBAC authorizer before it gets here.
The container is chosen as kube-apiserver does (the `container` query, else the only
container; a VM pod's VM answers to the VM's name); then the Node's `status.addresses`
(InternalIP first, else Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port` say where
the agent listens. The API server connects over HTTPS with its kubelet-client certificate
(`certs.KUBELET_CLIENT_USER`), verifies the agent against the cluster CA, and streams the
answer back as `text/plain` (chunked; while following, until the container stops).

Errors are `Status` objects: 400 for an unbound pod or a wrong or missing container name,
404 for a missing pod or node (or, from the agent, a container it does not have), 503
ServiceUnavailable naming the node when its agent cannot be reached or reports no port.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from arktos import certs
from arktos.api import errors
from arktos.api.resources import Obj
from arktos.apiserver.request import RequestInfo
from arktos.apiserver.store import Where

if TYPE_CHECKING:
    from arktos.apiserver.resources import ResourceHandler

log = logging.getLogger(__name__)
KUBELET_TLS = web.AppKey("kubelet_tls", ssl.SSLContext)
"""Set on the app to give the client TLS context towards agents explicitly; without it, the
kubelet-client certificate of the PKI this process ensured (`certs.ensured_pki`) is used."""
CONNECT_TIMEOUT = 10.0
IDLE_CHECK = 5.0
"""Seconds between checks that a quiet follower is still connected."""
_TRUE = ("true", "1", "t", "T", "True", "TRUE")
_FALSE = ("false", "0", "f", "F", "False", "FALSE", "")
"""Go's strconv.ParseBool, as kube reads query flags ("" is false)."""


@dataclass(frozen=True)
class LogOptions:
    """The PodLogOptions the API server uses: the container and what goes to the agent."""

    container: str
    agent_query: dict[str, str]


def log_options(query: Mapping[str, str], pod_name: str) -> LogOptions:
    """Validate the query (400 for a malformed value, 422 for a negative count)."""
    passed: dict[str, str] = {}
    for name in ("follow", "previous", "timestamps"):
        value = query.get(name, "")
        if value not in _TRUE + _FALSE:
            raise errors.bad_request(f"{name}: invalid boolean value {value!r}")
        if value in _TRUE:
            passed[name] = "true"
    for name in ("tailLines", "limitBytes"):
        value = query.get(name, "")
        if value == "":
            continue
        try:
            n = int(value)
        except ValueError:
            raise errors.bad_request(f"{name}: invalid integer value {value!r}") from None
        floor = 0 if name == "tailLines" else 1
        if n < floor:
            raise errors.invalid("PodLogOptions", pod_name, [errors.Cause(
                name, f"Invalid value: {n}: must be greater than "
                      f"{'or equal to 0' if floor == 0 else '0'}")])
        passed[name] = str(n)
    return LogOptions(query.get("container", ""), passed)


def _names(items: Any) -> list[str]:
    return [str(c.get("name")) for c in items or () if isinstance(c, dict) and c.get("name")]


def pick_container(pod: Obj, wanted: str) -> str:
    """`wanted` if the pod has it (any container, init container or its VM), else the only
    container; kube-apiserver's 400s otherwise."""
    name, spec = pod["metadata"]["name"], pod.get("spec") or {}
    vm = spec.get("virtualMachine")
    main = _names(spec.get("containers")) + ([str(vm["name"])] if isinstance(vm, dict)
                                            and vm.get("name") else [])
    init = _names(spec.get("initContainers"))
    if wanted:
        if wanted not in main + init + _names(spec.get("ephemeralContainers")):
            raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(main) == 1:
        return main[0]
    if not main:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    message = (f"a container name must be specified for pod {name}, "
               f"choose one of: [{' '.join(main)}]")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(message)


def agent_endpoint(node: Obj) -> tuple[str, int]:
    """(address, port) of a Node's agent: the first InternalIP, else the first Hostname, and
    `status.daemonEndpoints.kubeletEndpoint.Port`. 503 when either is missing."""
    name, status = node["metadata"]["name"], node.get("status") or {}
    addresses = [a for a in status.get("addresses") or () if isinstance(a, dict)]
    address = next((str(a.get("address")) for kind in ("InternalIP", "Hostname")
                    for a in addresses if a.get("type") == kind and a.get("address")), "")
    endpoint = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
    port = endpoint.get("Port")
    if not address:
        raise errors.service_unavailable(f"node {name} reports no address to reach its agent")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise errors.service_unavailable(
            f"node {name} does not serve logs: its status reports no agent port "
            "(status.daemonEndpoints.kubeletEndpoint.Port)")
    return address, port


def logs_url(address: str, port: int, where: Where, pod: str, container: str,
             query: dict[str, str]) -> URL:
    """`https://address:port/containerLogs/{tenant}/{namespace}/{pod}/{container}?...`."""
    path = "/containerLogs/" + "/".join(quote(p, safe="") for p in (
        where.tenant, where.namespace, pod, container))
    host = f"[{address}]" if ":" in address else address
    return URL.build(scheme="https", host=host, port=port, encoded=True,
                     path=path).with_query(query)


@functools.lru_cache(maxsize=4)
def _pki_tls(pki: certs.Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(pki.kubelet_client_cert, pki.kubelet_client_key)
    return ctx


def kubelet_tls(request: web.Request) -> ssl.SSLContext:
    """The client TLS context towards agents (see `KUBELET_TLS`); 503 if there is none."""
    ctx = request.config_dict.get(KUBELET_TLS)
    if ctx is not None:
        return ctx
    pki = certs.ensured_pki()
    if pki is None or not pki.kubelet_client_cert.exists():
        raise errors.service_unavailable("this API server has no client certificate for "
                                         "node agents")
    return _pki_tls(pki)


async def handle(h: ResourceHandler, request: web.Request, info: RequestInfo,
                 where: Where) -> web.StreamResponse:
    """Serve `GET pods/{name}/log` (other verbs: 405)."""
    if info.verb != "get":
        raise errors.method_not_allowed(request.method, "pods/log")
    opts = log_options(request.query, info.name)
    pod = (await h.store.get(where, info.name)).obj
    container = pick_container(pod, opts.container)
    node_name = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node_name:
        raise errors.bad_request(f"pod {info.name} is not scheduled to a node yet")
    node_type = h.store.registry.by_kind("", "Node")
    assert node_type is not None
    node = (await h.store.get(Where(node_type, "", ""), node_name)).obj
    address, port = agent_endpoint(node)
    url = logs_url(address, port, where, info.name, container, opts.agent_query)
    return await proxy(request, url, kubelet_tls(request), node_name)


async def proxy(request: web.Request, url: URL, tls: ssl.SSLContext,
                node: str) -> web.StreamResponse:
    """GET `url` from node `node`'s agent and stream its body back (see the module doc)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
    connector = aiohttp.TCPConnector(ssl=tls, limit=1, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     auto_decompress=False) as session:
        try:
            upstream = await session.get(url, allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.service_unavailable(
                f"the agent of node {node} cannot be reached at {url.host}:{url.port}: "
                f"{exc or type(exc).__name__}") from None
        async with upstream:
            if upstream.status != 200:
                raise await _agent_error(upstream, node)
            return await _relay(request, upstream)


async def _agent_error(upstream: aiohttp.ClientResponse, node: str) -> errors.StatusError:
    """The Status for an agent's refusal: its 400 and 404 pass through with its message."""
    text = (await upstream.content.read(4096)).decode(errors="replace").strip()
    if upstream.status == 404:
        return errors.StatusError(404, "NotFound", text)
    if upstream.status == 400:
        return errors.bad_request(text)
    return errors.internal(f"the agent of node {node} answered {upstream.status}: {text}")


async def _relay(request: web.Request,
                 upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Copy the agent's body to the client as it arrives. Once the response has begun, a
    broken agent connection just ends it (a Status can no longer be sent); a client that
    went away is noticed within `IDLE_CHECK` seconds even if the log is quiet."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain",
                                           "X-Content-Type-Options": "nosniff"})
    await response.prepare(request)
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(upstream.content.readany(), IDLE_CHECK)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return response
                continue
            if not chunk:
                break
            await response.write(chunk)
    except ConnectionResetError:
        log.debug("the client of %s went away", upstream.url)
        return response
    except aiohttp.ClientError as exc:
        log.info("log stream from %s ended early: %s", upstream.url, exc)
    await response.write_eof()
    return response
