"""Pure decisions for emptying a namespace or a tenant before it is finalized: which kinds to
delete and in what order, and how long to wait for content that is still going. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from arktos.api.meta import parse_time
from arktos.api.resources import ResourceType, Scope
from arktos.client.store import Obj

RETRY_WAIT = 1.0
"""Seconds before looking again at content not marked for deletion yet (created meanwhile)."""
FINALIZER_WAIT = 5.0
"""Seconds before looking again at content another controller must finalize."""
MAX_WAIT = 30.0
"""Longest wait between checks (a pod's node agent may never confirm)."""


def deletion_order(types: Iterable[ResourceType], scope: Scope) -> list[ResourceType]:
    """The listable kinds of `scope`, Namespace first (deleting namespaces cascades through the
    namespace controller, so it starts the longest work first), then registry order."""
    kinds = [t for t in types if t.scope is scope and "list" in t.verbs]
    return sorted(kinds, key=lambda t: t.kind != "Namespace")


def deleting(obj: Obj | None) -> bool:
    """Whether `obj` exists and has been asked to go (`deletionTimestamp` set)."""
    return obj is not None and bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def has_finalizers(obj: Obj) -> bool:
    """Whether finalizers (metadata, or spec for namespaces/tenants) hold the object."""
    return bool((obj.get("metadata") or {}).get("finalizers")
                or (obj.get("spec") or {}).get("finalizers"))


def wait_for(obj: Obj, now: datetime) -> float:
    """Seconds until `obj`, which was asked to go, may be gone."""
    md = obj.get("metadata") or {}
    stamp = md.get("deletionTimestamp")
    if not stamp:
        return RETRY_WAIT
    if has_finalizers(obj):
        return FINALIZER_WAIT
    grace = int(md.get("deletionGracePeriodSeconds") or 0)
    left = ((parse_time(stamp) or now) - now).total_seconds() + grace
    return max(RETRY_WAIT, left)


def wait_seconds(remaining: Iterable[Obj], now: datetime) -> float | None:
    """When to check again for `remaining` content; None when nothing remains."""
    waits = [wait_for(obj, now) for obj in remaining]
    return min(MAX_WAIT, max(waits)) if waits else None

