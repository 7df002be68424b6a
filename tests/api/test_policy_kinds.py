"""The ResourceQuota and LimitRange kinds (`arktos.api.kinds.policy`): validation, defaults,
columns, and that garbage never makes them raise."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arktos.api.errors import Cause
from arktos.api.kinds import policy
from arktos.api.resources import ResourceType, Scope
from tests.api.kind_samples import json_paths

Obj = dict[str, Any]
KINDS = {t.kind: t for t in policy.TYPES}
QUOTA: Obj = {"metadata": {"name": "compute", "tenant": "acme", "namespace": "dev"},
              "spec": {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi",
                                "count/deployments.apps": "3", "cpu": "2", "memory": "1Gi",
                                "configmaps": "5", "secrets": "5", "services": "2",
                                "persistentvolumeclaims": "4", "requests.storage": "100Gi",
                                "count/configmaps": "5", "limits.cpu": "4",
                                "requests.memory": "1Gi"}}}
TENANT_QUOTA: Obj = {"metadata": {"name": "tenant", "tenant": "acme", "namespace": "kube-system",
                                  "labels": {"arktos.io/scope": "tenant"}},
                     "spec": {"hard": {"pods": "100"}}}
LIMITS: Obj = {"metadata": {"name": "limits", "tenant": "acme", "namespace": "dev"},
               "spec": {"limits": [
                   {"type": "Container", "min": {"cpu": "50m", "memory": "32Mi"},
                    "max": {"cpu": "2", "memory": "2Gi"},
                    "default": {"cpu": "500m", "memory": "256Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                    "maxLimitRequestRatio": {"cpu": "10"}},
                   {"type": "Pod", "max": {"cpu": "4", "memory": "4Gi"}}]}}


def check(kind: str, obj: Obj, old: Obj | None = None) -> list[Cause]:
    t = KINDS[kind]
    t.default(obj)
    causes: list[Cause] = t.validate(obj, old)
    return causes


def causes_of(kind: str, obj: Obj, old: Obj | None = None) -> set[tuple[str, str]]:
    return {(c.field, c.message) for c in check(kind, obj, old)}


def with_spec(base: Obj, **spec: Any) -> Obj:
    out = copy.deepcopy(base)
    out["spec"].update(spec)
    return out


def test_registration() -> None:
    rq, lr = KINDS["ResourceQuota"], KINDS["LimitRange"]
    assert (rq.group, rq.version, rq.plural, rq.short_names, rq.scope) == (
        "", "v1", "resourcequotas", ("quota",), Scope.NAMESPACE)
    assert rq.has_status
    assert (lr.plural, lr.short_names, lr.scope, lr.has_status) == (
        "limitranges", ("limits",), Scope.NAMESPACE, False)
    assert all(isinstance(t, ResourceType) for t in policy.TYPES)


@pytest.mark.parametrize(("kind", "obj"), [
    ("ResourceQuota", QUOTA), ("ResourceQuota", TENANT_QUOTA), ("LimitRange", LIMITS),
    ("ResourceQuota", {"metadata": {"name": "q"}}), ("LimitRange", {"metadata": {"name": "l"}}),
])
def test_samples_are_valid(kind: str, obj: Obj) -> None:
    assert check(kind, copy.deepcopy(obj)) == []
    assert check(kind, copy.deepcopy(obj), old=copy.deepcopy(obj)) == []


# --- ResourceQuota ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value", "message"), [
    ("foo", "1", 'Invalid value: "foo": must be a standard resource for quota'),
    ("count/Pods", "1", 'Invalid value: "count/Pods": must be a standard resource for quota'),
    ("requests.gpu", "1", ('Invalid value: "requests.gpu": must be a standard resource for '
                          'quota')),
    ("pods", "1.5", 'Invalid value: "1.5": must be an integer'),
    ("count/pods", "500m", 'Invalid value: "500m": must be an integer'),
    ("cpu", "-1", 'Invalid value: "-1": must be greater than or equal to 0'),
    ("memory", "lots", ('Invalid value: "lots": quantities must match the regular expression '
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")),
])
def test_bad_hard_entries(name: str, value: str, message: str) -> None:
    obj = with_spec(QUOTA, hard={name: value})
    assert (f"spec.hard[{name}]", message) in causes_of("ResourceQuota", obj)


def test_status_maps_are_checked_too() -> None:
    obj = copy.deepcopy(QUOTA)
    obj["status"] = {"hard": {"pods": "10"}, "used": {"pods": "-1", "nope": "1"}}
    assert {f for f, _ in causes_of("ResourceQuota", obj)} == {"status.used[pods]",
                                                               "status.used[nope]"}


def test_scopes() -> None:
    ok = with_spec(QUOTA, hard={"pods": "5", "count/pods": "9"}, scopes=["BestEffort",
                                                                         "Terminating"])
    assert check("ResourceQuota", ok) == []
    assert causes_of("ResourceQuota", with_spec(QUOTA, scopes=["Sometimes"])) == {
        ("spec.scopes[0]", ('Unsupported value: "Sometimes": supported values: "Terminating", '
                           '"NotTerminating", "BestEffort", "NotBestEffort"'))}
    assert causes_of("ResourceQuota", with_spec(QUOTA, scopes=["BestEffort"])) == {
        ("spec.scopes", ('Invalid value: ["BestEffort"]: unsupported scope applied to '
                        'resource'))}
    compute = with_spec(QUOTA, hard={"requests.cpu": "1"}, scopes=["Terminating",
                                                                    "NotTerminating"])
    assert causes_of("ResourceQuota", compute) == {
        ("spec.scopes", ('Invalid value: ["Terminating", "NotTerminating"]: conflicting '
                        'scopes'))}
    selector = with_spec(QUOTA, scopeSelector={"matchExpressions": []})
    assert causes_of("ResourceQuota", selector) == {
        ("spec.scopeSelector", "Forbidden: not supported; use `scopes`")}


def test_tenant_scope_label() -> None:
    path = "metadata.labels[arktos.io/scope]"
    misplaced = copy.deepcopy(TENANT_QUOTA)
    misplaced["metadata"]["namespace"] = "dev"
    assert causes_of("ResourceQuota", misplaced) == {
        (path, ('Invalid value: "tenant": a tenant-wide quota must be in namespace '
               'kube-system'))}
    wrong = copy.deepcopy(TENANT_QUOTA)
    wrong["metadata"]["labels"]["arktos.io/scope"] = "cluster"
    assert causes_of("ResourceQuota", wrong) == {
        (path, 'Unsupported value: "cluster": supported values: "tenant"')}
    plain = copy.deepcopy(TENANT_QUOTA)
    del plain["metadata"]["labels"]
    assert causes_of("ResourceQuota", copy.deepcopy(TENANT_QUOTA), old=plain) == {
        (path, 'Invalid value: "tenant": field is immutable')}
    assert causes_of("ResourceQuota", plain, old=copy.deepcopy(TENANT_QUOTA)) == {
        (path, "Invalid value: null: field is immutable")}


def test_quota_columns() -> None:
    obj = {"spec": {"hard": {"pods": "10", "requests.cpu": "2", "limits.cpu": "4",
                             "limits.memory": "2Gi"}},
           "status": {"hard": {"pods": "10", "requests.cpu": "2", "limits.cpu": "4",
                               "limits.memory": "2Gi"},
                      "used": {"pods": "1", "requests.cpu": "500m", "limits.cpu": "1"}}}
    request, limit = KINDS["ResourceQuota"].columns
    assert (request.name, limit.name) == ("REQUEST", "LIMIT")
    assert request.get(obj) == "pods: 1/10, requests.cpu: 500m/2"
    assert limit.get(obj) == "limits.cpu: 1/4, limits.memory: 0/2Gi"
    del obj["status"]
    assert request.get(obj) == "pods: 0/10, requests.cpu: 0/2"  # before the status is written
    assert limit.get({"spec": {"hard": {"pods": "1"}}}) == ""


# --- LimitRange ---------------------------------------------------------------------------

def item(**fields: Any) -> Obj:
    return {"metadata": {"name": "l", "namespace": "dev"},
            "spec": {"limits": [{"type": "Container", **fields}]}}


def test_limit_range_defaults() -> None:
    obj = item(max={"cpu": "2"}, min={"memory": "64Mi"})
    assert check("LimitRange", obj) == []
    assert obj["spec"]["limits"][0] == {
        "type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
        "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}}


def test_limit_item_shape() -> None:
    obj = {"spec": {"limits": [{"type": "Node"}, {}, {"type": "Pod", "default": {"cpu": "1"},
                                                      "defaultRequest": {"cpu": "1"}},
                               {"type": "Pod", "max": {"gpu": "1", "cpu": "x"}}]}}
    assert causes_of("LimitRange", obj) == {
        ("spec.limits[0].type", ('Unsupported value: "Node": supported values: "Container", '
                                '"Pod"')),
        ("spec.limits[1].type", "Required value"),
        ("spec.limits[2].default", "Forbidden: may not be specified when `type` is 'Pod'"),
        ("spec.limits[2].defaultRequest",
         "Forbidden: may not be specified when `type` is 'Pod'"),
        ("spec.limits[3].type", 'Duplicate value: "Pod"'),
        ("spec.limits[3].max[gpu]", ('Invalid value: "gpu": must be a standard resource for '
                                    'containers')),
        ("spec.limits[3].max[cpu]", ('Invalid value: "x": quantities must match the regular '
                                    "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")),
    }


@pytest.mark.parametrize(("fields", "expected"), [
    ({"min": {"cpu": "3"}, "max": {"cpu": "2"}, "default": {"cpu": "2"},
      "defaultRequest": {"cpu": "3"}},
     {("spec.limits[0].min[cpu]", 'Invalid value: "3": min value 3 is greater than max value 2'),
      ("spec.limits[0].defaultRequest[cpu]",
       'Invalid value: "3": default request value 3 is greater than max value 2'),
      ("spec.limits[0].defaultRequest[cpu]",
       'Invalid value: "3": default request value 3 is greater than default limit value 2'),
      ("spec.limits[0].default[cpu]",
       'Invalid value: "3": min value 3 is greater than default value 2')}),
    ({"min": {"memory": "1Gi"}, "defaultRequest": {"memory": "512Mi"}},
     {("spec.limits[0].defaultRequest[memory]",
       'Invalid value: "512Mi": min value 1Gi is greater than default request value 512Mi')}),
    ({"max": {"cpu": "1"}, "default": {"cpu": "1500m"}, "defaultRequest": {"cpu": "1"}},
     {("spec.limits[0].default[cpu]",
       'Invalid value: "1": default value 1500m is greater than max value 1')}),
    ({"maxLimitRequestRatio": {"cpu": "500m"}},
     {("spec.limits[0].maxLimitRequestRatio[cpu]",
       'Invalid value: "500m": ratio 500m is less than 1')}),
    ({"min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}},
     {("spec.limits[0].maxLimitRequestRatio[cpu]",
       'Invalid value: "3": ratio 3 is greater than max/min = 2.000000')}),
    ({"min": {"cpu": "0"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}}, set()),
])
def test_limit_order(fields: Obj, expected: set[tuple[str, str]]) -> None:
    assert causes_of("LimitRange", item(**fields)) == expected


def test_limit_range_column() -> None:
    (created,) = KINDS["LimitRange"].columns
    assert created.name == "CREATED AT"
    assert created.get({"metadata": {"creationTimestamp": "2024-05-01T10:00:00Z"}}) == (
        "2024-05-01T10:00:00Z")


# --- garbage never raises -----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    | st.sampled_from(["", "1", "500m", "-1", "1Gi", "Container", "Pod", "cpu", "pods",
                       "tenant", "BestEffort", "kube-system"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5) | st.sampled_from(["cpu", "memory", "pods", "type", "max", "min",
                                               "default", "hard", "used", "scopes"]),
        inner, max_size=3),
    max_leaves=10)




@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), which=st.sampled_from(["quota", "tenant", "limits"]), garbage=JSON)
def test_garbage_never_raises(data: st.DataObject, which: str, garbage: Any) -> None:
    base = {"quota": QUOTA, "tenant": TENANT_QUOTA, "limits": LIMITS}[which]
    t = KINDS["LimitRange" if which == "limits" else "ResourceQuota"]
    obj = copy.deepcopy(base)
    path = data.draw(st.sampled_from([p for p in json_paths(obj) if p]))
    cur: Any = obj
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = garbage
    t.default(obj)
    for old in (None, copy.deepcopy(base), {"metadata": garbage, "spec": garbage}):
        assert all(isinstance(c, Cause) for c in t.validate(obj, old))
    for col in t.columns:
        assert isinstance(col.get(obj), str)
