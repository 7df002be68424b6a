"""Pure rules of the garbage collector (no server)."""

from __future__ import annotations

import pytest

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Scope
from arktos.controllers.gc_refs import (
    FOREGROUND,
    ORPHAN,
    Action,
    OwnerState,
    blocks,
    decide,
    owner_place,
    owner_refs,
    owner_type,
    pending,
    refs_without,
    relevant,
    state_of,
)

S, F, A, U, I = (OwnerState.SOLID, OwnerState.FOREGROUND, OwnerState.ABSENT,
                 OwnerState.UNKNOWN, OwnerState.IGNORED)


@pytest.mark.parametrize(("states", "action"), [
    ([], Action.KEEP),
    ([S], Action.KEEP),
    ([S, A], Action.KEEP),
    ([S, U], Action.KEEP),
    ([S, F], Action.UNBLOCK),
    ([U], Action.VERIFY),
    ([U, A], Action.VERIFY),
    ([U, F], Action.VERIFY),
    ([F], Action.DELETE_FOREGROUND),
    ([F, A], Action.DELETE_FOREGROUND),
    ([A], Action.DELETE_BACKGROUND),
    ([A, A, I], Action.DELETE_BACKGROUND),
    ([I], Action.KEEP),
    ([I, I], Action.KEEP),
])
def test_decide(states: list[OwnerState], action: Action) -> None:
    assert decide(states) is action


@pytest.mark.parametrize(("dependent", "owner", "place"), [
    (Scope.NAMESPACE, Scope.NAMESPACE, ("t", "ns")),
    (Scope.NAMESPACE, Scope.TENANT, ("t", "")),
    (Scope.NAMESPACE, Scope.CLUSTER, ("", "")),
    (Scope.TENANT, Scope.TENANT, ("t", "")),
    (Scope.TENANT, Scope.CLUSTER, ("", "")),
    (Scope.TENANT, Scope.NAMESPACE, None),
    (Scope.CLUSTER, Scope.CLUSTER, ("", "")),
    (Scope.CLUSTER, Scope.TENANT, None),
    (Scope.CLUSTER, Scope.NAMESPACE, None),
])
def test_owner_place(dependent: Scope, owner: Scope, place: tuple[str, str] | None) -> None:
    tenant, namespace = ("t", "ns") if dependent is Scope.NAMESPACE else (
        ("t", "") if dependent is Scope.TENANT else ("", ""))
    assert owner_place(dependent, tenant, namespace, owner) == place


def test_owner_type_by_group_and_kind() -> None:
    rs = owner_type({"apiVersion": "apps/v1", "kind": "ReplicaSet"}, REGISTRY)
    assert rs is not None and rs.plural == "replicasets"
    cm = owner_type({"apiVersion": "v1", "kind": "ConfigMap"}, REGISTRY)
    assert cm is not None and cm.plural == "configmaps"
    assert owner_type({"apiVersion": "v1", "kind": "ReplicaSet"}, REGISTRY) is None
    assert owner_type({"apiVersion": "example.com/v1", "kind": "Widget"}, REGISTRY) is None


def ref(uid: str, block: bool | None = None) -> dict[str, object]:
    out: dict[str, object] = {"apiVersion": "v1", "kind": "ConfigMap", "name": f"n-{uid}",
                              "uid": uid}
    if block is not None:
        out["blockOwnerDeletion"] = block
    return out


def obj(*refs: dict[str, object], **md: object) -> dict[str, object]:
    return {"metadata": {"name": "d", "uid": "d", "ownerReferences": list(refs), **md}}


def test_refs_and_blocking() -> None:
    dep = obj(ref("a", True), ref("b", False), ref("c"), {"kind": "broken"})
    assert [r["uid"] for r in owner_refs(dep)] == ["a", "b", "c"]
    assert [r.get("uid") for r in refs_without(dep, {"a", "c"})] == ["b", None]
    assert blocks(dep, "a") and not blocks(dep, "b") and not blocks(dep, "c")
    assert not blocks(dep, "zzz")


def test_pending_state_and_relevance() -> None:
    stamp = "2030-01-01T00:00:00Z"
    fg = obj(uid="o", deletionTimestamp=stamp, finalizers=[FOREGROUND])
    orphan = obj(uid="o", deletionTimestamp=stamp, finalizers=[ORPHAN])
    assert pending(fg, FOREGROUND) and not pending(fg, ORPHAN)
    assert not pending(obj(uid="o", finalizers=[ORPHAN]), ORPHAN)
    assert state_of(fg, "o") is OwnerState.FOREGROUND
    assert state_of(orphan, "o") is OwnerState.SOLID
    assert state_of(orphan, "other") is OwnerState.ABSENT
    assert state_of(None, "o") is OwnerState.ABSENT
    plain = {"metadata": {"name": "x"}}
    assert not relevant(plain) and relevant(obj(ref("a"))) and relevant(orphan)
