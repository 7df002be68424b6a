"""`arktos.scheduler.nodes`: the node table, its indexes and the pods on it.

The builders `make_node` and `make_pod` are shared by the other scheduler tests.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from arktos.scheduler.nodes import NodeTable, node_state
from arktos.scheduler.podindex import MAX_SELECTORS
from arktos.scheduler.podinfo import (
    CPU,
    MEMORY,
    PODS,
    NodeRequirement,
    NodeTerm,
    PodInfo,
    PodSelector,
    Taint,
    pod_info,
)

Obj = dict[str, Any]
GI = 2**30


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
              unschedulable: bool = False, vm: bool = False,
              container: bool | None = True) -> Obj:
    """A Node: `vm` adds VmRuntimeReady=True; `container` None leaves out the condition."""
    conditions = [{"type": "Ready", "status": "True"}]
    if container is not None:
        conditions.append({"type": "ContainerRuntimeReady", "status": str(container)})
    if vm:
        conditions.append({"type": "VmRuntimeReady", "status": "True"})
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    spec: Obj = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": spec, "status": {"allocatable": resources, "conditions": conditions}}


def make_pod(name: str, *, cpu: str | None = None, memory: str | None = None,
             tenant: str = "acme", namespace: str = "dev", vm: bool = False,
             labels: dict[str, str] | None = None, owner: str = "", **spec: Any) -> PodInfo:
    """A parsed pod; `spec` keys are merged into its spec."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    workload = {"name": name, "resources": {"requests": requests}}
    body: Obj = {"virtualMachine": workload} if vm else {"containers": [workload]}
    meta: Obj = {"name": name, "namespace": namespace, "tenant": tenant, "uid": f"uid-{name}",
                 "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return pod_info({"metadata": meta, "spec": {**body, **spec}})


def table_of(*nodes: Obj, capacity: int = 64) -> NodeTable:
    table = NodeTable(capacity)
    for node in nodes:
        table.upsert_node(node)
    return table


def rows(mask: Any) -> list[int]:
    return [int(r) for r in np.flatnonzero(mask)]


# --- nodes ------------------------------------------------------------------------------------

def test_node_state_parsing() -> None:
    node = make_node("n1", cpu="1500m", memory="1Gi", pods="10", vm=True,
                     taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    state = node_state(node)
    assert state.allocatable == (1500.0, float(GI), 0.0, 10.0)
    assert state.taints == (Taint("k", "v", "NoSchedule"),)
    assert (state.container_ready, state.vm_ready, state.unschedulable) == (True, True, False)


def test_allocatable_falls_back_to_capacity() -> None:
    node = {"metadata": {"name": "n"}, "status": {
        "capacity": {"cpu": "8", "memory": "2Gi", "pods": "20"}, "allocatable": {"cpu": "6"}}}
    assert node_state(node).allocatable == (6000.0, 2.0 * GI, 0.0, 20.0)


def test_runtime_readiness_defaults() -> None:
    bare = node_state(make_node("n", container=None))
    assert (bare.container_ready, bare.vm_ready) == (True, False)
    down = node_state(make_node("n", container=False, vm=True))
    assert (down.container_ready, down.vm_ready) == (False, True)


def test_rows_are_reused_and_arrays_grow() -> None:
    table = table_of(*(make_node(f"n{i}") for i in range(5)), capacity=2)
    assert table.capacity == 8 and table.size == 5 and len(table) == 5
    assert table.remove_node("n1") and not table.remove_node("n1")
    assert "n1" not in table and "n2" in table
    assert not table.live[1] and table.allocatable[1].tolist() == [0.0] * 4
    table.upsert_node(make_node("n9", cpu="2"))
    assert table.row_of("n9") == 1 and table.size == 5
    assert table.node_names() == ["n0", "n9", "n2", "n3", "n4"]
    assert table.allocatable[1, CPU] == 2000.0


def test_version_moves_only_when_static_filters_would_see_a_change() -> None:
    table = table_of(make_node("n"))
    version = table.version
    table.upsert_node(make_node("n", cpu="8"))  # capacity: no static filter reads it
    assert table.version == version and table.allocatable[0, CPU] == 8000.0
    table.upsert_node(make_node("n", cpu="8", labels={"zone": "a"}))
    assert table.version == version + 1
    assert rows(table.label_rows("zone", ("a",))) == [0]
    table.upsert_node(make_node("n", cpu="8", labels={"zone": "b"}, unschedulable=True))
    assert rows(table.label_rows("zone", ("a",))) == []
    assert rows(table.label_rows("zone", ("b",))) == [0] and table.unschedulable[0]


def test_memo_lasts_until_the_version_changes() -> None:
    table = table_of(make_node("n"))
    calls: list[int] = []

    def compute(value: int) -> int:
        calls.append(value)
        return value
    assert table.memo("k", lambda: compute(1)) == 1
    assert table.memo("k", lambda: compute(2)) == 1
    table.upsert_node(make_node("m"))
    assert table.memo("k", lambda: compute(3)) == 3
    assert calls == [1, 3]


def test_label_codes_are_reused() -> None:
    table = table_of(make_node("a", labels={"zone": "x"}), make_node("b", labels={"zone": "y"}))
    col = table.labels.get("zone")
    assert col is not None and col.codes == {"x": 0, "y": 1}
    table.remove_node("a")
    table.upsert_node(make_node("c", labels={"zone": "z"}))
    assert col.codes == {"y": 1, "z": 0}
    assert rows(table.label_rows("zone", ("z", "y"))) == [0, 1]
    assert rows(table.label_rows("zone", ("x",))) == []


# --- requirements -------------------------------------------------------------------------------

def test_requirement_rows_per_operator() -> None:
    table = table_of(make_node("a", labels={"zone": "x", "gen": "3"}),
                     make_node("b", labels={"zone": "y", "gen": "10"}),
                     make_node("c", labels={"gen": "new"}))
    cases = [(NodeRequirement("zone", "In", ("x", "y")), [0, 1]),
             (NodeRequirement("zone", "NotIn", ("x",)), [1, 2]),
             (NodeRequirement("zone", "Exists"), [0, 1]),
             (NodeRequirement("zone", "DoesNotExist"), [2]),
             (NodeRequirement("gen", "Gt", ("3",)), [1]),
             (NodeRequirement("gen", "Lt", ("10",)), [0]),
             (NodeRequirement("missing", "In", ("x",)), []),
             (NodeRequirement("missing", "Gt", ("1",)), []),
             (NodeRequirement("metadata.name", "In", ("b",), field=True), [1]),
             (NodeRequirement("metadata.name", "NotIn", ("b",), field=True), [0, 2])]
    for req, expected in cases:
        assert rows(table.requirement_rows(req)) == expected, req


def test_term_rows_and_the_empty_term() -> None:
    table = table_of(make_node("a", labels={"zone": "x"}), make_node("b"))
    table.remove_node("b")
    not_x = NodeTerm((NodeRequirement("zone", "NotIn", ("x",)),))
    assert rows(table.term_rows(not_x)) == []  # the dead row never matches
    assert rows(table.term_rows(NodeTerm(()))) == []


# --- pods -----------------------------------------------------------------------------------------

def test_pods_add_to_requested_and_leave_free_consistent() -> None:
    table = table_of(make_node("n"))
    table.add_pod(make_pod("p1", cpu="1", memory="1Gi"), "n")
    table.add_pod(make_pod("p2", cpu="500m"), "n")
    assert table.requested[0].tolist() == [1500.0, float(GI), 0.0, 2.0]
    assert table.free[0].tolist() == [2500.0, 7.0 * GI, 0.0, 108.0]
    assert table.nonzero_requested[0].tolist() == [1500.0, GI + 200.0 * 2**20]
    assert table.remove_pod("acme/dev/p1") is not None and table.remove_pod("x") is None
    assert table.requested[0, CPU] == 500.0 and table.requested[0, PODS] == 1.0


def test_adding_a_pod_again_replaces_it() -> None:
    table = table_of(make_node("a"), make_node("b"))
    table.add_pod(make_pod("p", cpu="1"), "a")
    table.add_pod(make_pod("p", cpu="2"), "b")
    assert table.requested[:2, CPU].tolist() == [0.0, 2000.0]
    assert table.pod("acme/dev/p") is not None and [p.name for p in table.pods_on("b")] == ["p"]


def test_pods_of_unknown_nodes_attach_when_the_node_comes() -> None:
    table = table_of(make_node("a"))
    table.add_pod(make_pod("p", cpu="1", owner="rs"), "later")
    assert table.requested[0, PODS] == 0.0 and table.pods.spread_counts("acme", "rs") == {}
    table.upsert_node(make_node("later"))
    assert table.requested[1, CPU] == 1000.0
    assert table.pods.spread_counts("acme", "rs") == {1: 1}
    table.remove_node("later")
    assert table.pods.spread_counts("acme", "rs") == {}
    table.upsert_node(make_node("later"))
    assert table.pods.spread_counts("acme", "rs") == {1: 1}


def test_free_stays_allocatable_minus_requested() -> None:
    rng = random.Random(3)
    table = NodeTable(2)
    names = [f"n{i}" for i in range(6)]
    for step in range(400):
        action = rng.random()
        if action < 0.2:
            table.upsert_node(make_node(rng.choice(names), cpu=str(rng.randint(1, 8))))
        elif action < 0.3:
            table.remove_node(rng.choice(names))
        elif action < 0.7:
            table.add_pod(make_pod(f"p{rng.randint(0, 30)}", cpu=f"{rng.randint(1, 9)}00m"),
                          rng.choice(names))
        else:
            table.remove_pod(f"acme/dev/p{rng.randint(0, 30)}")
        size = table.size
        assert np.array_equal(table.free[:size],
                              table.allocatable[:size] - table.requested[:size]), step
    for name in names:
        row = table.row_of(name)
        if row is not None:
            expected = sum(p.request[CPU] for p in table.pods_on(name))
            assert table.requested[row, CPU] == expected


def test_selected_pods_are_counted_incrementally_and_per_tenant() -> None:
    table = table_of(make_node("a"), make_node("b"))
    table.add_pod(make_pod("db1", labels={"app": "db"}), "a")
    table.add_pod(make_pod("other", labels={"app": "db"}, tenant="globex"), "b")
    table.add_pod(make_pod("web", labels={"app": "web"}), "b")
    anti = make_pod("x", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}})
    pods = anti.anti_affinity[0].pods
    sel = table.pods.selected(pods)
    assert (sel.rows, sel.total) == ({0: 1}, 1)
    table.add_pod(make_pod("db2", labels={"app": "db"}), "b")
    table.add_pod(make_pod("db3", labels={"app": "db"}, namespace="prod"), "b")
    assert (sel.rows, sel.total) == ({0: 1, 1: 1}, 2)
    table.remove_pod("acme/dev/db1")
    assert (sel.rows, sel.total) == ({1: 1}, 1)
    assert table.pods.selected(pods) is sel


def test_unanchored_selectors_and_the_selector_bound() -> None:
    table = table_of(make_node("a"))
    table.add_pod(make_pod("p", labels={"tier": "x"}), "a")
    exists = make_pod("q", affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
             "topologyKey": "zone"}]}}).affinity[0].pods
    assert table.pods.selected(exists).rows == {0: 1}
    table.add_pod(make_pod("r", labels={"tier": "y"}), "a")
    assert table.pods.selected(exists).rows == {0: 2}
    for i in range(MAX_SELECTORS):
        table.pods.selected(PodSelector("acme", frozenset({f"ns{i}"}), exists.selector))
    assert table.pods.selected(exists).rows == {0: 2}  # dropped, then rebuilt


def test_anti_affinity_holders() -> None:
    table = table_of(make_node("a"), make_node("b"))
    spec = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}},
         "topologyKey": "kubernetes.io/hostname"}]}}
    holder = make_pod("h", labels={"app": "db"}, affinity=spec)
    table.add_pod(holder, "b")
    assert table.pods.has_holders("acme") and not table.pods.has_holders("globex")
    web = make_pod("w", labels={"app": "web"})
    assert table.pods.holders_selecting(web) == [(holder.anti_affinity[0], {1: 1})]
    assert table.pods.holders_selecting(make_pod("v", labels={"app": "db"})) == []
    assert table.pods.holders_selecting(make_pod("g", labels={"app": "web"},
                                                 tenant="globex")) == []
    table.remove_pod(holder.key)
    assert not table.pods.has_holders("acme") and table.pods.holders_selecting(web) == []


def test_spread_counts_per_tenant_and_owner() -> None:
    table = table_of(make_node("a"), make_node("b"))
    table.add_pod(make_pod("p1", owner="rs"), "a")
    table.add_pod(make_pod("p2", owner="rs"), "a")
    table.add_pod(make_pod("p3", owner="rs"), "b")
    table.add_pod(make_pod("p4", owner="rs", tenant="globex"), "b")
    assert table.pods.spread_counts("acme", "rs") == {0: 2, 1: 1}
    assert table.pods.spread_counts("globex", "rs") == {1: 1}
    assert table.requested[:2, MEMORY].tolist() == [0.0, 0.0]
