"""`arktos.scheduler.podinfo`: what the scheduler reads from a pod."""

from __future__ import annotations

from typing import Any

import pytest

from arktos.scheduler.podinfo import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    NodeRequirement,
    NodeTerm,
    PodSelector,
    Taint,
    Toleration,
    parse_int,
    pod_info,
)

Obj = dict[str, Any]
GI = 2**30


def pod(spec: Obj | None = None, **meta: Any) -> Obj:
    metadata = {"name": "web", "namespace": "dev", "tenant": "acme", "uid": "u1", **meta}
    return {"metadata": metadata,
            "spec": spec if spec is not None else {"containers": [{"name": "c"}]}}


def container(cpu: str | None = None, memory: str | None = None) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests}}


def test_identity_priority_and_owner() -> None:
    owners = [{"uid": "dep", "controller": False}, {"uid": "rs-1", "controller": True}]
    info = pod_info(pod({"containers": [{"name": "c"}], "priority": 7}, labels={"app": "web"},
                        ownerReferences=owners))
    assert (info.key, info.uid, info.tenant, info.namespace, info.name) == (
        "acme/dev/web", "u1", "acme", "dev", "web")
    assert info.labels == {"app": "web"}
    assert (info.priority, info.owner, info.is_vm) == (7, "rs-1", False)
    assert pod_info(pod()).priority == 0 and pod_info(pod()).owner == ""


def test_container_requests_are_summed_and_raised_to_init_containers() -> None:
    spec = {"containers": [container("500m", "1Gi"), container("250m")],
            "initContainers": [container("1", "512Mi")]}
    info = pod_info(pod(spec))
    assert info.request.tolist() == [1000.0, float(GI), 0.0, 1.0]
    assert info.score_request == (1000.0, float(GI))


def test_vm_pod_requests_come_from_the_vm() -> None:
    spec = {"virtualMachine": {"name": "vm", "image": "cirros", "resources": {
        "requests": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}}}}
    info = pod_info(pod(spec))
    assert info.is_vm
    assert info.request.tolist() == [2000.0, 4.0 * GI, 10.0 * GI, 1.0]


def test_missing_requests_are_zero_but_scored_with_defaults() -> None:
    info = pod_info(pod())
    assert info.request.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert info.score_request == (DEFAULT_MILLI_CPU, DEFAULT_MEMORY)


def test_node_selector_and_required_node_affinity() -> None:
    terms = [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b", "a"]},
                                   {"key": "gen", "operator": "Gt", "values": ["3"]}]},
             {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
             {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["x"]}]},
             {}]
    spec = {"containers": [], "nodeSelector": {"disk": "ssd", "arch": "amd64"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}}}
    info = pod_info(pod(spec))
    assert info.node_selector == (("arch", "amd64"), ("disk", "ssd"))
    assert info.required_terms == (
        NodeTerm((NodeRequirement("zone", "In", ("a", "b")),
                  NodeRequirement("gen", "Gt", ("3",)))),
        NodeTerm((NodeRequirement("metadata.name", "In", ("n1",), field=True),)))


def test_no_required_affinity_differs_from_no_valid_term() -> None:
    assert pod_info(pod()).required_terms is None
    spec = {"containers": [], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}}
    assert pod_info(pod(spec)).required_terms == ()


@pytest.mark.parametrize("expr", [
    {"key": "a", "operator": "In", "values": []},
    {"key": "a", "operator": "Exists", "values": ["x"]},
    {"key": "a", "operator": "Lt", "values": ["1", "2"]},
    {"key": "a", "operator": "Near", "values": ["1"]},
    {"operator": "Exists"},
])
def test_invalid_requirements_void_their_term(expr: Obj) -> None:
    spec = {"containers": [], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [expr]}]}}}}
    assert pod_info(pod(spec)).required_terms == ()


def test_preferred_node_terms_keep_positive_weights() -> None:
    preferred = [{"weight": 5, "preference": {"matchExpressions": [
                     {"key": "disk", "operator": "Exists"}]}},
                 {"weight": 0, "preference": {"matchExpressions": [
                     {"key": "x", "operator": "Exists"}]}}]
    spec = {"containers": [], "affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}}}
    (term,) = pod_info(pod(spec)).preferred_terms
    assert term.weight == 5 and term.term.requirements == (NodeRequirement("disk", "Exists"),)


@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "v", "NoSchedule"), True),
    (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "w", "NoSchedule"), False),
    (Toleration("k", "Equal", "v", ""), Taint("k", "v", "NoExecute"), True),
    (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "v", "NoExecute"), False),
    (Toleration("k", "Exists", "", ""), Taint("k", "any", "NoSchedule"), True),
    (Toleration("", "Exists", "", ""), Taint("other", "x", "NoExecute"), True),
    (Toleration("", "Exists", "", "PreferNoSchedule"), Taint("o", "", "NoSchedule"), False),
    (Toleration("j", "Exists", "", ""), Taint("k", "", "NoSchedule"), False),
])
def test_toleration_semantics(toleration: Toleration, taint: Taint, expected: bool) -> None:
    assert toleration.tolerates(taint) is expected


def test_tolerations_default_to_equal() -> None:
    spec = {"containers": [], "tolerations": [{"key": "k", "value": "v"},
                                              {"operator": "Exists"}]}
    assert pod_info(pod(spec)).tolerations == (Toleration("k", "Equal", "v", ""),
                                               Toleration("", "Exists", "", ""))


def affinity_spec(kind: str, *terms: Obj) -> Obj:
    return {"containers": [], "affinity": {kind: {
        "requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}}


def test_pod_affinity_terms_namespaces_and_tenant() -> None:
    selector = {"matchLabels": {"app": "db"}}
    spec = affinity_spec(
        "podAntiAffinity",
        {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"},
        {"labelSelector": selector, "topologyKey": "zone", "namespaces": ["a", "b"]},
        {"labelSelector": selector, "topologyKey": "zone", "namespaceSelector": {}},
        {"labelSelector": selector})  # no topology key: dropped
    own, listed, every = pod_info(pod(spec)).anti_affinity
    assert own.topology_key == "kubernetes.io/hostname"
    assert own.pods.tenant == "acme" and own.pods.namespaces == frozenset({"dev"})
    assert listed.pods.namespaces == frozenset({"a", "b"})
    assert every.pods.namespaces is None
    assert pod_info(pod(spec)).has_pod_terms


def test_term_without_a_valid_selector_selects_nothing() -> None:
    spec = affinity_spec("podAffinity", {"topologyKey": "zone"},
                         {"labelSelector": {"matchExpressions": [{"key": "a"}]},
                          "topologyKey": "zone"})
    for term in pod_info(pod(spec)).affinity:
        assert term.pods.selector is None
        assert not term.pods.matches("acme", "dev", {"a": "1"})


def test_pod_selector_never_matches_another_tenant() -> None:
    spec = affinity_spec("podAffinity", {"labelSelector": {"matchLabels": {"app": "db"}},
                                         "topologyKey": "zone", "namespaceSelector": {}})
    pods: PodSelector = pod_info(pod(spec)).affinity[0].pods
    assert pods.matches("acme", "other-ns", {"app": "db"})
    assert not pods.matches("globex", "dev", {"app": "db"})
    assert not pods.matches("acme", "dev", {"app": "web"})


def test_preferred_pod_terms() -> None:
    spec = {"containers": [], "affinity": {"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "podAffinityTerm": {"labelSelector": {}, "topologyKey": "zone"}}]}}}
    (term,) = pod_info(pod(spec)).preferred_affinity
    assert term.weight == 30 and term.term.topology_key == "zone"


def test_signature_is_shared_by_identical_pods_only() -> None:
    spec: Obj = {"containers": [container("1")], "nodeSelector": {"zone": "a"}}
    first, second = pod_info(pod(spec, name="a")), pod_info(pod(spec, name="b"))
    assert first.signature == second.signature
    hash(first.signature)
    tolerant = pod_info(pod({**spec, "tolerations": [{"operator": "Exists"}]}))
    assert tolerant.signature != first.signature


def test_malformed_parts_are_ignored() -> None:
    bad = {"metadata": {"name": "x", "labels": {"a": 1}, "ownerReferences": "no"},
           "spec": {"nodeSelector": ["x"], "tolerations": "all", "priority": True,
                    "affinity": {"nodeAffinity": "x", "podAffinity": []}}}
    info = pod_info(bad)
    assert info.labels == {} and info.node_selector == () and info.tolerations == ()
    assert info.priority == 0 and info.required_terms is None and info.affinity == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("42", 42), ("-3", -3), ("+7", 7), ("1_000", None), (" 1", None), ("1.5", None),
    (str(2**63), None),
])
def test_parse_int_reads_like_go(text: str, expected: int | None) -> None:
    assert parse_int(text) == expected
