"""The garbage collector's graph over indexed stores (no server)."""

from __future__ import annotations

from typing import Any

from arktos.api.kinds import REGISTRY
from arktos.client.resources import resource_type
from arktos.client.store import Indexer
from arktos.controllers.gc_graph import INDEXERS, Graph, Node
from arktos.controllers.gc_refs import FOREGROUND, OwnerState

CM = resource_type("configmaps")
ROLE = resource_type("clusterroles.rbac.authorization.k8s.io")
NODE = resource_type("nodes")


def configmap(name: str, tenant: str = "t", namespace: str = "ns", *refs: dict[str, Any],
              **md: Any) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {
        "name": name, "tenant": tenant, "namespace": namespace, "uid": f"{tenant}.{name}",
        "ownerReferences": list(refs), **md}}


def ref_to(owner: dict[str, Any], kind: str = "ConfigMap", api: str = "v1") -> dict[str, Any]:
    md = owner["metadata"]
    return {"apiVersion": api, "kind": kind, "name": md["name"], "uid": md["uid"]}


def graph(*objs: tuple[Any, dict[str, Any]]) -> Graph:
    stores = {rt.qualified: Indexer(INDEXERS) for rt in (CM, ROLE, NODE)}
    for rt, obj in objs:
        stores[rt.qualified].put(obj)
    return Graph([(rt, stores[rt.qualified]) for rt in (CM, ROLE, NODE)], REGISTRY)


def test_owner_in_the_same_namespace_resolves() -> None:
    owner = configmap("o")
    dep = configmap("d", "t", "ns", ref_to(owner))
    g = graph((CM, owner), (CM, dep))
    state, node = g.resolve(Node(CM, dep), ref_to(owner))
    assert state is OwnerState.SOLID and node is not None and node.obj is owner
    assert [n.obj for n in g.dependents(Node(CM, owner))] == [dep]
    assert g.get(Node(CM, dep).key) == Node(CM, dep)
    assert g.get("configmaps:t/ns/missing") is None and g.get("nosuch:t/ns/d") is None


def test_foreground_owner_and_missing_owner() -> None:
    owner = configmap("o", deletionTimestamp="2030-01-01T00:00:00Z", finalizers=[FOREGROUND])
    missing = configmap("m")
    dep = configmap("d", "t", "ns", ref_to(owner), ref_to(missing))
    g = graph((CM, owner), (CM, dep))
    assert g.resolve(Node(CM, dep), ref_to(owner))[0] is OwnerState.FOREGROUND
    assert g.resolve(Node(CM, dep), ref_to(missing))[0] is OwnerState.UNKNOWN


def test_same_name_with_another_uid_is_not_the_owner() -> None:
    old = configmap("o")
    new = configmap("o", uid="recreated")
    dep = configmap("d", "t", "ns", ref_to(old))
    g = graph((CM, new), (CM, dep))
    assert g.resolve(Node(CM, dep), ref_to(old))[0] is OwnerState.UNKNOWN
    assert g.dependents(Node(CM, new)) == []


def test_owner_in_another_tenant_is_ignored_also_after_it_is_deleted() -> None:
    owner = configmap("o", "a")
    dep = configmap("d", "b", "ns", ref_to(owner))
    g = graph((CM, owner), (CM, dep))
    assert g.resolve(Node(CM, dep), ref_to(owner))[0] is OwnerState.IGNORED
    assert g.dependents(Node(CM, owner)) == []
    g.stores["configmaps"][1].remove(Node(CM, owner).key.partition(":")[2])
    g.forget(Node(CM, owner))
    assert g.tombstones == {"a.o": "a"}
    assert g.resolve(Node(CM, dep), ref_to(owner))[0] is OwnerState.IGNORED
    g.stores["configmaps"][1].remove("b/ns/d")
    g.forget(Node(CM, dep))
    assert g.tombstones == {}


def test_owner_in_another_namespace_or_impossible_scope() -> None:
    owner = configmap("o", "t", "other")
    dep = configmap("d", "t", "ns", ref_to(owner))
    g = graph((CM, owner), (CM, dep))
    assert g.resolve(Node(CM, dep), ref_to(owner))[0] is OwnerState.UNKNOWN
    assert g.dependents(Node(CM, owner)) == []
    role = {"metadata": {"name": "r", "tenant": "t", "uid": "r",
                         "ownerReferences": [ref_to(owner)]}}
    assert g.resolve(Node(ROLE, role), ref_to(owner))[0] is OwnerState.IGNORED


def test_cluster_scoped_owner_owns_objects_of_any_tenant() -> None:
    node = {"metadata": {"name": "n1", "uid": "n1"}}
    node_ref = ref_to(node, kind="Node")
    deps = [configmap("d", t, "ns", node_ref) for t in ("a", "b")]
    g = graph((NODE, node), *((CM, d) for d in deps))
    assert sorted(n.tenant for n in g.dependents(Node(NODE, node))) == ["a", "b"]
    assert g.resolve(Node(CM, deps[0]), node_ref)[0] is OwnerState.SOLID
    assert [o.obj for o in g.owners(Node(CM, deps[1]), [node_ref])] == [node]


def test_unserved_owner_kind_is_assumed_present() -> None:
    dep = configmap("d", "t", "ns", {"apiVersion": "x.io/v1", "kind": "W", "name": "w",
                                     "uid": "w"})
    g = graph((CM, dep))
    ref = dep["metadata"]["ownerReferences"][0]
    assert g.resolve(Node(CM, dep), ref)[0] is OwnerState.SOLID
