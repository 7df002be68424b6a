"""Quota and limit-range logic (`arktos.api.quota`): usage, checks, defaults, formatting."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from arktos.api import quota as q
from arktos.api.quantity import parse_quantity

Obj = dict[str, Any]


def D(value: str) -> Decimal:
    amount: Decimal = parse_quantity(value)
    return amount


def res(requests: dict[str, str] | None = None,
        limits: dict[str, str] | None = None) -> Obj:
    out: Obj = {}
    if requests is not None:
        out["requests"] = requests
    if limits is not None:
        out["limits"] = limits
    return out


def container(name: str, requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None) -> Obj:
    return {"name": name, "image": "nginx", "resources": res(requests, limits)}


def pod(*containers: Obj, inits: tuple[Obj, ...] = (), ns: str = "dev", **spec: Any) -> Obj:
    body: Obj = {"containers": list(containers), **spec}
    if inits:
        body["initContainers"] = list(inits)
    return {"metadata": {"name": "web", "tenant": "acme", "namespace": ns}, "spec": body}


def vm_pod(requests: dict[str, str] | None = None,
           limits: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": "vm", "tenant": "acme", "namespace": "dev"},
            "spec": {"virtualMachine": {"name": "vm", "image": "cirros", "keyPairName": "k",
                                        "resources": res(requests, limits)}}}


def quota(name: str, hard: dict[str, str], used: dict[str, str] | None = None,
          ns: str = "dev", tenant_wide: bool = False, **spec: Any) -> Obj:
    meta: Obj = {"name": name, "tenant": "acme", "namespace": ns}
    if tenant_wide:
        meta["labels"] = {q.TENANT_SCOPE_LABEL: q.TENANT_SCOPE}
    out: Obj = {"metadata": meta, "spec": {"hard": hard, **spec}}
    if used is not None:
        out["status"] = {"hard": hard, "used": used}
    return out


def usage(**values: str) -> dict[str, Decimal]:
    return {k.replace("_", "."): D(v) for k, v in values.items()}


# --- format_quantity ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "resource", "expected"), [
    ("500m", "requests.cpu", "500m"), ("2", "limits.cpu", "2"), ("1500m", "cpu", "1500m"),
    ("0.0001", "cpu", "1m"), ("0", "cpu", "0"), ("2000m", "cpu", "2"),
    ("1Gi", "requests.memory", "1Gi"), ("512Mi", "memory", "512Mi"),
    ("1536Mi", "limits.memory", "1536Mi"), ("2048Mi", "memory", "2Gi"),
    ("1000", "memory", "1000"), ("1M", "memory", "1000000"), ("2Ki", "memory", "2Ki"),
    ("0", "memory", "0"), ("10Gi", "requests.storage", "10Gi"), ("1.5", "memory", "2"),
    ("10", "pods", "10"), ("3", "count/deployments.apps", "3"), ("1.5", "ratio", "1500m"),
])
def test_format_quantity(value: str, resource: str, expected: str) -> None:
    assert q.format_quantity(D(value), resource) == expected


# --- usage --------------------------------------------------------------------------------

def test_pod_usage_sums_containers() -> None:
    p = pod(container("a", {"cpu": "250m", "memory": "64Mi"}, {"cpu": "1", "memory": "128Mi"}),
            container("b", {"cpu": "250m"}, {"cpu": "500m"}))
    assert q.pod_usage(p) == {"count/pods": 1} | usage(
        pods="1", cpu="500m", requests_cpu="500m", limits_cpu="1500m",
        memory="64Mi", requests_memory="64Mi", limits_memory="128Mi")


def test_pod_usage_takes_the_largest_init_container() -> None:
    p = pod(container("a", {"cpu": "100m"}), container("b", {"cpu": "100m"}),
            inits=(container("i1", {"cpu": "150m"}), container("i2", {"cpu": "300m"},
                                                               {"memory": "1Gi"})))
    u = q.pod_usage(p)
    assert u["requests.cpu"] == D("300m")  # max(100m + 100m, 300m)
    assert u["limits.memory"] == D("1Gi")  # only the init container limits memory
    assert u["requests.memory"] == D("1Gi")  # its request defaults to its limit
    smaller = pod(container("a", {"cpu": "1"}), inits=(container("i", {"cpu": "300m"}),))
    assert q.pod_usage(smaller)["requests.cpu"] == D("1")


def test_pod_usage_of_a_vm() -> None:
    u = q.pod_usage(vm_pod(limits={"cpu": "2", "memory": "4Gi"}))
    assert u == {"pods": 1, "count/pods": 1, "cpu": 2, "requests.cpu": 2, "limits.cpu": 2,
                 "memory": D("4Gi"), "requests.memory": D("4Gi"), "limits.memory": D("4Gi")}


def test_pod_usage_without_resources_counts_the_pod_only() -> None:
    assert q.pod_usage(pod(container("a"))) == {"pods": 1, "count/pods": 1}


@pytest.mark.parametrize("change", [
    {"status": {"phase": "Succeeded"}}, {"status": {"phase": "Failed"}},
    {"metadata": {"name": "web", "deletionTimestamp": "2024-01-01T00:00:00Z"}},
])
def test_terminal_pods_keep_only_their_object_count(change: Obj) -> None:
    p = pod(container("a", {"cpu": "1"}))
    p.update(change)
    assert q.pod_usage(p) == {"count/pods": 1}


def test_garbage_resources_are_ignored() -> None:
    p = pod(container("a", {"cpu": "lots", "memory": "-1"}, {"cpu": "1"}))
    p["spec"]["containers"].append("junk")
    assert q.pod_usage(p)["requests.cpu"] == 1
    assert "memory" not in q.pod_usage(p)
    assert q.pod_usage({"spec": "junk"}) == {"pods": 1, "count/pods": 1}


def test_object_usage() -> None:
    assert q.object_usage("configmaps", {}) == {"count/configmaps": 1, "configmaps": 1}
    assert q.object_usage("deployments.apps", {}) == {"count/deployments.apps": 1}
    assert q.object_usage("services", {}) == {"count/services": 1, "services": 1}
    pvc = {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}
    assert q.object_usage("persistentvolumeclaims", pvc) == {
        "count/persistentvolumeclaims": 1, "persistentvolumeclaims": 1,
        "requests.storage": D("10Gi")}
    assert q.object_usage("pods", pod(container("a")))["pods"] == 1


def test_usage_of_skips_terminal_pods_but_counts_them() -> None:
    done = pod(container("a", {"cpu": "1"}))
    done["status"] = {"phase": "Succeeded"}
    total = q.usage_of([("pods", pod(container("a", {"cpu": "1"}))), ("pods", done),
                        ("pods", pod(container("b", {"cpu": "500m"}))), ("secrets", {})])
    assert total["pods"] == 2
    assert total["count/pods"] == 3
    assert total["requests.cpu"] == D("1500m")
    assert total["secrets"] == 1


def test_diff_and_add_usage() -> None:
    assert q.diff(usage(pods="1", cpu="1"), usage(pods="1", cpu="250m")) == usage(cpu="750m")
    assert q.diff({}, usage(pods="1")) == {"pods": -1}
    assert q.add_usage(usage(pods="2"), {"pods": Decimal(-3), "cpu": D("1")}) == {
        "pods": 0, "cpu": 1}


# --- which quotas apply -------------------------------------------------------------------

def test_namespace_quota_applies_to_its_namespace_only() -> None:
    rq = quota("compute", {"pods": "2"})
    assert q.applies(rq, "pods", pod(container("a")))
    assert not q.applies(rq, "pods", pod(container("a"), ns="prod"))
    other_tenant = pod(container("a"))
    other_tenant["metadata"]["tenant"] = "globex"
    assert not q.applies(rq, "pods", other_tenant)


def test_tenant_quota_applies_to_every_namespace_of_its_tenant() -> None:
    rq = quota("tenant", {"pods": "2"}, ns="kube-system", tenant_wide=True)
    assert q.tenant_scoped(rq)
    for ns in ("dev", "prod", "kube-system"):
        assert q.applies(rq, "pods", pod(container("a"), ns=ns))
    elsewhere = quota("tenant", {"pods": "2"}, ns="dev", tenant_wide=True)
    assert not q.tenant_scoped(elsewhere)
    assert not q.applies(elsewhere, "pods", pod(container("a"), ns="prod"))


def test_scoped_quotas() -> None:
    best_effort = pod(container("a"))
    burstable = pod(container("a", {"cpu": "1"}))
    terminating = pod(container("a"), activeDeadlineSeconds=60)
    scoped = {s: quota(s, {"pods": "1"}, scopes=[s]) for s in q.SCOPES}
    assert q.applies(scoped["BestEffort"], "pods", best_effort)
    assert not q.applies(scoped["BestEffort"], "pods", burstable)
    assert q.applies(scoped["NotBestEffort"], "pods", burstable)
    assert q.applies(scoped["Terminating"], "pods", terminating)
    assert not q.applies(scoped["NotTerminating"], "pods", terminating)
    assert q.applies(scoped["NotTerminating"], "pods", best_effort)
    assert not q.applies(scoped["BestEffort"], "configmaps", {"metadata": {"namespace": "dev"}})
    both = quota("both", {"pods": "1"}, scopes=["BestEffort", "Terminating"])
    assert not q.applies(both, "pods", best_effort)
    assert q.applies(both, "pods", pod(container("a"), activeDeadlineSeconds=1))


# --- check --------------------------------------------------------------------------------

def test_check_under_the_limits() -> None:
    rq = quota("compute", {"pods": "10", "requests.cpu": "2"}, {"pods": "1",
                                                                "requests.cpu": "1500m"})
    delta = q.pod_usage(pod(container("a", {"cpu": "500m"})))
    assert q.check([rq], {}, delta) == []


def test_check_over_the_limit_reads_like_kubernetes() -> None:
    rq = quota("compute", {"pods": "10", "requests.cpu": "2"}, {"pods": "1",
                                                                "requests.cpu": "1500m"})
    delta = q.pod_usage(pod(container("a", {"cpu": "600m"})))
    assert q.check([rq], {}, delta) == [
        ("exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=1500m, "
        "limited: requests.cpu=2")]


def test_check_lists_every_exceeded_resource_sorted() -> None:
    rq = quota("small", {"pods": "1", "limits.memory": "1Gi", "cpu": "1"})
    delta = q.pod_usage(pod(container("a", {"cpu": "2", "memory": "1Gi"}, {"memory": "2Gi"})))
    used = {q.quota_key(rq): usage(pods="1")}
    assert q.check([rq], used, delta) == [
        ("exceeded quota: small, requested: cpu=2,limits.memory=2Gi,pods=1, "
        "used: cpu=0,limits.memory=0,pods=1, limited: cpu=1,limits.memory=1Gi,pods=1")]


def test_check_uses_the_given_usage_over_the_status() -> None:
    rq = quota("pods", {"pods": "2"}, {"pods": "0"})
    delta = q.object_usage("pods", pod(container("a")))
    assert q.check([rq], {}, delta) == []
    assert q.check([rq], {"dev/pods": usage(pods="2")}, delta) == [
        "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2"]
    assert q.check([rq], {"other/pods": usage(pods="2")}, delta) == []


def test_check_admits_decreases_even_over_the_limit() -> None:
    rq = quota("compute", {"requests.cpu": "1", "pods": "1"}, {"requests.cpu": "3",
                                                               "pods": "5"})
    assert q.check([rq], {}, {"requests.cpu": D("-1"), "pods": Decimal(0)}) == []


def test_check_counts_objects() -> None:
    rq = quota("objects", {"count/deployments.apps": "1", "configmaps": "5"},
               {"count/deployments.apps": "1", "configmaps": "0"})
    assert q.check([rq], {}, q.object_usage("configmaps", {})) == []
    assert q.check([rq], {}, q.object_usage("deployments.apps", {})) == [
        ("exceeded quota: objects, requested: count/deployments.apps=1, "
        "used: count/deployments.apps=1, limited: count/deployments.apps=1")]


def test_check_every_quota_namespace_and_tenant() -> None:
    ns_quota = quota("ns", {"pods": "5"}, {"pods": "1"})
    tenant_quota = quota("tenant", {"pods": "3"}, {"pods": "3"}, ns="kube-system",
                         tenant_wide=True)
    p = pod(container("a"))
    quotas = [rq for rq in (ns_quota, tenant_quota) if q.applies(rq, "pods", p)]
    assert q.check(quotas, {}, q.pod_usage(p)) == [
        "exceeded quota: tenant, requested: pods=1, used: pods=3, limited: pods=3"]


def test_quota_on_compute_requires_every_container_to_state_it() -> None:
    rq = quota("compute", {"requests.cpu": "4", "limits.cpu": "4", "memory": "1Gi",
                           "pods": "9"}, {})
    p = pod(container("a", {"cpu": "1", "memory": "1Mi"}), container("b", {}, {"cpu": "1"}))
    assert q.check([rq], {}, q.pod_usage(p), p) == [
        "failed quota: compute: must specify limits.cpu,memory"]
    assert q.missing_requests(rq, pod(container("a", {"memory": "1Mi"}, {"cpu": "1"}))) is None
    assert q.missing_requests(quota("pods", {"pods": "1"}), pod(container("a"))) is None
    vm_quota = quota("vm", {"limits.memory": "8Gi"})
    assert q.missing_requests(vm_quota, vm_pod(requests={"memory": "1Gi"})) == (
        "failed quota: vm: must specify limits.memory")
    assert q.missing_requests(vm_quota, vm_pod(limits={"memory": "1Gi"})) is None


def test_missing_requests_come_before_exceeded() -> None:
    rq = quota("compute", {"requests.cpu": "1", "pods": "0"}, {})
    p = pod(container("a"))
    assert q.check([rq], {}, q.pod_usage(p), p) == [
        "failed quota: compute: must specify requests.cpu",
        "exceeded quota: compute, requested: pods=1, used: pods=0, limited: pods=0"]


def test_quota_usage_and_status() -> None:
    rq = quota("compute", {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi"})
    objects = [("pods", pod(container("a", {"cpu": "500m"}))),
               ("pods", pod(container("b", {"cpu": "1"}), ns="prod")),
               ("configmaps", {"metadata": {"namespace": "dev"}})]
    used = q.quota_usage(rq, objects)
    assert used == {"pods": 1, "requests.cpu": D("500m"), "limits.memory": 0}
    assert q.quota_status(rq, used) == {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi"},
        "used": {"pods": "1", "requests.cpu": "500m", "limits.memory": "0"}}
    tenant = quota("t", {"pods": "10"}, ns="kube-system", tenant_wide=True)
    assert q.quota_usage(tenant, objects) == {"pods": 2}


def test_admission_flow_counts_concurrent_creates_one_by_one() -> None:
    """What the lead's serialized admission does: check, then store the new usage."""
    rq = quota("pods", {"pods": "2"}, {})
    used: dict[str, Decimal] = {}
    outcomes = []
    for _ in range(3):
        delta = q.diff(q.object_usage("pods", pod(container("a"))), {})
        errors = q.check([rq], {q.quota_key(rq): used}, delta)
        outcomes.append(errors == [])
        if not errors:
            used = q.add_usage(used, delta)
    assert outcomes == [True, True, False]
    assert q.quota_status(rq, used)["used"] == {"pods": "2"}


# --- limit ranges -------------------------------------------------------------------------

def limit_range(*items: Obj) -> Obj:
    return {"metadata": {"name": "limits", "namespace": "dev"}, "spec": {"limits": list(items)}}


def test_default_limit_range_fills_from_max_and_min() -> None:
    lr = limit_range({"type": "Container", "max": {"cpu": "2", "memory": "1Gi"},
                      "min": {"memory": "64Mi"}, "default": {"memory": "512Mi"}},
                     {"type": "Pod", "max": {"cpu": "4"}})
    q.default_limit_range(lr)
    item, pod_item = lr["spec"]["limits"]
    assert item["default"] == {"cpu": "2", "memory": "512Mi"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "512Mi"}
    assert pod_item == {"type": "Pod", "max": {"cpu": "4"}}
    only_min = limit_range({"type": "Container", "min": {"cpu": "100m"}})
    q.default_limit_range(only_min)
    assert only_min["spec"]["limits"][0] == {"type": "Container", "min": {"cpu": "100m"},
                                             "defaultRequest": {"cpu": "100m"}}


def test_limit_range_defaults_fill_containers_and_annotate() -> None:
    lr = limit_range({"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                      "defaultRequest": {"cpu": "100m", "memory": "128Mi"}})
    p = pod(container("a"), container("b", {"cpu": "200m"}), container("c", None, {"cpu": "1"}),
            inits=(container("i"),))
    assert q.apply_limit_ranges(p, [lr]) == []
    a, b, c = (x["resources"] for x in p["spec"]["containers"])
    assert a == {"requests": {"cpu": "100m", "memory": "128Mi"},
                 "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert b == {"requests": {"cpu": "200m", "memory": "128Mi"},
                 "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert c == {"requests": {"cpu": "1", "memory": "128Mi"},  # request defaults to own limit
                 "limits": {"cpu": "1", "memory": "256Mi"}}
    assert p["spec"]["initContainers"][0]["resources"] == a
    assert p["metadata"]["annotations"][q.LIMIT_RANGER_ANNOTATION] == (
        "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for "
        "container a; memory request for container b; cpu, memory limit for container b; "
        "memory request for container c; memory limit for container c; cpu, memory request "
        "for init container i; cpu, memory limit for init container i")


def test_limit_range_defaults_a_vm_and_uses_undefaulted_ranges() -> None:
    p = vm_pod()
    lr = limit_range({"type": "Container", "max": {"cpu": "4", "memory": "8Gi"}})
    assert q.apply_limit_ranges(p, [lr]) == []
    assert p["spec"]["virtualMachine"]["resources"] == {
        "requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
    assert "virtual machine vm" in p["metadata"]["annotations"][q.LIMIT_RANGER_ANNOTATION]
    assert lr["spec"]["limits"][0] == {"type": "Container",
                                       "max": {"cpu": "4", "memory": "8Gi"}}  # not mutated


def test_first_limit_range_default_wins() -> None:
    first = limit_range({"type": "Container", "default": {"cpu": "1"}})
    second = limit_range({"type": "Container", "default": {"cpu": "2", "memory": "1Gi"}})
    p = pod(container("a"))
    q.apply_limit_ranges(p, [first, second])
    assert p["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_no_defaults_leave_the_pod_alone() -> None:
    p = pod(container("a"))
    before = copy.deepcopy(p)
    assert q.apply_limit_ranges(p, [limit_range({"type": "Pod", "max": {"cpu": "8"}})]) == [
        "maximum cpu usage per Pod is 8.  No limit is specified"]
    assert p == before


def test_container_min_and_max() -> None:
    lr = limit_range({"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "2"},
                      "default": {"cpu": "1"}, "defaultRequest": {"cpu": "500m"}})
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "1"}, {"cpu": "3"})), [lr]) == [
        "maximum cpu usage per Container is 2, but limit is 3"]
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "50m"}, {"cpu": "1"})), [lr]) == [
        "minimum cpu usage per Container is 100m, but request is 50m"]
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "3"}, {"cpu": "3"})), [lr]) == [
        "maximum cpu usage per Container is 2, but limit is 3"]
    assert q.apply_limit_ranges(pod(container("a"), inits=(container("i", {"cpu": "2500m"}),)),
                                [lr]) == [("maximum cpu usage per Container is 2, but request is "
                                          "2500m")]  # its limit defaulted to 1
    assert q.apply_limit_ranges(pod(container("a")), [lr]) == []


def test_memory_bounds_and_missing_values() -> None:
    lr = limit_range({"type": "Container", "min": {"memory": "64Mi"},
                      "max": {"memory": "1Gi"}})
    p = pod(container("a", {"memory": "32Mi"}, {"memory": "2Gi"}))
    assert q.apply_limit_ranges(p, [lr]) == [
        "minimum memory usage per Container is 64Mi, but request is 32Mi",
        "maximum memory usage per Container is 1Gi, but limit is 2Gi"]
    assert q._min_error("Container", "cpu", D("1"), {}, {}) == (
        "minimum cpu usage per Container is 1.  No request is specified")
    assert q._min_error("Container", "cpu", D("1"), usage(cpu="1"), usage(cpu="500m")) == (
        "minimum cpu usage per Container is 1, but limit is 500m")
    assert q._max_error("Container", "cpu", D("1"), usage(cpu="2"), usage(cpu="1")) == (
        "maximum cpu usage per Container is 1, but request is 2")


def test_max_limit_request_ratio() -> None:
    lr = limit_range({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}})
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "250m"}, {"cpu": "1"})), [lr]) == [
        "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000"]
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "500m"}, {"cpu": "1"})), [lr]) == []
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "500m"})), [lr]) == [
        ("cpu max limit to request ratio per Container is 2, but no limit is specified or "
        "limit is 0")]
    assert q.apply_limit_ranges(pod(container("a", {"cpu": "0"}, {"cpu": "1"})), [lr]) == [
        ("cpu max limit to request ratio per Container is 2, but no request is specified or "
        "request is 0")]


def test_pod_bounds_use_the_effective_total() -> None:
    lr = limit_range({"type": "Pod", "max": {"cpu": "2"}, "min": {"memory": "100Mi"}})
    p = pod(container("a", {"cpu": "1", "memory": "64Mi"}, {"cpu": "1500m"}),
            container("b", {"cpu": "1", "memory": "64Mi"}, {"cpu": "1"}))
    assert q.apply_limit_ranges(p, [lr]) == ["maximum cpu usage per Pod is 2, but limit is 2500m"]
    small = pod(container("a", {"memory": "50Mi"}, {"cpu": "1"}))
    assert q.apply_limit_ranges(small, [lr]) == [
        "minimum memory usage per Pod is 100Mi, but request is 50Mi"]


def test_vm_bounds() -> None:
    lr = limit_range({"type": "Container", "max": {"memory": "4Gi"}})
    assert q.apply_limit_ranges(vm_pod(limits={"memory": "8Gi"}), [lr]) == [
        "maximum memory usage per Container is 4Gi, but limit is 8Gi"]


def test_garbage_limit_ranges_and_pods_never_raise() -> None:
    garbage: list[Any] = [None, "x", 1, [], {"spec": "x"}, {"spec": {"limits": ["x", None]}},
                          limit_range({"type": "Container", "default": "x", "max": ["x"]}),
                          limit_range({"type": "Container", "default": {"cpu": {"x": 1}}})]
    pods: list[Any] = [{}, {"spec": {"containers": [{"resources": "x"}]}},
                       {"spec": {"containers": [{"resources": {"limits": "x"}}]}},
                       {"metadata": "x", "spec": {"containers": [{}]}},
                       {"metadata": {"annotations": "x"}, "spec": {"containers": [{}]}}]
    for p in pods:
        for lr in garbage:
            assert isinstance(q.apply_limit_ranges(copy.deepcopy(p), [lr]), list)
        assert isinstance(q.pod_usage(p), dict)
