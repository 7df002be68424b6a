"""Pure rules of the garbage collector: where an owner may live, what state an owner is in,
and what to do with a dependent given the states of its owners. No I/O.

Scope rules (tenancy): a cluster-scoped owner may own anything; a tenant-scoped owner only
objects of its own tenant; a namespaced owner only namespaced objects of its own tenant and
namespace. A cluster-scoped object can only be owned by cluster-scoped ones.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from arktos.api.resources import Registry, ResourceType, Scope
from arktos.client.store import Obj

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
Ref = dict[str, Any]


class OwnerState(enum.Enum):
    """What one ownerReference of a dependent points at."""

    SOLID = "solid"
    """Present and not waiting for its dependents (also: of a kind that cannot be checked)."""
    FOREGROUND = "foreground"
    """Present, being deleted in the foreground: waiting for its dependents to go."""
    ABSENT = "absent"
    """Confirmed gone: the API answered 404, or another uid has its name."""
    UNKNOWN = "unknown"
    """Not in the informers: to be confirmed with a GET before anything is deleted."""
    IGNORED = "ignored"
    """Not an owner this dependent can have (another tenant, an impossible scope)."""


class Action(enum.Enum):
    """What to do with a dependent."""

    KEEP = "keep"
    VERIFY = "verify"
    """Confirm the UNKNOWN owners with GETs, then decide again."""
    UNBLOCK = "unblock"
    """Remove the references to owners deleted in the foreground (a solid owner keeps it)."""
    DELETE_FOREGROUND = "delete-foreground"
    DELETE_BACKGROUND = "delete-background"


def decide(states: Iterable[OwnerState]) -> Action:
    """The action for a dependent (not itself being deleted) whose owners are in `states`.

    A solid owner keeps it; an unconfirmed owner must be checked first; an owner deleted in
    the foreground takes it along (foreground, so the chain below goes first); when every
    owner that counts is confirmed absent it goes. Ignored references never count."""
    seen = set(states)
    if OwnerState.SOLID in seen:
        return Action.UNBLOCK if OwnerState.FOREGROUND in seen else Action.KEEP
    if OwnerState.UNKNOWN in seen:
        return Action.VERIFY
    if OwnerState.FOREGROUND in seen:
        return Action.DELETE_FOREGROUND
    if OwnerState.ABSENT in seen:
        return Action.DELETE_BACKGROUND
    return Action.KEEP


def owner_place(dependent: Scope, tenant: str, namespace: str,
                owner: Scope) -> tuple[str, str] | None:
    """(tenant, namespace) where an owner of scope `owner` of a dependent in (`tenant`,
    `namespace`) must live; None when a dependent of that scope cannot have such an owner."""
    if owner is Scope.CLUSTER:
        return ("", "")
    if dependent is Scope.CLUSTER:
        return None
    if owner is Scope.TENANT:
        return (tenant, "")
    return (tenant, namespace) if dependent is Scope.NAMESPACE else None


def owner_type(ref: Ref, registry: Registry) -> ResourceType | None:
    """The served kind an ownerReference names, by group and kind (None when not served)."""
    group = str(ref.get("apiVersion", "")).rpartition("/")[0]
    return registry.by_kind(group, str(ref.get("kind", "")))


def metadata(obj: Obj) -> dict[str, Any]:
    md: dict[str, Any] = obj.get("metadata") or {}
    return md


def owner_refs(obj: Obj) -> list[Ref]:
    """The well-formed ownerReferences of `obj`."""
    return [r for r in metadata(obj).get("ownerReferences") or []
            if isinstance(r, dict) and r.get("uid") and r.get("name")]


def refs_without(obj: Obj, uids: set[str]) -> list[Ref]:
    """`obj`'s ownerReferences (as stored) minus those to `uids`."""
    return [r for r in metadata(obj).get("ownerReferences") or []
            if not (isinstance(r, dict) and r.get("uid") in uids)]


def blocks(dependent: Obj, owner_uid: str) -> bool:
    """Whether `dependent` must be gone before its owner `owner_uid` may go."""
    return any(r["uid"] == owner_uid and r.get("blockOwnerDeletion") is True
               for r in owner_refs(dependent))


def finalizers(obj: Obj) -> list[str]:
    return [str(f) for f in metadata(obj).get("finalizers") or []]


def pending(obj: Obj, finalizer: str) -> bool:
    """Whether `obj` is being deleted and waits for `finalizer` (orphan, foregroundDeletion)."""
    return bool(metadata(obj).get("deletionTimestamp")) and finalizer in finalizers(obj)


def state_of(owner: Obj | None, uid: str) -> OwnerState:
    """The state of the owner `uid` given the object found at its name (None: nothing)."""
    if owner is None or metadata(owner).get("uid") != uid:
        return OwnerState.ABSENT
    return OwnerState.FOREGROUND if pending(owner, FOREGROUND) else OwnerState.SOLID


def relevant(obj: Obj) -> bool:
    """Whether the collector has anything to check about `obj` (as dependent or owner)."""
    return bool(owner_refs(obj)) or pending(obj, ORPHAN) or pending(obj, FOREGROUND)
