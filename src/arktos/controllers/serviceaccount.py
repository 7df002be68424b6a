"""The service-account controller: every active namespace, in every tenant, has the
ServiceAccount `default` (pods use it unless they name another).

Contract: for a namespace without `deletionTimestamp` whose `default` ServiceAccount is missing
from the informer, the ServiceAccount is created (AlreadyExists is success); a deleted
`default` ServiceAccount is recreated.
"""

from __future__ import annotations

from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj, make_key, split_key
from arktos.controllers.base import Context, Controller

DEFAULT_ACCOUNT = "default"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.accounts = ResourceClient(ctx.api, "serviceaccounts")
        self.namespaces = ctx.informers.informer("namespaces")
        self.account_informer = ctx.informers.informer("serviceaccounts")
        self.watch(self.namespaces)
        self.account_informer.add_handler(Handler(on_delete=self._account_gone))

    def _account_gone(self, account: Obj) -> None:
        md = account.get("metadata") or {}
        if md.get("name") == DEFAULT_ACCOUNT:
            self.queue.add(make_key(md.get("tenant", ""), "", md.get("namespace", "")))

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.store.get(key)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        tenant, _, namespace = split_key(key)
        if self.account_informer.store.get(make_key(tenant, namespace, DEFAULT_ACCOUNT)):
            return None
        body = {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_ACCOUNT, "namespace": namespace, "tenant": tenant}}
        try:
            await self.accounts.create(body)
        except ApiError as exc:
            if exc.status == 409 or exc.status == 403:  # exists, or the namespace is going
                return None
            raise
        return None
