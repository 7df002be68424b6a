"""Admission by policy objects: a pod's priority from its PriorityClass, LimitRange defaults
and bounds on pods, and ResourceQuota
(per namespace, and per tenant for quotas labelled `arktos.io/scope=tenant` in the tenant's
`kube-system`).

Contract: quota admission of one object holds a lock per affected quota across
check -> write -> status update, and reads usage from the watch cache after waiting until it
holds every acknowledged write; so concurrent creates are counted one by one and never
together exceed a quota, and deleted objects stop counting without a separate controller.
Usage is recomputed from the objects each time (a scan of the quota's scope).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from arktos.api import errors, quota
from arktos.api.kinds.scheduling import resolve_priority
from arktos.api.resources import Obj, Registry, ResourceType
from arktos.apiserver.store import Where
from arktos.apiserver.watchcache import WatchCache

if TYPE_CHECKING:
    from arktos.apiserver.store import Store


class PolicyAdmission:
    def __init__(self, cache: WatchCache, registry: Registry) -> None:
        self.cache = cache
        self.registry = registry
        quotas = registry.by_kind("", "ResourceQuota")
        limits = registry.by_kind("", "LimitRange")
        assert quotas is not None and limits is not None
        self.quotas_rt, self.limits_rt = quotas, limits
        self.classes_rt = registry.by_kind("scheduling.k8s.io", "PriorityClass")
        self._locks: dict[str, asyncio.Lock] = {}

    def mutate(self, where: Where, obj: Obj) -> None:
        """Fill a new pod's priority and resource defaults; 403 when its PriorityClass is
        unknown or a LimitRange bound is broken."""
        if where.rtype.kind != "Pod":
            return
        self._prioritize(obj)
        self._limit(where, obj)

    def _prioritize(self, obj: Obj) -> None:
        classes: dict[str, Obj] = {}
        if self.classes_rt is not None:
            entries = self.cache.cache(self.classes_rt).items(self.classes_rt.key_prefix("", ""))
            classes = {e.obj["metadata"]["name"]: e.obj for _, e in entries}
        refusal = resolve_priority(obj.setdefault("spec", {}), classes)
        if refusal:
            raise errors.forbidden(f'pods "{obj["metadata"].get("name", "")}" is forbidden: '
                                   + refusal)

    def _limit(self, where: Where, obj: Obj) -> None:
        """Fill pod resource defaults from LimitRanges; 403 when a bound is broken."""
        prefix = self.limits_rt.key_prefix(where.tenant, where.namespace)
        ranges = [e.obj for _, e in self.cache.cache(self.limits_rt).items(prefix)]
        problems = quota.apply_limit_ranges(obj, ranges) if ranges else []
        if problems:
            raise errors.forbidden(f'pods "{obj["metadata"].get("name", "")}" is forbidden: '
                                   + ", ".join(problems))

    def _quotas(self, where: Where, obj: Obj) -> list[Obj]:
        prefix = self.quotas_rt.key_prefix(where.tenant, "")
        return [e.obj for _, e in self.cache.cache(self.quotas_rt).items(prefix)
                if quota.applies(e.obj, where.rtype.qualified, obj)]

    @contextlib.asynccontextmanager
    async def reserve(self, store: Store, where: Where, obj: Obj) -> AsyncIterator[None]:
        """Admit `obj` under the quotas that count it (403 when one would be exceeded); the
        body writes it; then the quotas' status.used is brought up to date."""
        if where.rtype is self.quotas_rt or not self._quotas(where, obj):
            yield
            return
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(quota.quota_key(q) for q in self._quotas(where, obj)):
                await stack.enter_async_context(self._locks.setdefault(
                    f"{where.tenant}/{key}", asyncio.Lock()))
            await self.cache.wait_fresh()
            quotas = self._quotas(where, obj)
            used = {quota.quota_key(q): quota.quota_usage(q, self._objects(where.tenant, q))
                    for q in quotas}
            delta = quota.object_usage(where.rtype.qualified, obj)
            pod = obj if where.rtype.kind == "Pod" else None
            problems = quota.check(quotas, used, delta, pod)
            if problems:
                name = obj["metadata"].get("name", "")
                raise errors.forbidden(f'{where.rtype.qualified} "{name}" is forbidden: '
                                       + "; ".join(problems))
            yield
            for q in quotas:
                await self._record(store, q, quota.add_usage(used[quota.quota_key(q)], delta))

    def _objects(self, tenant: str, q: Obj) -> Iterator[tuple[str, Obj]]:
        """(qualified resource, object) of the tenant for every resource the quota limits."""
        for rtype in self._limited(q):
            for _, entry in self.cache.cache(rtype).items(rtype.key_prefix(tenant, "")):
                yield rtype.qualified, entry.obj

    def _limited(self, q: Obj) -> list[ResourceType]:
        wanted = quota.counted_resources(q)
        return [rt for rt in self.registry if rt.qualified in wanted and rt.tenanted]

    async def _record(self, store: Store, q: Obj, used: quota.Usage) -> None:
        md = q["metadata"]
        status = quota.quota_status(q, used)

        def mutate(current: Obj) -> Obj:
            return {**current, "status": status}

        with contextlib.suppress(errors.StatusError):
            await store.guaranteed_update(
                Where(self.quotas_rt, md["tenant"], md["namespace"]), md["name"], mutate)
