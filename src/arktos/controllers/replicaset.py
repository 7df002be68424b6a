"""The ReplicaSet controller: keeps `spec.replicas` pods of each ReplicaSet's template in its
tenant and namespace, adopting matching orphans and releasing pods that stopped matching, and
reports their counts in the status.

Creations go in slow-start batches (1, 2, 4, ...; at most `BURST_REPLICAS` per pass);
expectations make the controller wait until its informer has seen its own creations and
deletions before deciding again. Decisions live in `replicaset_logic`.

Also here, for the Deployment controller too: `EventSink` (events recorded in the
background, with kube's per-object spam filter), `adopt`/`release` and `SelectorCache`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arktos.api.errors import StatusError
from arktos.api.selectors import LabelSelector, label_selector_from_dict
from arktos.client.events import EventRecorder
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Indexer, Obj, by_owner_uid, key_of, make_key
from arktos.controllers.base import Context, Controller
from arktos.controllers.podtemplate import (
    controlled_by,
    controller_of,
    controller_ref,
    pod_from_template,
    same_scope,
)
from arktos.controllers.replicaset_logic import (
    Expectations,
    claim,
    is_active,
    labels_of,
    next_available_check,
    pod_keys,
    pods_to_delete,
    replicaset_status,
    slow_start_batches,
    terminating,
)

log = logging.getLogger(__name__)

BURST_REPLICAS = 500
"""Most pods created or deleted for one ReplicaSet in one pass (kube's burstReplicas)."""
OWNER_INDEX = "by_owner_uid"
ORPHAN_INDEX = "orphans_by_namespace"
KIND = "ReplicaSet"


def orphans_by_namespace(obj: Obj) -> list[str]:
    """Index: `tenant/namespace` of objects without a controller."""
    if controller_of(obj) is not None:
        return []
    md = obj.get("metadata") or {}
    return [f"{md.get('tenant', '')}/{md.get('namespace', '')}"]


def scope_key(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('tenant', '')}/{md.get('namespace', '')}"


def controlled(store: Indexer, owner: Obj) -> list[Obj]:
    """What `owner` controls in `store` (an `OWNER_INDEX`ed store): only objects of its own
    tenant and namespace, whatever uid other tenants' objects claim."""
    uid = owner["metadata"]["uid"]
    return [o for o in store.by_index(OWNER_INDEX, uid)
            if controlled_by(o, uid) and same_scope(o, owner)]


def owner_key(obj: Obj, kind: str) -> str | None:
    """The store key of `obj`'s controller when that is a `kind` (same tenant/namespace)."""
    ref = controller_of(obj)
    if ref is None or ref.get("kind") != kind or not ref.get("name"):
        return None
    md = obj.get("metadata") or {}
    return make_key(md.get("tenant", ""), md.get("namespace", ""), str(ref["name"]))


class SelectorCache:
    """Parsed `spec.selector`s by object uid (selectors are immutable); None if malformed."""

    def __init__(self) -> None:
        self._by_uid: dict[str, LabelSelector | None] = {}

    def get(self, obj: Obj) -> LabelSelector | None:
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        if uid not in self._by_uid:
            try:
                raw = (obj.get("spec") or {}).get("selector") or {}
                self._by_uid[uid] = label_selector_from_dict(raw)
            except StatusError:
                self._by_uid[uid] = None
        return self._by_uid[uid]

    def forget(self, obj: Obj) -> None:
        self._by_uid.pop(str((obj.get("metadata") or {}).get("uid", "")), None)


class EventSink:
    """Records events in the background so reconciles never wait for them. Like client-go,
    each involved object gets a burst of `burst` events, then one per `refill` seconds; a full
    queue drops events."""

    def __init__(self, recorder: EventRecorder, *, burst: int = 25, refill: float = 300.0,
                 size: int = 10000) -> None:
        self.recorder = recorder
        self.burst, self.refill = burst, refill
        self._queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(size)
        self._tokens: dict[str, tuple[float, float]] = {}

    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if not self._allow(str((obj.get("metadata") or {}).get("uid", ""))):
            return
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            log.debug("event queue full; dropped %s %s", reason, message)

    def _allow(self, uid: str) -> bool:
        now = time.monotonic()
        tokens, stamp = self._tokens.get(uid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) / self.refill)
        if len(self._tokens) > 50000:
            self._tokens.clear()
        self._tokens[uid] = (tokens - 1, now) if tokens >= 1 else (tokens, now)
        return tokens >= 1

    async def run(self) -> None:
        """Send queued events until cancelled; a failure loses only that event."""
        while True:
            obj, type_, reason, message = await self._queue.get()
            try:
                await self.recorder.event(obj, type_, reason, message)
            except Exception:
                log.exception("recording event %s failed", reason)


def scope_terminating(exc: ApiError) -> bool:
    """Whether a create failed because its namespace or tenant is being deleted (the
    `NamespaceTerminating` cause, as kube-apiserver reports it): nothing to retry or report."""
    causes = (exc.body.get("details") or {}).get("causes") or []
    return exc.status == 403 and any(
        isinstance(c, dict) and c.get("reason") in ("NamespaceTerminating", "TenantTerminating")
        for c in causes)


def _involved(obj: Obj, kind: str, api_version: str) -> Obj:
    return {**obj, "kind": kind, "apiVersion": api_version}


async def adopt(client: ResourceClient, obj: Obj, owner: Obj, kind: str) -> Obj | None:
    """Make `owner` (a `kind`) the controller of orphan `obj`; None if `obj` changed or went
    meanwhile (the next pass sees it again)."""
    md = obj["metadata"]
    refs = [*(md.get("ownerReferences") or []), controller_ref(owner, kind)]
    return await _patch_refs(client, obj, refs)


async def release(client: ResourceClient, obj: Obj, owner_uid: str) -> Obj | None:
    """Remove the ownerReference of `owner_uid` from `obj` (None if `obj` changed or went)."""
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
    return await _patch_refs(client, obj, refs or None)


async def _patch_refs(client: ResourceClient, obj: Obj, refs: list[Any] | None) -> Obj | None:
    md = obj["metadata"]
    body = {"metadata": {"ownerReferences": refs, "uid": md["uid"],
                         "resourceVersion": md["resourceVersion"]}}
    try:
        return await client.patch(md["name"], body, namespace=md.get("namespace", ""),
                                  tenant=md.get("tenant") or None)
    except ApiError as exc:
        if exc.status in (404, 409, 422):
            return None
        raise


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rs_informer = ctx.informers.informer(
            "replicasets", indexers={OWNER_INDEX: by_owner_uid, ORPHAN_INDEX: orphans_by_namespace})
        self.pod_informer = ctx.informers.informer(
            "pods", indexers={OWNER_INDEX: by_owner_uid, ORPHAN_INDEX: orphans_by_namespace})
        self.pods = ResourceClient(ctx.api, "pods")
        self.replicasets = ResourceClient(ctx.api, "replicasets")
        self.expectations = Expectations()
        self.selectors = SelectorCache()
        self.events = EventSink(ctx.recorder)
        self.watch(self.rs_informer)
        self.rs_informer.add_handler(Handler(on_delete=self.selectors.forget))
        self.pod_informer.add_handler(Handler(on_add=self._pod_added,
                                              on_update=self._pod_updated,
                                              on_delete=self._pod_deleted))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.events.run())
            await super().run()

    # --- informer events -------------------------------------------------------------------

    def _owner(self, pod: Obj) -> str | None:
        """The key of the ReplicaSet controlling `pod`, if it is one we know."""
        key = owner_key(pod, KIND)
        rs = self.rs_informer.store.get(key) if key else None
        ref = controller_of(pod) or {}
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _enqueue_matching(self, pod: Obj) -> None:
        """Queue every ReplicaSet of the orphan's tenant and namespace that selects it."""
        for rs in self.rs_informer.store.by_index("namespace", scope_key(pod)):
            selector = self.selectors.get(rs)
            if selector is not None and not selector.empty and selector.matches(labels_of(pod)):
                self.enqueue(rs)

    def _pod_added(self, pod: Obj) -> None:
        if terminating(pod):
            self._pod_deleted(pod)
            return
        key = self._owner(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_of(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        if terminating(new):
            self._pod_deleted(new)
        old_owner, new_owner = self._owner(old), self._owner(new)
        if old_owner is not None and old_owner != new_owner:
            self.queue.add(old_owner)
        if new_owner is not None:
            self.queue.add(new_owner)
        elif controller_of(new) is None and (labels_of(old) != labels_of(new)
                                             or controller_of(old) is not None):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        rs = self.rs_informer.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        selector = self.selectors.get(rs)
        if selector is None or selector.empty:
            return None
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claim_pods(rs, selector)
        error: ApiError | None = None
        if needs_sync and not terminating(rs):
            error = await self._manage(key, rs, pods)
        now = time.time()
        failure = None if error is None else (
            "FailedCreate" if len(pods) < _replicas(rs) else "FailedDelete", str(error))
        await self._write_status(rs, replicaset_status(rs, pods, now, failure))
        if error is not None:
            raise error
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        return next_available_check(pods, min_ready, now)

    async def _claim_pods(self, rs: Obj, selector: LabelSelector) -> list[Obj]:
        """The active pods `rs` controls after adopting matching orphans and releasing pods
        that no longer match."""
        uid = rs["metadata"]["uid"]
        store = self.pod_informer.store
        candidates = controlled(store, rs) + store.by_index(ORPHAN_INDEX, scope_key(rs))
        found = claim(uid, selector, candidates, owner_deleting=terminating(rs))
        owned = found.owned
        if found.adopt and await self._can_adopt(rs):
            adopted = await asyncio.gather(*(adopt(self.pods, p, rs, KIND) for p in found.adopt))
            owned += [p for p in adopted if p is not None]
        await asyncio.gather(*(release(self.pods, p, uid) for p in found.release))
        return [p for p in owned if is_active(p)]

    async def _can_adopt(self, rs: Obj) -> bool:
        """Re-read `rs` from the server: only a live, same-uid owner may adopt (kube's
        RecheckDeletionTimestamp)."""
        md = rs["metadata"]
        try:
            fresh = await self.replicasets.get(md["name"], namespace=md["namespace"],
                                               tenant=md.get("tenant") or None)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return fresh["metadata"].get("uid") == md["uid"] and not terminating(fresh)

    async def _manage(self, key: str, rs: Obj, pods: list[Obj]) -> ApiError | None:
        """Create or delete pods toward spec.replicas; returns the first error."""
        diff = len(pods) - _replicas(rs)
        if diff < 0:
            return await self._create(key, rs, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete(key, rs, pods_to_delete(pods, min(diff, BURST_REPLICAS)))
        return None

    async def _create(self, key: str, rs: Obj, count: int) -> ApiError | None:
        self.expectations.expect_creations(key, count)
        done, error = 0, None
        for size in slow_start_batches(count):
            results = await asyncio.gather(*(self._create_one(rs) for _ in range(size)))
            errors = [r for r in results if r is not None]
            done += size - len(errors)
            if errors:
                error = errors[0]
                break
        self.expectations.creation_observed(key, count - done)
        return error

    async def _create_one(self, rs: Obj) -> ApiError | None:
        involved = _involved(rs, KIND, "apps/v1")
        try:
            pod = await self.pods.create(pod_from_template(rs))
        except ApiError as exc:
            if scope_terminating(exc):
                return None
            self.events.emit(involved, "Warning", "FailedCreate", f"Error creating: {exc}")
            return exc
        self.events.emit(involved, "Normal", "SuccessfulCreate",
                         f"Created pod: {pod['metadata']['name']}")
        return None

    async def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> ApiError | None:
        self.expectations.expect_deletions(key, pod_keys(victims))
        results = await asyncio.gather(*(self._delete_one(key, rs, p) for p in victims))
        return next((r for r in results if r is not None), None)

    async def _delete_one(self, key: str, rs: Obj, pod: Obj) -> ApiError | None:
        md = pod["metadata"]
        involved = _involved(rs, KIND, "apps/v1")
        try:
            await self.pods.delete(md["name"], namespace=md["namespace"],
                                   tenant=md.get("tenant") or None,
                                   preconditions={"uid": md["uid"]})
        except ApiError as exc:
            self.expectations.deletion_observed(key, key_of(pod))
            if exc.not_found:
                return None
            self.events.emit(involved, "Warning", "FailedDelete", f"Error deleting: {exc}")
            return exc
        self.events.emit(involved, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")
        return None

    async def _write_status(self, rs: Obj, status: dict[str, Any]) -> None:
        if status == (rs.get("status") or {}):
            return
        md = rs["metadata"]
        body = {"apiVersion": "apps/v1", "kind": KIND, "status": status,
                "metadata": {k: md[k] for k in ("name", "namespace", "tenant") if k in md}}
        try:
            await self.replicasets.update(body, subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise


def _replicas(rs: Obj) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else 1
