"""The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<hash>`,
selecting `pod-template-hash: <hash>`), rolled over by RollingUpdate (within maxSurge and
maxUnavailable) or Recreate, scaled proportionally when resized mid-rollout, old
ReplicaSets pruned to `revisionHistoryLimit`, and a status that `kubectl rollout status`
reads (counts, Available and Progressing conditions).

Revisions (`deployment.kubernetes.io/revision`) are the maximum of the other ReplicaSets plus
one for the current one, so re-applying an old template (or `kubectl rollout undo`) reuses
its ReplicaSet under a new revision. The math lives in `rollout`; this module reads the
informers and writes. It never acts on an informer copy older than its own latest write of
that object (`WriteTracker`): the write's event re-queues the Deployment instead.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import IndexFunc, Obj, by_owner_uid, key_of
from arktos.controllers import rollout
from arktos.controllers.base import Context, Controller
from arktos.controllers.podtemplate import (
    controlled_by,
    controller_of,
    controller_ref,
    equal_ignore_hash,
    selector_with_hash,
    template_hash,
    with_hash_label,
)
from arktos.controllers.replicaset import (
    ORPHAN_INDEX,
    OWNER_INDEX,
    EventSink,
    SelectorCache,
    adopt,
    controlled,
    orphans_by_namespace,
    owner_key,
    release,
    scope_key,
    scope_terminating,
)
from arktos.controllers.replicaset_logic import (
    WriteTracker,
    claim,
    is_active,
    is_available,
    is_ready,
    labels_of,
    parse_time,
    terminating,
)
from arktos.controllers.rollout import RS, Params

KIND = "Deployment"
REQUEUE_STALE = 1.0
"""Fallback delay when waiting for the informer to show our own write."""


def _annotations(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _optional_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _scale_message(name: str, old: int, new: int) -> str:
    return f"Scaled {'up' if new > old else 'down'} replica set {name} to {new}"


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        indexers: dict[str, IndexFunc] = {OWNER_INDEX: by_owner_uid,
                                          ORPHAN_INDEX: orphans_by_namespace}
        self.d_informer = ctx.informers.informer("deployments")
        self.rs_informer = ctx.informers.informer("replicasets", indexers=indexers)
        self.pod_informer = ctx.informers.informer("pods", indexers=indexers)
        self.deployments = ResourceClient(ctx.api, "deployments")
        self.replicasets = ResourceClient(ctx.api, "replicasets")
        self.selectors = SelectorCache()
        self.events = EventSink(ctx.recorder)
        self.written = WriteTracker()
        self._checks: dict[str, float] = {}
        self.watch(self.d_informer)
        self.d_informer.add_handler(Handler(on_delete=self.selectors.forget))
        self.rs_informer.add_handler(Handler(on_add=self._rs_changed,
                                             on_update=self._rs_updated,
                                             on_delete=self._rs_changed))
        self.pod_informer.add_handler(Handler(on_add=self._pod_changed,
                                              on_update=lambda _o, n: self._pod_changed(n),
                                              on_delete=self._pod_changed))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.events.run())
            await super().run()

    # --- informer events -------------------------------------------------------------------

    def _owner(self, rs: Obj) -> str | None:
        key = owner_key(rs, KIND)
        if key is None:
            return None
        d = self.d_informer.store.get(key)
        if d is None or d["metadata"].get("uid") != (controller_of(rs) or {}).get("uid"):
            return None
        return key

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner(rs)
        if key is not None:
            self.queue.add(key)
        elif controller_of(rs) is None:
            for d in self.d_informer.store.by_index("namespace", scope_key(rs)):
                selector = self.selectors.get(d)
                if selector is not None and not selector.empty \
                        and selector.matches(labels_of(rs)):
                    self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if controller_of(old) != controller_of(new) or labels_of(old) != labels_of(new):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_changed(self, pod: Obj) -> None:
        rs_key = owner_key(pod, "ReplicaSet")
        rs = self.rs_informer.store.get(rs_key) if rs_key else None
        if rs is not None and rs["metadata"].get("uid") == (controller_of(pod) or {}).get("uid"):
            key = self._owner(rs)
            if key is not None:
                self.queue.add(key)

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        d = self.d_informer.store.get(key)
        if d is None:
            self._checks.pop(key, None)
            return None
        if self.written.stale(key, d):
            return REQUEUE_STALE
        selector = self.selectors.get(d)
        if selector is None or selector.empty:
            self.events.emit(_involved(d), "Warning", "SelectingAll",
                             "This deployment is selecting all pods. A non-empty selector is "
                             "required.")
            return None
        owned = self._owned(d)
        found = claim(d["metadata"]["uid"], selector, owned, owner_deleting=terminating(d))
        if found.adopt or found.release:
            await self._adopt_release(d, found.adopt, found.release)
            return REQUEUE_STALE
        if any(self.written.stale(key_of(rs), rs) for rs in found.owned):
            return REQUEUE_STALE
        return self._deadline_check(key, await Sync(self, d, found.owned).run())

    def _deadline_check(self, key: str, after: float | None) -> float | None:
        """`after`, unless a check of `key` is already due at about that time (keeps one
        delayed entry per Deployment instead of one per pass)."""
        now = time.monotonic()
        due = self._checks.get(key)
        if after is None or (due is not None and now < due <= now + after + 1.0):
            return None
        self._checks[key] = now + after
        return after

    def _owned(self, d: Obj) -> list[Obj]:
        store = self.rs_informer.store
        return controlled(store, d) + store.by_index(ORPHAN_INDEX, scope_key(d))

    async def _adopt_release(self, d: Obj, orphans: list[Obj], strays: list[Obj]) -> None:
        uid = d["metadata"]["uid"]
        for rs in orphans:
            done = await adopt(self.replicasets, rs, d, KIND)
            if done is not None:
                self.written.wrote(done)
        for rs in strays:
            done = await release(self.replicasets, rs, uid)
            if done is not None:
                self.written.wrote(done)

    def view(self, rs: Obj) -> RS:
        """The rollout math's view of one ReplicaSet, pods counted from the pod informer."""
        md, spec, status = rs["metadata"], rs.get("spec") or {}, rs.get("status") or {}
        pods = controlled(self.pod_informer.store, rs)
        live = [p for p in pods if is_active(p)]
        min_ready, now = int(spec.get("minReadySeconds") or 0), time.time()
        annotations = md.get("annotations") or {}
        return RS(name=md["name"], replicas=int(spec.get("replicas") or 0),
                  created=parse_time(md.get("creationTimestamp")) or 0.0,
                  revision=rollout.revision_of(annotations),
                  desired=_optional_int(annotations.get(rollout.DESIRED_REPLICAS)),
                  max_replicas=_optional_int(annotations.get(rollout.MAX_REPLICAS)),
                  pods=len(live), ready=sum(1 for p in live if is_ready(p)),
                  available=sum(1 for p in live if is_available(p, min_ready, now)),
                  present=sum(1 for p in pods if (p.get("status") or {}).get("phase")
                              not in ("Succeeded", "Failed")),
                  synced=int(status.get("observedGeneration") or 0)
                  >= int(md.get("generation") or 0),
                  deleting=terminating(rs))


def _involved(d: Obj) -> Obj:
    return {**d, "kind": KIND, "apiVersion": "apps/v1"}


class Sync:
    """One pass over one Deployment: its ReplicaSets (objects and views), the status being
    built (`base`: the stored status plus conditions set during the pass) and the writes."""

    def __init__(self, ctl: DeploymentController, d: Obj, replicasets: list[Obj]) -> None:
        self.ctl = ctl
        self.d = d
        self.p = Params.of(d)
        self.objs = {rs["metadata"]["name"]: rs for rs in replicasets}
        self.views = {name: ctl.view(rs) for name, rs in self.objs.items()}
        self.stored_status: dict[str, Any] = copy.deepcopy(d.get("status") or {})
        self.base: dict[str, Any] = copy.deepcopy(self.stored_status)
        self.new_name: str | None = self._find_new()

    def _find_new(self) -> str | None:
        """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash)."""
        template = (self.d.get("spec") or {}).get("template")
        for rs in rollout.oldest_first(self.views.values()):
            if equal_ignore_hash((self.objs[rs.name].get("spec") or {}).get("template"),
                                 template):
                return rs.name
        return None

    @property
    def new(self) -> RS | None:
        return self.views.get(self.new_name) if self.new_name else None

    @property
    def olds(self) -> list[RS]:
        return [v for n, v in self.views.items() if n != self.new_name]

    @property
    def all(self) -> list[RS]:
        return list(self.views.values())

    async def run(self) -> float | None:
        if terminating(self.d):
            return await self.write_status(progress=False)
        cond = rollout.paused_condition(self.p, self.base, time.time())
        if cond is not None:
            rollout.set_condition(self.base, cond)
        if self.p.paused or rollout.is_scaling_event(self.p, self.all):
            return await self.resize()
        if self.p.recreate:
            return await self.recreate()
        return await self.rolling()

    # --- strategies ------------------------------------------------------------------------

    async def rolling(self) -> float | None:
        new = await self.sync_new(create=True)
        assert new is not None
        target = rollout.scale_new(self.p, self.all, new)
        if target is not None:
            await self.scale(new.name, target)
            return await self.write_status()
        downs = rollout.scale_old(self.p, self.olds, new)
        for name, size in downs.items():
            await self.scale(name, size)
        if not downs and rollout.complete(self.p, self.stored_status):
            await self.cleanup()
        return await self.write_status()

    async def recreate(self) -> float | None:
        new = await self.sync_new(create=False)
        scales, may_scale_up = rollout.recreate_step(self.p, self.olds, new)
        for name, size in scales.items():
            await self.scale(name, size)
        if may_scale_up:
            if new is None:
                await self.sync_new(create=True)
            if rollout.complete(self.p, self.stored_status):
                await self.cleanup()
        return await self.write_status()

    async def resize(self) -> float | None:
        """A paused Deployment or a replicas change: scale only, no new rollout step."""
        await self.sync_new(create=False)
        status_replicas = int(self.stored_status.get("replicas") or 0)
        for name, size in rollout.scale_step(self.p, self.new, self.olds,
                                             status_replicas).items():
            await self.scale(name, size)
        if self.p.paused:
            await self.cleanup()
        return await self.write_status(progress=False)

    # --- the new ReplicaSet ----------------------------------------------------------------

    async def sync_new(self, *, create: bool) -> RS | None:
        """The new ReplicaSet with its revision and annotations brought up to date (created
        when `create` and missing); the Deployment's revision annotation follows it."""
        revision = max((v.revision for v in self.olds), default=0) + 1
        if self.new_name is not None:
            await self._update_new(revision)
        elif create:
            await self._create_new(revision)
        new = self.new
        if new is not None:
            await self._set_revision(self.objs[new.name])
        return new

    async def _update_new(self, revision: int) -> None:
        assert self.new_name is not None
        rs = self.objs[self.new_name]
        annotations = rollout.new_rs_annotations(_annotations(self.d), _annotations(rs),
                                                 revision)
        spec = rs.get("spec") or {}
        if annotations != _annotations(rs) or \
                spec.get("minReadySeconds", 0) != self.p.min_ready_seconds:
            changed = copy.deepcopy(rs)
            changed["metadata"]["annotations"] = annotations
            changed["spec"]["minReadySeconds"] = self.p.min_ready_seconds
            await self._put(changed)
        if self.p.has_deadline and rollout.get_condition(self.base, "Progressing") is None:
            rollout.set_condition(self.base, rollout.new_condition(
                "Progressing", "True", rollout.FOUND_NEW_RS,
                f'Found new replica set "{self.new_name}"', time.time()))

    def _new_rs_body(self, revision: int, replicas: int) -> Obj:
        md, spec = self.d["metadata"], self.d.get("spec") or {}
        h = template_hash(spec.get("template"), self.stored_status.get("collisionCount"))
        template = with_hash_label(spec.get("template") or {}, h)
        annotations = rollout.replicas_annotations(
            rollout.new_rs_annotations(_annotations(self.d), {}, revision), self.p)
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{md['name']}-{h}", "namespace": md["namespace"],
                             "tenant": md.get("tenant", ""),
                             "labels": template["metadata"]["labels"],
                             "annotations": annotations,
                             "ownerReferences": [controller_ref(self.d, KIND)]},
                "spec": {"replicas": replicas, "minReadySeconds": self.p.min_ready_seconds,
                         "selector": selector_with_hash(spec.get("selector") or {}, h),
                         "template": template}}

    async def _create_new(self, revision: int) -> None:
        replicas = rollout.new_rs_replicas(self.p, self.olds, 0)
        body = self._new_rs_body(revision, replicas)
        name = body["metadata"]["name"]
        try:
            rs = await self.ctl.replicasets.create(body)
        except ApiError as exc:
            if exc.status != 409:
                if scope_terminating(exc):
                    raise
                self.ctl.events.emit(_involved(self.d), "Warning", "FailedCreate",
                                     f'Failed to create new replica set "{name}": {exc}')
                raise
            rs = await self._existing(body)
        else:
            if replicas > 0:
                self.ctl.events.emit(_involved(self.d), "Normal", "ScalingReplicaSet",
                                     _scale_message(name, 0, replicas))
            if self.p.has_deadline:
                rollout.set_condition(self.base, rollout.new_condition(
                    "Progressing", "True", rollout.NEW_RS_CREATED,
                    f'Created new replica set "{name}"', time.time()))
        self.ctl.written.wrote(rs)
        self.objs[name] = rs
        self.views[name] = self.ctl.view(rs)
        self.new_name = name

    async def _existing(self, body: Obj) -> Obj:
        """The ReplicaSet that has the new one's name: ours if it is the Deployment's with the
        same template; else a hash collision (collisionCount goes up, the pass is retried)."""
        md = body["metadata"]
        rs = await self.ctl.replicasets.get(md["name"], namespace=md["namespace"],
                                            tenant=md.get("tenant") or None)
        if controlled_by(rs, self.d["metadata"]["uid"]) and equal_ignore_hash(
                (rs.get("spec") or {}).get("template"), body["spec"]["template"]):
            return rs
        status = {**self.stored_status,
                  "collisionCount": int(self.stored_status.get("collisionCount") or 0) + 1}
        await self._put_status(status)
        raise ApiError(409, "AlreadyExists", f"hash collision on replica set {md['name']}")

    async def _set_revision(self, rs: Obj) -> None:
        revision = _annotations(rs).get(rollout.REVISION)
        if revision is None or _annotations(self.d).get(rollout.REVISION) == revision:
            return
        md = self.d["metadata"]
        patch = {"metadata": {"annotations": {rollout.REVISION: revision}}}
        self.d = await self.ctl.deployments.patch(md["name"], patch, namespace=md["namespace"],
                                                  tenant=md.get("tenant") or None)
        self.ctl.written.wrote(self.d)

    # --- writes ----------------------------------------------------------------------------

    async def _put(self, rs: Obj) -> None:
        """Update a ReplicaSet (resourceVersion precondition) and refresh its view."""
        updated = await self.ctl.replicasets.update(rs)
        self.ctl.written.wrote(updated)
        name = updated["metadata"]["name"]
        self.objs[name] = updated
        self.views[name] = self.ctl.view(updated)

    async def scale(self, name: str, replicas: int) -> None:
        """Set a ReplicaSet's replicas and its desired/max-replicas annotations."""
        rs = self.objs[name]
        old = int((rs.get("spec") or {}).get("replicas") or 0)
        annotations = rollout.replicas_annotations(_annotations(rs), self.p)
        if old == replicas and annotations == _annotations(rs):
            return
        changed = copy.deepcopy(rs)
        changed["spec"]["replicas"] = replicas
        changed["metadata"]["annotations"] = annotations
        await self._put(changed)
        if old != replicas:
            self.ctl.events.emit(_involved(self.d), "Normal", "ScalingReplicaSet",
                                 _scale_message(name, old, replicas))

    async def cleanup(self) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit (only empty ones)."""
        for name in rollout.to_delete(self.p, self.olds):
            md = self.objs[name]["metadata"]
            try:
                await self.ctl.replicasets.delete(name, namespace=md["namespace"],
                                                  tenant=md.get("tenant") or None,
                                                  preconditions={"uid": md["uid"]})
            except ApiError as exc:
                if not exc.not_found and not exc.conflict:
                    raise
            del self.objs[name], self.views[name]

    async def write_status(self, *, progress: bool = True) -> float | None:
        """Compute the status (with the Progressing condition when `progress`), store it if
        it changed, and say when to look again for the progress deadline."""
        now = time.time()
        new = self.new
        status = rollout.calculate_status(self.p, self.all, new, self.base, now)
        if progress:
            status = rollout.with_progress(self.p, status, self.base, self.d["metadata"]["name"],
                                           new.name if new else None, now)
            rollout.set_replica_failure(status, self._rs_conditions())
        if status != self.stored_status:
            await self._put_status(status)
        return rollout.requeue_after(self.p, status, now) if progress else None

    def _rs_conditions(self) -> list[list[dict[str, Any]]]:
        """The ReplicaSets' status conditions, the new ReplicaSet's first."""
        names = sorted(self.objs, key=lambda n: n != self.new_name)
        return [(self.objs[n].get("status") or {}).get("conditions") or [] for n in names]

    async def _put_status(self, status: dict[str, Any]) -> None:
        md = self.d["metadata"]
        body = {"apiVersion": "apps/v1", "kind": KIND, "status": status,
                "metadata": {k: md[k] for k in ("name", "namespace", "tenant") if k in md}}
        try:
            self.d = await self.ctl.deployments.update(body, subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise
            return
        self.ctl.written.wrote(self.d)
