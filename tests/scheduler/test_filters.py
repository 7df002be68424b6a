"""`arktos.scheduler.filters`: each filter's mask and reasons on small tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from arktos.scheduler import filters as f
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podinfo import PodInfo
from tests.scheduler.test_nodes import make_node, make_pod, rows, table_of

Obj = dict[str, Any]
HOST = "kubernetes.io/hostname"


def reasons(fil: f.Filter, table: NodeTable, pod: PodInfo) -> dict[str, int]:
    rejected = np.flatnonzero(table.live[: table.size] & ~fil.mask(table, pod))
    return dict(fil.reasons(table, pod, rejected))


def by_name(name: str) -> f.Filter:
    (found,) = [x for x in f.FILTERS if x.name == name]
    return found


def test_filter_order() -> None:
    assert [x.name for x in f.FILTERS] == [
        "RuntimeReady", "NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
        "NodeResourcesFit", "InterPodAffinity"]


def test_dead_rows_never_pass() -> None:
    table = table_of(make_node("a"), make_node("b"), make_node("c"))
    table.remove_node("b")
    pod = make_pod("p", tolerations=[{"operator": "Exists"}])
    for fil in f.FILTERS:
        assert not fil.mask(table, pod)[1], fil.name
    assert rows(f.feasible(table, pod)) == [0, 2]


# --- RuntimeReady ---------------------------------------------------------------------------

def runtime_table() -> NodeTable:
    return table_of(make_node("containers"), make_node("both", vm=True),
                    make_node("vm-only", vm=True, container=False), make_node("bare",
                                                                              container=None))


def test_runtime_ready_for_container_and_vm_pods() -> None:
    table = runtime_table()
    assert rows(f.runtime_ready(table, make_pod("c"))) == [0, 1, 3]
    assert rows(f.runtime_ready(table, make_pod("v", vm=True))) == [1, 2]
    fil = by_name("RuntimeReady")
    assert reasons(fil, table, make_pod("v", vm=True)) == {"VM runtime not ready": 2}
    assert reasons(fil, table, make_pod("c")) == {"container runtime not ready": 1}


def test_exists_noschedule_toleration_bypasses_runtime_readiness() -> None:
    table = runtime_table()
    bypass = make_pod("v", vm=True, tolerations=[{"key": "any", "operator": "Exists",
                                                  "effect": "NoSchedule"}])
    assert rows(f.runtime_ready(table, bypass)) == [0, 1, 2, 3]
    no_bypass = make_pod("v", vm=True, tolerations=[{"operator": "Exists"}])
    assert rows(f.runtime_ready(table, no_bypass)) == [1, 2]


# --- NodeUnschedulable, NodeName ---------------------------------------------------------------

def test_node_unschedulable() -> None:
    table = table_of(make_node("a", unschedulable=True), make_node("b"))
    assert rows(f.node_unschedulable(table, make_pod("p"))) == [1]
    assert reasons(by_name("NodeUnschedulable"), table, make_pod("p")) == {
        "node(s) were unschedulable": 1}
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                           "operator": "Exists", "effect": "NoSchedule"}])
    assert rows(f.node_unschedulable(table, tolerant)) == [0, 1]


def test_node_name() -> None:
    table = table_of(make_node("a"), make_node("b"))
    assert rows(f.node_name(table, make_pod("p"))) == [0, 1]
    assert rows(f.node_name(table, make_pod("p", nodeName="b"))) == [1]
    assert rows(f.node_name(table, make_pod("p", nodeName="zz"))) == []
    assert reasons(by_name("NodeName"), table, make_pod("p", nodeName="b")) == {
        "node(s) didn't match the requested node name": 1}


# --- TaintToleration -----------------------------------------------------------------------------

def taint(key: str, value: str, effect: str) -> Obj:
    return {"key": key, "value": value, "effect": effect}


def test_hard_taints_must_be_tolerated_and_soft_ones_need_not() -> None:
    table = table_of(make_node("clean"),
                     make_node("gpu", taints=[taint("gpu", "yes", "NoSchedule")]),
                     make_node("evict", taints=[taint("soft", "", "PreferNoSchedule"),
                                                taint("drain", "now", "NoExecute"),
                                                taint("gpu", "yes", "NoSchedule")]),
                     make_node("soft", taints=[taint("soft", "", "PreferNoSchedule")]))
    plain = make_pod("p")
    assert rows(f.taint_toleration(table, plain)) == [0, 3]
    assert reasons(by_name("TaintToleration"), table, plain) == {
        "node(s) had untolerated taint {gpu: yes}": 1,
        "node(s) had untolerated taint {drain: now}": 1}
    gpu = make_pod("g", tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes"}])
    assert rows(f.taint_toleration(table, gpu)) == [0, 1, 3]
    everything = make_pod("e", tolerations=[{"operator": "Exists"}])
    assert rows(f.taint_toleration(table, everything)) == [0, 1, 2, 3]


# --- NodeAffinity -----------------------------------------------------------------------------------

def required(*terms: Obj) -> Obj:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}


def expr(key: str, op: str, *values: str) -> Obj:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


def affinity_table() -> NodeTable:
    return table_of(make_node("a", labels={"zone": "x", "disk": "ssd"}),
                    make_node("b", labels={"zone": "y", "disk": "ssd"}),
                    make_node("c", labels={"zone": "z"}))


def test_node_selector_is_anded() -> None:
    table = affinity_table()
    pod = make_pod("p", nodeSelector={"disk": "ssd", "zone": "y"})
    assert rows(f.node_affinity(table, pod)) == [1]
    assert reasons(by_name("NodeAffinity"), table, pod) == {
        "node(s) didn't match Pod's node affinity/selector": 2}


def test_required_terms_are_ored_and_combined_with_the_selector() -> None:
    table = affinity_table()
    pod = make_pod("p", affinity=required(expr("zone", "In", "x"), expr("zone", "In", "z")))
    assert rows(f.node_affinity(table, pod)) == [0, 2]
    both = make_pod("p", nodeSelector={"disk": "ssd"},
                    affinity=required(expr("zone", "In", "x"), expr("zone", "In", "z")))
    assert rows(f.node_affinity(table, both)) == [0]
    fields = make_pod("p", affinity=required(
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}))
    assert rows(f.node_affinity(table, fields)) == [2]
    nothing = make_pod("p", affinity=required({}))
    assert rows(f.node_affinity(table, nothing)) == []


# --- NodeResourcesFit ---------------------------------------------------------------------------------

def test_resources_fit_and_kube_reasons() -> None:
    table = table_of(make_node("roomy"), make_node("small", cpu="1", memory="1Gi"),
                     make_node("full", pods="1"), make_node("no-mem", memory="0"))
    table.add_pod(make_pod("x"), "full")
    pod = make_pod("p", cpu="2", memory="2Gi")
    assert rows(f.resources_fit(table, pod)) == [0]
    assert reasons(by_name("NodeResourcesFit"), table, pod) == {
        "Insufficient cpu": 1, "Insufficient memory": 2, "Too many pods": 1}


def test_zero_requests_fit_an_overcommitted_node() -> None:
    table = table_of(make_node("n", cpu="1"))
    table.add_pod(make_pod("big", cpu="3"), "n")
    assert rows(f.resources_fit(table, make_pod("p"))) == [0]
    assert rows(f.resources_fit(table, make_pod("q", cpu="1m"))) == []


def test_ephemeral_storage() -> None:
    node = make_node("n")
    node["status"]["allocatable"]["ephemeral-storage"] = "1Gi"
    table = table_of(node, make_node("none"))
    spec = [{"name": "c", "resources": {"requests": {"ephemeral-storage": "512Mi"}}}]
    pod = make_pod("p", containers=spec)
    assert rows(f.resources_fit(table, pod)) == [0]
    assert reasons(by_name("NodeResourcesFit"), table, pod) == {
        "Insufficient ephemeral-storage": 1}


# --- InterPodAffinity ---------------------------------------------------------------------------------

def pod_term(app: str, key: str = HOST, **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key, **extra}


def anti(*terms: Obj) -> Obj:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def attract(*terms: Obj) -> Obj:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def zoned() -> NodeTable:
    return table_of(make_node("a1", labels={"zone": "a"}), make_node("a2", labels={"zone": "a"}),
                    make_node("b1", labels={"zone": "b"}), make_node("nozone"))


def test_anti_affinity_by_hostname_and_by_zone() -> None:
    table = zoned()
    table.add_pod(make_pod("db", labels={"app": "db"}), "a1")
    assert rows(f.pod_anti_affinity(table, make_pod("p", affinity=anti(pod_term("db"))))) == [
        1, 2, 3]
    by_zone = make_pod("p", affinity=anti(pod_term("db", "zone")))
    assert rows(f.pod_anti_affinity(table, by_zone)) == [2, 3]
    assert reasons(by_name("InterPodAffinity"), table, by_zone) == {
        "node(s) didn't match pod anti-affinity rules": 2}


def test_anti_affinity_only_sees_its_namespaces() -> None:
    table = zoned()
    table.add_pod(make_pod("db", labels={"app": "db"}, namespace="prod"), "a1")
    assert rows(f.pod_anti_affinity(table, make_pod("p", affinity=anti(pod_term("db"))))) == [
        0, 1, 2, 3]
    listed = make_pod("p", affinity=anti(pod_term("db", namespaces=["prod"])))
    assert rows(f.pod_anti_affinity(table, listed)) == [1, 2, 3]


def test_affinity_needs_a_selected_pod_in_the_domain() -> None:
    table = zoned()
    table.add_pod(make_pod("db", labels={"app": "db"}), "a2")
    pod = make_pod("p", affinity=attract(pod_term("db", "zone")))
    assert rows(f.pod_affinity(table, pod)) == [0, 1]
    assert reasons(by_name("InterPodAffinity"), table, pod) == {
        "node(s) didn't match pod affinity rules": 2}


def test_first_pod_of_a_self_affine_group_goes_anywhere_with_the_key() -> None:
    table = zoned()
    first = make_pod("p", labels={"app": "cache"}, affinity=attract(pod_term("cache", "zone")))
    assert rows(f.pod_affinity(table, first)) == [0, 1, 2]
    stranger = make_pod("q", labels={"app": "web"}, affinity=attract(pod_term("cache", "zone")))
    assert rows(f.pod_affinity(table, stranger)) == []


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    table = zoned()
    table.add_pod(make_pod("loner", labels={"app": "loner"},
                           affinity=anti(pod_term("web", "zone"))), "b1")
    web = make_pod("w", labels={"app": "web"})
    assert rows(f.existing_anti_affinity(table, web)) == [0, 1, 3]
    assert rows(f.inter_pod_affinity(table, web)) == [0, 1, 3]
    assert reasons(by_name("InterPodAffinity"), table, web) == {
        "node(s) didn't satisfy existing pods anti-affinity rules": 1}
    assert rows(f.inter_pod_affinity(table, make_pod("db", labels={"app": "db"}))) == [0, 1, 2, 3]


@pytest.mark.parametrize("symmetric", [False, True])
def test_tenant_isolation_of_anti_affinity(symmetric: bool) -> None:
    table = zoned()
    if symmetric:  # a tenant B pod's anti-affinity does not repel tenant A's pods
        table.add_pod(make_pod("b", tenant="globex", labels={"app": "db"},
                               affinity=anti(pod_term("db"))), "a1")
        pod = make_pod("p", labels={"app": "db"})
    else:  # a tenant A pod's anti-affinity does not see tenant B's pods
        table.add_pod(make_pod("b", tenant="globex", labels={"app": "db"}), "a1")
        pod = make_pod("p", labels={"app": "db"}, affinity=anti(pod_term("db")))
    assert rows(f.inter_pod_affinity(table, pod)) == [0, 1, 2, 3]
    assert rows(f.feasible(table, pod)) == [0, 1, 2, 3]


# --- combined -----------------------------------------------------------------------------------------

def test_rejections_count_each_node_under_its_first_filter() -> None:
    table = table_of(make_node("notready", container=False, unschedulable=True),
                     make_node("cordoned", unschedulable=True, cpu="0"),
                     make_node("tainted", taints=[taint("k", "v", "NoSchedule")], cpu="0"),
                     make_node("small", cpu="1"),
                     make_node("fits"))
    pod = make_pod("p", cpu="2")
    assert rows(f.feasible(table, pod)) == [4]
    assert f.rejections(table, pod) == {
        "container runtime not ready": 1, "node(s) were unschedulable": 1,
        "node(s) had untolerated taint {k: v}": 1, "Insufficient cpu": 1}


def test_static_mask_is_cached_per_signature_until_nodes_change() -> None:
    table = affinity_table()
    first = f.static_mask(table, make_pod("p", nodeSelector={"disk": "ssd"}))
    again = f.static_mask(table, make_pod("q", nodeSelector={"disk": "ssd"}))
    assert again is first and rows(first) == [0, 1] and not first.flags.writeable
    table.upsert_node(make_node("c", labels={"zone": "z", "disk": "ssd"}))
    assert rows(f.static_mask(table, make_pod("q", nodeSelector={"disk": "ssd"}))) == [0, 1, 2]
