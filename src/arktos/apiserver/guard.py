"""Who may talk to the API server: the TLS context (server certificate; client certificates
verified against the cluster CA when offered) and the authentication middleware.

Anonymous requests get 401 except the health and version endpoints. An authenticated
request carries `request["identity"]`, `request["user"]` and `request["tenant"]`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from arktos import certs
from arktos.api import errors
from arktos.apiserver.authn import Authenticators

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def server_tls(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """Serve with `cert`; ask for client certificates and verify those given against the CA."""
    return certs.server_context(cert, key, client_ca, require_client=False)


class Guard:
    """The authentication middleware over an authenticator chain."""

    def __init__(self, authenticators: Authenticators) -> None:
        self.authenticators = authenticators

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.rstrip("/") in PUBLIC_PATHS:
            return await handler(request)
        peer = request.transport.get_extra_info("ssl_object") if request.transport else None
        identity = self.authenticators.authenticate(request.headers.get("Authorization"), peer)
        if identity is None:
            raise errors.unauthorized("Unauthorized")
        request["identity"] = identity
        request["user"] = identity.name
        request["tenant"] = identity.tenant
        return await handler(request)
