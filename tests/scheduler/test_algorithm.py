"""`arktos.scheduler.algorithm`: decisions, sampling, messages, and a property test against a
naive pure-Python reference scheduler."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arktos.api.quantity import int_value, milli_value, parse_quantity
from arktos.api.quota import pod_resources
from arktos.scheduler import algorithm as alg
from arktos.scheduler.podinfo import pod_info
from arktos.scheduler.scores import Weights
from tests.scheduler.test_nodes import make_node, make_pod, table_of

Obj = dict[str, Any]
NO_SCORES = Weights(0, 0, 0, 0, 0, 0)


# --- sizes and messages -------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "percentage", "expected"), [
    (0, 0, 0), (50, 0, 50), (99, 10, 99), (100, 0, 100), (1000, 0, 420), (5000, 0, 500),
    (6000, 0, 300), (200, 10, 100), (1000, 30, 300), (1000, 100, 1000), (1000, 150, 1000),
])
def test_nodes_to_score(nodes: int, percentage: int, expected: int) -> None:
    assert alg.nodes_to_score(nodes, percentage) == expected


def test_failure_message_format() -> None:
    table = table_of(make_node("a", vm=True, cpu="1"), make_node("b", vm=True, cpu="1"),
                     make_node("c", vm=True, cpu="1"), make_node("d"), make_node("e"))
    decision = alg.schedule(table, make_pod("vm", vm=True, cpu="2"))
    assert decision == alg.Decision(None, 0, {"Insufficient cpu": 3, "VM runtime not ready": 2},
                                    "0/5 nodes are available: 3 Insufficient cpu, "
                                    "2 VM runtime not ready.")
    assert alg.fit_error_message(5, {"VM runtime not ready": 2, "Insufficient cpu": 3}) == (
        decision.message)


def test_no_nodes() -> None:
    decision = alg.schedule(table_of(), make_pod("p"))
    assert decision.node is None and decision.message == "no nodes available to schedule pods"


# --- choosing and rotating -----------------------------------------------------------------------

def test_the_best_score_wins() -> None:
    table = table_of(make_node("busy"), make_node("idle"))
    table.add_pod(make_pod("x", cpu="3"), "busy")
    assert alg.schedule(table, make_pod("p", cpu="100m")) == alg.Decision("idle", 2)


def test_ties_take_turns() -> None:
    table = table_of(*(make_node(f"n{i}") for i in range(3)))
    chosen = [alg.schedule(table, make_pod(f"p{i}"), weights=NO_SCORES).node for i in range(5)]
    assert chosen == ["n0", "n1", "n2", "n0", "n1"]
    assert alg.schedule(table, make_pod("q"), weights=NO_SCORES, start=2).node == "n2"
    assert table.next_start == 2  # an explicit start leaves the cursor alone


def test_only_a_rotating_sample_is_scored() -> None:
    table = table_of(*(make_node(f"n{i:03d}") for i in range(200)))
    table.add_pod(make_pod("x", cpu="4"), "n150")
    assert alg.nodes_to_score(200, 10) == 100
    first = alg.schedule(table, make_pod("p"), percentage_of_nodes_to_score=10)
    assert first.feasible == 200 and first.node == "n000" and table.next_start == 100
    table.upsert_node(make_node("n000", cpu="1"))
    table.add_pod(make_pod("y", cpu="1"), "n000")  # n000 is full now, and not in the sample
    second = alg.schedule(table, make_pod("q"), percentage_of_nodes_to_score=10)
    assert second.node == "n100" and table.next_start == 0  # rows 100..199 were scored


def test_the_sample_wraps_around() -> None:
    table = table_of(*(make_node(f"n{i:03d}") for i in range(200)))
    decision = alg.schedule(table, make_pod("p"), weights=NO_SCORES,
                            percentage_of_nodes_to_score=10, start=150)
    assert decision.node == "n150"
    assert alg.schedule(table, make_pod("p"), percentage_of_nodes_to_score=10).node == "n000"


def test_assume_forget_and_schedule_all() -> None:
    table = table_of(make_node("a", cpu="1"), make_node("b", cpu="1"))
    pods = [make_pod(f"p{i}", cpu="600m") for i in range(3)]
    decisions = alg.schedule_all(table, pods)
    assert sorted(d.node or "" for d in decisions) == ["", "a", "b"]
    assert decisions[2].reasons == {"Insufficient cpu": 2}
    alg.forget(table, pods[0])
    assert alg.schedule(table, pods[2]).node is not None
    alg.assume(table, pods[2], "a")
    assert table.pod(pods[2].key) is not None


def test_tenant_isolation_end_to_end() -> None:
    spread = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}},
         "topologyKey": "kubernetes.io/hostname"}]}}
    table = table_of(make_node("a"), make_node("b"))
    for tenant in ("acme", "globex"):
        for i in range(2):
            decision = alg.schedule(table, make_pod(f"db{i}", tenant=tenant,
                                                    labels={"app": "db"}, affinity=spread))
            assert decision.node is not None
            alg.assume(table, make_pod(f"db{i}", tenant=tenant, labels={"app": "db"},
                                       affinity=spread), decision.node)
    third = alg.schedule(table, make_pod("db2", labels={"app": "db"}, affinity=spread))
    assert third.reasons == {"node(s) didn't match pod anti-affinity rules": 2}


# --- property test against a naive reference ------------------------------------------------------

TAINTS = [{"key": "gpu", "value": "yes", "effect": "NoSchedule"},
          {"key": "drain", "value": "", "effect": "NoExecute"},
          {"key": "soft", "value": "", "effect": "PreferNoSchedule"}]
TOLERATIONS = [{"key": "gpu", "operator": "Equal", "value": "yes"},
               {"key": "drain", "operator": "Exists", "effect": "NoExecute"},
               {"operator": "Exists", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]
EXPRESSIONS = [{"key": "zone", "operator": "In", "values": ["a"]},
               {"key": "zone", "operator": "NotIn", "values": ["a"]},
               {"key": "zone", "operator": "DoesNotExist"},
               {"key": "gen", "operator": "Exists"},
               {"key": "gen", "operator": "Gt", "values": ["2"]},
               {"key": "gen", "operator": "Lt", "values": ["5"]}]
HOST = "kubernetes.io/hostname"

nodes_st = st.lists(st.fixed_dictionaries({
    "cpu": st.sampled_from(["0", "500m", "1", "2", "4"]),
    "memory": st.sampled_from(["0", "512Mi", "1Gi", "4Gi"]),
    "pods": st.sampled_from(["0", "1", "3", "110", "110"]),
    "zone": st.sampled_from([None, "a", "b"]),
    "gen": st.sampled_from([None, "1", "2", "5", "x"]),
    "host": st.booleans(),
    "taints": st.sampled_from([[], [], [], TAINTS[:1], TAINTS[1:2], TAINTS[2:], TAINTS[:2]]),
    "unschedulable": st.sampled_from([False] * 5 + [True]),
    "container": st.sampled_from([True, True, True, False, None]),
    "vm": st.booleans(),
}), min_size=2, max_size=7)

pods_st = st.lists(st.fixed_dictionaries({
    "vm": st.sampled_from([False, False, True]),
    "cpu": st.sampled_from([None, "100m", "500m", "1", "2"]),
    "memory": st.sampled_from([None, "256Mi", "1Gi"]),
    "tenant": st.sampled_from(["t1", "t2"]),
    "app": st.sampled_from(["x", "y"]),
    "selector": st.sampled_from([None, None, None, {"zone": "a"}, {"gen": "5"}]),
    "terms": st.one_of(st.none(), st.none(), st.lists(st.lists(st.sampled_from(EXPRESSIONS), min_size=1,
                                                    max_size=2), max_size=2)),
    "tolerations": st.lists(st.sampled_from(TOLERATIONS), max_size=2),
    "anti": st.sampled_from([None, HOST, HOST, "zone"]),
    "anti_app": st.sampled_from(["x", "y"]),
    "affinity": st.sampled_from([None, None, None, "zone"]),
    "node_name": st.sampled_from([None] * 7 + ["n0"]),
    "forget": st.sampled_from([False, False, False, True]),
}), min_size=6, max_size=24)


def node_json(i: int, n: Obj) -> Obj:
    labels = {k: n[k] for k in ("zone", "gen") if n[k] is not None}
    node = make_node(f"n{i}", cpu=n["cpu"], memory=n["memory"], pods=n["pods"], labels=labels,
                     taints=n["taints"], unschedulable=n["unschedulable"], vm=n["vm"],
                     container=n["container"])
    if not n["host"]:
        del node["metadata"]["labels"][HOST]
    return node


def pod_json(i: int, p: Obj) -> Obj:
    requests = {k: p[k] for k in ("cpu", "memory") if p[k] is not None}
    workload = {"name": "w", "resources": {"requests": requests}}
    spec: Obj = {"virtualMachine": workload} if p["vm"] else {"containers": [workload]}
    affinity: Obj = {}
    if p["terms"] is not None:
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": t} for t in p["terms"]]}}
    for kind, key, app in (("podAntiAffinity", p["anti"], p["anti_app"]),
                           ("podAffinity", p["affinity"], "x")):
        if key is not None:
            affinity[kind] = {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}
    spec.update(affinity=affinity, tolerations=p["tolerations"],
                nodeSelector=p["selector"] or {}, nodeName=p["node_name"] or "")
    return {"metadata": {"name": f"p{i}", "namespace": "dev", "tenant": p["tenant"],
                         "labels": {"app": p["app"]}}, "spec": spec}


class Reference:
    """A naive scheduler over the raw JSON, node by node, written from the rules alone."""

    def __init__(self, nodes: list[Obj]) -> None:
        self.nodes = nodes
        self.placed: dict[str, tuple[Obj, Obj]] = {}  # pod name -> (pod, node)

    @staticmethod
    def requests(pod: Obj) -> list[int]:
        req = pod_resources(pod)[0]
        zero = parse_quantity("0")
        return [milli_value(req.get("cpu", zero)), int_value(req.get("memory", zero))]

    def free(self, node: Obj) -> list[int]:
        alloc = node["status"]["allocatable"]
        free = [milli_value(parse_quantity(alloc["cpu"])),
                int_value(parse_quantity(alloc["memory"])), int_value(parse_quantity(alloc["pods"]))]
        for pod, on in self.placed.values():
            if on is node:
                cpu, memory = self.requests(pod)
                free = [free[0] - cpu, free[1] - memory, free[2] - 1]
        return free

    def pods_near(self, node: Obj, key: str) -> list[Obj]:
        """Placed pods in the node's `key` domain."""
        value = node["metadata"]["labels"].get(key)
        return [] if value is None else [
            p for p, on in self.placed.values() if on["metadata"]["labels"].get(key) == value]

    def reasons(self, pod: Obj, node: Obj) -> list[str]:
        """Why `node` rejects `pod` (by the first failing rule); empty: it fits."""
        for check in (self.runtime, self.cordon, self.name, self.taints, self.labels, self.fit,
                      self.pod_rules):
            found = check(pod, node)
            if found:
                return found
        return []

    def runtime(self, pod: Obj, node: Obj) -> list[str]:
        spec = pod["spec"]
        if any(t.get("operator") == "Exists" and t.get("effect") == "NoSchedule"
               for t in spec["tolerations"]):
            return []
        kind = "VmRuntimeReady" if "virtualMachine" in spec else "ContainerRuntimeReady"
        status = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        default = "True" if kind == "ContainerRuntimeReady" else "False"
        if status.get(kind, default) == "True":
            return []
        return ["VM runtime not ready" if "virtualMachine" in spec
                else "container runtime not ready"]

    @staticmethod
    def tolerates(tol: Obj, taint: Obj) -> bool:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            return False
        if tol.get("key") and tol["key"] != taint["key"]:
            return False
        return bool(tol.get("operator") == "Exists" or tol.get("value", "") == taint["value"])

    def cordon(self, pod: Obj, node: Obj) -> list[str]:
        cordon = {"key": "node.kubernetes.io/unschedulable", "value": "", "effect": "NoSchedule"}
        if node["spec"].get("unschedulable") and not any(
                self.tolerates(t, cordon) for t in pod["spec"]["tolerations"]):
            return ["node(s) were unschedulable"]
        return []

    def name(self, pod: Obj, node: Obj) -> list[str]:
        wanted = pod["spec"]["nodeName"]
        if wanted and wanted != node["metadata"]["name"]:
            return ["node(s) didn't match the requested node name"]
        return []

    def taints(self, pod: Obj, node: Obj) -> list[str]:
        for taint in node["spec"]["taints"]:
            if taint["effect"] != "PreferNoSchedule" and not any(
                    self.tolerates(t, taint) for t in pod["spec"]["tolerations"]):
                return [f"node(s) had untolerated taint {{{taint['key']}: {taint['value']}}}"]
        return []

    @staticmethod
    def matches(expr: Obj, labels: dict[str, str]) -> bool:
        value, op = labels.get(expr["key"]), str(expr["operator"])
        if op in ("In", "NotIn"):
            return (value in expr["values"]) == (op == "In")
        if op in ("Exists", "DoesNotExist"):
            return (value is not None) == (op == "Exists")
        if value is None or not value.isdigit():
            return False
        bound = int(expr["values"][0])
        return int(value) > bound if op == "Gt" else int(value) < bound

    def labels(self, pod: Obj, node: Obj) -> list[str]:
        labels = node["metadata"]["labels"]
        ok = all(labels.get(k) == v for k, v in pod["spec"]["nodeSelector"].items())
        required = pod["spec"]["affinity"].get("nodeAffinity")
        if required is not None:
            terms = required["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            ok = ok and any(all(self.matches(e, labels) for e in t["matchExpressions"])
                            for t in terms)
        return [] if ok else ["node(s) didn't match Pod's node affinity/selector"]

    def fit(self, pod: Obj, node: Obj) -> list[str]:
        (cpu, memory), free = self.requests(pod), self.free(node)
        out = ["Too many pods"] if free[2] < 1 else []
        out += ["Insufficient cpu"] if 0 < cpu and free[0] < cpu else []
        return out + (["Insufficient memory"] if 0 < memory and free[1] < memory else [])

    @staticmethod
    def selects(term: Obj, holder: Obj, other: Obj) -> bool:
        return bool(holder["metadata"]["tenant"] == other["metadata"]["tenant"] and
                    other["metadata"]["labels"]["app"]
                    == term["labelSelector"]["matchLabels"]["app"])

    def pod_rules(self, pod: Obj, node: Obj) -> list[str]:
        affinity, labels = pod["spec"]["affinity"], node["metadata"]["labels"]
        for term in affinity.get("podAffinity", {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution", []):
            anywhere = [p for p, _ in self.placed.values() if self.selects(term, pod, p)]
            near = [p for p in self.pods_near(node, term["topologyKey"])
                    if self.selects(term, pod, p)]
            first = not anywhere and self.selects(term, pod, pod)
            if term["topologyKey"] not in labels or not (near or first):
                return ["node(s) didn't match pod affinity rules"]
        for term in affinity.get("podAntiAffinity", {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution", []):
            if any(self.selects(term, pod, p) for p in self.pods_near(node, term["topologyKey"])):
                return ["node(s) didn't match pod anti-affinity rules"]
        for other, _ in self.placed.values():
            for term in other["spec"]["affinity"].get("podAntiAffinity", {}).get(
                    "requiredDuringSchedulingIgnoredDuringExecution", []):
                if self.selects(term, other, pod) and any(
                        p is other for p in self.pods_near(node, term["topologyKey"])):
                    return ["node(s) didn't satisfy existing pods anti-affinity rules"]
        return []


def check_against_reference(nodes: list[Obj], pods: list[Obj]) -> None:
    """Schedule `pods` one by one (assuming each) and compare every decision with the
    reference: the feasible count, the chosen node, the reasons; then no over-commitment."""
    node_objs = [node_json(i, n) for i, n in enumerate(nodes)]
    table = table_of(*node_objs)
    ref = Reference(node_objs)
    for i, spec in enumerate(pods):
        pod = pod_json(i, spec)
        info = pod_info(pod)
        verdicts = {n["metadata"]["name"]: ref.reasons(pod, n) for n in node_objs}
        fitting = [name for name, why in verdicts.items() if not why]
        decision = alg.schedule(table, info)
        assert decision.feasible == len(fitting)
        if decision.node is None:
            assert not fitting
            assert decision.reasons == Counter(r for why in verdicts.values() for r in why)
            continue
        assert decision.node in fitting
        alg.assume(table, info, decision.node)
        ref.placed[f"p{i}"] = (pod, next(n for n in node_objs
                                         if n["metadata"]["name"] == decision.node))
        if spec["forget"]:
            victim = min(ref.placed)
            del ref.placed[victim]
            table.remove_pod(f"{pods[int(victim[1:])]['tenant']}/dev/{victim}")
    for node in node_objs:  # never over-committed
        assert all(room >= 0 for room in ref.free(node)), node["metadata"]["name"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=nodes_st, pods=pods_st)
def test_decisions_agree_with_a_naive_reference(nodes: list[Obj], pods: list[Obj]) -> None:
    check_against_reference(nodes, pods)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(st.fixed_dictionaries({
           "zone": st.sampled_from([None, "a", "b", "c"]), "host": st.booleans()}),
           min_size=2, max_size=6),
       pods=st.lists(st.fixed_dictionaries({
           "tenant": st.sampled_from(["t1", "t2"]), "app": st.sampled_from(["x", "y"]),
           "anti": st.sampled_from([None, HOST, "zone"]),
           "anti_app": st.sampled_from(["x", "y"]),
           "affinity": st.sampled_from([None, None, "zone"]),
           "forget": st.sampled_from([False, False, True])}), min_size=4, max_size=20))
def test_pod_affinity_agrees_with_the_reference(nodes: list[Obj], pods: list[Obj]) -> None:
    """The same check with only pod (anti-)affinity in play, so those rules decide often."""
    roomy: Obj = {"cpu": "4", "memory": "4Gi", "pods": "110", "gen": None, "taints": [],
             "unschedulable": False, "container": True, "vm": False}
    plain: Obj = {"vm": False, "cpu": None, "memory": None, "selector": None, "terms": None,
             "tolerations": [], "node_name": None}
    check_against_reference([{**roomy, **n} for n in nodes], [{**plain, **p} for p in pods])
