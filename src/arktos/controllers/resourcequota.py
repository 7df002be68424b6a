"""The resourcequota controller: keeps every ResourceQuota's `status.hard` and `status.used`
current, in every tenant, as objects come and go and pods finish.

Admission (`arktos.apiserver.admission`) enforces quotas and raises `status.used` on creates;
nothing there lowers it after a delete or when a pod turns terminal. This controller does:

- It watches ResourceQuotas and the objects quotas count: pods, configmaps, secrets, services
  and persistentvolumeclaims (when served) from the start, any other
  `count/<resource>.<group>` from the first quota that names it.
- A quota event enqueues that quota; an object added, changed or deleted enqueues the quotas
  whose usage the change moves (`quota_usage.quotas_to_sync`): the namespace's quotas and the
  tenant's tenant-wide quotas (`kube-system`, labelled `arktos.io/scope=tenant`).
- `reconcile` recomputes the status from the informer caches with `arktos.api.quota` (the
  counting admission uses, scopes included) and PUTs it to `.../resourcequotas/{name}/status`
  only when it differs, with the cached resourceVersion as precondition; a 409 is raised, so
  the key is retried with backoff and re-read from the informer.
- The key `RESYNC` requeues every quota each `resync_period` seconds (default: the settings'
  resync period, 300 s), which repairs any drift.
"""

from __future__ import annotations

import logging

from arktos.api.kinds import REGISTRY
from arktos.api.quota import counted_resources
from arktos.client.informer import Handler, Informer
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj, key_of
from arktos.controllers.base import Context, Controller
from arktos.controllers.quota_usage import (
    STANDARD_RESOURCES,
    desired_status,
    quota_homes,
    quotas_to_sync,
    scope_index,
    served_type,
    status_outdated,
)

log = logging.getLogger(__name__)
RESYNC = "resync"
"""The periodic key (never an object key, which always has two slashes)."""
SYNC_WAIT = 0.2
"""Seconds to wait for a newly started informer to list before counting its objects."""


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def __init__(self, ctx: Context, *, resync_period: float | None = None) -> None:
        super().__init__(ctx)
        self.resync_period = ctx.settings.resync_period if resync_period is None \
            else resync_period
        self.quotas_api = ResourceClient(ctx.api, "resourcequotas")
        self.quotas = ctx.informers.informer("resourcequotas")
        self.watch(self.quotas)
        self.counted: dict[str, Informer] = {}
        for qualified in STANDARD_RESOURCES:
            self._informer(qualified)
        self.queue.add(RESYNC)

    # --- events -------------------------------------------------------------------------------

    def _informer(self, qualified: str) -> Informer | None:
        """The informer of a counted resource, started and hooked on first use (None: no
        such listable resource is served)."""
        informer = self.counted.get(qualified)
        if informer is not None:
            return informer
        rt = served_type(qualified, REGISTRY)
        if rt is None:
            return None
        informer = self.ctx.informers.informer(rt.qualified)
        informer.add_handler(Handler(
            on_add=lambda obj: self._changed(qualified, None, obj),
            on_update=lambda old, new: self._changed(qualified, old, new),
            on_delete=lambda obj: self._changed(qualified, obj, None)))
        self.counted[qualified] = informer
        return informer

    def _changed(self, qualified: str, old: Obj | None, new: Obj | None) -> None:
        """Enqueue the quotas whose usage the change of one counted object moves."""
        md = (new or old or {}).get("metadata") or {}
        homes = quota_homes(str(md.get("tenant", "")), str(md.get("namespace", "")))
        candidates = [q for home in homes for q in self.quotas.store.by_index("namespace", home)]
        for q in quotas_to_sync(qualified, old, new, candidates):
            self.queue.add(key_of(q))

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        if key == RESYNC:
            for quota_key in self.quotas.store:
                self.queue.add(quota_key)
            return self.resync_period
        q = self.quotas.store.get(key)
        if q is None:
            return None
        informers = self._informers_of(q)
        if not all(inf.synced.is_set() for inf in informers.values()):
            return SYNC_WAIT
        status = desired_status(q, self._objects(q, informers))
        if status_outdated(q, status):
            await self._write(q, status)
        return None

    def _informers_of(self, q: Obj) -> dict[str, Informer]:
        """The informers of every served resource the quota counts, by qualified name."""
        found = {r: self._informer(r) for r in sorted(counted_resources(q))}
        return {r: inf for r, inf in found.items() if inf is not None}

    def _objects(self, q: Obj, informers: dict[str, Informer]) -> list[tuple[str, Obj]]:
        """(qualified resource, object) for every cached object in the quota's reach."""
        index, value = scope_index(q)
        return [(r, obj) for r, inf in informers.items()
                for obj in inf.store.by_index(index, value)]

    async def _write(self, q: Obj, status: Obj) -> None:
        """PUT the status with `q`'s resourceVersion; a quota gone meanwhile is fine, a 409
        (it changed meanwhile) propagates so that the key is retried."""
        md = q["metadata"]
        try:
            await self.quotas_api.update({**q, "status": status}, subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        log.debug("resourcequota %s/%s/%s: used %s", md.get("tenant", ""),
                 md.get("namespace", ""), md.get("name", ""), status["used"])
