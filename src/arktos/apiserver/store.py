"""Generic object store: create/get/list/update/patch/delete of any kind over `Storage`,
with reads of lists served by the watch cache.

Contract: every write is a compare-and-swap on the object's mod revision; an update without a
resourceVersion precondition retries on conflict (like kube-apiserver's GuaranteedUpdate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from arktos.api import errors, meta
from arktos.api.meta import TENANT_SYSTEM
from arktos.api.resources import Obj, Registry, ResourceType
from arktos.apiserver import objects
from arktos.apiserver.watchcache import Entry, WatchCache, decode
from arktos.storage import Conflict, KeyExists, KeyNotFound, Storage

if TYPE_CHECKING:
    from arktos.apiserver.admission import PolicyAdmission

Mutator = Callable[[Obj], Obj | Awaitable[Obj]]
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
PROPAGATION_FINALIZERS = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}
_RETRIES = 16


@dataclass(frozen=True, slots=True)
class Where:
    """The scope a request addresses (tenant "" only for cluster-scoped kinds)."""

    rtype: ResourceType
    tenant: str
    namespace: str

    def key(self, name: str) -> str:
        return self.rtype.key(self.tenant, self.namespace, name)


class Store:
    """All object reads and writes of the API server."""

    def __init__(self, storage: Storage, cache: WatchCache, registry: Registry) -> None:
        self.storage = storage
        self.cache = cache
        self.registry = registry
        self.admission: PolicyAdmission | None = None
        self._tenants = registry.by_kind("", "Tenant")
        self._namespaces = registry.by_kind("", "Namespace")

    # -- reads --------------------------------------------------------------------------------

    async def get(self, where: Where, name: str) -> Entry:
        """The current object from storage (always consistent); 404 if absent."""
        kv = await self.storage.get(where.key(name))
        if kv is None:
            raise errors.not_found(where.rtype.qualified, name)
        return decode(kv)

    async def _lookup(self, rtype: ResourceType | None, tenant: str, name: str) -> Obj | None:
        """An object read from storage (not the cache, which may lag a just-acknowledged write)."""
        if rtype is None:
            return None
        kv = await self.storage.get(rtype.key(tenant, "", name))
        return orjson.loads(kv.value) if kv is not None else None

    # -- admission ----------------------------------------------------------------------------

    async def admit_create(self, where: Where, obj: Obj) -> None:
        """Refuse writes into a missing or terminating tenant or namespace."""
        rtype = where.rtype
        tenant, ns = await asyncio.gather(
            self._lookup(self._tenants, "", where.tenant) if rtype.tenanted else _none(),
            self._lookup(self._namespaces, where.tenant, where.namespace)
            if rtype.namespaced else _none())
        if rtype.tenanted:
            if tenant is None:
                raise errors.not_found("tenants", where.tenant)
            if tenant["metadata"].get("deletionTimestamp"):
                raise _terminating(f'unable to create new content in tenant "{where.tenant}" '
                                   "because it is being terminated", "TenantTerminating",
                                   "metadata.tenant")
        if rtype.namespaced:
            if ns is None:
                raise errors.not_found("namespaces", where.namespace)
            if ns["metadata"].get("deletionTimestamp"):
                raise _terminating(
                    f"unable to create new content in namespace {where.tenant}/{where.namespace}"
                    " because it is being terminated", "NamespaceTerminating",
                    "metadata.namespace")

    # -- writes -------------------------------------------------------------------------------

    async def create(self, where: Where, body: Obj, *, dry_run: bool = False) -> Obj:
        """Validate, default and store a new object; returns it with its resourceVersion."""
        rtype = where.rtype
        md = body["metadata"]
        generate = not md.get("name") and md.get("generateName")
        for _ in range(_RETRIES if generate else 1):
            if generate:
                md["name"] = meta.generate_name(str(md["generateName"]))
            obj = objects.prepare_create(rtype, body)
            await self.admit_create(where, obj)
            if self.admission is not None:
                self.admission.mutate(where, obj)
            if dry_run:
                return obj
            try:
                rev = await self._create_admitted(where, obj)
            except KeyExists:
                if generate:
                    continue
                raise errors.already_exists(rtype.qualified, md["name"]) from None
            obj["metadata"]["resourceVersion"] = str(rev)
            return obj
        raise errors.StatusError(500, "AlreadyExists", "could not generate a unique name")

    async def _create_admitted(self, where: Where, obj: Obj) -> int:
        """Store a new object, inside quota admission when there is one."""
        key = where.key(obj["metadata"]["name"])
        if self.admission is None:
            return await self.storage.create(key, orjson.dumps(obj))
        async with self.admission.reserve(self, where, obj):
            return await self.storage.create(key, orjson.dumps(obj))

    async def guaranteed_update(self, where: Where, name: str, mutate: Mutator, *,
                                precondition: str | None = None, dry_run: bool = False) -> Obj:
        """Read-modify-write with CAS. `mutate(current)` returns the object to store (or the
        same content for a no-op); returning an object without deletion blockers after
        deletionTimestamp is set removes it. `precondition` is a required resourceVersion."""
        key = where.key(name)
        for _ in range(_RETRIES):
            current = await self.get(where, name)
            if precondition and precondition != str(current.rev):
                raise errors.conflict(where.rtype.qualified, name, _STALE)
            new = mutate(dict(current.obj))
            if isinstance(new, Awaitable):
                new = await new
            if objects.same_content(new, current.obj) or dry_run:
                # Nothing is written: answer with the stored resourceVersion, as kube-apiserver.
                out = dict(new)
                out["metadata"] = dict(new["metadata"], resourceVersion=str(current.rev))
                return out
            try:
                return await self._put(where, key, new, current.rev)
            except Conflict:
                if precondition:
                    raise errors.conflict(where.rtype.qualified, name, _STALE) from None
            except KeyNotFound:
                raise errors.not_found(where.rtype.qualified, name) from None
        raise errors.conflict(where.rtype.qualified, name, "too many concurrent updates")

    async def _put(self, where: Where, key: str, new: Obj, expected: int) -> Obj:
        if new["metadata"].get("deletionTimestamp") and not objects.pending_finalizers(
                where.rtype, new) and not _awaiting_agent(where.rtype, new):
            rev = await self.storage.delete(key, expected_revision=expected)
        else:
            rev = await self.storage.update(key, orjson.dumps(objects.strip_version(new)),
                                            expected_revision=expected)
        new["metadata"]["resourceVersion"] = str(rev)
        return new

    async def admit_delete(self, where: Where, name: str) -> None:
        """The system tenant is immortal; so are a tenant's default namespaces (all of them in
        the system tenant; in other tenants until the tenant is being deleted)."""
        kind = where.rtype.kind
        if kind == "Tenant" and name == TENANT_SYSTEM:
            raise errors.forbidden("this tenant may not be deleted")
        if kind != "Namespace" or name not in PROTECTED_NAMESPACES:
            return
        if where.tenant != TENANT_SYSTEM:
            tenant = await self._lookup(self._tenants, "", where.tenant)
            if tenant is None or tenant["metadata"].get("deletionTimestamp"):
                return
        raise errors.forbidden(f"namespace {where.tenant}/{name}: this namespace may not be "
                               "deleted")

    async def delete(self, where: Where, name: str, *, grace: int | None = None,
                     preconditions: dict[str, Any] | None = None, propagation: str = "",
                     dry_run: bool = False) -> Obj:
        """Delete now, or mark deleting when finalizers or a node agent must act first.

        `propagation` Orphan or Foreground adds the finalizer the garbage collector acts on
        (`orphan`, `foregroundDeletion`); Background (or "") leaves dependents to it."""
        rtype = where.rtype
        pre = preconditions or {}
        finalizer = PROPAGATION_FINALIZERS.get(propagation)

        def mutate(current: Obj) -> Obj:
            md = current["metadata"]
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(rtype.qualified, name, "the UID in the precondition "
                                      f"({pre['uid']}) does not match the UID in record "
                                      f"({md.get('uid')}). The object might have been deleted "
                                      "and then recreated")
            pod_grace = objects.graceful_pod(rtype, current, grace)
            if md.get("deletionTimestamp"):
                if pod_grace is None and rtype.kind == "Pod":
                    return _without_blockers(current)
                return current
            if finalizer and finalizer not in (md.get("finalizers") or []):
                current = dict(current, metadata=dict(
                    md, finalizers=[*(md.get("finalizers") or []), finalizer]))
            if objects.pending_finalizers(rtype, current) or pod_grace is not None:
                return objects.mark_deleting(rtype, current, pod_grace or 0)
            return _without_blockers(objects.mark_deleting(rtype, current, 0))

        return await self.guaranteed_update(where, name, mutate,
                                            precondition=pre.get("resourceVersion") or None,
                                            dry_run=dry_run)


def _terminating(message: str, reason: str, field: str) -> errors.StatusError:
    """403 with the cause controllers check to stop retrying (as kube-apiserver's)."""
    err = errors.forbidden(message)
    err.details["causes"] = [{"reason": reason, "message": message, "field": field}]
    return err


async def _none() -> None:
    return None


_STALE = "the object has been modified; please apply your changes to the latest version and try again"


def _awaiting_agent(rtype: ResourceType, obj: Obj) -> bool:
    """A bound pod being deleted gracefully stays until its node agent deletes it with grace 0."""
    md = obj["metadata"]
    return (rtype.kind == "Pod" and bool((obj.get("spec") or {}).get("nodeName"))
            and int(md.get("deletionGracePeriodSeconds") or 0) > 0)


def _without_blockers(obj: Obj) -> Obj:
    """Mark an object as ready to be removed now (grace 0)."""
    out = dict(obj)
    out["metadata"] = dict(obj["metadata"], deletionGracePeriodSeconds=0)
    return out
