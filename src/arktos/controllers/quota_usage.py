"""Pure decisions of the resourcequota controller: which resources a quota counts, where
their objects are, which quotas a change of one object affects, and a quota's status.

What an object uses, which quotas apply to it (tenant, namespace, scopes) and how usage is
formatted are `arktos.api.quota`'s, shared with admission; nothing here counts on its own.
No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from arktos.api import quota
from arktos.api.resources import ResourceType
from arktos.client.store import Obj

STANDARD_RESOURCES = ("pods", *quota.LEGACY_COUNTS)
"""Resources watched from the start (the ones the standard quota names count)."""


def served_type(qualified: str, types: Iterable[ResourceType]) -> ResourceType | None:
    """The served, listable and watchable resource type named exactly `qualified` whose objects
    belong to a tenant (None: nothing a quota could count)."""
    for rt in types:
        if rt.qualified == qualified:
            listable = "list" in rt.verbs and "watch" in rt.verbs
            return rt if listable and rt.tenanted else None
    return None


def scope_index(q: Obj) -> tuple[str, str]:
    """The informer index and value (see `arktos.client.store`) holding every object the quota
    may count: `("tenant", t)` for a tenant-wide quota, else `("namespace", "t/ns")`."""
    md = q.get("metadata") or {}
    tenant = str(md.get("tenant", ""))
    if quota.tenant_scoped(q):
        return "tenant", tenant
    return "namespace", f"{tenant}/{md.get('namespace', '')}"


def quota_homes(tenant: str, namespace: str) -> list[str]:
    """The `namespace` index values of the quotas that may count an object of `tenant` and
    `namespace`: that namespace's, and the tenant's `kube-system` (tenant-wide quotas)."""
    homes = [f"{tenant}/{namespace}"] if namespace else []
    tenant_home = f"{tenant}/{quota.TENANT_QUOTA_NAMESPACE}"
    return homes if tenant_home in homes else [*homes, tenant_home]


def usage_in(q: Obj, qualified: str, obj: Obj | None) -> quota.Usage:
    """What `obj` (None: absent) adds to the quota, for every name it limits (zero included)."""
    return quota.quota_usage(q, [] if obj is None else [(qualified, obj)])


def quotas_to_sync(qualified: str, old: Obj | None, new: Obj | None,
                   quotas: Iterable[Obj]) -> list[Obj]:
    """The quotas whose usage changes when one object of `qualified` goes from `old` to `new`
    (None: absent, so an add or a delete); a change that moves no counted usage (a resync, a
    label edit, a pod status update before it is terminal) affects none."""
    return [q for q in quotas if usage_in(q, qualified, old) != usage_in(q, qualified, new)]


def desired_status(q: Obj, objects: Iterable[tuple[str, Obj]]) -> Obj:
    """The quota's status recomputed from (qualified resource, object) pairs that include every
    object it counts (others are ignored): `hard` = `spec.hard`, `used` per hard name."""
    return quota.quota_status(q, quota.quota_usage(q, objects))


def status_outdated(q: Obj, status: Obj) -> bool:
    """Whether the quota's recorded `status.hard`/`status.used` differ from `status`."""
    current = q.get("status") or {}
    recorded = {"hard": current.get("hard") or {}, "used": current.get("used") or {}}
    return recorded != status
