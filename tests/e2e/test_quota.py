"""ResourceQuota (per namespace and per tenant) and LimitRange admission."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest


def pod(name: str, cpu: str | None = "100m") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return {"metadata": {"name": name}, "spec": {"containers": [container]}}


def quota(name: str, hard: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, **meta}, "spec": {"hard": hard}}


def test_concurrent_creates_never_exceed_the_quota(server: ApiServerProcess) -> None:
    rest = Rest(server.url)
    rest.ok(rest.post("/api/v1/namespaces", {"metadata": {"name": "q1"}}))
    rest.ok(rest.post("/api/v1/namespaces/q1/resourcequotas",
                      quota("small", {"pods": "3", "requests.cpu": "1"})))
    with ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(lambda i: Rest(server.url).post(
            "/api/v1/namespaces/q1/pods", pod(f"p{i}")), range(12)))
    codes = sorted(r.status_code for r in resps)
    assert codes == [201] * 3 + [403] * 9
    refused = next(r for r in resps if r.status_code == 403).json()
    assert refused["reason"] == "Forbidden" and "exceeded quota: small" in refused["message"]
    assert len(rest.names("/api/v1/namespaces/q1/pods")) == 3
    status = rest.ok(rest.get("/api/v1/namespaces/q1/resourcequotas/small"))["status"]
    assert status["used"]["pods"] == "3" and status["used"]["requests.cpu"] == "300m"
    missing = rest.post("/api/v1/namespaces/q1/pods", pod("bare", cpu=None))
    assert missing.status_code == 403 and "must specify" in missing.json()["message"]
    victim = rest.names("/api/v1/namespaces/q1/pods")[0]
    rest.ok(rest.delete(f"/api/v1/namespaces/q1/pods/{victim}"))
    rest.ok(rest.post("/api/v1/namespaces/q1/pods", pod("after-delete")), 201)


def test_tenant_quota_counts_every_namespace(server: ApiServerProcess) -> None:
    rest = Rest(server.url)
    rest.ok(rest.post("/api/v1/tenants", {"metadata": {"name": "quota-t"}, "spec": {}}))
    base = "/api/v1/tenants/quota-t/namespaces"
    for ns in ("kube-system", "a", "b"):
        rest.ok(rest.post(base, {"metadata": {"name": ns}}))
    rest.ok(rest.post(f"{base}/kube-system/resourcequotas", quota(
        "tenant-wide", {"count/configmaps": "2"}, labels={"arktos.io/scope": "tenant"})))
    cm = {"metadata": {"name": "c"}, "data": {}}
    rest.ok(rest.post(f"{base}/a/configmaps", cm))
    rest.ok(rest.post(f"{base}/b/configmaps", cm))
    third = rest.post(f"{base}/b/configmaps", {"metadata": {"name": "d"}, "data": {}})
    assert third.status_code == 403 and "tenant-wide" in third.json()["message"]


def test_limit_range_defaults_and_bounds(server: ApiServerProcess) -> None:
    rest = Rest(server.url)
    rest.ok(rest.post("/api/v1/namespaces", {"metadata": {"name": "lr"}}))
    rest.ok(rest.post("/api/v1/namespaces/lr/limitranges", {
        "metadata": {"name": "limits"}, "spec": {"limits": [{
            "type": "Container", "max": {"cpu": "1"},
            "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "200m"}}]}}))
    made = rest.ok(rest.post("/api/v1/namespaces/lr/pods", pod("d", cpu=None)))
    resources = made["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "200m"}, "limits": {"cpu": "500m"}}
    big = rest.post("/api/v1/namespaces/lr/pods", pod("big", cpu="2"))
    assert big.status_code == 403 and "maximum cpu usage per Container is 1" in \
        big.json()["message"]
    assert rest.names("/api/v1/namespaces/lr/pods") == ["d"]
