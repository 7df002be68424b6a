"""The namespace controller: empties namespaces being deleted, in every tenant, then finalizes
them (removes `kubernetes` from `spec.finalizers`), upon which the API server removes them.

Contract: for a namespace with `deletionTimestamp` whose finalizers include `kubernetes`, every
object of every namespaced kind in it is deleted (background propagation); the namespace is
checked again (after the time its remaining content needs, or when one of its pods goes) until
nothing remains, and only then finalized.
"""

from __future__ import annotations

from datetime import UTC, datetime

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Scope
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.store import Obj, make_key, split_key
from arktos.controllers.base import Context, Controller
from arktos.controllers.namespace_content import ContentDeleter, remove_spec_finalizer
from arktos.controllers.namespace_plan import deleting, deletion_order, wait_seconds

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.kinds = deletion_order(REGISTRY, Scope.NAMESPACE)
        self.namespaces = ResourceClient(ctx.api, "namespaces")
        self.deleter = ContentDeleter(ctx.api)
        self.informer = ctx.informers.informer("namespaces")
        self.watch(self.informer)
        ctx.informers.informer("pods").add_handler(Handler(on_delete=self._pod_gone))

    def _pod_gone(self, pod: Obj) -> None:
        """A pod of a namespace being emptied went: look at the namespace again now."""
        md = pod.get("metadata") or {}
        key = make_key(md.get("tenant", ""), "", md.get("namespace", ""))
        if deleting(self.informer.store.get(key)):
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        ns = self.informer.store.get(key)
        if ns is None or not deleting(ns) or FINALIZER not in _finalizers(ns):
            return None
        tenant, _, name = split_key(key)
        left = await self.deleter.delete_all(self.kinds, tenant, name)
        wait = wait_seconds(left, datetime.now(UTC))
        if wait is not None:
            return wait
        await remove_spec_finalizer(self.namespaces, name, FINALIZER, tenant=tenant)
        return None


def _finalizers(obj: Obj) -> list[str]:
    return list((obj.get("spec") or {}).get("finalizers") or [])
