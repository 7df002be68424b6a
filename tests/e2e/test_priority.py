"""PriorityClasses over HTTP: built-in classes exist, a pod's spec.priority is filled from its
class at admission, and an unknown class is refused without writing anything."""

from __future__ import annotations

from tests.e2e.rest import Rest, pod

CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


def test_pod_priority_is_resolved_from_its_class(rest: Rest, ns: str) -> None:
    assert {"system-cluster-critical", "system-node-critical"} <= set(rest.names(CLASSES))
    rest.ok(rest.post(CLASSES, {"metadata": {"name": f"high-{ns}"}, "value": 1000}))
    high = pod("high")
    high["spec"]["priorityClassName"] = f"high-{ns}"
    made = rest.ok(rest.post(f"/api/v1/namespaces/{ns}/pods", high))
    assert made["spec"]["priority"] == 1000
    plain = rest.ok(rest.post(f"/api/v1/namespaces/{ns}/pods", pod("plain")))
    assert plain["spec"]["priority"] == 0
    bad = pod("bad")
    bad["spec"]["priorityClassName"] = "no-such-class"
    refused = rest.post(f"/api/v1/namespaces/{ns}/pods", bad)
    assert refused.status_code == 403, refused.text
    assert "no PriorityClass with name no-such-class" in refused.json()["message"]
    assert rest.get(f"/api/v1/namespaces/{ns}/pods/bad").status_code == 404
    reserved = rest.post(CLASSES, {"metadata": {"name": "system-mine"}, "value": 1})
    assert reserved.status_code == 422, reserved.text
