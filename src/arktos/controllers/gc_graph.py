"""The garbage collector's graph of owners and dependents, read from the shared informers'
stores (indexed by uid and by owner uid). In memory; no I/O.

Tenancy: an ownerReference is resolved only where its owner may live (`gc_refs.owner_place`);
a reference whose uid belongs to an object of another tenant is IGNORED, also after that
object is deleted (remembered while references to it remain, in this process).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from arktos.api.resources import Registry, ResourceType
from arktos.client.store import Indexer, IndexFunc, Obj, by_owner_uid, key_of, make_key
from arktos.controllers.gc_refs import (
    OwnerState,
    Ref,
    metadata,
    owner_place,
    owner_refs,
    owner_type,
    state_of,
)

UID_INDEX = "gc-uid"
OWNER_INDEX = "gc-owner-uid"


def by_uid(obj: Obj) -> list[str]:
    uid = metadata(obj).get("uid")
    return [str(uid)] if uid else []


INDEXERS: dict[str, IndexFunc] = {UID_INDEX: by_uid, OWNER_INDEX: by_owner_uid}


@dataclass(frozen=True)
class Node:
    """One object of the graph with its kind."""

    rtype: ResourceType
    obj: Obj

    @property
    def key(self) -> str:
        """The work-queue key: `plural[.group]:tenant/namespace/name`."""
        return f"{self.rtype.qualified}:{key_of(self.obj)}"

    @property
    def uid(self) -> str:
        return str(metadata(self.obj).get("uid", ""))

    @property
    def tenant(self) -> str:
        return str(metadata(self.obj).get("tenant", ""))

    @property
    def place(self) -> tuple[str, str]:
        md = metadata(self.obj)
        return (str(md.get("tenant", "")), str(md.get("namespace", "")))

    def owner_place(self, owner: ResourceType) -> tuple[str, str] | None:
        return owner_place(self.rtype.scope, *self.place, owner.scope)


class Graph:
    """Owners and dependents over one store per monitored kind (stores need `INDEXERS`)."""

    def __init__(self, stores: Iterable[tuple[ResourceType, Indexer]],
                 registry: Registry) -> None:
        self.stores = {rt.qualified: (rt, store) for rt, store in stores}
        self.registry = registry
        self.tombstones: dict[str, str] = {}
        """uid -> tenant of deleted objects that objects of other tenants still reference."""

    def get(self, key: str) -> Node | None:
        qualified, _, obj_key = key.partition(":")
        rt, store = self.stores.get(qualified, (None, None))
        obj = store.get(obj_key) if store is not None else None
        return Node(rt, obj) if rt is not None and obj is not None else None

    def _indexed(self, index: str, uid: str) -> list[Node]:
        return [Node(rt, obj) for rt, store in self.stores.values()
                for obj in store.by_index(index, uid)]

    def resolve(self, dependent: Node, ref: Ref) -> tuple[OwnerState, Node | None]:
        """The state of the owner `ref` names, and the owner when present in the stores."""
        rt = owner_type(ref, self.registry)
        if rt is None:
            return OwnerState.SOLID, None
        place = dependent.owner_place(rt)
        if place is None or self._foreign(dependent.tenant, ref["uid"]):
            return OwnerState.IGNORED, None
        _, store = self.stores.get(rt.qualified, (None, None))
        found = store.get(make_key(*place, ref["name"])) if store is not None else None
        if found is None or metadata(found).get("uid") != ref["uid"]:
            return OwnerState.UNKNOWN, None
        return state_of(found, ref["uid"]), Node(rt, found)

    def _foreign(self, tenant: str, uid: str) -> bool:
        """Whether `uid` is (or was) an object of a tenant other than `tenant`."""
        tenants = {n.tenant for n in self._indexed(UID_INDEX, uid)}
        if uid in self.tombstones:
            tenants.add(self.tombstones[uid])
        return any(t and t != tenant for t in tenants)

    def _owns(self, owner: Node, dependent: Node) -> bool:
        return dependent.owner_place(owner.rtype) == owner.place

    def dependents(self, owner: Node) -> list[Node]:
        """The objects referencing `owner` that it may own (same tenant, same namespace)."""
        return [d for d in self._indexed(OWNER_INDEX, owner.uid) if self._owns(owner, d)]

    def owners(self, dependent: Node, refs: Iterable[Ref]) -> list[Node]:
        """The owners among `refs` present in the stores that may own `dependent`."""
        found = [n for r in refs for n in self._indexed(UID_INDEX, r["uid"])]
        return [n for n in found if self._owns(n, dependent)]

    def forget(self, gone: Node) -> None:
        """Bookkeeping after `gone` was deleted: remember its uid while objects of other
        tenants reference it; drop remembered uids nothing references any more."""
        if gone.tenant and any(d.tenant != gone.tenant
                               for d in self._indexed(OWNER_INDEX, gone.uid)):
            self.tombstones[gone.uid] = gone.tenant
        for ref in owner_refs(gone.obj):
            if ref["uid"] in self.tombstones and not self._indexed(OWNER_INDEX, ref["uid"]):
                del self.tombstones[ref["uid"]]
