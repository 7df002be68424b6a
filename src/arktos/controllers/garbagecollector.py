"""The garbage collector: deletes objects whose owners are gone, and carries out the Orphan and
Foreground propagation policies (the `orphan` and `foregroundDeletion` finalizers the API
server adds on DELETE).

Contract (level-triggered: a restarted collector converges to the same state):
- A dependent (not being deleted) whose owners that count are all confirmed absent (absent from
  the informers and a GET answering 404 or another uid) is deleted with background propagation.
- A dependent whose owner is deleted in the foreground is deleted with foreground propagation,
  unless another owner still stands: then it loses its reference to the deleted owner.
- An owner being deleted with `orphan`: every dependent loses its reference to it, then the
  finalizer is removed.
- An owner being deleted with `foregroundDeletion`: its dependents are deleted (as above); once
  none with `blockOwnerDeletion: true` remains, the finalizer is removed.
- Owners live where `gc_refs.owner_place` says (same tenant; same namespace for namespaced
  ones). A reference to an object of another tenant is ignored: it neither keeps nor condemns
  the dependent, and that object's deletion never touches it (a Warning event says so).
"""

from __future__ import annotations

from typing import Any

from arktos.api.kinds import REGISTRY
from arktos.api.resources import ResourceType
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj
from arktos.controllers.base import Context, Controller
from arktos.controllers.gc_graph import INDEXERS, Graph, Node
from arktos.controllers.gc_refs import (
    FOREGROUND,
    ORPHAN,
    Action,
    OwnerState,
    Ref,
    blocks,
    decide,
    finalizers,
    metadata,
    owner_refs,
    owner_type,
    pending,
    refs_without,
    relevant,
    state_of,
)
from arktos.controllers.namespace_plan import deleting

IGNORED_RESOURCES = frozenset({"events"})
"""Kinds not monitored (as kube's collector): many, short-lived, never owners."""
States = dict[str, OwnerState]


def monitored() -> list[ResourceType]:
    return [rt for rt in REGISTRY
            if rt.qualified not in IGNORED_RESOURCES and {"list", "watch"} <= set(rt.verbs)]


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        informers = [(rt, ctx.informers.informer(rt.qualified, indexers=INDEXERS))
                     for rt in monitored()]
        self.graph = Graph([(rt, informer.store) for rt, informer in informers], REGISTRY)
        for rt, informer in informers:
            informer.add_handler(self._handler(rt))

    # -- events -> keys -----------------------------------------------------------------------

    def _handler(self, rt: ResourceType) -> Handler:
        def changed(old: Obj | None, new: Obj) -> None:
            node = Node(rt, new)
            if relevant(new):
                self.queue.add(node.key)
            self._wake_owners(node, owner_refs(new) + (owner_refs(old) if old else []))

        def gone(obj: Obj) -> None:
            node = Node(rt, obj)
            for dependent in self.graph.dependents(node):
                self.queue.add(dependent.key)
            self.graph.forget(node)
            self._wake_owners(node, owner_refs(obj))

        return Handler(on_add=lambda obj: changed(None, obj), on_update=changed,
                       on_delete=gone)

    def _wake_owners(self, node: Node, refs: list[Ref]) -> None:
        """Owners waiting on their dependents look again when one changes or goes."""
        for owner in self.graph.owners(node, refs):
            if pending(owner.obj, ORPHAN) or pending(owner.obj, FOREGROUND):
                self.queue.add(owner.key)

    # -- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        node = self.graph.get(key)
        if node is None:
            return None
        if pending(node.obj, ORPHAN):
            await self._orphan(node)
        elif pending(node.obj, FOREGROUND):
            await self._foreground(node)
        elif not deleting(node.obj) and owner_refs(node.obj):
            await self._collect(node)
        return None

    async def _orphan(self, owner: Node) -> None:
        """Cut every dependent loose from `owner`, then let `owner` go."""
        for dependent in self.graph.dependents(owner):
            fresh = await self._fresh(dependent)
            if fresh is not None:
                await self._set_refs(fresh, refs_without(fresh.obj, {owner.uid}))
        await self._remove_finalizer(owner, ORPHAN)

    async def _foreground(self, owner: Node) -> None:
        """Have `owner`'s dependents deleted; let it go once no blocking one remains."""
        dependents = self.graph.dependents(owner)
        for dependent in dependents:
            self.queue.add(dependent.key)
        if not any(blocks(d.obj, owner.uid) for d in dependents):
            await self._remove_finalizer(owner, FOREGROUND)

    async def _collect(self, dependent: Node) -> None:
        """Decide on `dependent` from the informers; before acting, decide again on the
        current object with unconfirmed owners checked by GETs."""
        states = self._states(dependent)
        await self._warn_ignored(dependent, states)
        if decide(states.values()) is Action.KEEP:
            return
        fresh = await self._fresh(dependent)
        if fresh is None:
            return
        states = await self._verified_states(fresh)
        action = decide(states.values())
        if action is Action.UNBLOCK:
            waiting = {uid for uid, s in states.items() if s is OwnerState.FOREGROUND}
            await self._set_refs(fresh, refs_without(fresh.obj, waiting))
        elif action in (Action.DELETE_BACKGROUND, Action.DELETE_FOREGROUND):
            await self._delete(fresh, "Foreground" if action is Action.DELETE_FOREGROUND
                               else "Background")

    def _states(self, dependent: Node) -> States:
        return {r["uid"]: self.graph.resolve(dependent, r)[0] for r in owner_refs(dependent.obj)}

    async def _verified_states(self, dependent: Node) -> States:
        states = self._states(dependent)
        for ref in owner_refs(dependent.obj):
            if states[ref["uid"]] is OwnerState.UNKNOWN:
                states[ref["uid"]] = state_of(await self._get_owner(dependent, ref), ref["uid"])
        return states

    async def _warn_ignored(self, dependent: Node, states: States) -> None:
        for ref in owner_refs(dependent.obj):
            if states[ref["uid"]] is OwnerState.IGNORED:
                await self.ctx.recorder.event(
                    dependent.obj, "Warning", "OwnerRefInvalid",
                    f"ignored ownerReference to {ref.get('kind')} {ref['name']} (uid "
                    f"{ref['uid']}): not an owner this object can have (another tenant, "
                    "namespace or scope)")

    # -- API calls ----------------------------------------------------------------------------

    def _client(self, rt: ResourceType) -> ResourceClient:
        return ResourceClient(self.ctx.api, rt)

    async def _get(self, rt: ResourceType, name: str, tenant: str, namespace: str) -> Obj | None:
        try:
            return await self._client(rt).get(name, namespace=namespace, tenant=tenant or None)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def _get_owner(self, dependent: Node, ref: Ref) -> Obj | None:
        rt = owner_type(ref, REGISTRY)
        place = dependent.owner_place(rt) if rt is not None else None
        if rt is None or place is None:
            raise AssertionError("only resolvable references are verified")
        return await self._get(rt, ref["name"], *place)

    async def _fresh(self, node: Node) -> Node | None:
        """The current version of `node` (None when it is gone or was replaced)."""
        obj = await self._get(node.rtype, metadata(node.obj)["name"], *node.place)
        if obj is None or metadata(obj).get("uid") != node.uid:
            return None
        return Node(node.rtype, obj)

    async def _patch_metadata(self, node: Node, changes: dict[str, Any]) -> None:
        """Merge-patch `node`'s metadata, failing (409) if it changed since it was read."""
        md = metadata(node.obj)
        body = {"metadata": {**changes, "resourceVersion": md["resourceVersion"]}}
        tenant, namespace = node.place
        try:
            await self._client(node.rtype).patch(md["name"], body, namespace=namespace,
                                                 tenant=tenant or None)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _set_refs(self, node: Node, refs: list[Ref]) -> None:
        if len(refs) != len(metadata(node.obj).get("ownerReferences") or []):
            await self._patch_metadata(node, {"ownerReferences": refs or None})

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        fresh = await self._fresh(node)
        if fresh is not None and finalizer in finalizers(fresh.obj):
            rest = [f for f in finalizers(fresh.obj) if f != finalizer]
            await self._patch_metadata(fresh, {"finalizers": rest or None})

    async def _delete(self, node: Node, policy: str) -> None:
        md = metadata(node.obj)
        tenant, namespace = node.place
        try:
            await self._client(node.rtype).delete(
                md["name"], namespace=namespace, tenant=tenant or None, propagation_policy=policy,
                preconditions={"uid": node.uid, "resourceVersion": md["resourceVersion"]})
        except ApiError as exc:
            if not exc.not_found:
                raise
