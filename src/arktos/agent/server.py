"""The agent's HTTPS server (kubelet's port 10250): container and VM logs for the API server.

TLS with the node's serving certificate; clients must present a certificate signed by the
cluster CA (the handshake refuses others). `/containerLogs/...` is served only to the API
server's kubelet-client identity (`certs.KUBELET_CLIENT_USER` in tenant `system`); any other
valid certificate gets 403. `/healthz` answers every client the CA signed.

    GET /containerLogs/{tenant}/{namespace}/{pod}/{container}
        ?follow=true&tailLines=N&previous=true&limitBytes=N   -> text/plain, streamed

`timestamps` is accepted and ignored (the runtimes' logs carry no per-line times yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from aiohttp import web
from cryptography import x509

from arktos import certs
from arktos.agent.runtime import RuntimeFailure
from arktos.certs import KUBELET_CLIENT_TENANT, KUBELET_CLIENT_USER, identity_from_cert

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LogSource(Protocol):
    """What the server needs of a runtime (every `Runtime` is one)."""

    def logs(self, uid: str, name: str, *, previous: bool = False, tail: int | None = None,
             follow: bool = False) -> AsyncIterator[bytes]:
        """As `Runtime.logs`: raises `RuntimeFailure("NotFound", ...)` when unknown."""
        ...


LogLookup = Callable[[str, str, str, str], tuple[LogSource, str] | None]
"""(tenant, namespace, pod, container) -> (the runtime running the pod, the pod's uid), or
None when this node does not run that pod. The container is checked by the runtime."""
DEFAULT_PORT = 10250
PLAIN = "text/plain"
_TRUE = ("true", "1", "t", "T", "True", "TRUE")
_FALSE = ("false", "0", "f", "F", "False", "FALSE", "")
"""Go's strconv.ParseBool, as kube reads query flags ("" is false)."""


def serving_tls(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Serve with `cert`/`key`; require a client certificate signed by the CA in `ca`."""
    return certs.server_context(cert, key, ca, require_client=True)


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "")
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise web.HTTPBadRequest(text=f"{name}: invalid boolean {value!r}\n")


def _count(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: invalid integer {value!r}\n") from None
    if n < 0:
        raise web.HTTPBadRequest(text=f"{name}: must be greater than or equal to 0\n")
    return n


def peer_identity(request: web.Request) -> tuple[str, str, list[str]] | None:
    """(user, tenant, groups) of the client certificate, or None (no or unusable one)."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        return identity_from_cert(x509.load_der_x509_certificate(der))
    except ValueError:
        return None


@web.middleware
async def only_apiserver(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 for every path but `/healthz` unless the caller is the API server's kubelet
    client (user and tenant both checked; groups do not matter)."""
    if request.path != "/healthz":
        who = peer_identity(request)
        if who is None or who[:2] != (KUBELET_CLIENT_USER, KUBELET_CLIENT_TENANT):
            user = who[0] if who else "anonymous"
            raise web.HTTPForbidden(text=f"Forbidden (user={user}, verb=get, "
                                         f"path={request.path})\n")
    return await handler(request)


class AgentServer:
    """The agent's HTTPS server. `start()`/`stop()` (or `async with`, or `run()` until
    cancelled); `port` is the bound port once started (`port=0` picks a free one)."""

    def __init__(self, logs: LogLookup, *, cert: Path, key: Path, ca: Path,
                 host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.lookup = logs
        self.host = host
        self.port = port
        self._tls = serving_tls(cert, key, ca)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[only_apiserver])
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/containerLogs/{tenant}/{namespace}/{pod}/{container}",
                           self.container_logs)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None,
                               handler_cancellation=True)  # a follower leaving ends its stream
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self._tls)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("agent server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run(self) -> None:
        """Serve until cancelled (a task of the agent's TaskGroup)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        """Stream a container's (or VM's) output; 404 for a pod or container not here."""
        m = request.match_info
        tenant, namespace, pod, container = m["tenant"], m["namespace"], m["pod"], m["container"]
        follow, previous = _flag(request, "follow"), _flag(request, "previous")
        tail, limit = _count(request, "tailLines"), _count(request, "limitBytes")
        found = self.lookup(tenant, namespace, pod, container)
        if found is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" in namespace "{namespace}" of tenant '
                                        f'"{tenant}" is not running on this node\n')
        runtime, uid = found
        what = (f'previous terminated container "{container}"' if previous
                else f'container "{container}"')
        try:
            chunks = runtime.logs(uid, container, previous=previous, tail=tail, follow=follow)
            first = await _first(chunks)
        except RuntimeFailure as exc:
            if exc.reason != "NotFound":
                raise web.HTTPInternalServerError(text=f"{exc.reason}: {exc.message}\n")
            raise web.HTTPNotFound(text=f'{what} in pod "{pod}" not found\n') from None
        return await _stream(request, first, chunks, limit)


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _first(chunks: AsyncIterator[bytes]) -> bytes:
    """The first chunk (b"" if there is none): a runtime's NotFound shows here, before the
    response is committed."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return b""


async def _stream(request: web.Request, first: bytes, chunks: AsyncIterator[bytes],
                  limit: int | None) -> web.StreamResponse:
    """Write `first` then the rest of `chunks` (at most `limit` bytes in all) as text/plain;
    the runtime's iterator is closed however this ends (a follower going away included)."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                           "X-Content-Type-Options": "nosniff"})
    await response.prepare(request)
    left = limit
    try:
        chunk: bytes | None = first
        while chunk is not None and left != 0:
            if left is not None:
                chunk, left = chunk[:left], left - len(chunk[:left])
            if chunk:
                await response.write(chunk)
            chunk = await anext(chunks, None)
    except (ConnectionResetError, RuntimeFailure) as exc:
        log.debug("log stream of %s ended: %s", request.path, exc)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    await _finish(response)
    return response


async def _finish(response: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
