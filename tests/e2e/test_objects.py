"""Object semantics over raw HTTP, against both storage backends."""

from __future__ import annotations

from tests.e2e.rest import Rest, configmap, pod


def test_bootstrap_objects_exist(rest: Rest) -> None:
    assert "system" in rest.names("/api/v1/tenants")
    names = rest.names("/api/v1/namespaces")
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    version = rest.ok(rest.get("/version"))
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")


def test_create_get_list_update_delete(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    created = rest.ok(rest.post(base, configmap("a", labels={"app": "x"})), 201)
    md = created["metadata"]
    assert md["tenant"] == "system" and md["namespace"] == ns and md["uid"]
    assert 0 <= md["hashKey"] < 2**63 and int(md["resourceVersion"]) > 0
    got = rest.ok(rest.get(f"{base}/a"))
    assert got == created
    assert rest.names(base) == ["a"]
    got["data"]["k"] = "w"
    updated = rest.ok(rest.put(f"{base}/a", got))
    assert int(updated["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    assert rest.ok(rest.get(f"{base}/a"))["data"]["k"] == "w"
    rest.ok(rest.delete(f"{base}/a"))
    assert rest.get(f"{base}/a").status_code == 404
    assert rest.names(base) == []


def test_stale_update_conflicts_and_duplicate_create(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    first = rest.ok(rest.post(base, configmap("a")))
    dup = rest.post(base, configmap("a"))
    assert dup.status_code == 409 and dup.json()["reason"] == "AlreadyExists"
    rest.ok(rest.put(f"{base}/a", {**first, "data": {"k": "1"}}))
    stale = rest.put(f"{base}/a", {**first, "data": {"k": "2"}})
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    assert rest.ok(rest.get(f"{base}/a"))["data"] == {"k": "1"}


def test_generate_name(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    a = rest.ok(rest.post(base, {"metadata": {"generateName": "gen-"}, "data": {}}))
    b = rest.ok(rest.post(base, {"metadata": {"generateName": "gen-"}, "data": {}}))
    assert a["metadata"]["name"].startswith("gen-") and a["metadata"]["name"] != \
        b["metadata"]["name"]


def test_status_subresource_keeps_spec_apart(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    created = rest.ok(rest.post(base, pod("p")))
    assert created["status"]["phase"] == "Pending"
    created["status"] = {"phase": "Running"}
    created["spec"]["activeDeadlineSeconds"] = 5
    after = rest.ok(rest.put(f"{base}/p/status", created))
    assert after["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in after["spec"]
    after["status"] = {"phase": "Failed"}
    main = rest.ok(rest.put(f"{base}/p", after))
    assert main["status"]["phase"] == "Running"
    assert main["metadata"]["generation"] == 1


def test_generation_bumps_on_spec_change(rest: Rest, ns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = rest.ok(rest.post(base, deployment("d")))
    assert dep["metadata"]["generation"] == 1
    dep["spec"]["replicas"] = 3
    assert rest.ok(rest.put(f"{base}/d", dep))["metadata"]["generation"] == 2
    scale = rest.ok(rest.get(f"{base}/d/scale"))
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    rest.ok(rest.patch(f"{base}/d/scale", {"spec": {"replicas": 5}}))
    assert rest.ok(rest.get(f"{base}/d"))["spec"]["replicas"] == 5


def deployment(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def test_finalizers_hold_deletion(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rest.ok(rest.post(base, configmap("f", finalizers=["example.com/hold"])))
    marked = rest.ok(rest.delete(f"{base}/f"))
    assert marked["metadata"]["deletionTimestamp"]
    still = rest.ok(rest.get(f"{base}/f"))
    still["metadata"]["finalizers"] = []
    rest.ok(rest.put(f"{base}/f", still))
    assert rest.get(f"{base}/f").status_code == 404


def test_bound_pod_waits_for_agent_on_delete(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    rest.ok(rest.post(base, pod("p")))
    rest.ok(rest.post(f"{base}/p/binding", {"apiVersion": "v1", "kind": "Binding",
                                            "metadata": {"name": "p"},
                                            "target": {"kind": "Node", "name": "n1"}}), 201)
    bound = rest.ok(rest.get(f"{base}/p"))
    assert bound["spec"]["nodeName"] == "n1"
    again = rest.post(f"{base}/p/binding", {"target": {"kind": "Node", "name": "n2"}})
    assert again.status_code == 409
    marked = rest.ok(rest.delete(f"{base}/p"))
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert rest.get(f"{base}/p").status_code == 200
    rest.ok(rest.delete(f"{base}/p", gracePeriodSeconds=0))
    assert rest.get(f"{base}/p").status_code == 404


def test_unbound_pod_goes_at_once(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    rest.ok(rest.post(base, pod("p")))
    rest.ok(rest.delete(f"{base}/p"))
    assert rest.get(f"{base}/p").status_code == 404


def test_pod_action_creates_action(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/pods"
    rest.ok(rest.post(base, pod("vm")))
    status = rest.ok(rest.post(f"{base}/vm/action", {"apiVersion": "v1", "kind": "CustomAction",
                                                     "operation": "snapshot",
                                                     "snapshotParams": {"snapshotName": "s1"}}))
    assert status["status"] == "Success" and status["details"]["name"] == "s1"
    actions = rest.ok(rest.get(f"/api/v1/namespaces/{ns}/actions"))["items"]
    assert len(actions) == 1
    spec = actions[0]["spec"]
    assert spec["podName"] == "vm" and spec["snapshotAction"] == {"snapshotName": "s1"}
    assert actions[0]["metadata"]["name"].startswith("snapshot-")
    bad = rest.post(f"{base}/vm/action", {"operation": "explode"})
    assert bad.status_code == 400


def test_label_and_field_selectors_and_pagination(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        rest.ok(rest.post(base, configmap(f"c{i}", labels={"tier": "a" if i % 2 else "b"})))
    assert rest.names(base, labelSelector="tier=a") == ["c1", "c3", "c5"]
    assert rest.names(base, labelSelector="tier in (a,b),tier!=b") == ["c1", "c3", "c5"]
    assert rest.names(base, fieldSelector="metadata.name=c2") == ["c2"]
    seen, token = [], ""
    while True:
        page = rest.ok(rest.get(base, limit=3, **({"continue": token} if token else {})))
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [f"c{i}" for i in range(7)]


def test_hash_key_field_selector(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    keys = {}
    for i in range(6):
        keys[f"h{i}"] = rest.ok(rest.post(base, configmap(f"h{i}")))["metadata"]["hashKey"]
    mid = sorted(keys.values())[3]
    high = rest.names(base, fieldSelector=f"metadata.hashKey>={mid}")
    assert high == sorted(n for n, k in keys.items() if k >= mid)


def test_owner_reference_gets_owner_hash_key(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    owner = rest.ok(rest.post(base, configmap("owner")))["metadata"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["uid"]}
    child = rest.ok(rest.post(base, configmap("child", ownerReferences=[ref])))
    assert child["metadata"]["ownerReferences"][0]["hashKey"] == owner["hashKey"]


def test_namespace_deletion_waits_for_finalize(rest: Rest) -> None:
    rest.ok(rest.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}}))
    marked = rest.ok(rest.delete("/api/v1/namespaces/doomed"))
    assert marked["status"]["phase"] == "Terminating"
    refused = rest.post("/api/v1/namespaces/doomed/configmaps", configmap("x"))
    assert refused.status_code == 403
    assert refused.json()["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    ns = rest.ok(rest.get("/api/v1/namespaces/doomed"))
    ns["spec"]["finalizers"] = []
    rest.ok(rest.put("/api/v1/namespaces/doomed/finalize", ns))
    assert rest.get("/api/v1/namespaces/doomed").status_code == 404


def test_system_tenant_and_namespaces_are_immortal(rest: Rest) -> None:
    assert rest.delete("/api/v1/tenants/system").status_code == 403
    assert rest.delete("/api/v1/namespaces/kube-system").status_code == 403


def test_delete_collection(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(3):
        rest.ok(rest.post(base, configmap(f"d{i}", labels={"x": "1" if i else "0"})))
    rest.ok(rest.delete(base, labelSelector="x=1"))
    assert rest.names(base) == ["d0"]


def test_propagation_policies_leave_finalizers_for_the_collector(rest: Rest, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for name, policy, finalizer in (("fg", "Foreground", "foregroundDeletion"),
                                    ("or", "Orphan", "orphan")):
        rest.ok(rest.post(base, configmap(name)))
        marked = rest.ok(rest.delete(f"{base}/{name}", {"propagationPolicy": policy}))
        assert marked["metadata"]["finalizers"] == [finalizer]
        assert marked["metadata"]["deletionTimestamp"]
    rest.ok(rest.post(base, configmap("legacy")))
    marked = rest.ok(rest.delete(f"{base}/legacy", {"orphanDependents": True}))
    assert marked["metadata"]["finalizers"] == ["orphan"]
    rest.ok(rest.post(base, configmap("bg")))
    rest.ok(rest.delete(f"{base}/bg", propagationPolicy="Background"))
    assert rest.get(f"{base}/bg").status_code == 404
    assert rest.delete(f"{base}/x", {"propagationPolicy": "Sideways"}).status_code == 400
