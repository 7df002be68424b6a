"""Turning a URL path and method into a `RequestInfo`: which resource, tenant, namespace, name,
subresource and verb. Pure: no I/O here.

Path forms (the same under `/apis/{group}/{version}`):
- `/api/v1/tenants/{t}/namespaces/{ns}/{resource}[/{name}[/{sub}]]` (namespaced, full)
- `/api/v1/tenants/{t}/{resource}[/{name}[/{sub}]]` (tenant-scoped; or all namespaces of `t`)
- `/api/v1/tenants[/{name}[/status|/finalize]]` (the Tenant objects themselves)
- short forms without `tenants/{t}`: the tenant comes from the caller; `/api/v1/{namespaced}`
  lists across tenants; tenant `all` means every tenant.
- `/api/v1/watch/...` (deprecated watch paths) is accepted as `?watch=1`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arktos.api import errors
from arktos.api.meta import TENANT_ALL
from arktos.api.resources import Registry, ResourceType, Scope

_TENANT_SUBRESOURCES = frozenset({"status", "finalize"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A parsed resource request.

    `tenant` is "" when the path named none (resolve with `resolve_tenant`), `TENANT_ALL` for
    every tenant. `namespace` is "" for all namespaces or a non-namespaced resource."""

    verb: str
    rtype: ResourceType
    tenant: str
    namespace: str
    name: str
    subresource: str
    tenant_in_path: bool

    def resolve_tenant(self, caller_tenant: str) -> RequestInfo:
        """Fill the tenant of a short path from the caller's tenant.

        A list of a namespaced resource across all namespaces without a tenant in the path
        (`/api/v1/pods`) spans every tenant the caller may see: all of them for the system
        tenant, its own for others."""
        if not self.rtype.tenanted or self.tenant:
            return self
        across = (self.rtype.namespaced and not self.namespace and not self.name
                  and self.verb in ("list", "watch"))
        tenant = TENANT_ALL if across and caller_tenant == "system" else caller_tenant
        return _replace_tenant(self, tenant)


def _replace_tenant(info: RequestInfo, tenant: str) -> RequestInfo:
    return RequestInfo(info.verb, info.rtype, tenant, info.namespace, info.name,
                       info.subresource, info.tenant_in_path)


def split_api_prefix(parts: list[str]) -> tuple[str, str, list[str]] | None:
    """(group, version, rest) of `/api/v1/...` or `/apis/{g}/{v}/...`, or None."""
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def parse_request(registry: Registry, method: str, path: str, *, watch: bool) -> RequestInfo:
    """Parse a resource path; raise a 404 `StatusError` for anything not served."""
    parts = [p for p in path.split("/") if p]
    prefix = split_api_prefix(parts)
    if prefix is None:
        raise errors.path_not_found(path)
    group, version, rest = prefix
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    tenant, namespace, rest, tenant_in_path = _scope_parts(rest)
    if not rest:
        raise errors.path_not_found(path)
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None:
        raise errors.path_not_found(path)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 or (sub and sub not in rtype.subresources):
        raise errors.path_not_found(path)
    _check_scope(rtype, tenant_in_path, namespace, path)
    verb = _verb(method, bool(name), watch)
    return RequestInfo(verb, rtype, tenant, namespace, name, sub, tenant_in_path)


def _scope_parts(rest: list[str]) -> tuple[str, str, list[str], bool]:
    """Strip `tenants/{t}` and `namespaces/{ns}` prefixes; returns (tenant, ns, rest, had_t)."""
    tenant, namespace, had_tenant = "", "", False
    if len(rest) > 2 and rest[0] == "tenants" and not (
            len(rest) == 3 and rest[2] in _TENANT_SUBRESOURCES):
        tenant, rest, had_tenant = rest[1], rest[2:], True
    if len(rest) > 2 and rest[0] == "namespaces" and not (
            len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    return tenant, namespace, rest, had_tenant


def _check_scope(rtype: ResourceType, tenant_in_path: bool, namespace: str, path: str) -> None:
    if rtype.scope is Scope.CLUSTER and tenant_in_path:
        raise errors.path_not_found(path)
    if rtype.scope is not Scope.NAMESPACE and namespace:
        raise errors.path_not_found(path)


def _verb(method: str, named: bool, watch: bool) -> str:
    verbs = {
        ("GET", True): "get", ("GET", False): "list",
        ("POST", False): "create", ("POST", True): "create",
        ("PUT", True): "update", ("PATCH", True): "patch",
        ("DELETE", True): "delete", ("DELETE", False): "deletecollection",
    }
    verb = verbs.get((method, named))
    if verb is None:
        raise errors.method_not_allowed(method, "this path")
    if watch and method == "GET":
        return "watch"
    return verb
