"""One invocation's connection: kubeconfig + flags -> `ApiClient`, the tenant/namespace scope
of requests, and the few request shapes `ApiClient` has no call for (Table GETs, streams)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import typer

from arktos.api.resources import ResourceType
from arktos.cli.arkctl.errors import CliError, Failures, describe_error
from arktos.cli.arkctl.options import Globals, current_globals
from arktos.client.config import ClientConfig, ConfigError, load_config
from arktos.client.resources import ALL_TENANTS, ResourceClient
from arktos.client.rest import JSON, ApiClient, ApiError

TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1,application/json"
"""What `kubectl get` asks for: server-side printed tables."""
NO_LIMIT = 365 * 86400.0
_MAX_LINE = 64 << 20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_timeout(text: str) -> float | None:
    """kubectl's --request-timeout: `30` (seconds), `5s`, `1m30s`, `500ms`; 0 means none.
    Returns None when not given."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+", text):
        return float(text) or NO_LIMIT
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CliError("invalid timeout value. Timeout must be a single integer in seconds, or "
                       "an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)")
    return sum(float(n) * _UNITS[u] for n, u in parts) or NO_LIMIT


@dataclass(frozen=True)
class ListScope:
    """Where a list goes: tenant (None: the context's; `all`) and namespace ("" for all)."""

    tenant: str | None
    namespace: str


@dataclass
class Session:
    """Everything a command needs to talk to the server."""

    flags: Globals
    config: ClientConfig
    api: ApiClient
    failures: Failures
    timeout: float | None

    @property
    def namespace(self) -> str:
        """The namespace of requests (-n, else the context's)."""
        return self.config.namespace

    def resource(self, rtype: ResourceType) -> ResourceClient:
        return ResourceClient(self.api, rtype)

    def list_scope(self, rtype: ResourceType) -> ListScope:
        """The scope of a list of `rtype` under -n/-A/-T."""
        tenant = ALL_TENANTS if self.flags.all_tenants and rtype.tenanted else None
        across = self.flags.all_namespaces or self.flags.all_tenants
        namespace = self.namespace if rtype.namespaced and not across else ""
        return ListScope(tenant, namespace)

    def object_namespace(self, rtype: ResourceType) -> str:
        """The namespace of a named object (refusing -A/-T, as kubectl does)."""
        if self.flags.all_namespaces or self.flags.all_tenants:
            raise CliError("a resource cannot be retrieved by name across all namespaces")
        return self.namespace if rtype.namespaced else ""

    def empty_message(self, rtype: ResourceType) -> str:
        """kubectl's message for an empty list of `rtype`."""
        scope = self.list_scope(rtype)
        if rtype.namespaced and scope.namespace:
            return f"No resources found in {scope.namespace} namespace."
        return "No resources found"

    async def get(self, path: str, params: Mapping[str, Any] | None = None, *,
                  accept: str = JSON) -> Any:
        """One GET with a chosen Accept header (e.g. `TABLE`)."""
        return await self.api.request("GET", path, params=params, accept=accept)

    def stream(self, path: str, params: Mapping[str, Any] | None = None, *,
               accept: str = JSON) -> contextlib.AbstractAsyncContextManager[
                   aiohttp.StreamReader]:
        """A GET whose body is read as it arrives (watches, followed logs)."""
        return self.api.stream(path, params, accept=accept)

    def lines(self, path: str, params: Mapping[str, Any] | None = None, *,
              accept: str = JSON) -> AsyncIterator[dict[str, Any]]:
        """The JSON lines of a streamed GET (watch events)."""
        return self.api.lines(path, params, accept=accept)


def client_config(flags: Globals) -> tuple[ClientConfig, float | None]:
    """The context's config with the flags applied, and the parsed --request-timeout."""
    timeout = parse_timeout(flags.request_timeout)
    try:
        config = load_config(flags.kubeconfig or None, context=flags.context,
                             tenant=flags.tenant, namespace=flags.namespace)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return replace(config, max_retries=2, timeout=timeout or config.timeout), timeout


Body = Callable[[Session], Awaitable[int | None]]


async def _main(body: Body, flags: Globals, config: ClientConfig,
                timeout: float | None) -> int:
    failures = Failures(config.server)
    async with ApiClient(config) as api:
        try:
            code = await body(Session(flags, config, api, failures, timeout))
        except (ApiError, CliError) as exc:
            failures.report(exc)
            return 1
    return code or failures.exit_code


def run(body: Body, *, interrupted: int = 130) -> None:
    """Run one command's coroutine with a fresh `ApiClient`; errors exit with code 1, Ctrl-C
    with `interrupted`."""
    flags = current_globals()
    try:
        config, timeout = client_config(flags)
        code = asyncio.run(_main(body, flags, config, timeout))
    except CliError as exc:
        print(describe_error(exc), file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = interrupted
    if code:
        raise typer.Exit(code)

