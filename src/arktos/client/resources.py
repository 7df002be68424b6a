"""Typed helpers over `ApiClient` for one resource: the tenant/namespace path forms and the
verbs, plus the `ListerWatcher` an informer consumes.

Tenant arguments: None uses the client's context tenant (a short path when that is empty),
`ALL_TENANTS` lists or watches across tenants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from arktos.api.kinds import REGISTRY
from arktos.api.meta import TENANT_ALL
from arktos.api.resources import Obj, ResourceType, Scope
from arktos.client.rest import MERGE_PATCH, ApiClient, WatchEvent

ALL_TENANTS = TENANT_ALL


def resource_type(ref: str | ResourceType) -> ResourceType:
    """A served resource by `ResourceType`, plural (`pods`), `plural.group` or Kind."""
    if isinstance(ref, ResourceType):
        return ref
    plural, _, group = ref.partition(".")
    for rt in REGISTRY:
        if (rt.plural == plural and (not group or rt.group == group)) or rt.kind == ref:
            return rt
    raise KeyError(f'the server does not serve a resource "{ref}"')


def resource_path(rt: ResourceType, *, tenant: str = "", namespace: str = "", name: str = "",
                  subresource: str = "") -> str:
    """The URL path: full tenant form when `tenant` is given, else the short form."""
    parts = ["/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"]
    if rt.scope is not Scope.CLUSTER and tenant:
        parts.append(f"tenants/{tenant}")
    if rt.scope is Scope.NAMESPACE and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(rt.plural)
    if name:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


@dataclass(frozen=True)
class ListResult:
    items: list[Obj]
    resource_version: str


class ResourceClient:
    """The verbs of one resource type through one `ApiClient`."""

    def __init__(self, api: ApiClient, ref: str | ResourceType) -> None:
        self.api = api
        self.rtype = resource_type(ref)

    def path(self, *, tenant: str | None = None, namespace: str = "", name: str = "",
             subresource: str = "") -> str:
        t = self.api.config.tenant if tenant is None else tenant
        return resource_path(self.rtype, tenant=t, namespace=namespace, name=name,
                             subresource=subresource)

    def _obj_path(self, obj: Obj, subresource: str = "") -> str:
        md = obj.get("metadata") or {}
        return self.path(tenant=md.get("tenant") or None, namespace=md.get("namespace", ""),
                         name=md["name"], subresource=subresource)

    async def get(self, name: str, *, namespace: str = "", tenant: str | None = None) -> Obj:
        result: Obj = await self.api.request(
            "GET", self.path(tenant=tenant, namespace=namespace, name=name))
        return result

    async def list(self, *, namespace: str = "", tenant: str | None = None,
                   label_selector: str = "", field_selector: str = "", limit: int = 0,
                   resource_version: str = "") -> ListResult:
        """Every matching object (following `continue` pages when `limit` is set)."""
        items: list[Obj] = []
        token = ""
        while True:
            page = await self.api.request("GET", self.path(tenant=tenant, namespace=namespace),
                                          params={"labelSelector": label_selector,
                                                  "fieldSelector": field_selector,
                                                  "limit": limit or None, "continue": token,
                                                  "resourceVersion": resource_version})
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue", "")
            if not token:
                return ListResult(items, page["metadata"].get("resourceVersion", ""))

    async def create(self, obj: Obj, *, namespace: str = "", tenant: str | None = None) -> Obj:
        md = obj.get("metadata") or {}
        path = self.path(tenant=md.get("tenant") or tenant,
                         namespace=md.get("namespace") or namespace)
        result: Obj = await self.api.request("POST", path, body=obj)
        return result

    async def update(self, obj: Obj, *, subresource: str = "") -> Obj:
        """PUT (with the object's resourceVersion as precondition when it has one)."""
        result: Obj = await self.api.request("PUT", self._obj_path(obj, subresource), body=obj)
        return result

    async def patch(self, name: str, patch: Any, *, namespace: str = "",
                    tenant: str | None = None, content_type: str = MERGE_PATCH,
                    subresource: str = "") -> Obj:
        path = self.path(tenant=tenant, namespace=namespace, name=name, subresource=subresource)
        result: Obj = await self.api.request("PATCH", path, body=patch,
                                             content_type=content_type)
        return result

    async def delete(self, name: str, *, namespace: str = "", tenant: str | None = None,
                     propagation_policy: str = "", grace_period_seconds: int | None = None,
                     preconditions: dict[str, str] | None = None) -> Obj:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        result: Obj = await self.api.request(
            "DELETE", self.path(tenant=tenant, namespace=namespace, name=name), body=body)
        return result

    def watch(self, *, namespace: str = "", tenant: str | None = None,
              label_selector: str = "", field_selector: str = "", resource_version: str = "",
              bookmarks: bool = True, timeout_seconds: int = 300) -> AsyncIterator[WatchEvent]:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "resourceVersion": resource_version, "allowWatchBookmarks": bookmarks}
        return self.api.watch(self.path(tenant=tenant, namespace=namespace), params,
                              timeout_seconds=timeout_seconds)

    def lister_watcher(self, *, namespace: str = "", tenant: str | None = None,
                       label_selector: str = "", field_selector: str = "") -> ScopedListWatch:
        return ScopedListWatch(self, namespace, tenant, label_selector, field_selector)


@dataclass(frozen=True)
class ScopedListWatch:
    """A `ListerWatcher` over one API server for one resource, scope and selection."""

    resource: ResourceClient
    namespace: str
    tenant: str | None
    label_selector: str
    field_selector: str

    async def list(self) -> ListResult:
        return await self.resource.list(namespace=self.namespace, tenant=self.tenant,
                                        label_selector=self.label_selector,
                                        field_selector=self.field_selector, limit=500)

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        return self.resource.watch(namespace=self.namespace, tenant=self.tenant,
                                   label_selector=self.label_selector,
                                   field_selector=self.field_selector,
                                   resource_version=resource_version,
                                   timeout_seconds=timeout_seconds)
