"""Enforcing RBAC on resource requests: the `RbacIndex` kept current from the watch cache,
and the translation of a request into `authz.Attributes`.

The index follows the cache with the same (small) lag as any informer: a binding takes
effect a moment after it was written.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arktos.api import errors
from arktos.api.kinds.pod import pod_references
from arktos.api.meta import TENANT_ALL, TENANT_SYSTEM
from arktos.api.resources import Registry, ResourceType, Scope
from arktos.apiserver import authz, escalation
from arktos.apiserver.authn import Identity
from arktos.apiserver.request import RequestInfo
from arktos.apiserver.watchcache import ResourceCache, WatchCache

RBAC_GROUP = escalation.RBAC_GROUP
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


class Authorizer:
    def __init__(self, cache: WatchCache, registry: Registry) -> None:
        self.cache = cache
        self.index = authz.RbacIndex()
        self._caches: dict[str, ResourceCache] = {}
        for kind in RBAC_KINDS:
            rtype = registry.by_kind(RBAC_GROUP, kind)
            assert rtype is not None
            self._caches[kind] = cache.cache(rtype)
        pods = registry.by_kind("", "Pod")
        assert pods is not None
        self._pods = pods

    async def run(self) -> None:
        """Load the index from the cache, then follow every change of the RBAC kinds."""
        async with asyncio.TaskGroup() as tg:
            for kind, cache in self._caches.items():
                watcher, _ = cache.subscribe(cache.rtype.key_root, None)
                for entry in cache.entries.values():
                    self.index.put(kind, entry.obj)
                tg.create_task(self._follow(kind, watcher))

    async def _follow(self, kind: str, watcher: Any) -> None:
        while (batch := await watcher.batch()) is not None:
            for event in batch:
                if event.type == "DELETED":
                    self.index.remove(kind, event.entry.obj)
                else:
                    self.index.put(kind, event.entry.obj)

    def review(self, identity: Identity | None, review: dict[str, Any], tenant: str,
               registry: Registry) -> dict[str, Any]:
        """Answer a SelfSubjectAccessReview (the caller) or SubjectAccessReview (spec.user)."""
        spec = review.get("spec") or {}
        if review.get("kind") == "SelfSubjectAccessReview":
            if identity is None:
                return {"allowed": True, "reason": "no authorization configured"}
            user = identity
        else:
            user = authz.User(str(spec.get("user", "")), tenant,
                              tuple(spec.get("groups") or ()), str(spec.get("uid", "")))
        decision = authz.authorize(self.index, review_attributes(registry, user, spec,
                                                                 user.tenant))
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status

    def check(self, identity: Identity | None, info: RequestInfo) -> None:
        """Raise 403 Forbidden unless RBAC allows the request (no identity: no checks)."""
        if identity is None:
            return
        attrs = self.attributes(identity, info)
        decision = authz.authorize(self.index, attrs)
        if not decision.allowed:
            raise errors.forbidden(authz.describe(decision))

    def admit_write(self, identity: Identity | None, info: RequestInfo,
                    obj: dict[str, Any]) -> None:
        """The checks of a create, update or patch that need the object written (kube's
        RBAC escalation prevention and NodeRestriction): raise 403 Forbidden."""
        if identity is None or info.subresource:
            return
        rtype, refusal = info.rtype, ""
        if rtype.group == RBAC_GROUP and rtype.kind in authz.ROLE_KINDS:
            refusal = escalation.role_write_refusal(self.index, identity, rtype.kind, obj)
        elif rtype.group == RBAC_GROUP and rtype.kind in authz.BINDING_KINDS:
            refusal = escalation.binding_write_refusal(self.index, identity, rtype.kind, obj)
        node = authz.node_name(identity)
        if not refusal and node is not None and info.verb == "create":
            name = str((obj.get("metadata") or {}).get("name") or "")
            refusal = authz.node_create_refusal(rtype.group, rtype.plural, name, node)
        if refusal:
            raise errors.forbidden(f"{rtype.qualified} is forbidden: {refusal}")

    def attributes(self, identity: Identity, info: RequestInfo) -> authz.Attributes:
        user = identity
        rtype = info.rtype
        verb = info.verb
        if rtype.kind == "Tenant" and verb == "watch" and info.name == identity.tenant:
            verb = "get"
        return authz.Attributes(
            user=user, verb=verb, resource=rtype.plural, group=rtype.group,
            subresource=info.subresource, name=info.name, namespace=info.namespace,
            tenant=info.tenant if rtype.scope is not Scope.CLUSTER else "",
            scope=rtype.scope, bound_node=self._bound_node(user, rtype, info))

    def _bound_node(self, user: authz.User, rtype: ResourceType,
                    info: RequestInfo) -> str | None:
        node = authz.node_name(user)
        if not info.name or node is None or info.tenant == TENANT_ALL:
            return None
        if rtype.group == "" and rtype.plural in ("configmaps", "secrets"):
            return node if self._used_on_node(node, rtype.plural, info) else None
        if rtype is not self._pods:
            return None
        entry = self.cache.cache(rtype).entries.get(
            rtype.key(info.tenant, info.namespace, info.name))
        return (entry.obj.get("spec") or {}).get("nodeName") if entry else None

    def _used_on_node(self, node: str, plural: str, info: RequestInfo) -> bool:
        """Whether a pod bound to `node` in the request's namespace uses that object (a scan
        of the namespace's pods in the watch cache: nodes ask once per pod start)."""
        for entry in list(self.cache.cache(self._pods).entries.values()):
            md, spec = entry.obj.get("metadata") or {}, entry.obj.get("spec") or {}
            if (spec.get("nodeName") == node and md.get("namespace") == info.namespace
                    and md.get("tenant", TENANT_SYSTEM) == info.tenant
                    and info.name in pod_references(entry.obj, plural)):
                return True
        return False


def review_attributes(registry: Registry, user: authz.User, spec: dict[str, Any],
                      tenant: str) -> authz.Attributes:
    """The request a (Self)SubjectAccessReview asks about (Arktos adds `tenant`)."""
    url = spec.get("nonResourceAttributes")
    if isinstance(url, dict):
        return authz.Attributes(user=user, verb=str(url.get("verb", "")),
                                path=str(url.get("path", "")))
    res = spec.get("resourceAttributes") or {}
    group, plural = str(res.get("group", "")), str(res.get("resource", ""))
    rtype = next((rt for rt in registry if rt.group == group and rt.plural == plural), None)
    scope = rtype.scope if rtype is not None else Scope.NAMESPACE
    return authz.Attributes(
        user=user, verb=str(res.get("verb", "")), resource=plural, group=group,
        subresource=str(res.get("subresource", "")), name=str(res.get("name", "")),
        namespace=str(res.get("namespace", "")), scope=scope,
        tenant="" if scope is Scope.CLUSTER else str(res.get("tenant") or tenant))
