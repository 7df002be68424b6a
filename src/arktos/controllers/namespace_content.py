"""Emptying a scope: delete every object of some kinds in a tenant, or in one namespace of a
tenant, and report what is still there. Shared by the namespace and tenant controllers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from arktos.api.resources import ResourceType
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj

BACKGROUND: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                              "propagationPolicy": "Background"}


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


class ContentDeleter:
    """Deletes the content of a tenant (namespace "") or of one of its namespaces."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def delete_all(self, kinds: Sequence[ResourceType], tenant: str,
                         namespace: str = "") -> list[Obj]:
        """Ask every object of `kinds` in the scope to go (background propagation), kind by
        kind in the given order; returns the objects still present afterwards."""
        left: list[Obj] = []
        for rt in kinds:
            left += await self._delete_kind(ResourceClient(self.api, rt), tenant, namespace)
        return left

    async def remaining(self, kinds: Sequence[ResourceType], tenant: str,
                        namespace: str = "") -> list[Obj]:
        """Every object of `kinds` in the scope (read from the server, not a cache)."""
        lists = await asyncio.gather(*(ResourceClient(self.api, rt).list(
            tenant=tenant, namespace=namespace) for rt in kinds))
        return [obj for result in lists for obj in result.items]

    async def _delete_kind(self, rc: ResourceClient, tenant: str, namespace: str) -> list[Obj]:
        items = (await rc.list(tenant=tenant, namespace=namespace)).items
        if all(_deleting(obj) for obj in items):
            return items
        if "deletecollection" in rc.rtype.verbs:
            await self.api.request("DELETE", rc.path(tenant=tenant, namespace=namespace),
                                   body=BACKGROUND)
        else:
            await self._delete_each(rc, [o for o in items if not _deleting(o)])
        return (await rc.list(tenant=tenant, namespace=namespace)).items

    async def _delete_each(self, rc: ResourceClient, items: list[Obj]) -> None:
        for obj in items:
            md = obj["metadata"]
            try:
                await rc.delete(md["name"], namespace=md.get("namespace", ""),
                                tenant=md.get("tenant", ""), propagation_policy="Background")
            except ApiError as exc:
                if not exc.not_found:
                    raise


async def remove_spec_finalizer(rc: ResourceClient, name: str, finalizer: str, *,
                                tenant: str | None = None) -> bool:
    """Take `finalizer` out of the current object's `spec.finalizers` through its `finalize`
    subresource (namespaces, tenants); False when the object or the finalizer is gone already.
    A concurrent change raises the server's 409."""
    try:
        fresh = await rc.get(name, tenant=tenant)
        spec = fresh.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if finalizer not in finalizers:
            return False
        spec["finalizers"] = [f for f in finalizers if f != finalizer]
        await rc.update(fresh, subresource="finalize")
    except ApiError as exc:
        if exc.not_found:
            return False
        raise
    return True
