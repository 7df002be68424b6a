"""Tenant isolation at the path level and the full/short URL forms."""

from __future__ import annotations

import threading
from typing import Any

from tests.e2e.rest import Rest, configmap, pod


def test_tenant_objects_are_invisible_to_other_tenants(rest: Rest,
                                                       tenant_pair: tuple[str, str]) -> None:
    a, b = tenant_pair
    rest.ok(rest.post(f"/api/v1/tenants/{a}/namespaces/default/pods", pod("pa")))
    rest.ok(rest.post(f"/api/v1/tenants/{b}/namespaces/default/pods", pod("pb")))
    assert rest.names(f"/api/v1/tenants/{a}/namespaces/default/pods") == ["pa"]
    assert rest.names(f"/api/v1/tenants/{b}/pods") == ["pb"]
    assert rest.get(f"/api/v1/tenants/{b}/namespaces/default/pods/pa").status_code == 404
    everyone = rest.ok(rest.get("/api/v1/tenants/all/pods"))["items"]
    mine = {(p["metadata"]["tenant"], p["metadata"]["name"]) for p in everyone}
    assert {(a, "pa"), (b, "pb")} <= mine
    across = rest.ok(rest.get("/api/v1/pods"))["items"]
    assert {(a, "pa"), (b, "pb")} <= {(p["metadata"]["tenant"], p["metadata"]["name"])
                                      for p in across}
    a_pod = rest.ok(rest.get(f"/api/v1/tenants/{a}/namespaces/default/pods/pa"))
    assert a_pod["metadata"]["tenant"] == a


def test_same_names_in_two_tenants_are_distinct(rest: Rest, tenant_pair: tuple[str, str]) -> None:
    a, b = tenant_pair
    ca = rest.ok(rest.post(f"/api/v1/tenants/{a}/namespaces/default/configmaps", configmap("x")))
    cb = rest.ok(rest.post(f"/api/v1/tenants/{b}/namespaces/default/configmaps", configmap("x")))
    assert ca["metadata"]["uid"] != cb["metadata"]["uid"]
    rest.ok(rest.delete(f"/api/v1/tenants/{a}/namespaces/default/configmaps/x"))
    assert rest.get(f"/api/v1/tenants/{b}/namespaces/default/configmaps/x").status_code == 200


def test_watch_of_one_tenant_sees_only_its_objects(rest: Rest,
                                                   tenant_pair: tuple[str, str]) -> None:
    a, b = tenant_pair
    rv = rest.ok(rest.get(f"/api/v1/tenants/{a}/configmaps"))["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []

    def consume() -> None:
        events.extend(rest.watch(f"/api/v1/tenants/{a}/configmaps", resourceVersion=rv,
                                 timeoutSeconds=3))

    t = threading.Thread(target=consume)
    t.start()
    rest.ok(rest.post(f"/api/v1/tenants/{b}/namespaces/default/configmaps", configmap("b1")))
    rest.ok(rest.post(f"/api/v1/tenants/{a}/namespaces/default/configmaps", configmap("a1")))
    t.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a1")]
    assert events[0]["object"]["metadata"]["tenant"] == a


def test_tenant_scoped_resources_per_tenant(rest: Rest, tenant_pair: tuple[str, str]) -> None:
    a, b = tenant_pair
    role = {"metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    path = "/apis/rbac.authorization.k8s.io/v1/tenants/{}/clusterroles"
    rest.ok(rest.post(path.format(a), role))
    assert "reader" in rest.names(path.format(a))
    assert "reader" not in rest.names(path.format(b))
    assert rest.names(f"/api/v1/tenants/{a}/namespaces") == ["default"]


def test_writes_into_missing_tenant_are_refused(rest: Rest) -> None:
    resp = rest.post("/api/v1/tenants/nosuch/namespaces", {"metadata": {"name": "x"}})
    assert resp.status_code == 404 and resp.json()["kind"] == "Status"
    assert "nosuch" in resp.json()["message"]
    assert rest.names("/api/v1/tenants/nosuch/namespaces") == []


def test_tenant_resource_shape(rest: Rest) -> None:
    t = rest.ok(rest.post("/api/v1/tenants", {"metadata": {"name": "shape"}, "spec": {}}))
    assert t["spec"]["storageClusterId"] == "0"
    assert t["status"]["phase"] == "Active"
    assert "arktos" in t["spec"]["finalizers"]
    assert "tenant" not in t["metadata"]
    bad = rest.post("/api/v1/tenants", {"metadata": {"name": "all"}, "spec": {}})
    assert bad.status_code == 422
    marked = rest.ok(rest.delete("/api/v1/tenants/shape"))
    assert marked["status"]["phase"] == "Terminating"
    refused = rest.post("/api/v1/tenants/shape/namespaces", {"metadata": {"name": "late"}})
    assert refused.status_code == 403


def test_body_tenant_must_match_url(rest: Rest, tenant_pair: tuple[str, str]) -> None:
    a, b = tenant_pair
    resp = rest.post(f"/api/v1/tenants/{a}/namespaces/default/configmaps",
                     configmap("x", tenant=b))
    assert resp.status_code == 400
    assert rest.names(f"/api/v1/tenants/{a}/namespaces/default/configmaps") == []
    assert rest.names(f"/api/v1/tenants/{b}/namespaces/default/configmaps") == []


def test_all_is_not_a_writable_tenant(rest: Rest) -> None:
    resp = rest.post("/api/v1/tenants/all/namespaces/default/configmaps", configmap("x"))
    assert resp.status_code == 400


def test_default_namespaces_go_only_with_their_tenant(rest: Rest,
                                                      tenant_pair: tuple[str, str]) -> None:
    a, _ = tenant_pair
    refused = rest.delete(f"/api/v1/tenants/{a}/namespaces/default")
    assert refused.status_code == 403
    rest.ok(rest.delete(f"/api/v1/tenants/{a}"))
    marked = rest.ok(rest.delete(f"/api/v1/tenants/{a}/namespaces/default"))
    assert marked["status"]["phase"] == "Terminating"
