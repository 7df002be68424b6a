"""The tenant controller (Arktos §1.7): the `system` tenant always exists; every active tenant
has its default objects (`tenant_defaults`); a deleted tenant is emptied and then finalized.

Contract:
- The `system` tenant is created (storage cluster "0") when missing.
- For a tenant without `deletionTimestamp`, the missing default objects are created (existing
  ones are left alone); a deleted default object is recreated.
- For a tenant with `deletionTimestamp` and the `arktos` finalizer: its phase is made
  `Terminating`, every tenant-scoped object of it is deleted (namespaces first, which the
  namespace controller empties), and once no tenant-scoped or namespaced object of the tenant
  remains, `arktos` is removed through `finalize`, upon which the API server removes it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from arktos.api.kinds import REGISTRY
from arktos.api.meta import TENANT_SYSTEM
from arktos.api.resources import Scope
from arktos.client.informer import Handler, Informer
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj, make_key, split_key
from arktos.controllers.base import Context, Controller
from arktos.controllers.namespace_content import ContentDeleter, remove_spec_finalizer
from arktos.controllers.namespace_plan import deleting, deletion_order, wait_seconds
from arktos.controllers.tenant_defaults import DEFAULT_KINDS, missing_defaults

FINALIZER = "arktos"
TERMINATING = "Terminating"


def tenant_key(name: str) -> str:
    return make_key("", "", name)


class TenantController(Controller):
    name = "tenant"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.tenants = ResourceClient(ctx.api, "tenants")
        self.informer = ctx.informers.informer("tenants")
        self.watch(self.informer)
        self.content: dict[str, Informer] = {}
        for resource in ("namespaces", *(k.resource for k in DEFAULT_KINDS)):
            self.content[resource] = ctx.informers.informer(resource)
            self.content[resource].add_handler(Handler(on_delete=self._content_gone))
        self.deleter = ContentDeleter(ctx.api)
        self.tenant_kinds = deletion_order(REGISTRY, Scope.TENANT)
        self.namespaced_kinds = deletion_order(REGISTRY, Scope.NAMESPACE)
        self.queue.add(tenant_key(TENANT_SYSTEM))

    def _content_gone(self, obj: Obj) -> None:
        """A namespace or default object went: its tenant may need it back, or may be empty."""
        key = tenant_key(str((obj.get("metadata") or {}).get("tenant", "")))
        if self.informer.store.get(key) is not None:
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        tenant = self.informer.store.get(key)
        if tenant is None:
            if split_key(key)[2] == TENANT_SYSTEM:
                await self._create_system()
            return None
        if deleting(tenant):
            return await self._terminate(tenant)
        await self._ensure_defaults(tenant)
        return None

    async def _create_system(self) -> None:
        body = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": TENANT_SYSTEM},
                "spec": {"storageClusterId": "0"}}
        try:
            created = await self.tenants.create(body)
        except ApiError as exc:
            if not exc.conflict:
                raise
            return
        await self.ctx.recorder.event(created, "Normal", "Created", "created the system tenant")

    def _exists(self, tenant: str, resource: str, name: str) -> bool:
        return self.content[resource].store.get(make_key(tenant, "", name)) is not None

    async def _ensure_defaults(self, tenant: Obj) -> None:
        """Create the tenant's missing default objects (ones created meanwhile are fine)."""
        name = tenant["metadata"]["name"]
        created = []
        for resource, body in missing_defaults(name, lambda r, n: self._exists(name, r, n)):
            try:
                await ResourceClient(self.ctx.api, resource).create(body)
            except ApiError as exc:
                if not exc.conflict:
                    raise
                continue
            created.append(f"{body['kind']} {body['metadata']['name']}")
        if created:
            await self.ctx.recorder.event(tenant, "Normal", "DefaultsCreated",
                                          "created " + ", ".join(created))

    async def _terminate(self, tenant: Obj) -> float | None:
        """Empty a deleted tenant; finalize it once nothing of it remains."""
        name = tenant["metadata"]["name"]
        if FINALIZER not in ((tenant.get("spec") or {}).get("finalizers") or []):
            return None
        await self._mark_terminating(tenant)
        left = await self.deleter.delete_all(self.tenant_kinds, name)
        left += await self.deleter.remaining(self.namespaced_kinds, name)
        wait = wait_seconds(left, datetime.now(UTC))
        if wait is not None:
            await self.ctx.recorder.event(tenant, "Normal", "DeletingContent",
                                          "deleting the tenant's namespaces and objects")
            return wait
        if await remove_spec_finalizer(self.tenants, name, FINALIZER):
            await self.ctx.recorder.event(tenant, "Normal", "Finalized",
                                          "the tenant is empty and was finalized")
        return None

    async def _mark_terminating(self, tenant: Obj) -> None:
        if (tenant.get("status") or {}).get("phase") == TERMINATING:
            return
        body = copy.deepcopy(tenant)
        body.setdefault("status", {})["phase"] = TERMINATING
        await self.tenants.update(body, subresource="status")
